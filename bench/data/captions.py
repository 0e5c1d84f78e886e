"""Caption files keyed by image file name or identity, and attaching their text to samples."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from bench.api.samples import Sample
from bench.data.files import check_columns, existing_file, listing, read_json, read_text_file
from bench.errors import DatasetError

#: Column names of a CSV captions file: ``key`` (an image file name such as
#: ``0002_c1s1_000451_03.jpg``, or an identity such as ``0002`` / ``2``) and ``text``.
CAPTION_COLUMNS = ("key", "text")


def read_captions(path: Path) -> dict[str, str]:
    """Captions keyed by image file name or identity.

    ``.json``: one object ``{key: text}``. ``.csv``: a header row with the columns ``key`` and
    ``text`` (:data:`CAPTION_COLUMNS`; other columns are ignored; keys and texts are stripped,
    blank rows skipped). A key is an image file name (``0002_c1s1_000451_03.jpg``) or an
    identity (``0002`` or ``2``); see :func:`attach_text`. The file is UTF-8 (a BOM is allowed).

    Nothing is silently dropped or overridden: a file that is not UTF-8, an empty key, an empty
    or blank text, a key listed twice with different texts, and two keys naming one
    identity (``0002`` and ``2``) with different texts are each one error naming the file and
    the keys (:func:`check_captions`).
    """
    path = existing_file(path, "captions file")
    suffix = path.suffix.lower()
    if suffix == ".json":
        return check_captions(path, _json_rows(path))
    if suffix == ".csv":
        return check_captions(path, _csv_rows(path))
    raise DatasetError(f"captions file {path}: unsupported format {suffix!r} (use .json or .csv)")


def _json_rows(path: Path) -> list[tuple[str, str]]:
    data = read_json(path, "captions file", "texts")  # a repeated key: an error
    if not isinstance(data, dict):
        raise DatasetError(
            f"captions file {path} must hold one JSON object {{key: text}}, not a "
            f"{type(data).__name__}"
        )
    for key, value in data.items():
        if not isinstance(value, str):
            raise DatasetError(
                f"captions file {path}: the value of key {key!r} is {value!r}, not a text; "
                f"the file must hold one JSON object {{key: text}}"
            )
    return list(data.items())


def _csv_rows(path: Path) -> list[tuple[str, str]]:
    reader = csv.DictReader(io.StringIO(read_text_file(path, "captions file"), newline=""))
    try:
        columns = [c.strip() for c in reader.fieldnames or []]
        reader.fieldnames = columns
        check_columns(path, "captions file", columns, CAPTION_COLUMNS)
        rows = []
        for row in reader:
            key, text = (str(row.get(c) or "").strip() for c in CAPTION_COLUMNS)
            if not key and text:
                raise DatasetError(
                    f"captions file {path}: line {reader.line_num} has a text but no key"
                )
            if key:
                rows.append((key, text))
    except csv.Error as e:
        raise DatasetError(
            f"captions file {path} is not valid CSV (line {reader.line_num}): {e}"
        ) from e
    return rows


def check_captions(path: Path, rows: Sequence[tuple[str, str]]) -> dict[str, str]:
    """``{key: text}`` from the ``(key, text)`` rows of captions file ``path``, refusing what
    would be lost or ambiguous: an empty key, an empty or blank text, a key listed twice with
    different texts, and keys naming one identity (``0002``, ``2``) with different texts. Each
    is one error naming the file and (a few of) the keys."""
    captions: dict[str, str] = {}
    repeated: list[str] = []
    for key, text in rows:
        if not key.strip():
            raise DatasetError(f"captions file {path} has an empty key (text {text[:40]!r})")
        if key in captions and captions[key] != text and key not in repeated:
            repeated.append(key)
        captions.setdefault(key, text)
    if repeated:
        raise DatasetError(
            f"captions file {path} lists the {_keys(repeated)} twice with different texts; keep one"
        )
    blank = [k for k, t in captions.items() if not t.strip()]
    if blank:
        have = "has an empty text" if len(blank) == 1 else "have empty texts"
        raise DatasetError(
            f"captions file {path}: the {_keys(blank)} {have}; write a text or drop the key"
        )
    identities: dict[int, list[str]] = {}
    for key in captions:
        if key.isascii() and key.isdigit():
            identities.setdefault(int(key), []).append(key)
    clashes = [
        " and ".join(map(repr, keys))
        for keys in identities.values()
        if len({captions[k] for k in keys}) > 1
    ]
    if clashes:
        raise DatasetError(
            f"captions file {path}: keys {listing(clashes)} name the same identity with "
            f"different texts; keep one"
        )
    return captions


def _keys(keys: Sequence[str]) -> str:
    return ("key " if len(keys) == 1 else "keys ") + listing(map(repr, keys))


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
