"""Provenance of a run record: the code's commit, the versions of its stack, the hardware."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

import bench


def git_commit() -> str | None:
    """The checkout's commit (``-dirty`` with uncommitted changes), or None outside git."""
    here = Path(bench.__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict[str, str]:
    """Versions of Python, reid-bench and the numeric stack."""
    import numpy
    import torchvision

    return {
        "python": platform.python_version(),
        "reid_bench": bench.__version__,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": numpy.__version__,
    }


def hardware(device: torch.device, world_size: int = 1) -> dict[str, Any]:
    """Where a run ran: device, CPU, threads, GPU, platform and the DDP world size."""
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    return {
        "device": str(device),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "gpu": gpu,
        "platform": platform.platform(),
        "world_size": world_size,
    }


#: Environment variables that set the thread pools of the numeric libraries.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def thread_settings() -> dict[str, Any]:
    """The thread counts a run computed with: torch's intra-op and inter-op pools and the
    OpenMP/MKL/OpenBLAS variables (``None``: unset). On the CPU, reductions split across threads
    add in another order, so the last bits of features, and near-ties in a ranking, can change
    with the thread count; the same seed and thread count give identical metrics."""
    return {
        "torch": torch.get_num_threads(),
        "interop": torch.get_num_interop_threads(),
        **{name: os.environ.get(name) for name in THREAD_VARIABLES},
    }
