"""Config values are range-checked when the config is resolved, before any data is read."""

from __future__ import annotations

import math

import pytest

from bench.api.ranges import AT_LEAST_ONE, POSITIVE, PROBABILITY, SEED, Range
from bench.config import HARNESS_DEFAULTS, HARNESS_RANGES, flatten, resolve_config
from bench.errors import ConfigError
from bench.plugins import dataset_names, get_dataset, get_method, method_families


def _numeric(config: dict) -> dict:
    return {
        k: v
        for k, v in flatten(config).items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }


def test_range_membership_and_wording() -> None:
    assert 1e-9 in POSITIVE and 0 not in POSITIVE and -1 not in POSITIVE
    assert 1 in AT_LEAST_ONE and 0 not in AT_LEAST_ONE
    assert 0 in PROBABILITY and 1 in PROBABILITY and 1.01 not in PROBABILITY
    assert math.nan not in Range() and math.inf not in Range() and "1" not in Range()
    assert True not in Range()  # a bool is not a number here
    assert 2**32 - 1 in SEED and 2**32 not in SEED and -1 not in SEED
    assert Range(0, 1, high_open=True).describe() == "in [0, 1)"
    assert POSITIVE.describe() == "> 0" and AT_LEAST_ONE.describe() == ">= 1"


def test_every_builtin_numeric_key_declares_its_range() -> None:
    """A new numeric key without a declared range (or a list of choices) fails here: only its
    finiteness would be checked."""
    missing = [k for k in _numeric(HARNESS_DEFAULTS) if k not in HARNESS_RANGES]
    owners = [(name, get_dataset(name)) for name in dataset_names()]
    owners += [(family.name, family) for family in method_families()]
    for name, owner in owners:
        declared = {**owner.config_ranges, **owner.config_choices}
        missing += [f"{name}:{k}" for k in _numeric(owner.default_config) if k not in declared]
    assert missing == []


def test_defaults_and_presets_are_within_their_ranges() -> None:
    for family in method_families():
        spec = get_method(family.name)
        for preset in family.presets or {None: {}}:
            for name in dataset_names():
                cls = get_dataset(name)
                resolve_config(spec, [cls], preset)  # raises on any value out of range


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("optim.lr", "-0.1", "'optim.lr' must be > 0; got -0.1"),
        ("optim.lr", ".nan", "'optim.lr' must be > 0; got nan"),
        ("optim.lr", ".inf", "'optim.lr' must be > 0; got inf"),
        ("input.height", "0", "'input.height' must be >= 1; got 0"),
        ("data.workers", "-1", "'data.workers' must be >= 0; got -1"),
        ("eval.batch_size", "0", "'eval.batch_size' must be >= 1; got 0"),
        ("eval.max_rank", "0", "'eval.max_rank' must be >= 1; got 0"),
        ("train.epochs", "-3", "'train.epochs' must be >= 1; got -3"),
        ("input.flip", "1.5", "'input.flip' must be in [0, 1]; got 1.5"),
        ("optim.weight_decay", "-1e-4", "'optim.weight_decay' must be >= 0; got -0.0001"),
        ("loss.label_smooth", "1", "'loss.label_smooth' must be in [0, 1); got 1.0"),
        ("protocol.val_every", "0", "'protocol.val_every' must be >= 1; got 0"),
        ("optim.milestones", "[20, -1]", "'optim.milestones' must be >= 0; got -1"),
    ],
)
def test_out_of_range_set_is_one_config_error(key: str, value: str, says: str) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_config(
            get_method("bot"), [get_dataset("synthetic-person")], "quick", [f"{key}={value}"]
        )
    assert says in str(info.value)


def test_dataset_keys_are_checked_too() -> None:
    polyp = get_dataset("synthetic-polyp")
    for bad in ("synthetic.seed=-1", "synthetic.identities=0", "protocol.folds=1"):
        with pytest.raises(ConfigError, match=bad.split("=")[0]):
            resolve_config(get_method("dmcl"), [polyp], "quick", [bad])


def test_dmcl_head_counts_must_divide_widths() -> None:
    spec = get_method("dmcl")
    config, _ = resolve_config(spec, [get_dataset("synthetic-polyp")], "quick", ["text.heads=3"])
    with pytest.raises(ConfigError, match="text.hidden 64 is not divisible by text.heads 3"):
        spec.family.preflight(config)
