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
from bench.errors import BenchError


def _sharded(answer: Callable[[list[Any]], torch.Tensor], samples: list[Any]) -> torch.Tensor:
    """``answer(samples)``; in a DDP run each rank answers for its shard and the rows are
    gathered back in the original order. No samples (the tracklet protocol's empty gallery):
    an empty tensor, without asking."""
    if not samples:
        return torch.empty(0, 0)
    if distributed.world_size() == 1:
        return answer(samples)
    return distributed.gather_rows(answer(samples[distributed.shard(len(samples))]))


def clips_of(samples: Sequence[Sample]) -> list[list[Sample]]:
    """``samples`` grouped by clip, clips in order of first appearance (as
    :func:`bench.evaluation.clips.clip_groups` orders them), each clip's frames in frame order."""
    groups: dict[str | None, list[Sample]] = {}
    for s in samples:
        groups.setdefault(s.clip, []).append(s)
    return [sorted(g, key=lambda s: -1 if s.frame is None else s.frame) for g in groups.values()]


def represent_clips(
    method: Method, query: Sequence[Sample], gallery: Sequence[Sample], policy: str = FAIR
) -> dict[str, Any]:
    """One row per clip from :meth:`Method.embed_clips` (a temporal encoder sees each
    tracklet's frames at once), rows in clip order of first appearance."""
    with torch.no_grad(), method_view(query, gallery, policy) as view:
        return {
            "query_features": _sharded(method.embed_clips, clips_of(view.query)),
            "gallery_features": _sharded(method.embed_clips, clips_of(view.gallery)),
        }


def represent(
    method: Method, query: Sequence[Sample], gallery: Sequence[Sample], policy: str = FAIR
) -> dict[str, Any]:
    """What the method answers for ``query`` and ``gallery`` under the text ``policy``:
    ``query_features`` and ``gallery_features`` (``embed``), or ``similarity`` (``score``),
    without gradients; rows and columns in the order given."""
    if method.answers == "embed_clips":
        raise BenchError(
            f"method {method.name!r} embeds whole tracklets (embed_clips): evaluate it at the "
            "clip level, --set protocol.level=clip, on a dataset with clips"
        )
    with torch.no_grad(), method_view(query, gallery, policy) as view:
        if method.answers == "embed":
            return {
                "query_features": _sharded(method.embed, view.query),
                "gallery_features": _sharded(method.embed, view.gallery),
            }
        return {"similarity": _sharded(lambda q: method.score(q, view.gallery), view.query)}
