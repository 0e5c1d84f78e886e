"""Evaluation rules per dataset family; the harness evaluates every method through here
(``bench run`` with :func:`evaluate`, ``bench eval`` with :func:`evaluate_labels`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from bench.api.samples import Sample
from bench.errors import BenchError
from bench.evaluation.rank import RankMetrics, evaluate_features, evaluate_rank
from bench.evaluation.rerank import rerank_features

#: The record's metric keys and their column titles, per kind of protocol, in table order.
RANK_COLUMNS = (
    ("mAP", "mAP"),
    ("rank1", "Rank-1"),
    ("rank5", "Rank-5"),
    ("rank10", "Rank-10"),
    ("mINP", "mINP"),
)
TRACKLET_COLUMNS = (
    ("mAP", "mAP"),
    ("HR@1", "HR@1"),
    ("HR@5", "HR@5"),
    ("AUROC", "AUROC"),
    ("AP", "AP"),
    ("size_F1", "size F1"),
    ("histology_acc", "histology acc"),
)


@dataclass(frozen=True)
class Protocol:
    """A named set of evaluation rules. ``kind``: ``"rank"`` (queries ranked against a gallery,
    :class:`~bench.evaluation.rank.RankMetrics`) or ``"tracklets"`` (every test tracklet
    against every other, :mod:`bench.evaluation.tracklet_protocol`); ``columns``: the metrics
    its tables show."""

    name: str
    description: str
    kind: str = "rank"
    columns: tuple[tuple[str, str], ...] = RANK_COLUMNS


PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        Protocol(
            "market",
            "Market-1501 rules: gallery entries with the query's pid and camera ignored, "
            "pid -1 junk ignored, pid 0 distractors are negatives",
        ),
        Protocol(
            "colo-pair",
            "screening 1 = query, screening 2 = gallery, k-fold cross-validation by polyp "
            "identity; frame level, or clip level (protocol.level=clip: one mean-pooled "
            "feature per clip); Market rules otherwise",
        ),
        Protocol(
            "tracklets",
            "NTSSL: one embedding per test tracklet (embed_clips, else the mean of its frame "
            "features); retrieval of every tracklet against every other (mAP, HR@1, HR@5), "
            "re-identification over every pair (AUROC, AP), size and histology probes",
            kind="tracklets",
            columns=TRACKLET_COLUMNS,
        ),
    )
}


def protocol_of_record(name: str) -> Protocol:
    """The protocol a record names (``colo-pair/clip`` -> ``colo-pair``); Market's rules for a
    name this version does not know."""
    return PROTOCOLS.get(str(name).split("/")[0], PROTOCOLS["market"])


def get_protocol(name: str) -> Protocol:
    if name not in PROTOCOLS:
        raise BenchError(f"unknown protocol {name!r}; known: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]


def sample_labels(samples: Sequence[Sample]) -> tuple[np.ndarray, np.ndarray]:
    """The samples' pids and camera ids as int64 arrays."""
    return (
        np.fromiter((s.pid for s in samples), dtype=np.int64, count=len(samples)),
        np.fromiter((s.camid for s in samples), dtype=np.int64, count=len(samples)),
    )


def evaluate(
    protocol: Protocol, query: Sequence[Sample], gallery: Sequence[Sample], **represented: Any
) -> RankMetrics:
    """Metrics of ``query`` against ``gallery`` from features (distance by ``metric``) or from a
    method's similarity matrix: :func:`evaluate_labels` on the samples' labels, whose keyword
    arguments ``represented`` holds (``query_features`` and ``gallery_features``, or
    ``similarity``; ``metric``, ``max_rank``, ``rerank``, ``device``).

    ``rerank``: k-reciprocal re-ranking (:mod:`bench.evaluation.rerank`, k1=20, k2=6,
    lambda=0.3) of the feature distances first; it needs features (query-query and
    gallery-gallery distances).
    """
    return evaluate_labels(protocol, *sample_labels(query), *sample_labels(gallery), **represented)


def evaluate_labels(
    protocol: Protocol,
    q_pids: np.ndarray,
    q_camids: np.ndarray,
    g_pids: np.ndarray,
    g_camids: np.ndarray,
    *,
    query_features: torch.Tensor | None = None,
    gallery_features: torch.Tensor | None = None,
    similarity: torch.Tensor | None = None,
    metric: str = "cosine",
    max_rank: int = 50,
    rerank: bool = False,
    device: torch.device | str | None = None,
) -> RankMetrics:
    """:func:`evaluate` on label arrays (``bench eval`` on saved features comes here directly)."""
    query, gallery = range(len(q_pids)), range(len(g_pids))
    if similarity is not None:
        if tuple(similarity.shape) != (len(query), len(gallery)):
            raise BenchError(
                f"score() returned shape {tuple(similarity.shape)}, expected "
                f"({len(query)}, {len(gallery)})"
            )
        if rerank:
            raise BenchError(
                "re-ranking needs query-query and gallery-gallery distances, which a method that "
                "answers score() does not give; drop eval.rerank"
            )
        return evaluate_rank(
            -similarity.detach().float(),
            q_pids,
            g_pids,
            q_camids,
            g_camids,
            max_rank=max_rank,
            device=device,
        )
    if query_features is None or gallery_features is None:
        raise ValueError("evaluate() needs query/gallery features or a similarity matrix")
    for what, feats, samples in (
        ("query", query_features, query),
        ("gallery", gallery_features, gallery),
    ):
        if feats.ndim != 2 or feats.shape[0] != len(samples):
            raise BenchError(
                f"embed() returned shape {tuple(feats.shape)} for {len(samples)} "
                f"{what} samples; expected ({len(samples)}, D)"
            )
    if rerank:
        distmat = rerank_features(query_features, gallery_features, metric, device=device)
        return evaluate_rank(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=max_rank)
    return evaluate_features(
        query_features,
        gallery_features,
        q_pids,
        g_pids,
        q_camids,
        g_camids,
        metric=metric,
        max_rank=max_rank,
        device=device,
    )
