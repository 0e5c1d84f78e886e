"""Files on disk: where the harness keeps its caches, and writes that are never seen half done.

Every write goes to a temp file in the target's folder (``.<name>.<random>.tmp``, never matching
``*.json`` or ``*.png``), is flushed and fsynced, then renamed onto the target with
``os.replace``: a reader sees the old file or the new one, also while writers run concurrently,
and a failed write leaves the old file intact. :class:`StagedFolder` does the same for a whole
folder (generated or extracted data). :func:`read_text` reads a text file as UTF-8, with one
error naming the file and the first bad byte when it is not.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Any


def cache_dir() -> Path:
    """``$BENCH_CACHE``, else ``$XDG_CACHE_HOME/reid-bench``, else ``~/.cache/reid-bench``."""
    if os.environ.get("BENCH_CACHE"):
        return Path(os.environ["BENCH_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "reid-bench"


def read_text(path: Path, *, what: str | None, error: Callable[[str], Exception]) -> str:
    """The text of ``path`` read as UTF-8 (a leading UTF-8 BOM is dropped).

    Bytes that are not UTF-8 raise ``error(message)``, the message naming ``what`` (``"captions
    file"``), the file and the first bad byte: ``captions file a/c.json: not UTF-8 text (byte
    0xff at offset 12); save it as UTF-8``; with ``what=None`` the message leaves the file out
    (the caller names it). The caller picks ``error`` (this module sits below
    :mod:`bench.errors`); ``OSError`` passes through.
    """
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        where = "" if what is None else f"{what} {path}: " if what else f"{path}: "
        offset = e.start + len(data) - len(e.object)  # the codec reports it past a BOM
        raise error(
            f"{where}not UTF-8 text (byte 0x{data[offset]:02x} at offset {offset}); "
            f"save it as UTF-8"
        ) from e


def atomic_write(path: Path, write: Callable[[IO[Any]], object], *, binary: bool = False) -> None:
    """Call ``write`` on a temp file next to ``path`` (UTF-8 text, or bytes with ``binary``),
    then rename it onto ``path``; on any failure the temp file is removed and ``path`` kept."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if exc.filename is None and exc.errno is not None:  # a failed write or fsync: name it
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically; the old file stays intact on failure."""
    atomic_write(path, lambda fh: fh.write(text))


def json_safe(obj: Any, where: str = "$") -> Any:
    """A copy of ``obj`` that strict JSON can hold: NaN -> None, numpy scalars/arrays -> Python.

    Raises ValueError naming the key path for an infinite float (no JSON equivalent).
    Objects JSON cannot encode at all are left as they are (``json`` raises TypeError on them).
    """
    if isinstance(obj, dict):
        return {k: json_safe(v, f"{where}.{k}") for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    if type(obj).__module__ == "numpy" and hasattr(obj, "tolist"):
        return json_safe(obj.tolist(), where)  # numpy scalar or array
    if isinstance(obj, float) and not math.isfinite(obj):
        if math.isnan(obj):
            return None
        raise ValueError(f"cannot write {obj} at {where} to JSON (infinite value)")
    return obj


def atomic_write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON atomically (NaN written as null; infinity is an error)."""
    safe = json_safe(obj)

    def write(fh: IO[str]) -> None:
        json.dump(safe, fh, indent=2, sort_keys=False, allow_nan=False, ensure_ascii=False)
        fh.write("\n")

    atomic_write(path, write)


class StagedFolder:
    """A fresh temp folder beside ``target`` (``.<name>.tmp-<random>``) that becomes ``target``
    in one rename when the ``with`` block ends without an error, and is removed otherwise.

    Creating it raises ``OSError`` when the parent folder is not writable. When the rename fails
    because another process completed ``target`` first (``complete(target)`` is true), this copy
    is discarded and the other one kept.
    """

    def __init__(self, target: Path, complete: Callable[[Path], bool]) -> None:
        self.target = Path(target)
        self.complete = complete
        self.path = Path(
            tempfile.mkdtemp(prefix=f".{self.target.name}.tmp-", dir=self.target.parent)
        )

    def __enter__(self) -> Path:
        return self.path

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None:
                try:
                    os.replace(self.path, self.target)
                except OSError:
                    if not self.complete(self.target):
                        raise
        finally:
            shutil.rmtree(self.path, ignore_errors=True)  # failed, or another process won
