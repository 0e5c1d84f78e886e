"""Checkpoint files: written atomically, read with ``torch.load(weights_only=True)`` only.

Nothing in a checkpoint can run code: ``weights_only`` unpickles tensors and plain data and
refuses every other object. A checkpoint written before reid-bench saved its NumPy RNG state as
a tensor holds NumPy arrays; it is refused too, with the way out: retrain, or convert the file
with ``bench convert-checkpoint FILE`` (:func:`convert_legacy_checkpoint`), which admits NumPy
arrays and nothing else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.errors import BenchError
from bench.io import atomic_write

#: The only globals of a legacy checkpoint besides plain data: NumPy's RNG key array.
LEGACY_GLOBALS = frozenset(
    {
        "numpy.dtype",
        "numpy.ndarray",
        "numpy._core.multiarray._reconstruct",
        "numpy.core.multiarray._reconstruct",
    }
)


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temp file in the same folder, then rename: never a half checkpoint."""
    atomic_write(path, lambda fh: torch.save(obj, fh), binary=True)


def _foreign_globals(path: Path) -> list[str] | None:
    """The non-plain globals the file's pickle names (nothing is run); None if unreadable."""
    try:
        return sorted(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:
        return None


def load_checkpoint(path: Path, map_location: torch.device | str = "cpu") -> Any:
    """A checkpoint of tensors and plain data, read with ``torch.load(weights_only=True)``; any
    other file is a BenchError naming it and what to do: never executed."""
    path = Path(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # UnpicklingError (not plain data), truncated or not a checkpoint
        foreign = _foreign_globals(path) if path.is_file() else None
        if foreign is not None and foreign and set(foreign) <= LEGACY_GLOBALS:
            raise BenchError(
                f"checkpoint {path} was written by an older reid-bench (NumPy arrays in its RNG "
                f"state): convert it with `bench convert-checkpoint {path}` if you trust where "
                "it came from, or retrain (run again without --resume)"
            ) from exc
        if foreign:
            raise BenchError(
                f"checkpoint {path} holds objects other than tensors and plain data "
                f"({', '.join(foreign[:3])}{' ...' if len(foreign) > 3 else ''}): refused, never "
                "loaded; retrain (run again without --resume) or delete it"
            ) from exc
        size = path.stat().st_size if path.is_file() else None
        what = (
            "it does not exist"
            if size is None
            else "it is empty"
            if size == 0
            else f"truncated or not a checkpoint ({type(exc).__name__})"
        )
        raise BenchError(
            f"cannot read checkpoint {path}: {what}; retrain (run again without --resume) or "
            "delete it"
        ) from exc


def _tensors_for_arrays(obj: Any) -> Any:
    """NumPy's RNG state in the current layout, every other NumPy array as a tensor."""
    if isinstance(obj, dict):
        return {k: _tensors_for_arrays(v) for k, v in obj.items()}
    if isinstance(obj, tuple) and len(obj) == 5 and isinstance(obj[1], np.ndarray):
        kind, keys, pos, has_gauss, gauss = obj  # np.random.get_state()
        return [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss]
    if isinstance(obj, (list, tuple)):
        return type(obj)(_tensors_for_arrays(v) for v in obj)
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(obj.copy())
    return obj


def convert_legacy_checkpoint(src: Path, dst: Path | None = None) -> Path:
    """Rewrite a legacy checkpoint (module docstring) as one :func:`load_checkpoint` reads: it
    is unpickled with ``weights_only=True`` admitting NumPy arrays and nothing else, so no code
    runs here either. ``dst`` defaults to ``src`` (replaced atomically)."""
    src = Path(src)
    foreign = _foreign_globals(src)
    if foreign is None:
        raise BenchError(f"cannot read checkpoint {src}: truncated or not a checkpoint")
    if not set(foreign) <= LEGACY_GLOBALS:
        extra = ", ".join(sorted(set(foreign) - LEGACY_GLOBALS)[:3])
        raise BenchError(
            f"checkpoint {src} holds objects other than tensors, plain data and NumPy arrays "
            f"({extra}): not a reid-bench checkpoint; refused, never loaded"
        )
    core = getattr(np, "_core", None) or np.core  # NumPy 2 / NumPy 1
    allowed = [np.dtype, np.ndarray, core.multiarray._reconstruct, *_dtype_classes()]
    with torch.serialization.safe_globals(allowed):
        try:
            obj = torch.load(src, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise BenchError(f"cannot convert checkpoint {src}: {exc}".splitlines()[0]) from exc
    out = Path(dst) if dst is not None else src
    atomic_torch_save(_tensors_for_arrays(obj), out)
    load_checkpoint(out)  # what is written reads back
    return out


def _dtype_classes() -> list[type]:
    """NumPy's dtype classes (``numpy.dtypes.UInt32DType``...), which pickles may name."""
    return [
        cls
        for name in dir(np.dtypes)
        if isinstance(cls := getattr(np.dtypes, name), type) and issubclass(cls, np.dtype)
    ]
