"""Evaluation rules per dataset family; the harness evaluates every method through here."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from bench.errors import BenchError
from bench.evaluation import RankMetrics, evaluate_features, evaluate_rank
from bench.samples import Sample


@dataclass(frozen=True)
class Protocol:
    """A named set of evaluation rules (DESIGN.md, "The one protocol")."""

    name: str
    description: str


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
    )
}


def get_protocol(name: str) -> Protocol:
    if name not in PROTOCOLS:
        raise BenchError(f"unknown protocol {name!r}; known: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]


def _labels(samples: Sequence[Sample]) -> tuple[np.ndarray, np.ndarray]:
    return (
        np.fromiter((s.pid for s in samples), dtype=np.int64, count=len(samples)),
        np.fromiter((s.camid for s in samples), dtype=np.int64, count=len(samples)),
    )


def evaluate(
    protocol: Protocol,
    query: Sequence[Sample],
    gallery: Sequence[Sample],
    *,
    query_features: torch.Tensor | None = None,
    gallery_features: torch.Tensor | None = None,
    similarity: torch.Tensor | None = None,
    metric: str = "cosine",
    max_rank: int = 50,
    rerank: bool = False,
    device: torch.device | str | None = None,
) -> RankMetrics:
    """Metrics from features (distance by ``metric``) or from a method's similarity matrix.

    ``rerank``: k-reciprocal re-ranking (:mod:`bench.rerank`, k1=20, k2=6, lambda=0.3) of the
    feature distances first; it needs features (query-query and gallery-gallery distances).
    ``bench run`` and ``bench eval`` both come here.
    """
    q_pids, q_camids = _labels(query)
    g_pids, g_camids = _labels(gallery)
    return evaluate_labels(
        protocol,
        q_pids,
        q_camids,
        g_pids,
        g_camids,
        query_features=query_features,
        gallery_features=gallery_features,
        similarity=similarity,
        metric=metric,
        max_rank=max_rank,
        rerank=rerank,
        device=device,
    )


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
        from bench.rerank import rerank_features

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


#: ``protocol.level`` values: rank frames, or clips (temporal mean pooling of frame features).
LEVELS = ("frame", "clip")


def clip_groups(samples: Sequence[Sample], role: str) -> tuple[list[Sample], torch.Tensor]:
    """The clips of ``samples`` in order of first appearance, and the ``(clips, frames)``
    averaging matrix whose row ``c`` holds ``1/n_c`` at the ``n_c`` frames of clip ``c``.

    A clip is represented by its first frame's sample (path, pid, camid, text). Frames without
    a ``clip`` id, or one clip id with two identities or cameras, are errors naming the sample.
    """
    index: dict[str, int] = {}
    clips: list[Sample] = []
    members: list[int] = []
    for s in samples:
        if s.clip is None:
            raise BenchError(
                f"protocol.level=clip needs clip ids, but {role} sample {s.path} has none "
                "(this dataset provides no clips: use protocol.level=frame)"
            )
        if s.clip not in index:
            index[s.clip] = len(clips)
            clips.append(dataclasses.replace(s, frame=None))
        first = clips[index[s.clip]]
        if (first.pid, first.camid) != (s.pid, s.camid):
            raise BenchError(
                f"clip {s.clip!r} mixes identities or cameras ({first.path} and {s.path})"
            )
        members.append(index[s.clip])
    rows = torch.tensor(members, dtype=torch.long)
    counts = torch.bincount(rows, minlength=len(clips)).float()
    pool = torch.zeros(len(clips), len(samples))
    pool[rows, torch.arange(len(samples))] = 1.0 / counts[rows]
    return clips, pool


def pool_clips(
    query: Sequence[Sample], gallery: Sequence[Sample], represented: dict[str, torch.Tensor]
) -> tuple[list[Sample], list[Sample], dict[str, torch.Tensor]]:
    """Frame-level representations -> clip level (the ``protocol.level=clip`` protocol).

    Features are mean-pooled over each clip's frames (temporal mean pooling). A method that
    answers with ``score`` gets the mean of its frame-pair similarities over the two clips,
    ``P_q S P_g^T``: for a dot-product score that is the dot product of mean-pooled features.
    """
    q_clips, q_pool = clip_groups(query, "query")
    g_clips, g_pool = clip_groups(gallery, "gallery")
    if "similarity" in represented:
        sim = represented["similarity"].detach().float().cpu()
        return q_clips, g_clips, {"similarity": q_pool @ sim @ g_pool.T}
    return (
        q_clips,
        g_clips,
        {
            "query_features": q_pool @ represented["query_features"].detach().float().cpu(),
            "gallery_features": g_pool @ represented["gallery_features"].detach().float().cpu(),
        },
    )
