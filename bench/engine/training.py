"""Building blocks of a method's ``fit`` and ``embed`` that the methods share: the PK-sampled
training loader, the test-time loader, and an epoch's mean loss and ID accuracy.

They read the config keys the image methods have in common: ``input.height``, ``input.width``,
``input.flip``, ``input.pad``, ``input.random_erasing``, ``sampler.p``, ``sampler.k`` and
``eval.batch_size``; ``input.mean`` / ``input.std`` where a method has them (else ImageNet's).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader

from bench.api.context import MethodContext
from bench.api.samples import Sample
from bench.data.images import image_loader
from bench.data.samplers import PKSampler
from bench.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    build_test_transform,
    build_train_transform,
)


def normalisation(config: Mapping[str, Any]) -> dict[str, tuple[float, ...]]:
    """The ``mean`` and ``std`` keyword arguments of the transforms: ``input.mean`` and
    ``input.std`` when the method's config has them, else the ImageNet statistics."""
    return {
        "mean": tuple(config.get("input.mean", IMAGENET_MEAN)),
        "std": tuple(config.get("input.std", IMAGENET_STD)),
    }


def pk_sampler(train: Sequence[Sample], config: Mapping[str, Any], ctx: MethodContext) -> PKSampler:
    """Batches of ``sampler.p`` identities x ``sampler.k`` images (Hermans et al. 2017), this
    process's share of them in a DDP run."""
    return PKSampler(
        [s.pid for s in train],
        config["sampler.p"],
        config["sampler.k"],
        seed=ctx.seed,
        rank=ctx.rank,
        world_size=ctx.world_size,
    )


def pk_train_loader(
    train: Sequence[Sample],
    sampler: PKSampler,
    config: Mapping[str, Any],
    ctx: MethodContext,
    *,
    random_erasing: float | None = None,
) -> DataLoader:
    """Training images of ``train`` in ``sampler``'s batches, augmented by flip, pad-and-crop
    and random erasing (``random_erasing`` overrides ``input.random_erasing``)."""
    c = config
    erasing = c["input.random_erasing"] if random_erasing is None else random_erasing
    transform = build_train_transform(
        c["input.height"],
        c["input.width"],
        flip=c["input.flip"],
        pad=c["input.pad"],
        random_erasing=erasing,
        **normalisation(c),
    )
    return image_loader(
        train,
        transform,
        c["sampler.p"] * c["sampler.k"],
        batch_sampler=sampler,
        workers=ctx.workers,
        seed=ctx.seed + ctx.rank,
    )


def eval_loader(
    samples: Sequence[Sample], config: Mapping[str, Any], ctx: MethodContext
) -> DataLoader:
    """``samples`` resized and normalised as at test time, ``eval.batch_size`` at a time."""
    transform = build_test_transform(
        config["input.height"], config["input.width"], **normalisation(config)
    )
    return image_loader(samples, transform, config["eval.batch_size"], workers=ctx.workers)


class EpochMeter:
    """An epoch's mean loss and identity-classification accuracy over its batches, summed over
    the processes of a DDP run: ``ctx.log_epoch(epoch, **meter.scalars(ctx))``."""

    def __init__(self) -> None:
        self.total = self.correct = self.seen = 0.0

    def update(self, loss: torch.Tensor, logits: torch.Tensor, pids: torch.Tensor) -> None:
        """Add one batch: its mean ``loss``, the ID ``logits`` and the true ``pids``."""
        self.total += loss.item() * len(pids)
        self.correct += (logits.argmax(1) == pids).sum().item()
        self.seen += len(pids)

    def scalars(self, ctx: MethodContext) -> dict[str, float]:
        """``loss`` and ``acc`` over every batch of every process so far."""
        total, correct, seen = ctx.all_reduce_sum(self.total, self.correct, self.seen)
        return {"loss": total / max(seen, 1), "acc": correct / max(seen, 1)}


def warmup_cosine_factor(
    step: int, warmup: int, total: int, warmup_factor: float, min_factor: float
) -> float:
    """Learning-rate multiplier: linear from ``warmup_factor`` to 1 over ``warmup`` steps, then a
    cosine from 1 to ``min_factor`` at ``total`` (timm's ``CosineLRScheduler`` as TransReID uses
    it per epoch; FLAVA's and MMET's warm-up-cosine per step)."""
    if step < warmup:
        return warmup_factor + (1.0 - warmup_factor) * step / warmup
    span = max(total - warmup, 1)
    progress = min((step - warmup) / span, 1.0)
    return min_factor + (1.0 - min_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))
