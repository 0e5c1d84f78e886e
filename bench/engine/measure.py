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
from bench.errors import BenchError
from bench.evaluation.clips import clip_groups, pool_clips
from bench.evaluation.protocol import Protocol, evaluate
from bench.evaluation.rank import RankMetrics
from bench.evaluation.tracklet_protocol import TrackletMetrics, evaluate_tracklets


@dataclass
class Measured:
    """A split's metrics, and the samples (in the order ranked) and representations behind them."""

    # None when not scored (the ranks other than 0 of a DDP run)
    metrics: RankMetrics | TrackletMetrics | None
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
    labels: Mapping[str, Mapping[str, Any]] | None = None,
) -> Measured:
    """Represent ``query`` and ``gallery`` (shuffled by ``seed``) and, with ``score`` (the main
    process of a DDP run), evaluate them under ``protocol`` with the run's ``eval.*`` and
    ``protocol.level`` keys. The tracklet protocol ranks ``query``'s tracklets against each
    other (``gallery`` is the same list) and probes ``labels`` (clip id -> annotations)."""
    if protocol.kind == "tracklets":
        return _measure_tracklets(method, query, config, seed, score, labels)
    query, gallery = presentation_order(query, gallery, seed)
    policy = text_policy(config)
    if str(config.get("protocol.level", "frame")) == "clip":
        query, gallery, represented = _clip_level(method, query, gallery, policy)
    else:
        represented = represent(method, query, gallery, policy)
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


def _clip_level(
    method: Method, query: Sequence[Sample], gallery: Sequence[Sample], policy: str
) -> tuple[list[Sample], list[Sample], dict[str, Any]]:
    """One representation per clip: a temporal encoder's ``embed_clips``, else the frames'
    representations pooled (:func:`bench.evaluation.clips.pool_clips`)."""
    if method.embeds_clips:
        q_clips, g_clips = clip_groups(query, "query")[0], clip_groups(gallery, "gallery")[0]
        return q_clips, g_clips, represent_clips(method, query, gallery, policy)
    return pool_clips(query, gallery, represent(method, query, gallery, policy))


def _measure_tracklets(
    method: Method,
    samples: Sequence[Sample],
    config: Mapping[str, Any],
    seed: int,
    score: bool,
    labels: Mapping[str, Mapping[str, Any]] | None,
) -> Measured:
    """One embedding per tracklet (:func:`_clip_level`), then
    :func:`bench.evaluation.tracklet_protocol.evaluate_tracklets`."""
    samples, _ = presentation_order(samples, [], seed)
    tracklets, _, represented = _clip_level(method, samples, [], text_policy(config))
    if "query_features" not in represented:
        raise BenchError(
            f"the tracklet protocol needs embeddings, but method {method.name!r} answers with "
            "score()"
        )
    features = represented["query_features"].detach().float().cpu()
    metrics = evaluate_tracklets(features, tracklets, labels, seed=seed) if score else None
    both = {"query_features": features, "gallery_features": features}
    return Measured(metrics, tracklets, tracklets, both)
