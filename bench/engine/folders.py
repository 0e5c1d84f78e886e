"""Folders a run will write, checked before it starts: creatable, a folder, writable.

A results folder that is a file, read-only or on a full disk would otherwise fail after the
first epoch; :func:`check_writable` fails first, in one line naming the folder.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from bench.errors import BenchError


def check_writable(folder: Path, what: str) -> None:
    """Create ``folder`` (and its parents) if needed and write a probe file in it; a
    BenchError naming ``what`` and the folder when any of that fails."""
    folder = Path(folder).expanduser()
    for part in (folder, *folder.parents):
        if part.exists() or part.is_symlink():
            if not part.is_dir():
                kind = "a dangling link" if part.is_symlink() and not part.exists() else "a file"
                raise BenchError(f"{what} {folder}: {part} is {kind}, not a folder")
            break
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-probe.", suffix=".tmp")
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)
            Path(probe).unlink(missing_ok=True)
    except OSError as exc:
        reason = {
            errno.EACCES: "permission denied",
            errno.EPERM: "permission denied",
            errno.EROFS: "read-only file system",
            errno.ENOSPC: "no space left on the device",
        }.get(exc.errno or 0, exc.strerror or type(exc).__name__)
        raise BenchError(f"cannot write the {what} {folder}: {reason}") from exc
