"""Checkpoints load with ``torch.load(weights_only=True)``: plain data loads, code never runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bench.engine.context import (
    atomic_torch_save,
    load_checkpoint,
    rng_state,
    seed_everything,
    set_rng_state,
)
from bench.errors import BenchError


class _Touch:
    """Unpickling this calls ``Path.touch(marker)``: what a hostile checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "last.pt"
    torch.save({"epoch": 0, "states": {"model": _Touch(marker)}}, path)
    with pytest.raises(BenchError, match=r"cannot read checkpoint .*last\.pt"):
        load_checkpoint(path)
    assert not marker.exists()


def test_rng_states_round_trip_through_a_safe_checkpoint(tmp_path: Path) -> None:
    import random

    import numpy as np

    seed_everything(3)
    path = tmp_path / "rng.pt"
    atomic_torch_save({"rng": rng_state()}, path)
    want = (random.random(), np.random.rand(), torch.rand(1).item())
    set_rng_state(load_checkpoint(path)["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == want
