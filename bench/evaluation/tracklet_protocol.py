"""The tracklet protocol (NTSSL, polyp-tracklets): one embedding per test tracklet, every
tracklet against every other, and probes on the frozen embeddings.

* retrieval (:func:`bench.evaluation.tracklets.tracklet_retrieval`): mAP, HR@1, HR@5. A query
  whose polyp has no other test tracklet has nothing to retrieve and is left out
  (``empty_target_action="skip"``; the released code stops with an error instead);
* re-identification (:func:`bench.evaluation.tracklets.tracklet_reidentification`): AUROC and
  step-wise AP over every unordered pair;
* probes (:mod:`bench.evaluation.probes`), where the dataset annotates them: polyp size
  (identity-weighted macro F1) and histology (accuracy), the same MLP for every method, seeded by
  the run's seed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from bench.api.samples import Sample
from bench.errors import BenchError
from bench.evaluation.probes import histology_classes, histology_probe, size_probe
from bench.evaluation.tracklets import tracklet_reidentification, tracklet_retrieval


@dataclass
class TrackletMetrics:
    """The tracklet protocol's figures (fractions); probes ``None`` where not annotated."""

    num_tracklets: int
    retrieval: dict[str, float | int]
    reid: dict[str, float | int]
    size: dict[str, float | int] | None = None
    histology: dict[str, float | int] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def mAP(self) -> float:
        return float(self.retrieval["mAP"])

    def as_dict(self) -> dict[str, Any]:
        """The record's ``metrics``: plain floats and ints (JSON-able)."""
        return {
            "mAP": self.mAP,
            "HR@1": float(self.retrieval["HR@1"]),
            "HR@5": float(self.retrieval["HR@5"]),
            "AUROC": float(self.reid["AUROC"]),
            "AP": float(self.reid["AP"]),
            "size_F1": None if self.size is None else float(self.size["macro_F1"]),
            "histology_acc": None if self.histology is None else float(self.histology["accuracy"]),
            "num_queries": int(self.retrieval["num_queries"]),  # those with a match
            "num_tracklets": self.num_tracklets,
        }

    def summary(self) -> str:
        """One line for the console: ``mAP 41.2  HR@1 63.0  AUROC 88.1``."""
        return (
            f"mAP {100 * self.mAP:.1f}  HR@1 {100 * self.retrieval['HR@1']:.1f}  "
            f"AUROC {100 * self.reid['AUROC']:.1f}"
        )


def _labels_of(
    clips: Sequence[Sample], labels: Mapping[str, Mapping[str, Any]], key: str
) -> list[Any] | None:
    values = [labels.get(str(c.clip), {}).get(key) for c in clips]
    return values if all(v is not None for v in values) else None


def evaluate_tracklets(
    features: torch.Tensor,
    clips: Sequence[Sample],
    labels: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    seed: int = 0,
) -> TrackletMetrics:
    """The protocol (module docstring) on ``features`` (one row per tracklet of ``clips``, each
    clip represented by one sample with its pid) and the dataset's per-tracklet ``labels``
    (clip id -> ``{"histology": ..., "size": ...}``)."""
    if features.ndim != 2 or features.shape[0] != len(clips):
        raise BenchError(
            f"expected one embedding per tracklet ({len(clips)}), got shape {tuple(features.shape)}"
        )
    feats = features.detach().float().cpu()
    pids = [c.pid for c in clips]
    out = TrackletMetrics(
        len(clips),
        tracklet_retrieval(feats, pids, empty_target_action="skip"),
        tracklet_reidentification(feats, pids),
    )
    if not labels:
        return out
    sizes = _labels_of(clips, labels, "size")
    if sizes is not None:
        try:
            out.size = size_probe(feats, pids, [float(s) for s in sizes], seed=seed)
        except (BenchError, TypeError, ValueError) as exc:
            out.notes.append(f"no size probe: {exc}")
    histology = _labels_of(clips, labels, "histology")
    if histology is not None and len(set(histology_classes(histology).tolist()) - {-1}) == 2:
        out.histology = histology_probe(feats, pids, histology, seed=seed)
    return out
