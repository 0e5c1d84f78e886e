"""Colo-Pair (DMCL's polyp ReID release): ``<root>/<polyp_id>/1/*.jpg`` (first screening, the
query side), ``<root>/<polyp_id>/2/*.jpg`` (second screening, the gallery side) and a text sheet
with one English description per polyp (:func:`read_text_sheet`, :func:`read_colo_pair`; a folder
finds its row by polyp or by patient, :func:`sheet_key`), split k-fold by polyp
(:func:`colo_pair_splits`).

Every malformed input raises :class:`~bench.errors.DatasetError` naming the file or folder.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.api.samples import Sample, Splits
from bench.data.files import (
    check_columns,
    dangling_note,
    existing_file,
    image_files,
    listing,
    read_json,
    read_text_file,
)
from bench.data.splits import fold_index, kfold_by_identity, relabel
from bench.errors import RAISE, DatasetError, Problems

COLO_PAIR_TREE = "<root>/<polyp_id>/1/*.jpg, <root>/<polyp_id>/2/*.jpg and a text sheet"


#: The text sheet's columns: the polyp folder name and its English description.
SHEET_COLUMNS = ("id", "Eng_text")


SHEET_SUFFIXES = (".xlsx", ".csv", ".json")


#: How a polyp folder finds its sheet row (the dataset key ``colo_pair.text_key``, see
#: :func:`sheet_key`): its own id, or its patient's.
TEXT_KEYS = ("polyp", "patient")


#: Frame files read from a Colo-Pair clip folder.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def natural_key(name: str) -> tuple:
    """Sort key comparing digit runs as numbers (``f2.jpg`` before ``f10.jpg``)."""
    return tuple(int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name))


def read_text_sheet(path: Path) -> dict[str, str]:
    """``{polyp id: English description}`` from a Colo-Pair text sheet.

    ``.xlsx`` (first worksheet) or ``.csv`` with the columns ``id`` and ``Eng_text``; ``.json``
    as an object ``{id: text}`` or a list of ``{"id": ..., "Eng_text": ...}`` records. Ids are
    read as text (``0011`` stays ``0011``); the file is UTF-8 (a BOM is allowed). An id listed
    twice with different texts, and an id with an empty or blank text, are errors naming the
    sheet and the ids.
    """
    path = existing_file(path, "text sheet")
    suffix = path.suffix.lower()
    if suffix == ".json":
        data = read_json(path, "text sheet", "texts")  # a repeated id: an error
        if isinstance(data, dict):
            rows = [(str(k), v) for k, v in data.items()]
        elif isinstance(data, list) and all(isinstance(r, dict) for r in data):
            for r in data:
                check_columns(path, "text sheet", list(r), SHEET_COLUMNS)
            rows = [(r["id"], r["Eng_text"]) for r in data]
        else:
            raise DatasetError(
                f"text sheet {path} must hold a JSON object {{id: text}} or a list of "
                f'{{"id": ..., "Eng_text": ...}} records'
            )
    elif suffix in (".xlsx", ".csv"):
        rows = _read_table(path)
    else:
        raise DatasetError(
            f"text sheet {path}: unsupported format {suffix!r} (use {', '.join(SHEET_SUFFIXES)})"
        )
    texts: dict[str, str] = {}
    repeated: list[str] = []
    for raw_id, raw_text in rows:
        if raw_id is None or str(raw_id).strip() in ("", "nan"):
            continue
        key = str(raw_id).strip()
        text = "" if raw_text is None else str(raw_text).strip()
        if key in texts and texts[key] != text and key not in repeated:
            repeated.append(key)
        texts.setdefault(key, text)
    if repeated:
        ids = ("id " if len(repeated) == 1 else "ids ") + listing(map(repr, repeated))
        raise DatasetError(f"text sheet {path} lists {ids} twice with different texts")
    blank = [key for key, text in texts.items() if not text]
    if blank:
        ids = ("id " if len(blank) == 1 else "ids ") + listing(map(repr, blank))
        have = "has an empty" if len(blank) == 1 else "have empty"
        raise DatasetError(
            f"text sheet {path}: {ids} {have} {SHEET_COLUMNS[1]}; write a text or drop the row"
        )
    return texts


def _read_table(path: Path) -> list[tuple[Any, Any]]:
    import pandas as pd

    text = read_text_file(path, "text sheet") if path.suffix.lower() == ".csv" else None
    try:
        if text is None:
            df = pd.read_excel(path, dtype=str, engine="openpyxl")
        else:
            df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except Exception as e:  # openpyxl/pandas raise many kinds on a damaged file
        raise DatasetError(f"cannot read text sheet {path}: {type(e).__name__}: {e}") from e
    df.columns = [str(c).strip() for c in df.columns]
    check_columns(path, "text sheet", list(df.columns), SHEET_COLUMNS)
    df = df.astype(object).where(df.notna(), None)
    return list(zip(df["id"], df["Eng_text"]))


def find_text_sheet(root: Path) -> Path:
    """The one ``*.xlsx`` / ``*.csv`` / ``*.json`` file directly in ``root`` (hidden files and
    Excel's ``~$`` lock files skipped); none or several is an error that lists them."""
    root = Path(root)
    found = sorted(
        p
        for p in root.iterdir()
        if p.is_file() and p.suffix.lower() in SHEET_SUFFIXES and not p.name.startswith((".", "~$"))
    )
    if not found:
        raise DatasetError(
            f"no text sheet in {root}: expected one file {root}/<name>.xlsx (or .csv/.json) with "
            f"the columns {', '.join(SHEET_COLUMNS)}"
        )
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise DatasetError(f"several candidate text sheets in {root} ({names}); keep exactly one")
    return found[0]


def _clip_frames(clip: Path, problems: Problems) -> list[Path]:
    if not clip.is_dir():
        problems.report(
            clip,
            f"folder {clip} is missing{dangling_note(clip)}; every polyp folder needs 1/ (first "
            f"screening) and 2/ (second screening): {COLO_PAIR_TREE}",
        )
        return []
    frames = image_files(clip, IMAGE_SUFFIXES, problems)  # reports symlinks to nothing
    if not frames:
        problems.report(clip, f"clip folder {clip} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return sorted(frames, key=lambda p: natural_key(p.name))


def patient_id(polyp_id: str) -> str:
    """The patient part of a Colo-Pair polyp id: the id without its last character (``gjh2``
    and ``gjh4`` are two polyps of patient ``gjh``)."""
    return polyp_id[:-1]


def sheet_key(texts: Mapping[str, str], folder_name: str, text_key: str = "polyp") -> str | None:
    """The text sheet id describing polyp folder ``folder_name`` under ``text_key``, or ``None``.

    ``polyp``: the row whose id is the folder name. ``patient`` (DMCL's released code: one text
    per patient): the row whose id is the folder's :func:`patient_id`, else the first row in
    sheet order whose id has that patient id (the released code compares ids without their last
    character on both sides), so the polyps of one patient share that patient's first text.
    """
    if text_key not in TEXT_KEYS:
        raise ValueError(f"text_key must be one of {', '.join(TEXT_KEYS)}, got {text_key!r}")
    if text_key == "polyp":
        return folder_name if folder_name in texts else None
    patient = patient_id(folder_name)
    if not patient:
        return None
    if patient in texts:
        return patient
    return next((key for key in texts if patient_id(key) == patient), None)


def _wanted(folder_name: str, text_key: str) -> str:
    """The ids :func:`sheet_key` looks for, in words (for error messages)."""
    if text_key == "polyp":
        return f"the id {folder_name!r}"
    patient = patient_id(folder_name)
    return f"the id {patient!r} or an id {patient!r} + one character"


def read_colo_pair(
    root: Path, sheet: Path | None, problems: Problems = RAISE, text_key: str = "polyp"
) -> list[Sample]:
    """Every frame of a Colo-Pair root, polyp by polyp, screening 1 then 2.

    ``pid`` is the index of the polyp folder in sorted order, ``camid`` the screening minus 1,
    ``clip`` ``"<polyp_id>/<screening>"`` (the polyp's folder name stays retrievable), ``frame``
    the order of the file in its clip (natural sort by name), ``text`` the polyp's description
    from ``sheet`` (``None`` without a sheet; ``text_level="identity"``), the row
    :func:`sheet_key` finds under ``text_key``. A polyp with no row is a problem naming the
    sheet, the folder and the id looked for; when ``problems`` collects (``bench data check``),
    sheet rows that describe no polyp folder are reported too.
    """
    if text_key not in TEXT_KEYS:
        raise DatasetError(
            f"colo_pair.text_key must be one of {', '.join(TEXT_KEYS)}, got {text_key!r}"
        )
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"Colo-Pair root {root} does not exist; expected {COLO_PAIR_TREE}")
    polyps = sorted(
        (p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.name,
    )
    if not polyps:
        raise DatasetError(f"no polyp folders in {root}; expected {COLO_PAIR_TREE}")
    texts = read_text_sheet(sheet) if sheet is not None else None
    samples, used = [], set()
    for pid, folder in enumerate(polyps):
        text = None
        if texts is not None:
            key = sheet_key(texts, folder.name, text_key)
            if key is None:
                some = ", ".join(list(texts)[:5])
                problems.report(
                    folder,
                    f"text sheet {sheet} has no row for polyp folder {folder.name!r} "
                    f"(colo_pair.text_key={text_key} looks for {_wanted(folder.name, text_key)}; "
                    f"ids in the sheet: {some}{', ...' if len(texts) > 5 else ''})",
                )
            else:
                used.add(key)
                text = texts[key]
        for screening in (1, 2):
            for i, path in enumerate(_clip_frames(folder / str(screening), problems)):
                samples.append(
                    Sample(
                        str(path),
                        pid,
                        screening - 1,
                        text,
                        f"{folder.name}/{screening}",
                        i,
                        "identity" if text is not None else None,
                    )
                )
    if texts is not None and problems.collect:
        if text_key == "patient":  # a patient's later rows are not used, but they do describe
            patients = {patient_id(folder.name) for folder in polyps} - {""}
            used |= {key for key in texts if key in patients or patient_id(key) in patients}
        for key in sorted(set(texts) - used):
            problems.report(
                sheet, f"text sheet {sheet} row id {key!r} matches no polyp folder in {root}"
            )
    return samples


def colo_pair_splits(samples: Sequence[Sample], fold: str | int | None, k: int) -> Splits:
    """One fold of the Colo-Pair protocol.

    Test polyps are fold ``fold`` of :func:`kfold_by_identity`; ``train`` is every frame of both
    screenings of the other polyps (relabelled ``0..N-1``), ``query`` the first-screening frames
    (camid 0) of the test polyps and ``gallery`` their second-screening frames (camid 1), with
    the original pids. ``meta["test_polyps"]`` names the test polyp folders.
    """
    i = fold_index(fold, k)
    test = set(kfold_by_identity([s.pid for s in samples], k)[i])
    train = relabel([s for s in samples if s.pid not in test])
    query = [s for s in samples if s.pid in test and s.camid == 0]
    gallery = [s for s in samples if s.pid in test and s.camid == 1]
    names = sorted({(s.pid, (s.clip or "").split("/")[0]) for s in query + gallery})
    return Splits(
        train, query, gallery, fold=f"fold{i}", meta={"test_polyps": [n for _, n in names]}
    )
