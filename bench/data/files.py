"""Reading annotation files: every failure is one :class:`~bench.errors.DatasetError` that names
the file (and the column) at fault."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from bench.errors import DatasetError


def existing_file(path: Path, what: str) -> Path:
    """``path`` as a Path; an error ``"<what> <path> does not exist"`` when it is no file."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{what} {path} does not exist")
    return path


def read_json(path: Path) -> Any:
    """The JSON document in ``path``; an error naming the file when it does not parse."""
    try:
        with Path(path).open(encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise DatasetError(f"{path} is not valid JSON: {e}") from e


def check_columns(path: Path, what: str, columns: Sequence[Any], required: Iterable[str]) -> None:
    """Every ``required`` column is among ``columns`` (a table's header), else an error naming
    the first missing one and the columns present."""
    for col in required:
        if col not in columns:
            raise DatasetError(
                f"{what} {path} lacks the column {col!r} "
                f"(columns present: {', '.join(map(str, columns)) or '(none)'})"
            )
