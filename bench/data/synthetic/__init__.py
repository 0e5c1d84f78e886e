"""Procedural datasets written in the real datasets' layouts, so the real readers load them.

``synthetic-person`` (Market-1501 layout + captions, :mod:`bench.data.synthetic.person`) and
``synthetic-polyp`` (Colo-Pair layout + text sheet, :mod:`bench.data.synthetic.polyp`).
Generation is deterministic from the seed (same seed, byte-identical files), goes to
``cache_dir()/synthetic/<name>-<hash of the parameters>/`` by default, and is atomic
(:func:`bench.data.synthetic.render.ensure_generated`).
"""

from __future__ import annotations

import time
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
    "check_identities",
    "default_root",
    "ensure_dataset",
    "generation_params",
]

_MIN_IDENTITIES = {"synthetic-person": 2, "synthetic-polyp": 2}


def check_identities(name: str, identities: Any) -> int:
    low = _MIN_IDENTITIES[name]
    if isinstance(identities, bool) or not isinstance(identities, int) or identities < low:
        raise DatasetError(
            f"synthetic.identities must be an integer of at least {low} for {name}; "
            f"got {identities!r}"
        )
    return identities


def generation_params(name: str, seed: Any, identities: Any) -> dict[str, Any]:
    """The validated parameters that determine a synthetic dataset's bytes."""
    if name not in _MIN_IDENTITIES:
        raise DatasetError(f"unknown synthetic dataset {name!r}")
    return {
        "dataset": name,
        "seed": check_seed(seed),
        "identities": check_identities(name, identities),
    }


def default_root(name: str, seed: Any, identities: Any) -> Path:
    """``cache_dir()/synthetic/<name>-<hash>``: one folder per parameter set."""
    params = generation_params(name, seed, identities)
    return cache_dir() / "synthetic" / f"{name}-{params_hash(params)}"


def ensure_dataset(
    name: str, root: Path, seed: Any, identities: Any, *, progress: bool = True
) -> Path:
    """Generate ``name`` into ``root`` unless a complete copy with these parameters is there."""
    params = generation_params(name, seed, identities)
    if read_marker(root) is None:
        tqdm.write(
            f"{name}: generating into {root} (seed {params['seed']}, "
            f"{params['identities']} identities)"
        )

    def build(tmp: Path) -> dict[str, Any]:
        t0 = time.perf_counter()
        if name == "synthetic-person":
            from bench.data.synthetic.person import generate_person

            stats = generate_person(tmp, params["seed"], params["identities"], progress=progress)
        else:
            from bench.data.synthetic.polyp import generate_polyp

            stats = generate_polyp(tmp, params["seed"], params["identities"], progress=progress)
        # the time goes to the console only: the marker file stays byte-identical across runs
        tqdm.write(f"{name}: generated in {time.perf_counter() - t0:.1f} s: {stats}")
        return stats

    return ensure_generated(Path(root), params, build)
