"""The files a run record names (its checkpoint, its saved features), relative to the results
folder that holds the record, and read only inside it.

Results folders are shared (a cluster's storage, a colleague's runs, a downloaded model): a
record's path that leads outside its folder, by ``..``, an absolute path or a symbolic link, is
refused, never followed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.errors import BenchError


def relative_to_results(results_dir: Path, path: Path) -> str:
    """``path`` (inside ``results_dir``) as the record stores it: relative, with ``/``."""
    return Path(path).relative_to(Path(results_dir)).as_posix()


def inside_results(results_dir: Path, value: Any, what: str) -> Path:
    """The file ``value`` (a record's path) names, resolved inside ``results_dir``; a BenchError
    naming ``what`` when it is not a path or leads outside the folder."""
    if not isinstance(value, str) or not value.strip():
        raise BenchError(f"{what} is not a path: {value!r}")
    root = Path(results_dir).resolve()
    given = Path(value)
    resolved = (given if given.is_absolute() else root / given).resolve()
    if not resolved.is_relative_to(root):
        raise BenchError(
            f"{what} {value!r} leads outside the results folder {root} (to {resolved}); a "
            "record's files are read only inside its own folder"
        )
    return resolved
