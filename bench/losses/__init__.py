"""Losses of ReID training, as modules (their functional forms are in the submodules).

* :mod:`~bench.losses.classification`: the label-smoothed identity loss (BoT Eq. 2);
* :mod:`~bench.losses.triplet`: the batch-hard triplet loss (margin or soft margin) and the
  margin triplet over multi-similarity-mined pairs, with the mining and distances they use.
"""

from bench.losses.classification import CrossEntropyLabelSmooth
from bench.losses.triplet import MultiSimilarityTripletLoss, TripletLoss

__all__ = ["CrossEntropyLabelSmooth", "MultiSimilarityTripletLoss", "TripletLoss"]
