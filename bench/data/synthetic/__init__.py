"""Procedural datasets written in the real datasets' layouts, so the real readers load them.

``synthetic-person`` (Market-1501 layout + captions, :mod:`bench.data.synthetic.person`),
``synthetic-polyp`` (Colo-Pair layout + text sheet, :mod:`bench.data.synthetic.polyp`) and
``synthetic-colonoscopy`` (NTSSL's COCO tracklet layout, :mod:`bench.data.synthetic.colonoscopy`).
Generation is deterministic from the seed (same seed, byte-identical files), goes to
``cache_dir()/synthetic/<name>-<hash of the parameters>/`` by default, and is atomic
(:func:`bench.data.synthetic.render.ensure_generated`). ``synthetic-person`` also takes a
``domain`` (:func:`check_domain`): 0 is left out of the parameters, so its folder and marker are
those of the datasets made before domains existed.
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from bench.data.synthetic.render import (
    MARKER,
    check_seed,
    ensure_generated,
    params_hash,
    read_marker,
)
from bench.errors import DatasetError
from bench.io import cache_dir

__all__ = [
    "MARKER",
    "check_domain",
    "check_size",
    "default_root",
    "ensure_dataset",
    "generation_params",
]


@dataclass(frozen=True)
class _Kind:
    """What sizes one synthetic dataset (``identities`` or ``videos``), its least value, the
    generator (``module:function``, imported when it runs) and whether it renders domains."""

    size_key: str
    minimum: int
    generator: str
    domains: bool = False


_KINDS = {
    "synthetic-person": _Kind(
        "identities", 2, "bench.data.synthetic.person:generate_person", domains=True
    ),
    "synthetic-polyp": _Kind("identities", 2, "bench.data.synthetic.polyp:generate_polyp"),
    "synthetic-colonoscopy": _Kind(
        "videos", 1, "bench.data.synthetic.colonoscopy:generate_colonoscopy"
    ),
}


def _kind(name: str) -> _Kind:
    if name not in _KINDS:
        raise DatasetError(f"unknown synthetic dataset {name!r}")
    return _KINDS[name]


def check_size(name: str, size: Any) -> int:
    """``size`` (``synthetic.identities`` or ``synthetic.videos``) as an int of at least the
    dataset's minimum."""
    kind = _kind(name)
    if isinstance(size, bool) or not isinstance(size, int) or size < kind.minimum:
        raise DatasetError(
            f"synthetic.{kind.size_key} must be an integer of at least {kind.minimum} for "
            f"{name}; got {size!r}"
        )
    return size


def check_domain(name: str, domain: Any) -> int:
    """``synthetic.domain`` as a non-negative int; only 0 for a dataset without domains."""
    if isinstance(domain, bool) or not isinstance(domain, int) or domain < 0:
        raise DatasetError(
            f"synthetic.domain must be a non-negative integer for {name}; got {domain!r}"
        )
    if domain and not _kind(name).domains:
        raise DatasetError(f"synthetic.domain must be 0 for {name} (it has one domain)")
    return domain


def generation_params(name: str, seed: Any, size: Any, domain: Any = 0) -> dict[str, Any]:
    """The validated parameters that determine a synthetic dataset's bytes. Domain 0 is left out,
    so its parameters, marker and cache folder are those of the datasets made before domains."""
    params = {"dataset": name, "seed": check_seed(seed)}
    params[_kind(name).size_key] = check_size(name, size)
    if check_domain(name, domain):
        params["domain"] = domain
    return params


def default_root(name: str, seed: Any, size: Any, domain: Any = 0) -> Path:
    """``cache_dir()/synthetic/<name>-<hash>``: one folder per parameter set."""
    params = generation_params(name, seed, size, domain)
    return cache_dir() / "synthetic" / f"{name}-{params_hash(params)}"


def _describe(name: str, params: dict[str, Any]) -> str:
    """``seed 0, 100 identities[, domain 1]`` (the domain for datasets that render domains)."""
    key = _kind(name).size_key
    text = f"seed {params['seed']}, {params[key]} {key}"
    return text + f", domain {params.get('domain', 0)}" if _kind(name).domains else text


def ensure_dataset(
    name: str, root: Path, seed: Any, size: Any, domain: Any = 0, *, progress: bool = True
) -> Path:
    """Generate ``name`` into ``root`` unless a complete copy with these parameters is there."""
    params = generation_params(name, seed, size, domain)
    key = _kind(name).size_key
    extra = {"domain": params["domain"]} if "domain" in params else {}
    if read_marker(root) is None:
        tqdm.write(f"{name}: generating into {root} ({_describe(name, params)})")

    def build(tmp: Path) -> dict[str, Any]:
        t0 = time.perf_counter()
        module, function = _kind(name).generator.split(":")
        generate = getattr(importlib.import_module(module), function)
        stats = generate(tmp, params["seed"], params[key], progress=progress, **extra)
        # the time goes to the console only: the marker file stays byte-identical across runs
        tqdm.write(f"{name}: generated in {time.perf_counter() - t0:.1f} s: {stats}")
        return stats

    return ensure_generated(Path(root), params, build)
