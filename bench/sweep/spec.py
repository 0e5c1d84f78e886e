"""What a sweep is: the grid and how to execute it, from the flags of ``bench sweep`` or a YAML
sweep file with the same keys; every value is checked, and errors name the key and the file."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.api.ranges import SEED
from bench.config import parse_set_args
from bench.errors import BenchError, ConfigError, did_you_mean
from bench.io import read_text

EXECUTORS = ("local", "ray")


#: Keys of a sweep file (the long flags of ``bench sweep``, dashes or underscores).
SWEEP_KEYS = (
    "methods",
    "datasets",
    "seeds",
    "folds",
    "presets",
    "set",
    "roots",
    "device",
    "executor",
    "max_parallel",
    "ray_address",
    "results_dir",
    "resume",
)


@dataclass(frozen=True)
class SweepSpec:
    """A grid of runs and how to execute it (the flags of ``bench sweep``, or a sweep file)."""

    methods: tuple[str, ...]
    datasets: tuple[str, ...]
    seeds: tuple[int, ...] = (0,)
    folds: tuple[str, ...] | None = None  # None: every fold of each dataset
    presets: tuple[str | None, ...] = (None,)  # None: each method's default preset
    sets: Mapping[str, Any] = field(default_factory=dict)
    roots: Mapping[str, Path] = field(default_factory=dict)  # dataset name -> --root
    device: str = "cpu"
    executor: str = "local"
    max_parallel: int | None = None  # local: default 1; ray: default no limit
    ray_address: str | None = None
    results_dir: Path = Path("results")
    resume: bool = True
    progress: bool = True


def _where(source: str) -> str:
    return f" in {source}" if source else ""


def _names(value: Any, key: str, source: str) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(v, str) for v in items):
        raise ConfigError(f"{key}: expected names (a list or A,B,C){_where(source)}, got {value!r}")
    names = tuple(v.strip() for v in items if v.strip())
    if not names:
        raise ConfigError(f"{key}: no names given{_where(source)}")
    return names


def _seeds(value: Any, source: str) -> tuple[int, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if isinstance(items, int) and not isinstance(items, bool):
        items = [items]
    if not isinstance(items, (list, tuple)):
        raise ConfigError(f"seeds: expected integers (0,1,2){_where(source)}, got {value!r}")
    seeds = []
    for item in items:
        text = item.strip() if isinstance(item, str) else item
        if text == "":
            continue
        try:
            if isinstance(text, (bool, float)):
                raise ValueError
            seeds.append(int(text))
        except (TypeError, ValueError):
            raise ConfigError(
                f"seeds: {item!r} is not an integer{_where(source)} (expected e.g. 0,1,2)"
            ) from None
    if not seeds:
        raise ConfigError(f"seeds: no seeds given{_where(source)}")
    for seed in seeds:
        if seed not in SEED:
            raise ConfigError(f"seeds: {seed} is not {SEED.describe()}{_where(source)}")
    return tuple(dict.fromkeys(seeds))


def _sets(value: Any, source: str) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str):
        value = [value]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return parse_set_args(value)
    raise ConfigError(
        f"set: expected a mapping of config keys to values or KEY=VALUE strings{_where(source)}, "
        f"got {value!r}"
    )


def _roots(value: Any, source: str) -> dict[str, Path]:
    if isinstance(value, (list, tuple, str)):
        items = [value] if isinstance(value, str) else value
        out = {}
        for item in items:
            name, sep, path = str(item).partition("=")
            if not sep or not name.strip() or not path.strip():
                raise ConfigError(f"--root expects DATASET=PATH{_where(source)}, got {item!r}")
            out[name.strip()] = Path(path.strip()).expanduser()
        return out
    if isinstance(value, Mapping):
        return {str(k): Path(str(v)).expanduser() for k, v in value.items()}
    raise ConfigError(f"roots: expected a mapping dataset -> folder{_where(source)}, got {value!r}")


def _positive_int(value: Any, key: str, source: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{key}: expected a positive integer{_where(source)}, got {value!r}")
    return value


def normalize(data: Mapping[str, Any], source: str = "") -> dict[str, Any]:
    """Check a sweep's settings (a sweep file's mapping or the flags given) and convert them to
    :class:`SweepSpec` field values; errors name the key and ``source``."""
    out: dict[str, Any] = {}
    for raw_key, value in data.items():
        key = str(raw_key).replace("-", "_")
        if key not in SWEEP_KEYS:
            hint = did_you_mean(key, SWEEP_KEYS)
            raise ConfigError(
                f"unknown sweep key {raw_key!r}{_where(source)}.{hint} "
                f"Known keys: {', '.join(SWEEP_KEYS)}"
            )
        if value is None:
            continue
        if key in ("methods", "datasets", "presets"):
            out[key] = _names(value, key, source)
        elif key == "seeds":
            out[key] = _seeds(value, source)
        elif key == "folds":
            out[key] = None if value == "all" else _names(value, key, source)
            if out[key] is not None and "all" in out[key]:
                out[key] = None
        elif key == "set":
            out["sets"] = _sets(value, source)
        elif key == "roots":
            out["roots"] = _roots(value, source)
        elif key == "executor":
            if value not in EXECUTORS:
                raise ConfigError(
                    f"executor: must be one of {', '.join(EXECUTORS)}{_where(source)}, "
                    f"got {value!r}"
                )
            out[key] = value
        elif key == "max_parallel":
            out[key] = _positive_int(value, "max_parallel", source)
        elif key in ("device", "ray_address"):
            if not isinstance(value, str):
                raise ConfigError(f"{key}: expected a string{_where(source)}, got {value!r}")
            out[key] = value
        elif key == "results_dir":
            out[key] = Path(str(value)).expanduser()
        elif key == "resume":
            if not isinstance(value, bool):
                raise ConfigError(f"resume: expected true/false{_where(source)}, got {value!r}")
            out[key] = value
    return out


def load_sweep_file(path: Path) -> dict[str, Any]:
    """A sweep file (YAML mapping with the flags' keys), checked; errors name the file."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(read_text(path, what="sweep file", error=BenchError))
    except FileNotFoundError:
        raise BenchError(f"sweep file {path} does not exist") from None
    except OSError as exc:
        raise BenchError(f"cannot read sweep file {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise BenchError(f"sweep file {path} is not valid YAML: {exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise BenchError(f"sweep file {path} must hold a mapping (methods:, datasets:, ...)")
    return normalize(data, str(path))


def make_spec(settings: Mapping[str, Any], progress: bool = True) -> SweepSpec:
    """A :class:`SweepSpec` from normalized settings; methods and datasets are required."""
    for key in ("methods", "datasets"):
        if key not in settings:
            raise ConfigError(f"bench sweep needs --{key} (or {key}: in a sweep file)")
    return SweepSpec(**dict(settings), progress=progress)
