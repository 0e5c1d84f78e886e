"""Exact Market-1501-style ranking evaluation: CMC, mAP and mINP.

The rules are those of the Market-1501 protocol (Zheng et al. 2015, "Scalable Person
Re-identification: A Benchmark") as torchreid's and fast-reid's ``eval_market1501`` compute them:

* For each query, gallery entries with the query's pid *and* camera are removed from its ranking.
* Gallery entries with pid ``-1`` (junk) are removed from every ranking.
* pid ``0`` (distractors) and every other pid are ordinary entries (negatives unless they match).
* A query with no true match left after removal is skipped: it counts in ``num_queries`` but not
  in ``num_valid_queries``, and not in any average. No valid query at all is an error.

Ranking sorts each distance row ascending with a *stable* sort (``np.argsort(kind="stable")``),
so equal distances are broken by gallery order: the earlier gallery entry ranks first. This makes
the metrics a deterministic function of the inputs, also with ties.

Per valid query, with ``raw`` the boolean true-match vector over the kept entries in ranked order
and ``num_rel = raw.sum()``:

* CMC: ``cmc[k-1] = 1`` when a true match is among the first ``k`` kept entries. Unlike torchreid
  (which shrinks ``max_rank`` to the gallery size) the CMC always has length ``max_rank``; when
  fewer than ``max_rank`` entries are kept, it stays at its last value (1, since a valid query has
  a match) beyond them.
* AP: the mean, over the positions ``i`` (0-based) of the true matches, of the precision
  ``raw[:i+1].sum() / (i+1)``.
* INP (Ye et al. 2021, "Deep Learning for Person Re-identification: A Survey and Outlook"):
  ``num_rel / R_hard`` with ``R_hard`` the 1-based position of the last (hardest) true match.

``mAP``, ``mINP`` and the CMC are means over valid queries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from bench.errors import BenchError

__all__ = [
    "METRICS",
    "NoValidQueryError",
    "RankMetrics",
    "compute_distance",
    "evaluate_features",
    "evaluate_rank",
]

METRICS: tuple[str, ...] = ("euclidean", "cosine")

# Elements (query rows x gallery columns) handled per block of ``evaluate_rank``.
_BLOCK_ELEMENTS = 1 << 21

ArrayLike = np.ndarray | torch.Tensor | Sequence[Any]


class NoValidQueryError(BenchError, ValueError):
    """No query has a true match in the gallery; a ``ValueError`` the CLI reports as one line."""


@dataclass
class RankMetrics:
    """Ranking metrics of one query/gallery evaluation (see the module docstring)."""

    cmc: np.ndarray  # float64, shape (max_rank,); cmc[k-1] = Rank-k accuracy in [0, 1]
    mAP: float
    mINP: float
    num_valid_queries: int
    num_queries: int

    def rank(self, k: int) -> float:
        """Rank-``k`` accuracy, ``cmc[k-1]``; ``1 <= k <= max_rank``."""
        if not 1 <= k <= len(self.cmc):
            raise ValueError(f"rank k must be in [1, {len(self.cmc)}] (max_rank), got {k}")
        return float(self.cmc[k - 1])

    def as_dict(self) -> dict[str, Any]:
        """Plain python floats and ints (JSON-able).

        ``rank5``/``rank10`` are ``nan`` when ``max_rank`` is below 5/10: they were not computed.
        """

        def at(k: int) -> float:
            return self.rank(k) if k <= len(self.cmc) else float("nan")

        return {
            "mAP": float(self.mAP),
            "mINP": float(self.mINP),
            "rank1": at(1),
            "rank5": at(5),
            "rank10": at(10),
            "cmc": [float(x) for x in self.cmc],
            "num_valid_queries": int(self.num_valid_queries),
            "num_queries": int(self.num_queries),
        }


def compute_distance(
    query: torch.Tensor, gallery: torch.Tensor, metric: str = "euclidean"
) -> torch.Tensor:
    """Distance matrix ``(Q, G)``, float32 on the inputs' device, between ``(Q, D)`` and ``(G, D)``.

    ``"euclidean"``: the true (not squared) Euclidean distance, from the expansion
    ``||q||^2 + ||g||^2 - 2 q.g`` clamped at 0, then square-rooted. torchreid ranks by the squared
    distance; the ranking, hence every metric, is the same.
    ``"cosine"``: ``1 - cos(q, g)`` on L2-normalised rows, in ``[0, 2]`` (an all-zero row has
    distance 1 to everything).
    """
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
    q = query.detach().float()
    g = gallery.detach().float()
    if metric == "cosine":
        return 1.0 - F.normalize(q, dim=1) @ F.normalize(g, dim=1).T
    sq = q.pow(2).sum(1, keepdim=True) + g.pow(2).sum(1).unsqueeze(0)
    sq = torch.addmm(sq, q, g.T, beta=1.0, alpha=-2.0)
    return sq.clamp_(min=0).sqrt_()


def _as_numpy(x: ArrayLike) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _labels(name: str, x: ArrayLike, n: int, axis_name: str) -> np.ndarray:
    a = _as_numpy(x)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    if len(a) != n:
        raise ValueError(f"{name} has {len(a)} entries but distmat has {n} {axis_name}")
    return a


def evaluate_rank(
    distmat: np.ndarray | torch.Tensor,
    q_pids: ArrayLike,
    g_pids: ArrayLike,
    q_camids: ArrayLike,
    g_camids: ArrayLike,
    max_rank: int = 50,
) -> RankMetrics:
    """CMC, mAP and mINP under the Market-1501 rules (module docstring) from a distance matrix.

    ``distmat`` is ``(Q, G)``, smaller = more similar; labels are 1-D arrays or tensors.
    """
    dist = _as_numpy(distmat)
    if dist.ndim != 2:
        raise ValueError(f"distmat must be 2-D (Q, G), got shape {dist.shape}")
    num_q, num_g = dist.shape
    q_pids = _labels("q_pids", q_pids, num_q, "rows")
    q_camids = _labels("q_camids", q_camids, num_q, "rows")
    g_pids = _labels("g_pids", g_pids, num_g, "columns")
    g_camids = _labels("g_camids", g_camids, num_g, "columns")
    if isinstance(max_rank, bool) or not isinstance(max_rank, (int, np.integer)) or max_rank < 1:
        raise ValueError(f"max_rank must be a positive int, got {max_rank!r}")
    max_rank = int(max_rank)
    if num_q == 0:
        raise ValueError("no queries: distmat has 0 rows")
    if np.isnan(dist).any():
        raise ValueError("distmat contains NaN; rankings would be undefined")

    first_hit = np.empty(num_q, dtype=np.int64)  # 1-based kept position; 0 = no match (skipped)
    ap = np.zeros(num_q, dtype=np.float64)
    inp = np.zeros(num_q, dtype=np.float64)
    g_junk = g_pids == -1
    block = max(1, _BLOCK_ELEMENTS // max(num_g, 1))
    for start in range(0, num_q, block):
        stop = min(start + block, num_q)
        order = np.argsort(dist[start:stop], axis=1, kind="stable")
        same_pid = g_pids[order] == q_pids[start:stop, None]
        same_cam = g_camids[order] == q_camids[start:stop, None]
        keep = ~((same_pid & same_cam) | g_junk[order])
        hits = same_pid & keep
        pos = np.cumsum(keep, axis=1)  # 1-based position among kept entries
        num_rel = hits.sum(axis=1)
        valid = num_rel > 0
        cum_hits = np.cumsum(hits, axis=1)
        precision_sum = np.where(hits, cum_hits / np.maximum(pos, 1), 0.0).sum(axis=1)
        hit_pos = np.where(hits, pos, 0)
        last = hit_pos.max(axis=1)
        first = np.where(hits, pos, np.iinfo(np.int64).max).min(axis=1)
        first_hit[start:stop] = np.where(valid, first, 0)
        rel = np.maximum(num_rel, 1)
        ap[start:stop] = np.where(valid, precision_sum / rel, 0.0)
        inp[start:stop] = np.where(valid, num_rel / np.maximum(last, 1), 0.0)

    valid = first_hit > 0
    num_valid = int(valid.sum())
    if num_valid == 0:
        raise NoValidQueryError(
            f"none of the {num_q} queries has a true match in the gallery (same pid, other "
            "camera, pid != -1); check the query/gallery split"
        )
    ranks = np.arange(1, max_rank + 1)
    cmc = (first_hit[valid, None] <= ranks[None, :]).mean(axis=0, dtype=np.float64)
    return RankMetrics(
        cmc=cmc,
        mAP=float(ap[valid].mean()),
        mINP=float(inp[valid].mean()),
        num_valid_queries=num_valid,
        num_queries=num_q,
    )


def evaluate_features(
    query: torch.Tensor,
    gallery: torch.Tensor,
    q_pids: ArrayLike,
    g_pids: ArrayLike,
    q_camids: ArrayLike,
    g_camids: ArrayLike,
    metric: str = "euclidean",
    max_rank: int = 50,
) -> RankMetrics:
    """:func:`compute_distance` by ``metric``, then :func:`evaluate_rank`."""
    distmat = compute_distance(query, gallery, metric)
    return evaluate_rank(distmat.cpu().numpy(), q_pids, g_pids, q_camids, g_camids, max_rank)
