"""Checks of what the evaluators are given (distance matrices, features, labels, ``max_rank``),
shared by ranking, retrieval and verification; each failure is a ``ValueError`` naming the input.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

#: Distances between features: ``euclidean`` or ``cosine`` (1 - cosine similarity).
METRICS: tuple[str, ...] = ("euclidean", "cosine")

ArrayLike = np.ndarray | torch.Tensor | Sequence[Any]


def check_features(query: torch.Tensor, gallery: torch.Tensor, metric: str) -> None:
    """``query`` (Q, D) and ``gallery`` (G, D) are 2-D tensors of one width; ``metric`` known."""
    if metric not in METRICS:
        raise ValueError(f"unknown distance metric {metric!r}; allowed: {', '.join(METRICS)}")
    for name, x in (("query", query), ("gallery", gallery)):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if x.ndim != 2:
            raise ValueError(f"{name} must be 2-D (N, D), got shape {tuple(x.shape)}")
    if query.shape[1] != gallery.shape[1]:
        raise ValueError(
            f"query and gallery feature sizes differ: {query.shape[1]} vs {gallery.shape[1]}"
        )


def as_numpy(x: ArrayLike) -> np.ndarray:
    """``x`` as a numpy array (a tensor is detached and moved to the CPU)."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def check_labels(
    name: str, x: ArrayLike, n: int, axis_name: str, of: str = "distmat"
) -> np.ndarray:
    """``x`` as int64 labels: 1-D, ``n`` of them (one per ``axis_name`` of ``of``), integers."""
    a = as_numpy(x)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    if len(a) != n:
        raise ValueError(f"{name} has {len(a)} entries but {of} has {n} {axis_name}")
    if a.dtype.kind == "f":
        if not (np.isfinite(a).all() and np.array_equal(a, np.round(a))):
            raise ValueError(f"{name} must hold integers, got non-integer values")
    elif a.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integers, got dtype {a.dtype}")
    return a.astype(np.int64, copy=False)


def check_max_rank(max_rank: int, num_gallery: int | None = None) -> int:
    """``max_rank`` as a positive int (the length of the CMC curve), capped by the gallery size
    ``num_gallery`` with a warning: beyond the last gallery entry the CMC cannot change, and an
    uncapped curve of a huge ``max_rank`` would take memory for nothing."""
    if isinstance(max_rank, bool) or not isinstance(max_rank, (int, np.integer)) or max_rank < 1:
        raise ValueError(f"max_rank must be a positive int, got {max_rank!r}")
    if num_gallery is not None and 0 < num_gallery < max_rank:
        warnings.warn(
            f"max_rank {max_rank} is more than the gallery's {num_gallery} entries: the CMC "
            f"stops at rank {num_gallery}",
            stacklevel=3,
        )
        return int(num_gallery)
    return int(max_rank)


def work_device(device: torch.device | str | None, default: torch.device) -> torch.device:
    """The device to evaluate on: ``device`` when given, else ``default``."""
    return torch.device(device) if device is not None else default


def as_distmat(distmat: ArrayLike) -> np.ndarray | torch.Tensor:
    """``distmat`` as a 2-D array (a tensor stays a tensor)."""
    if not isinstance(distmat, torch.Tensor):
        distmat = np.asarray(distmat)
    if distmat.ndim != 2:
        raise ValueError(f"distmat must be 2-D (Q, G), got shape {tuple(distmat.shape)}")
    return distmat


def check_no_nan(distmat: np.ndarray | torch.Tensor) -> None:
    """A NaN distance has no place in a ranking."""
    if isinstance(distmat, np.ndarray):
        has_nan = distmat.dtype.kind in "fc" and bool(np.isnan(distmat).any())
    else:
        has_nan = distmat.is_floating_point() and bool(torch.isnan(distmat).any())
    if has_nan:
        raise ValueError("distmat contains NaN; rankings would be undefined")


def distmat_device(
    distmat: np.ndarray | torch.Tensor, device: torch.device | str | None
) -> torch.device:
    """The device to rank ``distmat`` on: ``device`` when given, else the tensor's, else the
    CPU."""
    default = distmat.device if isinstance(distmat, torch.Tensor) else torch.device("cpu")
    return work_device(device, default)


def check_ranking(
    distmat: np.ndarray | torch.Tensor, max_rank: int, device: torch.device | str | None
) -> tuple[int, torch.device]:
    """The checks a ranking of ``distmat`` needs after its labels': ``max_rank`` positive, at
    least one query, no NaN; returns ``max_rank`` and the device to work on."""
    max_rank = check_max_rank(max_rank, distmat.shape[1])
    if distmat.shape[0] == 0:
        raise ValueError("no queries: distmat has 0 rows")
    check_no_nan(distmat)
    return max_rank, distmat_device(distmat, device)
