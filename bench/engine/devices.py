"""``--device``: one parser for every subcommand (``cpu``, ``cuda`` or ``cuda:N``)."""

from __future__ import annotations

import re

import torch

from bench.errors import BenchError

_DEVICE = re.compile(r"cpu|cuda(:\d+)?")


def parse_device(name: str) -> str:
    """``name`` if it is ``cpu``, ``cuda`` or ``cuda:N``, else a BenchError naming it. Says
    nothing of whether this machine has the device (a sweep's runs may run elsewhere)."""
    if not isinstance(name, str) or not _DEVICE.fullmatch(name):
        raise BenchError(f"--device must be cpu or cuda (or cuda:N), got {name!r}")
    return name


def resolve_device(name: str) -> torch.device:
    """The device to run on: :func:`parse_device`, then CUDA must be there if asked for."""
    if parse_device(name).startswith("cuda") and not torch.cuda.is_available():
        raise BenchError("--device cuda asked for, but torch sees no CUDA device here")
    return torch.device(name)
