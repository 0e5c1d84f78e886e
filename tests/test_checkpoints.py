"""Checkpoints load with ``torch.load(weights_only=True)``: plain data loads, code never runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bench.engine.checkpoints import atomic_torch_save, convert_legacy_checkpoint, load_checkpoint
from bench.engine.context import rng_state, seed_everything, set_rng_state
from bench.errors import BenchError


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path: Path, plant_pickle) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "last.pt"
    plant_pickle(path, marker)
    with pytest.raises(
        BenchError, match=r"last\.pt holds objects other than tensors.*never loaded"
    ):
        load_checkpoint(path)
    assert not marker.exists()
    with pytest.raises(BenchError, match="not a reid-bench checkpoint; refused"):
        convert_legacy_checkpoint(path)
    assert not marker.exists()


def test_empty_truncated_and_missing_checkpoints_say_so(tmp_path: Path) -> None:
    good = tmp_path / "good.pt"
    atomic_torch_save({"epoch": 1, "w": torch.zeros(100)}, good)
    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "cut.pt").write_bytes(good.read_bytes()[:300])
    for name, says in [
        ("empty.pt", "it is empty"),
        ("cut.pt", "truncated or not a checkpoint"),
        ("gone.pt", "it does not exist"),
    ]:
        with pytest.raises(BenchError, match=f"cannot read checkpoint .*{name}: {says}"):
            load_checkpoint(tmp_path / name)


def test_a_legacy_checkpoint_is_refused_and_converts_without_running_code(tmp_path: Path) -> None:
    """Before NumPy's RNG keys were saved as a tensor, checkpoints held np.random.get_state()."""
    import random

    import numpy as np

    seed_everything(5)
    path = tmp_path / "last.pt"
    rng = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    torch.save({"epoch": 2, "states": {"model": {"w": torch.ones(3)}}, "rng": rng}, path)
    with pytest.raises(BenchError, match=r"older reid-bench.*bench convert-checkpoint .*last\.pt"):
        load_checkpoint(path)
    want = (random.random(), np.random.rand(), torch.rand(1).item())
    from bench.cli import main

    assert main(["convert-checkpoint", str(path)]) == 0
    converted = load_checkpoint(path)
    assert converted["epoch"] == 2 and torch.equal(converted["states"]["model"]["w"], torch.ones(3))
    set_rng_state(converted["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == want


def test_rng_states_round_trip_through_a_safe_checkpoint(tmp_path: Path) -> None:
    import random

    import numpy as np

    seed_everything(3)
    path = tmp_path / "rng.pt"
    atomic_torch_save({"rng": rng_state()}, path)
    want = (random.random(), np.random.rand(), torch.rand(1).item())
    set_rng_state(load_checkpoint(path)["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == want
