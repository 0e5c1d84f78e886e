"""Verification metrics over query-gallery pairs: AUROC and AUPR (NTSSL's re-identification task).

Every (query, gallery) pair that the ranking rules keep is one binary decision, "same identity or
not", scored by the negated distance (a higher score means "same"). Kept pairs: gallery pid
``-1`` (junk) is dropped, and so is a pair with the same pid *and* camera (Market rules; pass
``ignore_same_camera=False`` to keep those, ``exclude_self=True`` for all-vs-all sets where the
only pair to drop is an item with itself). Positive pairs share the pid.

* AUROC: the probability that a random positive pair scores above a random negative pair, ties
  counting one half (the Mann-Whitney statistic over ``P x N``); equal to the area under the ROC
  curve with linear interpolation (scikit-learn's ``roc_auc_score``).
* AUPR: average precision over the pooled pairs, ``sum_k (R_k - R_{k-1}) P_k`` over the distinct
  score thresholds in decreasing order (scikit-learn's ``average_precision_score``): with
  ``u_1 < u_2 < ...`` the distinct distances of positive pairs, ``c_k`` positives at ``u_k``,
  ``TP_k`` positives and ``FP_k`` negatives at distance ``<= u_k``:
  ``AUPR = sum_k (c_k / P) * TP_k / (TP_k + FP_k)``.

Computed in query blocks: the positive pairs' distances are sorted once; each block's pairs are
counted against them with two binary searches (``searchsorted``), so memory stays bounded and
nothing of size ``Q x G`` is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from bench.evaluation.inputs import (
    ArrayLike,
    as_distmat,
    check_labels,
    check_no_nan,
    distmat_device,
)
from bench.evaluation.keys import distmat_keys
from bench.evaluation.rules import gallery_groups, pseudo_cameras

__all__ = ["VerificationMetrics", "verification_metrics"]

_BLOCK_ELEMENTS = 1 << 23


@dataclass
class VerificationMetrics:
    auroc: float
    aupr: float
    num_positive_pairs: int
    num_negative_pairs: int

    def as_dict(self) -> dict[str, float | int]:
        return {
            "AUROC": float(self.auroc),
            "AUPR": float(self.aupr),
            "num_positive_pairs": int(self.num_positive_pairs),
            "num_negative_pairs": int(self.num_negative_pairs),
        }


def verification_metrics(
    distmat: np.ndarray | torch.Tensor,
    q_pids: ArrayLike,
    g_pids: ArrayLike,
    q_camids: ArrayLike | None = None,
    g_camids: ArrayLike | None = None,
    *,
    ignore_same_camera: bool = True,
    exclude_self: bool = False,
    device: torch.device | str | None = None,
) -> VerificationMetrics:
    """AUROC and AUPR of the kept query-gallery pairs (module docstring); distances, smaller =
    more similar. Camera ids are needed only with ``ignore_same_camera``."""
    distmat = as_distmat(distmat)
    num_q, num_g = distmat.shape
    q_pids = check_labels("q_pids", q_pids, num_q, "rows")
    g_pids = check_labels("g_pids", g_pids, num_g, "columns")
    if ignore_same_camera and not exclude_self:
        if q_camids is None or g_camids is None:
            raise ValueError("ignore_same_camera needs q_camids and g_camids")
        q_cams = check_labels("q_camids", q_camids, num_q, "rows")
        g_cams = check_labels("g_camids", g_camids, num_g, "columns")
    else:
        q_cams, g_cams = pseudo_cameras(num_q, num_g, exclude_self)
    check_no_nan(distmat)
    dev = distmat_device(distmat, device)
    groups = gallery_groups(q_pids, g_pids, q_cams, g_cams)
    keys, _ = distmat_keys(distmat, groups.kept, dev)
    kept_g = len(groups.kept)
    step = max(1, _BLOCK_ELEMENTS // max(kept_g, 1))
    blocks = [np.arange(s, min(s + step, num_q)) for s in range(0, num_q, step)]

    # Pass 1: the positive pairs' distances.
    positives = []
    for rows in blocks:
        cols, pos, _ = groups.entries(rows, q_cams, dev)
        if cols.shape[1]:
            positives.append(keys(rows).gather(1, cols)[pos].double())
    pos_d = torch.cat(positives) if positives else torch.empty(0, dtype=torch.float64)
    num_pos = len(pos_d)
    total = int(num_q * kept_g - (groups.length - groups.num_pos).sum())
    num_neg = total - num_pos
    if num_pos == 0 or num_neg == 0:
        raise ValueError(
            f"verification needs positive and negative pairs; got {num_pos} and {num_neg}"
        )
    u, c = torch.unique(pos_d, return_counts=True)  # sorted distinct positive distances
    k = len(u)
    # Pass 2: per distinct positive distance u_k, pairs with distance < u_k and == u_k.
    below = torch.zeros(k + 1, dtype=torch.int64, device=dev)  # by #u <= d
    equal = torch.zeros(k + 1, dtype=torch.int64, device=dev)
    for rows in blocks:
        d = keys(rows).double()
        cols, _, removed = groups.entries(rows, q_cams, dev)
        right = torch.searchsorted(u, d, right=True).view(-1)
        left = torch.searchsorted(u, d).view(-1)
        below += torch.bincount(right, minlength=k + 1)
        equal += torch.bincount(left[right > left], minlength=k + 1)
        if cols.shape[1] and bool(removed.any()):  # take the dropped same-camera pairs out
            r = d.gather(1, cols)[removed]
            r_right = torch.searchsorted(u, r, right=True)
            r_left = torch.searchsorted(u, r)
            below -= torch.bincount(r_right, minlength=k + 1)
            equal -= torch.bincount(r_left[r_right > r_left], minlength=k + 1)
    # Take the positive pairs themselves out: each sits at its own u (right = left + 1).
    at = torch.searchsorted(u, pos_d)
    below -= torch.bincount(at + 1, minlength=k + 1)
    equal -= torch.bincount(at, minlength=k + 1)
    neg_less = below.cumsum(0)[:k].double()  # negatives with distance < u_k (#u <= d <= k-1)
    neg_equal = equal[:k].double()
    cf = c.double()
    auroc = float((cf * (num_neg - neg_less - neg_equal + 0.5 * neg_equal)).sum())
    auroc /= num_pos * num_neg
    tp = cf.cumsum(0)
    fp = neg_less + neg_equal
    aupr = float((cf / num_pos * tp / (tp + fp)).sum())
    return VerificationMetrics(auroc, aupr, num_pos, num_neg)
