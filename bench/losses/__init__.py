"""Losses of ReID training.

* :mod:`~bench.losses.classification`: the label-smoothed identity loss (BoT Eq. 2);
* :mod:`~bench.losses.triplet`: the batch-hard triplet loss (margin or soft margin) and the
  margin triplet over multi-similarity-mined pairs.
"""

from bench.losses.classification import CrossEntropyLabelSmooth
from bench.losses.triplet import (
    MultiSimilarityTripletLoss,
    TripletLoss,
    batch_hard_triplet,
    batch_hard_triplet_loss,
    mined_triplet_loss,
    multi_similarity_pairs,
    pair_masks,
    pairwise_distance,
)

__all__ = [
    "CrossEntropyLabelSmooth",
    "MultiSimilarityTripletLoss",
    "TripletLoss",
    "batch_hard_triplet",
    "batch_hard_triplet_loss",
    "mined_triplet_loss",
    "multi_similarity_pairs",
    "pair_masks",
    "pairwise_distance",
]
