"""Run configuration: plain nested dicts, flattened to dotted keys, resolved in a fixed order.

This is the one place configs are resolved (:func:`resolve_config` for a run,
:func:`dataset_config` for ``bench data``). Order: harness defaults + dataset defaults + method
defaults, then the preset, then the variant's overrides, then ``--set key=value``. Every override
must name a known key and carry a value of the default's type within the key's declared range
(:mod:`bench.api.ranges`; every number finite); errors name the key and suggest the nearest one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import yaml

from bench.api.dataset import DatasetAdapter
from bench.api.method import MethodSpec
from bench.api.ranges import AT_LEAST_ONE, FINITE, NON_NEGATIVE, Range
from bench.api.registry import DATASETS
from bench.errors import ConfigError, did_you_mean

HARNESS_DEFAULTS: dict[str, Any] = {
    "eval": {"metric": "cosine", "batch_size": 128, "max_rank": 50, "rerank": False},
    "data": {"workers": 0},
    # The test protocol the harness enforces (bench.engine.test_side, bench.engine.selection).
    # oracle_gallery_text: give gallery samples their own identity-level text (a text that
    # describes the identity is its label in words): an oracle, marked so and never ranked.
    # val_identities: training identities held out for validation (a fraction < 1, or a count).
    # val_every: validate after every N-th epoch.
    "protocol": {"oracle_gallery_text": False, "val_identities": 0.0, "val_every": 1},
    # select: the checkpoint tested: the last epoch, or the best validation mAP (best-val).
    "train": {"select": "last"},
    # What one run asks of a ``bench sweep`` worker (a Ray task's num_cpus/num_gpus). Placement
    # only: left out of the run's identity (``bench.engine.runner.fold_identity``).
    "resources": {"num_cpus": 1.0, "num_gpus": 0.0},
    # Keep query/gallery features (or the similarity matrix) for `bench report`
    # (bench.results.artifacts).
    "report": {"save_features": True},
}
#: Config keys that change neither training nor metrics (where a run executes, what else it
#: saves): left out of a leaderboard row's configuration and of the keys its label shows.
NON_EXPERIMENT_PREFIXES = ("resources.", "report.")
HARNESS_CHOICES: dict[str, tuple[Any, ...]] = {
    "eval.metric": ("cosine", "euclidean"),
    "train.select": ("last", "best-val"),
}
HARNESS_RANGES: dict[str, Range] = {
    "eval.batch_size": AT_LEAST_ONE,
    "eval.max_rank": AT_LEAST_ONE,  # capped by the gallery size when ranking
    "data.workers": NON_NEGATIVE,
    "protocol.val_identities": NON_NEGATIVE,
    "protocol.val_every": AT_LEAST_ONE,
    "resources.num_cpus": NON_NEGATIVE,
    "resources.num_gpus": NON_NEGATIVE,
}


def flatten(nested: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}} -> {"a.b": 1}``; keys that already contain dots pass through."""
    flat: dict[str, Any] = {}
    for key, value in nested.items():
        full = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, full + "."))
        else:
            flat[full] = value
    return flat


def parse_value(text: str) -> Any:
    """Parse a ``--set`` value as YAML: ``3``, ``0.1``, ``true``, ``[1, 2]``, ``abc``."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str):
        # YAML 1.1 reads ``1e-3`` (no dot) as a string; a researcher means the number.
        try:
            return float(value) if value.strip().lower() not in ("nan", "inf", "-inf") else value
        except ValueError:
            return value
    return value


def _type_name(value: Any) -> str:
    return type(value).__name__


def coerce(key: str, value: Any, default: Any, choices: tuple[Any, ...] | None = None) -> Any:
    """Check ``value`` against the type of ``default`` (int widens to float); return it."""
    if default is None:
        out = value
    elif isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"config key {key!r} expects true/false, got {value!r}")
        out = value
    elif isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"config key {key!r} expects an integer, got {value!r}")
        out = value
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"config key {key!r} expects a number, got {value!r}")
        out = float(value)
    elif isinstance(default, (list, tuple)):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key {key!r} expects a list, got {value!r}")
        out = list(value)
    elif isinstance(default, str):
        if not isinstance(value, str):
            value = (
                str(value)
                if isinstance(value, (int, float)) and not isinstance(value, bool)
                else value
            )
        if not isinstance(value, str):
            raise ConfigError(f"config key {key!r} expects a string, got {value!r}")
        out = value
    else:
        if not isinstance(value, type(default)):
            raise ConfigError(f"config key {key!r} expects {_type_name(default)}, got {value!r}")
        out = value
    if choices is not None and out not in choices:
        allowed = ", ".join(map(str, choices))
        raise ConfigError(f"config key {key!r} must be one of {allowed}; got {out!r}")
    return out


def unknown_key(key: str, known: Iterable[str], where: str = "") -> ConfigError:
    return ConfigError(f"unknown config key {key!r}{where}.{did_you_mean(key, sorted(known))}")


def apply_overrides(
    config: dict[str, Any],
    overrides: Mapping[str, Any],
    choices: Mapping[str, tuple[Any, ...]],
    where: str = "",
) -> None:
    """Apply (nested or dotted) ``overrides`` to the flat ``config`` in place, validating each."""
    for key, value in flatten(overrides).items():
        if key not in config:
            raise unknown_key(key, config, where)
        config[key] = coerce(key, value, config[key], choices.get(key))


def check_ranges(config: Mapping[str, Any], ranges: Mapping[str, Range]) -> None:
    """Every numeric value (and each number of a list) within its key's declared range, and
    finite (no NaN, no infinity); the first one outside is a ConfigError naming the key."""
    for key, value in config.items():
        allowed = ranges.get(key, FINITE)
        for item in value if isinstance(value, list) else [value]:  # a list: each element
            if isinstance(item, (int, float)) and not isinstance(item, bool):
                allowed.check(key, item)


def parse_set_args(items: Iterable[str]) -> dict[str, Any]:
    """``["a.b=3", "c=x"] -> {"a.b": 3, "c": "x"}``; a missing ``=`` is an error naming the item."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {item!r}")
        out[key.strip()] = parse_value(text.strip())
    return out


def config_hash(payload: Mapping[str, Any]) -> str:
    """A stable short hash of a JSON-able mapping (sorted keys)."""
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def resolve_config(
    spec: MethodSpec,
    datasets: Sequence[type[DatasetAdapter]],
    preset: str | None,
    sets: Sequence[str] | dict[str, Any] = (),
) -> tuple[dict[str, Any], str | None]:
    """Defaults (harness, datasets, method) <- preset <- variant <- ``--set``; all validated.

    A preset key that this run's config lacks is skipped when some registered dataset declares
    it (a method preset's dataset key, e.g. ``colo_pair.text_key``), else an unknown-key error.
    """
    family = spec.family
    config: dict[str, Any] = {}
    choices: dict[str, tuple[Any, ...]] = dict(HARNESS_CHOICES)
    ranges: dict[str, Range] = dict(HARNESS_RANGES)
    # Later owners override earlier defaults (a method may change the harness's eval.metric).
    for defaults, owner_choices, owner_ranges in (
        (HARNESS_DEFAULTS, {}, {}),
        *((d.default_config, d.config_choices, d.config_ranges) for d in datasets),
        (family.default_config, family.config_choices, family.config_ranges),
    ):
        config.update(flatten(defaults))
        choices.update(owner_choices)
        ranges.update(owner_ranges)
    preset = preset if preset is not None else family.default_preset
    if preset is not None:
        if preset not in family.presets:
            known = ", ".join(sorted(family.presets)) or "(none)"
            raise ConfigError(f"unknown preset {preset!r} for method {spec.name!r}; known: {known}")
        # A preset may set a dataset's key (DMCL's released: colo_pair.text_key) and still run on
        # another dataset: a key absent from this run is dropped when a registered dataset
        # declares it; any other unknown key is refused as usual.
        declared = {k for cls in DATASETS.values() for k in flatten(cls.default_config)}
        chosen = {
            k: v
            for k, v in flatten(family.presets[preset]).items()
            if k in config or k not in declared
        }
        apply_overrides(config, chosen, choices, f" in preset {preset!r}")
    apply_overrides(config, spec.overrides, choices, f" in variant {spec.name!r}")
    overrides = sets if isinstance(sets, dict) else parse_set_args(sets)
    apply_overrides(config, overrides, choices)
    check_ranges(config, ranges)
    return config, preset


def dataset_config(cls: type[DatasetAdapter], sets: Sequence[str] = ()) -> dict[str, Any]:
    """The harness's and ``cls``'s defaults with ``--set`` overrides, validated."""
    config = {**flatten(HARNESS_DEFAULTS), **flatten(cls.default_config)}
    apply_overrides(config, parse_set_args(sets), {**HARNESS_CHOICES, **cls.config_choices})
    check_ranges(config, {**HARNESS_RANGES, **cls.config_ranges})
    return config


#: Separates a dataset's name from its options in a dataset spec, and the options from each
#: other: ``synthetic-person:synthetic.seed=3:synthetic.identities=8``.
OPTION_SEPARATOR = ":"
#: Separates the datasets of ``--train-dataset a,b`` (and the roots of ``--train-root``).
SOURCE_SEPARATOR = ","


def split_sources(text: str) -> list[str]:
    """``"a,b:k=[1,2]"`` -> ``["a", "b:k=[1,2]"]``: split on the commas outside brackets (a
    list value keeps its commas)."""
    parts, depth, current = [], 0, ""
    for ch in text:
        depth += {"[": 1, "]": -1}.get(ch, 0)
        if ch == SOURCE_SEPARATOR and depth <= 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    return [*parts, current]


def parse_dataset_spec(text: str) -> tuple[str, dict[str, Any]]:
    """``"NAME:key=value:key=value"`` -> ``(NAME, {key: value})`` (values parsed as ``--set``
    values); not validated against the dataset (:func:`dataset_options`). ConfigError naming
    the spec for an empty name or an option without ``key=value``."""
    name, *items = text.strip().split(OPTION_SEPARATOR)
    if not name.strip():
        raise ConfigError(f"dataset spec {text!r} has no dataset name (NAME:key=value:...)")
    options: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(
                f"dataset spec {text!r}: expected key=value after {OPTION_SEPARATOR!r}, got "
                f"{item!r} (NAME:key=value:key=value)"
            )
        options[key.strip()] = parse_value(value.strip())
    return name.strip(), options


def dataset_options(cls: type[DatasetAdapter], options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` of a dataset spec checked against ``cls``'s own config keys (its
    ``default_config``: type, choices, range); ConfigError naming the key and the dataset."""
    own = flatten(cls.default_config)
    out: dict[str, Any] = {}
    for key, value in options.items():
        if key not in own:
            keys = ", ".join(sorted(own)) or "none"
            raise ConfigError(
                f"dataset {cls.name!r} has no config key {key!r} of its own "
                f"(its keys: {keys}).{did_you_mean(key, sorted(own))}"
            )
        out[key] = coerce(key, value, own[key], cls.config_choices.get(key))
    try:
        check_ranges(out, cls.config_ranges)
    except ConfigError as e:
        raise ConfigError(f"dataset {cls.name!r}: {e}") from None
    return dict(sorted(out.items()))


def option_text(value: Any) -> str:
    """A dataset option's value as a spec writes it: ``3``, ``0.5``, ``true``, ``abc``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def dataset_label(name: str, options: Mapping[str, Any] | None = None) -> str:
    """The spec that names a dataset with its options, as ``--dataset`` takes it:
    ``synthetic-person:synthetic.seed=3`` (options sorted by key); the name alone without."""
    items = sorted((options or {}).items())
    return OPTION_SEPARATOR.join([name, *(f"{k}={option_text(v)}" for k, v in items)])
