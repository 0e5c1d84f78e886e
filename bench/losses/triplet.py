"""Metric-learning losses on a batch of features: the batch-hard triplet loss (Hermans et al.
2017; BoT, DMCL Eq. 6) and the margin triplet over multi-similarity-mined pairs (DMCL's released
code)."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, TypedDict

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    from typing_extensions import Unpack


def _check_batch(features: torch.Tensor, pids: torch.Tensor) -> None:
    if features.dim() != 2 or pids.dim() != 1 or features.size(0) != pids.size(0):
        raise ValueError(
            f"expected features (N, D) and pids (N,), got {tuple(features.shape)} and "
            f"{tuple(pids.shape)}"
        )


def pair_masks(pids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Boolean (N, N) masks of the positive pairs (same identity, self-pairs excluded) and the
    negative pairs (another identity) of a batch, row = anchor."""
    same = pids.unsqueeze(0) == pids.unsqueeze(1)
    eye = torch.eye(len(pids), dtype=torch.bool, device=pids.device)
    return same & ~eye, ~same


def pairwise_distance(
    x: torch.Tensor, y: torch.Tensor | None = None, squared: bool = False
) -> torch.Tensor:
    """Euclidean distances between rows of ``x`` (M, D) and ``y`` (N, D; ``x`` if None) -> (M, N).

    Uses ||x||^2 + ||y||^2 - 2 x.y, clamped at 1e-12 before the square root so neither the value
    nor its gradient is NaN on (near-)identical rows.
    """
    y = x if y is None else y
    xx = x.pow(2).sum(dim=1, keepdim=True)
    yy = y.pow(2).sum(dim=1, keepdim=True).t()
    dist = (xx + yy - 2.0 * (x @ y.t())).clamp(min=1e-12)
    return dist if squared else dist.sqrt()


class BatchHardTriplet(NamedTuple):
    """The loss and, per anchor that has a positive and a negative, the mined distances."""

    loss: torch.Tensor
    d_ap: torch.Tensor  # hardest (largest) anchor-positive distance per valid anchor
    d_an: torch.Tensor  # hardest (smallest) anchor-negative distance per valid anchor


def batch_hard_triplet(
    features: torch.Tensor,
    pids: torch.Tensor,
    margin: float | None = 0.3,
    normalize: bool = False,
    squared: bool = False,
) -> BatchHardTriplet:
    """Batch-hard triplet loss (Hermans et al. 2017, Eq. 5) with the mined distances.

    For each anchor: the farthest sample of its identity (itself excluded) and the closest
    sample of another identity. ``margin`` a float: relu(d_ap - d_an + margin) (BoT's margin
    ranking form); ``None``: the soft margin softplus(d_ap - d_an) = log(1 + exp(d_ap - d_an))
    (Hermans et al. 2017; DMCL Eq. 6). Averaged over anchors with at least one positive and one
    negative; with none such, a zero that is still connected to ``features``' graph.
    ``normalize`` L2-normalizes the features first; ``squared`` mines and compares squared
    Euclidean distances, as DMCL's Eq. 6 writes them (||x_a - x_p||^2 - ||x_a - x_n||^2).
    """
    _check_batch(features, pids)
    if normalize:
        features = F.normalize(features, p=2, dim=1)
    dist = pairwise_distance(features, squared=squared)
    pos, neg = pair_masks(pids.to(features.device))
    valid = pos.any(dim=1) & neg.any(dim=1)
    if not valid.any():
        empty = dist.new_zeros(0)
        return BatchHardTriplet(features.sum() * 0.0, empty, empty)
    dist, pos, neg = dist[valid], pos[valid], neg[valid]
    d_ap = dist.masked_fill(~pos, float("-inf")).max(dim=1).values
    d_an = dist.masked_fill(~neg, float("inf")).min(dim=1).values
    gap = d_ap - d_an
    loss = F.softplus(gap).mean() if margin is None else F.relu(gap + margin).mean()
    return BatchHardTriplet(loss, d_ap, d_an)


class TripletOptions(TypedDict, total=False):
    """The options of :func:`batch_hard_triplet`: ``margin``, ``normalize``, ``squared``."""

    margin: float | None
    normalize: bool
    squared: bool


def batch_hard_triplet_loss(
    features: torch.Tensor, pids: torch.Tensor, **options: Unpack[TripletOptions]
) -> torch.Tensor:
    """The loss of :func:`batch_hard_triplet`."""
    return batch_hard_triplet(features, pids, **options).loss


class TripletLoss(nn.Module):
    """:func:`batch_hard_triplet_loss` as a module; ``margin=None`` selects the soft margin."""

    def __init__(
        self, margin: float | None = 0.3, normalize: bool = False, squared: bool = False
    ) -> None:
        super().__init__()
        self.margin = margin
        self.normalize = normalize
        self.squared = squared

    def forward(self, features: torch.Tensor, pids: torch.Tensor) -> torch.Tensor:
        return batch_hard_triplet_loss(
            features, pids, margin=self.margin, normalize=self.normalize, squared=self.squared
        )

    def extra_repr(self) -> str:
        return f"margin={self.margin}, normalize={self.normalize}, squared={self.squared}"


class MinedPairs(NamedTuple):
    """Boolean (N, N) masks of the mined positive and negative pairs (row = anchor)."""

    positive: torch.Tensor
    negative: torch.Tensor


def multi_similarity_pairs(
    features: torch.Tensor, pids: torch.Tensor, epsilon: float = 0.1
) -> MinedPairs:
    """Multi-similarity pair mining (Wang et al. 2019, "Multi-Similarity Loss", Eq. 3-4), on
    cosine similarity, as pytorch-metric-learning's ``MultiSimilarityMiner`` (DMCL's released
    code uses it with its defaults).

    A negative pair (a, n) is kept when S_an > min_p S_ap - epsilon, a positive pair (a, p) when
    S_ap < max_n S_an + epsilon (self-pairs excluded). Anchors with no positive or no negative
    keep no pairs. Mining runs without gradient.
    """
    with torch.no_grad():
        x = F.normalize(features.detach().float(), p=2, dim=1)
        sim = x @ x.t()
        pos, neg = pair_masks(pids.to(features.device))
        min_pos = sim.masked_fill(~pos, float("inf")).min(dim=1, keepdim=True).values
        max_neg = sim.masked_fill(~neg, float("-inf")).max(dim=1, keepdim=True).values
        hard_neg = neg & (sim > min_pos - epsilon)
        hard_pos = pos & (sim < max_neg + epsilon)
    return MinedPairs(hard_pos, hard_neg)


def mined_triplet_loss(
    features: torch.Tensor,
    pids: torch.Tensor,
    margin: float = 0.3,
    epsilon: float = 0.1,
) -> torch.Tensor:
    """Margin triplet loss over the triplets formed by multi-similarity-mined pairs: every
    (a, p, n) with (a, p) a mined positive and (a, n) a mined negative pair of the same anchor;
    relu(d_ap - d_an + margin) on L2-normalised features (Euclidean), averaged over the triplets
    whose loss is positive. This is pytorch-metric-learning's ``TripletMarginLoss(margin)`` with
    its default distance and reducer fed by ``MultiSimilarityMiner()``: DMCL's released loss.
    With no such triplet, a zero still connected to ``features``' graph.
    """
    _check_batch(features, pids)
    mined = multi_similarity_pairs(features, pids, epsilon)
    dist = pairwise_distance(F.normalize(features, p=2, dim=1))
    # (a, p, n) for every anchor a: d_ap[:, :, None] - d_an[:, None, :], masked to mined pairs.
    valid = mined.positive.unsqueeze(2) & mined.negative.unsqueeze(1)
    losses = F.relu(dist.unsqueeze(2) - dist.unsqueeze(1) + margin)[valid]
    positive = losses > 0
    if not positive.any():
        return features.sum() * 0.0
    return losses[positive].mean()


class MultiSimilarityTripletLoss(nn.Module):
    """:func:`mined_triplet_loss` as a module (DMCL's released code: margin 0.3, epsilon 0.1)."""

    def __init__(self, margin: float = 0.3, epsilon: float = 0.1) -> None:
        super().__init__()
        self.margin = margin
        self.epsilon = epsilon

    def forward(self, features: torch.Tensor, pids: torch.Tensor) -> torch.Tensor:
        return mined_triplet_loss(features, pids, self.margin, self.epsilon)

    def extra_repr(self) -> str:
        return f"margin={self.margin}, epsilon={self.epsilon}"
