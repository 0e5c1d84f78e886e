"""A dataset's fingerprint: what files a run read, cheaply (names and sizes; no decoding).

It is part of a run's identity (:func:`bench.engine.runner.fold_identity`): delete, add or
replace an image or an annotation file and the run is a new run, with its own record, its own
checkpoint folder and its own leaderboard row, and ``bench sweep`` does not skip it as done.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bench.api.samples import Splits
from bench.errors import DatasetError


def _entries(root: Path, paths: Iterable[str | Path]) -> list[tuple[str, int]]:
    """``(name, size)`` per file: the path relative to ``root`` when inside it, else relative to
    the common folder of the files outside it (e.g. images extracted into a cache), so moving a
    dataset folder keeps its fingerprint."""
    root_text = os.path.abspath(root)
    inside: list[str] = []
    outside: list[str] = []
    for p in {os.path.abspath(p) for p in paths}:
        (inside if p.startswith(root_text + os.sep) else outside).append(p)
    base = (
        os.path.commonpath(outside)
        if len(outside) > 1
        else os.path.dirname(outside[0])
        if outside
        else ""
    )
    out = []
    for names, start in ((inside, root_text), (outside, base)):
        for p in names:
            try:
                size = os.stat(p).st_size
            except OSError as exc:
                raise DatasetError(f"cannot read {p} for the data fingerprint: {exc}") from exc
            out.append((os.path.relpath(p, start).replace(os.sep, "/"), size))
    return sorted(out)


def data_fingerprint(
    root: Path, splits: Splits, annotation_files: Iterable[Path] = ()
) -> dict[str, Any]:
    """``{"fingerprint": 16 hex digits, "files": n, "bytes": total}`` of every image of
    ``splits`` (train, query and gallery) and every annotation file: the SHA-256 of the sorted
    (relative path, size) pairs."""
    paths = [s.path for part in (splits.train, splits.query, splits.gallery) for s in part]
    entries = _entries(Path(root), [*paths, *annotation_files])
    blob = json.dumps(entries, separators=(",", ":")).encode()
    return {
        "fingerprint": hashlib.sha256(blob).hexdigest()[:16],
        "files": len(entries),
        "bytes": sum(size for _, size in entries),
    }
