"""Folders a run will write, checked before it starts: a folder (or creatable), writable.

A results folder that is a file, read-only or on a full disk would otherwise fail after the
first epoch; :func:`check_writable` fails first, in one line naming the folder.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from bench.errors import BenchError


def check_writable(folder: Path, what: str) -> None:
    """``folder`` is a folder, or can be made one: a probe file is written (and removed) in it,
    or in its nearest existing parent when it does not exist yet; nothing is created. A
    BenchError naming ``what`` and the folder when that fails."""
    folder = Path(folder).expanduser()
    existing = folder
    for part in (folder, *folder.parents):
        if part.exists() or part.is_symlink():
            if not part.is_dir():
                kind = "a dangling link" if part.is_symlink() and not part.exists() else "a file"
                raise BenchError(f"{what} {folder}: {part} is {kind}, not a folder")
            existing = part
            break
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".write-probe.", suffix=".tmp")
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)
            Path(probe).unlink(missing_ok=True)
    except OSError as exc:  # permission denied, read-only file system, no space left, ...
        reason = (exc.strerror or type(exc).__name__).lower()
        raise BenchError(f"cannot write the {what} {folder}: {reason}") from exc
