"""Saved query/gallery features (``.npz``) for ``bench eval``: read and checked, one clear error.

Keys: ``query_features`` (Q x D float), ``gallery_features`` (G x D float), ``query_pids``,
``gallery_pids``, ``query_camids``, ``gallery_camids`` (1-D integers), optional ``metric``
(``"euclidean"``, the default, or ``"cosine"``).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bench.errors import BenchError
from bench.evaluation.inputs import METRICS

FEATURE_KEYS = ("query_features", "gallery_features")
LABEL_KEYS = ("query_pids", "gallery_pids", "query_camids", "gallery_camids")


class FeatureFileError(BenchError):
    """A features file is missing, unreadable or malformed; the message names file and key."""


@dataclass
class FeatureFile:
    query_features: torch.Tensor
    gallery_features: torch.Tensor
    query_pids: np.ndarray
    gallery_pids: np.ndarray
    query_camids: np.ndarray
    gallery_camids: np.ndarray
    metric: str


def _integers(path: Path, key: str, a: np.ndarray, n: int, rows_of: str) -> np.ndarray:
    if a.ndim != 1:
        raise FeatureFileError(f"{path}: {key!r} must be 1-D, got shape {a.shape}")
    if len(a) != n:
        raise FeatureFileError(f"{path}: {key!r} has {len(a)} entries but {rows_of} has {n} rows")
    if a.dtype.kind == "f" and np.isfinite(a).all() and np.array_equal(a, np.round(a)):
        return a.astype(np.int64)
    if a.dtype.kind not in "iu":
        raise FeatureFileError(f"{path}: {key!r} must hold integers, got dtype {a.dtype}")
    return a.astype(np.int64, copy=False)


def load_features(path: str | Path) -> FeatureFile:
    """Read and check a features file (module docstring); errors name the file and the key."""
    path = Path(path)
    if not path.is_file():
        raise FeatureFileError(f"features file not found: {path}")
    with path.open("rb") as fh:
        magic = fh.read(6)
    if magic == b"\x93NUMPY":
        raise FeatureFileError(
            f"{path}: a single array (.npy), not an .npz archive of the keys "
            f"{', '.join((*FEATURE_KEYS, *LABEL_KEYS))}; save them with numpy.savez"
        )
    if not magic.startswith(b"PK"):
        raise FeatureFileError(f"{path}: not an .npz file (a zip archive of arrays)")
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise FeatureFileError(f"{path}: not a readable .npz file ({exc})") from None
    try:
        with loaded as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise FeatureFileError(f"{path}: not a readable .npz file ({exc})") from None
    missing = [k for k in (*FEATURE_KEYS, *LABEL_KEYS) if k not in arrays]
    if missing:
        raise FeatureFileError(
            f"{path}: missing key {missing[0]!r} (has: {', '.join(sorted(arrays)) or 'nothing'})"
        )
    feats = {}
    for key in FEATURE_KEYS:
        a = arrays[key]
        if a.ndim != 2:
            raise FeatureFileError(f"{path}: {key!r} must be 2-D (N, D), got shape {a.shape}")
        if a.dtype.kind not in "fiu":
            raise FeatureFileError(f"{path}: {key!r} must hold numbers, got dtype {a.dtype}")
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise FeatureFileError(f"{path}: {key!r} contains NaN or infinite values")
        feats[key] = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
    q, g = feats["query_features"], feats["gallery_features"]
    if q.shape[1] != g.shape[1]:
        raise FeatureFileError(
            f"{path}: 'query_features' and 'gallery_features' differ in size: "
            f"{q.shape[1]} vs {g.shape[1]}"
        )
    if q.shape[0] == 0 or g.shape[0] == 0:
        raise FeatureFileError(f"{path}: 'query_features' and 'gallery_features' need rows")
    if q.shape[1] == 0:
        raise FeatureFileError(f"{path}: the features have width 0 (shape {tuple(q.shape)})")
    labels = {
        key: _integers(
            path,
            key,
            arrays[key],
            len(q) if key.startswith("query") else len(g),
            "'query_features'" if key.startswith("query") else "'gallery_features'",
        )
        for key in LABEL_KEYS
    }
    metric = "euclidean"
    if "metric" in arrays:
        m = arrays["metric"]
        metric = str(m.item()) if m.ndim == 0 else str(m)
        if metric not in METRICS:
            raise FeatureFileError(
                f"{path}: 'metric' must be one of {', '.join(METRICS)}, got {metric!r}"
            )
    return FeatureFile(q, g, metric=metric, **labels)
