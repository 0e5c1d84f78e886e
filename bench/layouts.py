"""Readers for the layouts real ReID datasets ship in; real and synthetic dataset plugins use them.

- Market-1501 / DukeMTMC-reID folders of ``*.jpg`` named by identity, camera and frame
  (:func:`read_market_folder`, :func:`relabel`).
- Caption files keyed by image file name or identity (:func:`read_captions`, :func:`attach_text`).
- Colo-Pair: ``<root>/<polyp_id>/1/*.jpg`` (first screening, the query side),
  ``<root>/<polyp_id>/2/*.jpg`` (second screening, the gallery side) and a text sheet with one
  English description per polyp (:func:`read_text_sheet`, :func:`read_colo_pair`), split k-fold
  by polyp (:func:`kfold_by_identity`, :func:`colo_pair_splits`).

Every malformed input raises :class:`~bench.errors.DatasetError` naming the file or folder.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.errors import RAISE, DatasetError, Problems
from bench.samples import Sample, Splits

__all__ = [
    "COLO_PAIR_TREE",
    "DUKE",
    "IMAGE_SUFFIXES",
    "MARKET",
    "MARKET_TREE",
    "PATTERNS",
    "SHEET_COLUMNS",
    "SHEET_SUFFIXES",
    "attach_text",
    "colo_pair_splits",
    "find_text_sheet",
    "fold_index",
    "fold_names",
    "kfold_by_identity",
    "market_style_splits",
    "natural_key",
    "read_captions",
    "read_colo_pair",
    "read_market_folder",
    "read_market_splits",
    "read_text_sheet",
    "relabel",
    "sheet_key",
]

# ---------------------------------------------------------------------------------------------
# Market-1501 / DukeMTMC-reID

#: Market-1501: ``PPPP_cCsS_FFFFFF_BB.jpg`` (``0002_c1s1_000451_03.jpg``); pid ``-1`` is junk,
#: ``0000`` a distractor. Groups: pid, cam, seq, frame, bbox.
MARKET = re.compile(
    r"^(?P<pid>-1|\d+)_c(?P<cam>\d+)s(?P<seq>\d+)_(?P<frame>\d+)_(?P<bbox>\d+)\.jpg$",
    re.IGNORECASE,
)
#: DukeMTMC-reID: ``PPPP_cC_fFFFFFFF.jpg`` (``0001_c2_f0046182.jpg``). Groups: pid, cam, frame.
DUKE = re.compile(r"^(?P<pid>-1|\d+)_c(?P<cam>\d+)_f(?P<frame>\d+)\.jpg$", re.IGNORECASE)
PATTERNS: dict[str, re.Pattern[str]] = {"market": MARKET, "duke": DUKE}

MARKET_SPLIT_FOLDERS = ("bounding_box_train", "bounding_box_test", "query")
MARKET_TREE = "<root>/bounding_box_train/, <root>/bounding_box_test/, <root>/query/"


def read_market_folder(
    folder: Path, pattern: re.Pattern[str] | str = MARKET, problems: Problems = RAISE
) -> list[Sample]:
    """Every ``*.jpg`` in ``folder`` as a :class:`Sample` (sorted by file name).

    ``pattern`` is :data:`MARKET`, :data:`DUKE` (or their names) or any regex with the named
    groups ``pid``, ``cam`` and ``frame``. ``camid`` is the camera number minus 1; ``pid`` is kept
    as written (``-1`` junk and ``0`` distractors included). Files that are not ``.jpg``
    (Market ships ``Thumbs.db``) are ignored; a ``.jpg`` whose name does not parse is a problem
    (raised, or collected and skipped by ``problems``).
    """
    if isinstance(pattern, str):
        if pattern not in PATTERNS:
            raise DatasetError(
                f"unknown file-name pattern {pattern!r}; known: {', '.join(PATTERNS)}"
            )
        pattern = PATTERNS[pattern]
    folder = Path(folder)
    if not folder.is_dir():
        problems.report(
            folder,
            f"folder {folder} is missing; expected the release layout {MARKET_TREE} "
            f"(with <root> = {folder.parent})",
        )
        return []
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".jpg" and p.is_file())
    if not files:
        problems.report(folder, f"folder {folder} holds no .jpg images")
        return []
    samples = []
    for path in files:
        m = pattern.match(path.name)
        if m is None:
            problems.report(
                path,
                f"cannot parse image file name {path.name!r} in {folder} "
                f"(expected names matching {pattern.pattern})",
            )
            continue
        cam = int(m["cam"])
        if cam < 1:
            problems.report(path, f"camera number 0 in image file name {path.name!r} in {folder}")
            continue
        samples.append(Sample(str(path), int(m["pid"]), cam - 1, frame=int(m["frame"])))
    return samples


def read_market_splits(
    root: Path, pattern: re.Pattern[str] | str = MARKET, problems: Problems = RAISE
) -> tuple[list[Sample], list[Sample], list[Sample]]:
    """``(train, query, gallery)`` of a Market-style root, train not yet relabelled."""
    root = Path(root)
    for name in MARKET_SPLIT_FOLDERS:
        if not (root / name).is_dir():
            problems.report(
                root / name,
                f"folder {root / name} is missing; expected the release layout {MARKET_TREE} "
                f"(with <root> = {root})",
            )
    folders = [root / name for name in ("bounding_box_train", "query", "bounding_box_test")]
    train, query, gallery = (
        read_market_folder(f, pattern, problems) if f.is_dir() else [] for f in folders
    )
    return train, query, gallery


def market_style_splits(
    root: Path,
    pattern: re.Pattern[str] | str = MARKET,
    problems: Problems = RAISE,
    captions: Mapping[str, str] | None = None,
) -> Splits:
    """:func:`read_market_splits` as :class:`Splits`, text attached from ``captions`` (by file
    name, then original identity: :func:`attach_text`), training pids relabelled; the original
    training pids are kept in ``meta["train_pids"]`` (``bench data check`` looks for them among
    the test identities)."""
    parts = read_market_splits(root, pattern, problems)
    if captions is not None:
        parts = tuple(attach_text(samples, captions) for samples in parts)
    train, query, gallery = parts
    return Splits(
        relabel(train),
        query,
        gallery,
        meta={"root": str(root), "train_pids": sorted({s.pid for s in train if s.pid != -1})},
    )


def relabel(samples: Sequence[Sample]) -> list[Sample]:
    """Training identities -> ``0..N-1`` in sorted order of the original pid.

    Junk samples (pid ``-1``) are dropped, as torchreid does for Market's training folder.
    """
    pids = sorted({s.pid for s in samples if s.pid != -1})
    index = {pid: i for i, pid in enumerate(pids)}
    return [replace(s, pid=index[s.pid]) for s in samples if s.pid != -1]


# ---------------------------------------------------------------------------------------------
# Captions

#: Column names of a CSV captions file: ``key`` (an image file name such as
#: ``0002_c1s1_000451_03.jpg``, or an identity such as ``0002`` / ``2``) and ``text``.
CAPTION_COLUMNS = ("key", "text")


def read_captions(path: Path) -> dict[str, str]:
    """Captions keyed by image file name or identity.

    ``.json``: one object ``{key: text}``. ``.csv``: a header row with the columns ``key`` and
    ``text`` (:data:`CAPTION_COLUMNS`; other columns are ignored). A key is an image file name
    (``0002_c1s1_000451_03.jpg``) or an identity (``0002`` or ``2``); see :func:`attach_text`.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"captions file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".json":
        data = _load_json(path)
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
            for col in CAPTION_COLUMNS:
                if col not in columns:
                    raise DatasetError(
                        f"captions file {path} lacks the column {col!r} "
                        f"(columns present: {', '.join(columns) or '(none)'})"
                    )
            return {
                row["key"].strip(): (row["text"] or "").strip()
                for row in reader
                if row["key"] and row["key"].strip()
            }
    raise DatasetError(f"captions file {path}: unsupported format {suffix!r} (use .json or .csv)")


def attach_text(samples: Sequence[Sample], captions: Mapping[str, str]) -> list[Sample]:
    """Set each sample's ``text``: by its image file name first, then by its identity.

    The identity is looked up zero-padded to 4 digits as in Market file names (``0002``), then
    as a plain integer string (``2``). Samples with no caption keep their text. Attach before
    :func:`relabel`: identity keys refer to the original pids.
    """
    out = []
    for s in samples:
        text = captions.get(Path(s.path).name)
        if text is None:
            text = captions.get(f"{s.pid:04d}", captions.get(str(s.pid)))
        out.append(replace(s, text=text) if text is not None else s)
    return out


def _load_json(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise DatasetError(f"{path} is not valid JSON: {e}") from e


# ---------------------------------------------------------------------------------------------
# Colo-Pair

COLO_PAIR_TREE = "<root>/<polyp_id>/1/*.jpg, <root>/<polyp_id>/2/*.jpg and a text sheet"
#: The text sheet's columns: the polyp folder name and its English description.
SHEET_COLUMNS = ("id", "Eng_text")
SHEET_SUFFIXES = (".xlsx", ".csv", ".json")
#: Frame files read from a Colo-Pair clip folder.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def natural_key(name: str) -> tuple:
    """Sort key comparing digit runs as numbers (``f2.jpg`` before ``f10.jpg``)."""
    return tuple(int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name))


def read_text_sheet(path: Path) -> dict[str, str]:
    """``{polyp id: English description}`` from a Colo-Pair text sheet.

    ``.xlsx`` (first worksheet) or ``.csv`` with the columns ``id`` and ``Eng_text``; ``.json``
    as an object ``{id: text}`` or a list of ``{"id": ..., "Eng_text": ...}`` records. Ids are
    read as text (``0011`` stays ``0011``). An id listed twice with different texts is an error.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"text sheet {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".json":
        data = _load_json(path)
        if isinstance(data, dict):
            rows = [(str(k), v) for k, v in data.items()]
        elif isinstance(data, list) and all(isinstance(r, dict) for r in data):
            for r in data:
                _check_columns(path, list(r))
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
    for raw_id, raw_text in rows:
        if raw_id is None or str(raw_id).strip() in ("", "nan"):
            continue
        key = str(raw_id).strip()
        text = "" if raw_text is None else str(raw_text).strip()
        if key in texts and texts[key] != text:
            raise DatasetError(f"text sheet {path} lists id {key!r} twice with different texts")
        texts[key] = text
    return texts


def _check_columns(path: Path, columns: list[str]) -> None:
    for col in SHEET_COLUMNS:
        if col not in columns:
            raise DatasetError(
                f"text sheet {path} lacks the column {col!r} "
                f"(columns present: {', '.join(map(str, columns)) or '(none)'})"
            )


def _read_table(path: Path) -> list[tuple[Any, Any]]:
    import pandas as pd

    try:
        if path.suffix.lower() == ".xlsx":
            df = pd.read_excel(path, dtype=str, engine="openpyxl")
        else:
            df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except Exception as e:  # openpyxl/pandas raise many kinds on a damaged file
        raise DatasetError(f"cannot read text sheet {path}: {type(e).__name__}: {e}") from e
    df.columns = [str(c).strip() for c in df.columns]
    _check_columns(path, list(df.columns))
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
            f"folder {clip} is missing; every polyp folder needs 1/ (first screening) and 2/ "
            f"(second screening): {COLO_PAIR_TREE}",
        )
        return []
    frames = [p for p in clip.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    if not frames:
        problems.report(clip, f"clip folder {clip} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return sorted(frames, key=lambda p: natural_key(p.name))


def sheet_key(texts: Mapping[str, str], folder_name: str) -> str | None:
    """The text sheet id describing polyp folder ``folder_name``: the name itself, else the name
    without its last character (DMCL's released code: one text per patient)."""
    for key in (folder_name, folder_name[:-1]):
        if key in texts:
            return key
    return None


def read_colo_pair(root: Path, sheet: Path | None, problems: Problems = RAISE) -> list[Sample]:
    """Every frame of a Colo-Pair root, polyp by polyp, screening 1 then 2.

    ``pid`` is the index of the polyp folder in sorted order, ``camid`` the screening minus 1,
    ``clip`` ``"<polyp_id>/<screening>"`` (the polyp's folder name stays retrievable), ``frame``
    the order of the file in its clip (natural sort by name), ``text`` the polyp's description
    from ``sheet`` (``None`` without a sheet), found by :func:`sheet_key`. A polyp with no row
    is a problem; when ``problems`` collects (``bench data check``), sheet rows that describe
    no polyp folder are reported too.
    """
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
            key = sheet_key(texts, folder.name)
            if key is None:
                some = ", ".join(list(texts)[:5])
                problems.report(
                    folder,
                    f"text sheet {sheet} has no row for polyp folder {folder.name!r} "
                    f"(ids in the sheet: {some}{', ...' if len(texts) > 5 else ''})",
                )
            else:
                used.add(key)
                text = texts[key]
        for screening in (1, 2):
            for i, path in enumerate(_clip_frames(folder / str(screening), problems)):
                samples.append(
                    Sample(str(path), pid, screening - 1, text, f"{folder.name}/{screening}", i)
                )
    if texts is not None and problems.collect:
        for key in sorted(set(texts) - used):
            problems.report(
                sheet, f"text sheet {sheet} row id {key!r} matches no polyp folder in {root}"
            )
    return samples


def kfold_by_identity(ids: Sequence, k: int) -> list[list]:
    """Split the sorted distinct ``ids`` into ``k`` contiguous blocks (sizes differ by at most 1,
    larger blocks first), numbered as DMCL's released code numbers its folds: fold 0 is the LAST
    block (31 ids, k=4: fold0 = ids[24:31], fold1 = [16:24], fold2 = [8:16], fold3 = [0:8]).
    Every identity is in exactly one fold."""
    unique = sorted(set(ids))
    n = len(unique)
    if isinstance(k, bool) or not isinstance(k, int) or k < 2 or k > n:
        raise DatasetError(
            f"protocol.folds must be an integer from 2 to the number of identities ({n}); got {k!r}"
        )
    size, extra = divmod(n, k)
    blocks, start = [], 0
    for i in range(k):
        stop = start + size + (1 if i < extra else 0)
        blocks.append(unique[start:stop])
        start = stop
    return blocks[::-1]


def fold_names(k: int) -> list[str]:
    """``["fold0", ..., f"fold{k-1}"]``; ``k`` below 2 is an error naming ``protocol.folds``."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise DatasetError(f"protocol.folds must be an integer of at least 2; got {k!r}")
    return [f"fold{i}" for i in range(k)]


def fold_index(fold: str | int | None, k: int) -> int:
    """``None`` -> 0, ``"fold2"`` or ``2`` -> 2; anything else is an error listing the folds."""
    if fold is None:
        return 0
    text = str(fold)
    m = re.fullmatch(r"(?:fold)?(\d+)", text)
    if m is None or int(m[1]) >= k:
        raise DatasetError(f"no fold {fold!r}; folds: {', '.join(fold_names(k))}")
    return int(m[1])


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
