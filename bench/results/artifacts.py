"""What a run keeps for its report: query/gallery representations and samples, next to the
checkpoint, so ``bench report`` never retrains.

Two files in the run's checkpoint folder, both written atomically (temp file, then rename):

* ``eval.npz``: ``query_features`` and ``gallery_features`` (float32, ``(Q, D)``/``(G, D)``) for
  methods that answer with ``embed``, or ``similarity`` (float32 ``(Q, G)``, higher = more alike)
  for methods that answer with ``score``;
* ``eval_samples.json``: ``{"query": [...], "gallery": [...]}``, one object per sample with
  ``path``, ``pid``, ``camid``, ``text``, ``clip``, ``frame``.

The run record names them under ``eval_artifacts``. ``--set report.save_features=false`` skips
them (huge galleries); ``bench report RUN_ID --recompute`` makes them later from the checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.api.samples import Sample
from bench.errors import BenchError
from bench.evaluation.rank import compute_distance
from bench.io import atomic_write, atomic_write_json

FEATURES_FILE = "eval.npz"
SAMPLES_FILE = "eval_samples.json"


def _numpy(x: torch.Tensor) -> np.ndarray:
    return x.detach().float().cpu().numpy()


def save_eval_artifacts(
    folder: Path,
    query: Sequence[Sample],
    gallery: Sequence[Sample],
    represented: dict[str, torch.Tensor],
) -> dict[str, str]:
    """Write ``eval.npz`` and ``eval_samples.json`` into ``folder``; return their paths.

    ``represented`` is what the method answered: ``query_features`` and ``gallery_features``, or
    ``similarity``. The samples keep their true labels (the report needs them; the method never
    saw them).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {k: _numpy(v) for k, v in represented.items()}
    features = folder / FEATURES_FILE
    atomic_write(features, lambda fh: np.savez(fh, **arrays), binary=True)
    samples = folder / SAMPLES_FILE
    atomic_write_json(
        samples,
        {
            "query": [dataclasses.asdict(s) for s in query],
            "gallery": [dataclasses.asdict(s) for s in gallery],
        },
    )
    return {"features": str(features), "samples": str(samples)}


@dataclass
class EvalArtifacts:
    """A run's saved representations and samples, read back by :func:`load_eval_artifacts`."""

    query: list[Sample]
    gallery: list[Sample]
    query_features: np.ndarray | None
    gallery_features: np.ndarray | None
    similarity: np.ndarray | None

    @property
    def has_features(self) -> bool:
        return self.query_features is not None and self.gallery_features is not None

    def distance(self, metric: str) -> np.ndarray:
        """``(Q, G)`` distances as evaluation ranks them: ``metric`` on features, or
        ``-similarity`` for methods that answer with ``score``."""
        if self.similarity is not None:
            return -self.similarity.astype(np.float32)
        assert self.query_features is not None and self.gallery_features is not None
        dist = compute_distance(
            torch.from_numpy(self.query_features), torch.from_numpy(self.gallery_features), metric
        )
        return dist.numpy()


def _samples(items: Any, where: Path, key: str) -> list[Sample]:
    if not isinstance(items, list):
        raise BenchError(f"{where}: {key!r} must be a list of samples")
    try:
        return [
            Sample(**{**item, "box": tuple(item["box"])} if item.get("box") else item)
            for item in items
        ]
    except TypeError as exc:
        raise BenchError(f"{where}: malformed sample in {key!r} ({exc})") from exc


def load_eval_artifacts(features: Path, samples: Path) -> EvalArtifacts:
    """Read what :func:`save_eval_artifacts` wrote; BenchError naming the file at fault."""
    for path in (features, samples):
        if not Path(path).is_file():
            raise BenchError(f"saved evaluation file {path} does not exist")
    try:
        data = json.loads(Path(samples).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BenchError(f"cannot read {samples}: {exc}") from exc
    if not isinstance(data, dict):
        raise BenchError(f"{samples} is not a JSON object")
    query = _samples(data.get("query"), Path(samples), "query")
    gallery = _samples(data.get("gallery"), Path(samples), "gallery")
    try:
        with np.load(features, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as exc:
        raise BenchError(f"cannot read {features}: {exc}") from exc
    out = EvalArtifacts(
        query,
        gallery,
        arrays.get("query_features"),
        arrays.get("gallery_features"),
        arrays.get("similarity"),
    )
    if out.similarity is None and not out.has_features:
        raise BenchError(f"{features} holds neither features nor a similarity matrix")
    q, g = len(query), len(gallery)
    shapes_ok = (
        out.similarity.shape == (q, g)
        if out.similarity is not None
        else (len(out.query_features) == q and len(out.gallery_features) == g)  # type: ignore[arg-type]
    )
    if not shapes_ok:
        raise BenchError(f"{features} does not match {samples} ({q} query and {g} gallery samples)")
    return out
