"""Where the harness keeps generated data and caches."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$BENCH_CACHE``, else ``$XDG_CACHE_HOME/reid-bench``, else ``~/.cache/reid-bench``."""
    if os.environ.get("BENCH_CACHE"):
        return Path(os.environ["BENCH_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "reid-bench"
