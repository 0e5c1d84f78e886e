"""One split measured: the method's representations of its query and gallery (through the
test-side view, in presentation order), pooled per clip at the clip level (or one row per clip
from a method's ``embed_clips``), then the harness's metrics. The test split at the end of a
run and the validation split after an epoch both come here, so they are measured alike."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from bench.api.method import Method
from bench.api.samples import Sample
from bench.engine.represent import represent, represent_clips
from bench.engine.test_side import presentation_order, text_policy
from bench.evaluation.clips import clip_groups, pool_clips
from bench.evaluation.protocol import Protocol, evaluate
from bench.evaluation.rank import RankMetrics


@dataclass
class Measured:
    """A split's metrics, and the samples (in the order ranked) and representations behind them."""

    metrics: RankMetrics | None  # None when not scored (the ranks other than 0 of a DDP run)
    query: list[Sample]
    gallery: list[Sample]
    represented: dict[str, Any]


def measure(
    method: Method,
    query: Sequence[Sample],
    gallery: Sequence[Sample],
    *,
    protocol: Protocol,
    config: Mapping[str, Any],
    seed: int,
    device: torch.device,
    score: bool = True,
) -> Measured:
    """Represent ``query`` and ``gallery`` (shuffled by ``seed``) and, with ``score`` (the main
    process of a DDP run), evaluate them under ``protocol`` with the run's ``eval.*`` and
    ``protocol.level`` keys."""
    query, gallery = presentation_order(query, gallery, seed)
    clip_level = str(config.get("protocol.level", "frame")) == "clip"
    if clip_level and method.embeds_clips:  # a temporal encoder: one row per tracklet
        q_clips, g_clips = clip_groups(query, "query")[0], clip_groups(gallery, "gallery")[0]
        represented = represent_clips(method, query, gallery, text_policy(config))
        query, gallery = q_clips, g_clips
    else:
        represented = represent(method, query, gallery, text_policy(config))
        if clip_level:
            query, gallery, represented = pool_clips(query, gallery, represented)
    if not score:
        return Measured(None, query, gallery, represented)
    metrics = evaluate(
        protocol,
        query,
        gallery,
        **represented,
        metric=str(config["eval.metric"]),
        max_rank=int(config["eval.max_rank"]),
        rerank=bool(config["eval.rerank"]),
        device=device,
    )
    return Measured(metrics, query, gallery, represented)
