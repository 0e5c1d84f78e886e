"""``sweep-probe``: a fast method plugin for the sweep tests (loaded through ``BENCH_PLUGINS``).

Its embedding is the mean colour of four horizontal stripes (nothing is learned; its epochs
only checkpoint; a fraction of a second per run). The environment steers it: a seed listed in
``PROBE_FAIL_SEEDS`` raises an error in ``fit`` (a failing run), one in
``PROBE_INTERRUPT_SEEDS`` raises KeyboardInterrupt (a killed sweep).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from bench.api.method import Method
from bench.api.registry import register_method
from bench.api.samples import Sample
from bench.data.images import open_image


def _seeds(var: str) -> set[int]:
    return {int(s) for s in os.environ.get(var, "").split(",") if s.strip()}


@register_method
class SweepProbe(Method):
    name = "sweep-probe"
    description = "test plugin: mean colour of four stripes; fails on PROBE_FAIL_SEEDS"
    modalities = frozenset({"image"})
    default_config = {"probe": {"stripes": 4}, "train": {"epochs": 1}}
    presets = {"quick": {"probe": {"stripes": 2}}}

    def fit(self, train: Sequence[Sample]) -> None:
        for _ in self.ctx.epochs(self.config["train.epochs"]):
            if self.ctx.seed in _seeds("PROBE_FAIL_SEEDS"):
                raise RuntimeError(f"probe asked to fail for seed {self.ctx.seed}")
            if self.ctx.seed in _seeds("PROBE_INTERRUPT_SEEDS"):
                raise KeyboardInterrupt

    def embed(self, samples: Sequence[Sample]) -> torch.Tensor:
        stripes = self.config["probe.stripes"]
        rows = []
        for s in samples:
            img = np.asarray(open_image(s.path), dtype=np.float32) / 255.0
            rows.append(np.concatenate([p.mean((0, 1)) for p in np.array_split(img, stripes)]))
        return torch.from_numpy(np.stack(rows))

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        pass
