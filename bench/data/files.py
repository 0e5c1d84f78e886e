"""Reading annotation files and listing image folders: every failure is one
:class:`~bench.errors.DatasetError` (or one reported problem) that names the file, the key or
the column at fault."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from bench.errors import DatasetError, Problems
from bench.io import read_text

#: How many keys, identities or paths a message lists before "and N more".
SHOWN = 3


def listing(items: Iterable[object], limit: int = SHOWN) -> str:
    """``a, b, c and 4 more``: the first ``limit`` items, then how many are left out."""
    items = [str(i) for i in items]
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def existing_file(path: Path, what: str) -> Path:
    """``path`` as a Path; an error ``"<what> <path> does not exist"`` when it is no file (a
    symlink whose target does not exist says so)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{what} {path} does not exist{dangling_note(path)}")
    return path


def dangling_note(path: Path) -> str:
    """`` (a symlink to T, which does not exist)`` when ``path`` is a symlink that does not
    resolve, else ``""``: the tail of a "does not exist" or "is missing" message."""
    path = Path(path)
    if path.is_symlink() and not path.exists():
        return f" (a symlink to {os.readlink(path)}, which does not exist)"
    return ""


def read_text_file(path: Path, what: str) -> str:
    """The UTF-8 text of ``path`` (:func:`bench.io.read_text`); an error naming ``what`` and
    the file when it does not exist or is not UTF-8."""
    return read_text(existing_file(path, what), what=what, error=DatasetError)


def read_json(path: Path, what: str = "", values: str = "values") -> Any:
    """The JSON document in ``path`` (UTF-8); an error naming the file when it is not UTF-8,
    does not parse, or lists a key of one object twice with different ``values`` (the word the
    message uses: ``"texts"``)."""
    where = f"{what} {path}" if what else str(path)
    text = read_text(path, what=what, error=DatasetError)
    repeated: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out and out[key] != value and key not in repeated:
                repeated.append(key)
            out.setdefault(key, value)
        return out

    try:
        data = json.loads(text, object_pairs_hook=pairs)
    except RecursionError as e:
        raise DatasetError(f"{where} is not valid JSON: nested too deeply") from e
    except ValueError as e:  # JSONDecodeError, or an integer too long to convert
        raise DatasetError(f"{where} is not valid JSON: {e}") from e
    if repeated:
        keys = "key " if len(repeated) == 1 else "keys "
        raise DatasetError(
            f"{where} lists the {keys}{listing(map(repr, repeated))} twice with different "
            f"{values}; keep one"
        )
    return data


def image_files(folder: Path, suffixes: Iterable[str], problems: Problems) -> list[Path]:
    """The files of ``folder`` whose suffix (any case) is in ``suffixes``, sorted by name.

    Symlinks among them whose target does not exist are left out and reported as one problem
    naming them and their targets (raised by the default :data:`~bench.errors.RAISE`).
    """
    wanted = {s.lower() for s in suffixes}
    files, dangling = [], []
    for p in Path(folder).iterdir():
        if p.suffix.lower() not in wanted:
            continue
        if p.is_file():
            files.append(p)
        elif p.is_symlink() and not p.exists():
            dangling.append(p)
    if dangling:
        dangling.sort()
        if len(dangling) == 1:
            target = os.readlink(dangling[0])
            message = f"image {dangling[0]} is a symlink to {target}, which does not exist"
        else:
            links = listing(f"{p.name} -> {os.readlink(p)}" for p in dangling)
            message = (
                f"{len(dangling)} images in {folder} are symlinks whose targets do not exist: "
                f"{links}"
            )
        problems.report(dangling[0], message)
    return sorted(files)


def check_columns(path: Path, what: str, columns: Sequence[Any], required: Iterable[str]) -> None:
    """Every ``required`` column is among ``columns`` (a table's header), else an error naming
    the first missing one and the columns present."""
    for col in required:
        if col not in columns:
            raise DatasetError(
                f"{what} {path} lacks the column {col!r} "
                f"(columns present: {', '.join(map(str, columns)) or '(none)'})"
            )
