"""Asking a trained method for query and gallery representations, through the test-side view.

The method is given :func:`bench.engine.test_side.method_view` of the samples (pid hidden,
opaque clip ids and paths, identity-level gallery text withheld under the fair protocol); the
harness keeps the true samples and computes the metrics itself. ``bench run`` and
``bench report --recompute`` both come here, with the samples in presentation order
(:func:`bench.engine.test_side.presentation_order`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from bench.api.method import Method
from bench.api.samples import Sample
from bench.engine import distributed
from bench.engine.test_side import FAIR, method_view


def _sharded(answer: Callable[[list[Sample]], torch.Tensor], samples: list[Sample]) -> torch.Tensor:
    """``answer(samples)``; in a DDP run each rank answers for its shard and the rows are
    gathered back in the original order."""
    if distributed.world_size() == 1:
        return answer(samples)
    return distributed.gather_rows(answer(samples[distributed.shard(len(samples))]))


def represent(
    method: Method, query: Sequence[Sample], gallery: Sequence[Sample], policy: str = FAIR
) -> dict[str, Any]:
    """What the method answers for ``query`` and ``gallery`` under the text ``policy``:
    ``query_features`` and ``gallery_features`` (``embed``), or ``similarity`` (``score``),
    without gradients; rows and columns in the order given."""
    with torch.no_grad(), method_view(query, gallery, policy) as view:
        if method.answers == "embed":
            return {
                "query_features": _sharded(method.embed, view.query),
                "gallery_features": _sharded(method.embed, view.gallery),
            }
        return {"similarity": _sharded(lambda q: method.score(q, view.gallery), view.query)}
