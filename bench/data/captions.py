"""Caption files keyed by image file name or identity, and attaching their text to samples."""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from bench.api.samples import Sample
from bench.data.files import check_columns, existing_file, read_json
from bench.errors import DatasetError

#: Column names of a CSV captions file: ``key`` (an image file name such as
#: ``0002_c1s1_000451_03.jpg``, or an identity such as ``0002`` / ``2``) and ``text``.
CAPTION_COLUMNS = ("key", "text")


def read_captions(path: Path) -> dict[str, str]:
    """Captions keyed by image file name or identity.

    ``.json``: one object ``{key: text}``. ``.csv``: a header row with the columns ``key`` and
    ``text`` (:data:`CAPTION_COLUMNS`; other columns are ignored). A key is an image file name
    (``0002_c1s1_000451_03.jpg``) or an identity (``0002`` or ``2``); see :func:`attach_text`.
    """
    path = existing_file(path, "captions file")
    suffix = path.suffix.lower()
    if suffix == ".json":
        data = read_json(path)
        if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in data.items()
        ):
            raise DatasetError(f"captions file {path} must hold one JSON object {{key: text}}")
        return dict(data)
    if suffix == ".csv":
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            columns = [c.strip() for c in reader.fieldnames or []]
            reader.fieldnames = columns
            check_columns(path, "captions file", columns, CAPTION_COLUMNS)
            return {
                row["key"].strip(): (row["text"] or "").strip()
                for row in reader
                if row["key"] and row["key"].strip()
            }
    raise DatasetError(f"captions file {path}: unsupported format {suffix!r} (use .json or .csv)")


def attach_text(samples: Sequence[Sample], captions: Mapping[str, str]) -> list[Sample]:
    """Set each sample's ``text``: by its image file name first (``text_level="image"``), then
    by its identity (``text_level="identity"``).

    The identity is looked up zero-padded to 4 digits as in Market file names (``0002``), then
    as a plain integer string (``2``). Samples with no caption keep their text. Attach before
    :func:`~bench.data.splits.relabel`: identity keys refer to the original pids.
    """
    out = []
    for s in samples:
        text, level = captions.get(Path(s.path).name), "image"
        if text is None:
            text, level = captions.get(f"{s.pid:04d}", captions.get(str(s.pid))), "identity"
        out.append(replace(s, text=text, text_level=level) if text is not None else s)
    return out
