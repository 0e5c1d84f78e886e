"""NTSSL's tracklet retrieval and re-identification protocols (README "Downstream Tasks").

One embedding per whole tracklet (the released code's 256-d encoder CLS), pooled over all test
videos. Both protocols score a pair of tracklets by the cosine of their L2-normalised embeddings,
``S = E_n E_n^T`` in float32 (``polypsense/reid/eval/{retrieval,reid}.py``); a pair is positive
when both tracklets show the same polyp (same pid).

* :func:`tracklet_retrieval`: every tracklet queries all others (itself excluded), ranked by
  cosine; mAP, HR@1 and HR@5 exactly as torchmetrics' ``RetrievalMAP`` and
  ``RetrievalHitRate(top_k=k)`` compute them with ``indexes`` = the query row and the diagonal
  masked by ``ignore_index`` (the released ``RetrievalEvaluator``).
* :func:`tracklet_reidentification`: every unordered pair once (the released code's strictly
  lower triangle), score ``sigmoid(S_ij)``; AUROC as torchmetrics' ``BinaryAUROC`` and AP
  (AUPR) as ``BinaryAveragePrecision`` / scikit-learn's ``average_precision_score`` compute them,
  both exact (no threshold binning).

Vectorised torch on the CPU; memory is ``O(N^2)`` (a few ``N x N`` float32/int64 matrices: about
1 GB at ``N = 5000`` tracklets), which fits the test sets of the paper (hundreds of tracklets) but
is not meant for ``N`` much above ~5000.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F

from bench.errors import BenchError
from bench.evaluation.inputs import check_labels

__all__ = ["EmptyTargetAction", "tracklet_reidentification", "tracklet_retrieval"]

EmptyTargetAction = Literal["error", "skip", "neg", "pos"]
_EMPTY_ACTIONS = ("error", "skip", "neg", "pos")


def _check_inputs(embeddings: torch.Tensor, pids: Sequence[int] | torch.Tensor) -> torch.Tensor:
    """``pids`` as an int64 tensor after the shared checks: ``embeddings`` 2-D ``(N, D)``, finite,
    ``N >= 2``, one integer pid per row."""
    if not isinstance(embeddings, torch.Tensor):
        raise BenchError(f"embeddings must be a torch.Tensor, got {type(embeddings).__name__}")
    if embeddings.ndim != 2 or embeddings.shape[1] < 1:
        raise BenchError(f"embeddings must be (N, D) with D >= 1, got {tuple(embeddings.shape)}")
    if embeddings.shape[0] < 2:
        raise BenchError(f"need at least 2 tracklets, got {embeddings.shape[0]}")
    if not embeddings.is_floating_point():
        raise BenchError(f"embeddings must be floating point, got {embeddings.dtype}")
    if not bool(torch.isfinite(embeddings).all()):
        raise BenchError("embeddings hold NaN or infinite values")
    try:
        p = check_labels("pids", pids, embeddings.shape[0], "rows", of="embeddings")
    except ValueError as exc:
        raise BenchError(str(exc)) from None
    return torch.as_tensor(p)


def _cosine(embeddings: torch.Tensor) -> torch.Tensor:
    """``(N, N)`` cosine similarities of the L2-normalised rows, in float32 as the released code."""
    e = F.normalize(embeddings.detach().cpu().float(), p=2, dim=-1)
    return e @ e.t()


def tracklet_retrieval(
    embeddings: torch.Tensor,
    pids: Sequence[int] | torch.Tensor,
    *,
    empty_target_action: EmptyTargetAction = "error",
) -> dict[str, float | int]:
    """mAP, HR@1 and HR@5 of all-vs-all tracklet retrieval (NTSSL README, "Retrieval").

    Query ``i`` ranks the gallery ``{j != i}`` by ``S_ij`` descending; ``y_ij = [pid_i == pid_j]``.
    As torchmetrics (1.8.2 pinned by the released code, 1.9 unchanged) computes it:

    * ``AP_i = (1 / R_i) sum_{r : z_r = 1} (#{r' <= r : z_r' = 1} / r)`` over ranks ``r = 1..N-1``,
      where ``z_r = y_r * [S_r > 0]``: ``retrieval_average_precision`` zeroes the relevance of any
      gallery item scored ``<= 0`` before ranking, so a positive with non-positive cosine counts
      as a miss; ``R_i = sum_r z_r``, and ``AP_i = 0`` when ``R_i = 0``.
    * ``HR@k_i = [sum_{r <= k} y_r > 0]`` (``retrieval_hit_rate``; no score condition).
    * The result is the plain mean over queries (``aggregation="mean"``).
    * A query with no positive (its polyp has one tracklet) is handled by
      ``empty_target_action`` as torchmetrics: ``"error"`` (the released code's setting, raised
      as :class:`~bench.errors.BenchError`), ``"skip"`` (left out of the mean), ``"neg"`` (scores
      0, torchmetrics' default) or ``"pos"`` (scores 1). All skipped gives 0, as torchmetrics.
    * Ties: torchmetrics orders equal scores by unstable sorts (``torch.sort`` of ``indexes``,
      ``topk``, ``argsort``), i.e. implementation-defined; here equal scores keep gallery order
      (ascending ``j``), what those sorts give when stable. Without ties the two agree exactly.

    Returns ``{"mAP", "HR@1", "HR@5"}`` in ``[0, 1]`` and ``"num_queries"`` (queries in the mean).
    """
    if empty_target_action not in _EMPTY_ACTIONS:
        raise BenchError(
            f"empty_target_action must be one of {_EMPTY_ACTIONS}, got {empty_target_action!r}"
        )
    labels = _check_inputs(embeddings, pids)
    n = labels.numel()
    off = ~torch.eye(n, dtype=torch.bool)
    scores = _cosine(embeddings)[off].view(n, n - 1)
    target = (labels[:, None] == labels[None, :])[off].view(n, n - 1)

    order = torch.sort(scores, dim=1, descending=True, stable=True).indices
    ranked = target.gather(1, order)
    relevant = ranked & (scores.gather(1, order) > 0)
    ranks = torch.arange(1, n, dtype=torch.float64)
    hits = relevant.cumsum(1, dtype=torch.float64)
    ap = (hits / ranks * relevant).sum(1) / relevant.sum(1).clamp(min=1)
    hr = {k: ranked[:, :k].any(1).double() for k in (1, 5)}

    has_pos = target.any(1)
    n_empty = int((~has_pos).sum())
    if n_empty and empty_target_action == "error":
        raise BenchError(
            f"{n_empty} of {n} query tracklets have no other tracklet of their polyp; "
            "pass empty_target_action='skip', 'neg' or 'pos'"
        )
    keep = has_pos if empty_target_action == "skip" else torch.ones(n, dtype=torch.bool)
    fill = 1.0 if empty_target_action == "pos" else 0.0

    def mean(v: torch.Tensor) -> float:
        v = torch.where(has_pos, v, torch.full_like(v, fill))[keep]
        return float(v.mean()) if v.numel() else 0.0

    return {
        "mAP": mean(ap),
        "HR@1": mean(hr[1]),
        "HR@5": mean(hr[5]),
        "num_queries": int(keep.sum()),
    }


def _binary_auroc_ap(scores: torch.Tensor, target: torch.Tensor) -> tuple[float, float]:
    """Exact AUROC (trapezoid over the ROC points) and step-wise AP of ``scores`` vs ``target``.

    Over the distinct scores ``t_1 > t_2 > ...`` with ``TP_k``/``FP_k`` the positives/negatives
    scored ``>= t_k`` (torchmetrics' ``_binary_clf_curve``, scikit-learn's ``_binary_clf_curve``):
    ``AUROC = sum_k (FPR_k - FPR_{k-1}) (TPR_k + TPR_{k-1}) / 2`` from ``(0, 0)``, which counts a
    tied positive/negative pair one half; ``AP = sum_k (R_k - R_{k-1}) P_k`` with
    ``P_k = TP_k / (TP_k + FP_k)``, ``R_k = TP_k / P`` (no interpolation, not a trapezoid).
    """
    order = torch.argsort(scores, descending=True, stable=True)
    s, y = scores[order], target[order].double()
    last = torch.ones_like(s, dtype=torch.bool)
    last[:-1] = s[1:] != s[:-1]  # the last element of each run of equal scores
    tps = y.cumsum(0)[last]
    fps = (1 - y).cumsum(0)[last]
    zero = torch.zeros(1, dtype=torch.float64)
    tpr = torch.cat([zero, tps / tps[-1]])
    fpr = torch.cat([zero, fps / fps[-1]])
    auroc = float(((fpr[1:] - fpr[:-1]) * (tpr[1:] + tpr[:-1]) / 2).sum())
    ap = float(((tpr[1:] - tpr[:-1]) * tps / (tps + fps)).sum())
    return auroc, ap


def tracklet_reidentification(
    embeddings: torch.Tensor, pids: Sequence[int] | torch.Tensor
) -> dict[str, float | int]:
    """AUROC and AP of same-polyp vs different-polyp decisions (NTSSL README, "ReID").

    Every unordered pair ``{i, j}``, ``i != j``, counts once (the released ``ReidEvaluator`` keeps
    ``torch.tril(..., diagonal=-1)``), scored ``sigmoid(S_ij)`` in float32 (monotone, but float32
    rounding can merge near-equal cosines into ties, exactly as in the released code) with target
    ``[pid_i == pid_j]``. ``AUROC`` as ``BinaryAUROC()`` and ``AP`` as
    ``BinaryAveragePrecision()`` (both ``thresholds=None``, i.e. exact) compute them; see
    :func:`_binary_auroc_ap` for the formulas. Needs at least one positive and one negative pair.

    Returns ``{"AUROC", "AP", "num_positive_pairs", "num_negative_pairs"}``.
    """
    labels = _check_inputs(embeddings, pids)
    n = labels.numel()
    i, j = torch.tril_indices(n, n, offset=-1)
    scores = torch.sigmoid(_cosine(embeddings)[i, j])
    target = labels[i] == labels[j]
    n_pos = int(target.sum())
    if n_pos == 0:
        raise BenchError("no positive pair: no two tracklets share a pid")
    if n_pos == target.numel():
        raise BenchError("no negative pair: all tracklets share one pid")
    auroc, ap = _binary_auroc_ap(scores, target)
    return {
        "AUROC": auroc,
        "AP": ap,
        "num_positive_pairs": n_pos,
        "num_negative_pairs": int(target.numel()) - n_pos,
    }
