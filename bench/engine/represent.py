"""Asking a trained method for query and gallery representations, identities hidden.

Every query and gallery sample reaches the method with ``pid = -1``; the harness keeps the true
labels and computes the metrics itself. ``bench run`` and ``bench report --recompute`` both
come here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import torch

from bench.api.method import Method
from bench.api.samples import Sample
from bench.engine import distributed


def hide_labels(samples: Sequence[Sample]) -> list[Sample]:
    """Query/gallery as a method sees them: identity hidden (``pid = -1``)."""
    return [dataclasses.replace(s, pid=-1) for s in samples]


def _sharded(answer: Callable[[list[Sample]], torch.Tensor], samples: list[Sample]) -> torch.Tensor:
    """``answer(samples)``; in a DDP run each rank answers for its shard and the rows are
    gathered back in the original order."""
    if distributed.world_size() == 1:
        return answer(hide_labels(samples))
    return distributed.gather_rows(answer(hide_labels(samples[distributed.shard(len(samples))])))


def represent(method: Method, query: list[Sample], gallery: list[Sample]) -> dict[str, Any]:
    """What the method answers for ``query`` and ``gallery``: ``query_features`` and
    ``gallery_features`` (``embed``), or ``similarity`` (``score``), without gradients."""
    with torch.no_grad():
        if method.answers == "embed":
            return {
                "query_features": _sharded(method.embed, query),
                "gallery_features": _sharded(method.embed, gallery),
            }
        hidden_gallery = hide_labels(gallery)
        return {"similarity": _sharded(lambda q: method.score(q, hidden_gallery), query)}
