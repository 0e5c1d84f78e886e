"""Reader of MARS (Zheng et al. 2016, "MARS: A Video Benchmark for Large-Scale Person
Re-identification", ECCV): person tracklets of 6 cameras, read under the release's protocol::

    <root>/bbox_train/0001/0001C1T0001F001.jpg    PPPPCcTttttFfff.jpg: identity (00-1 junk,
    <root>/bbox_test/0000/0000C1T0001F001.jpg     0000 distractors), camera, tracklet, frame
    <root>/info/train_name.txt, test_name.txt     one frame name a line
    <root>/info/tracks_train_info.mat             track_train_info: one row per tracklet
    <root>/info/tracks_test_info.mat              track_test_info
    <root>/info/query_IDX.mat                     query_IDX: 1-based rows of track_test_info

A track row is ``[first, last, pid, camid]``: 1-based lines ``first..last`` of the name list,
the identity and the 1-based camera. Query = the test tracklets of ``query_IDX``; gallery = the
other test tracklets (junk ``-1`` kept: the Market rules leave it out of every ranking).
Statistics: 8,298 training tracklets of 625 identities; 12,180 test tracklets (636 pid values:
634 identities, distractors 0 and junk -1), 1,980 of them queries.

Every frame is one :class:`~bench.api.samples.Sample`: ``clip`` the tracklet (``test-000123``,
the 1-based row, unique within the split), ``frame`` its 0-based position in the tracklet,
``camid`` the camera minus 1. Malformed input is one :class:`~bench.errors.DatasetError` (or
one reported problem) naming the file, the key or the row.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.api.samples import JUNK_PID, Sample, Splits
from bench.data.files import dangling_note, listing
from bench.data.splits import relabel
from bench.errors import RAISE, DatasetError, Problems
from bench.io import read_text

__all__ = [
    "CAMERAS",
    "MARS_TREE",
    "NAME",
    "QUERY_FILE",
    "QUERY_KEY",
    "SPLIT_FOLDERS",
    "Tracks",
    "mars_splits",
    "read_mars",
    "read_names",
    "read_query_index",
    "read_tracks",
    "split_samples",
]

CAMERAS = 6
#: Frame names: ``0001C1T0001F001.jpg`` (identity 1, camera 1, tracklet 1, frame 1); junk
#: frames are ``00-1C...``. Groups: pid, cam, track, frame.
NAME = re.compile(r"^(?P<pid>\d{4}|00-1)C(?P<cam>\d)T(?P<track>\d+)F(?P<frame>\d+)\.jpg$")
#: ``split -> (image folder, name list, track file, its key)``.
SPLIT_FOLDERS = {
    "train": ("bbox_train", "train_name.txt", "tracks_train_info.mat", "track_train_info"),
    "test": ("bbox_test", "test_name.txt", "tracks_test_info.mat", "track_test_info"),
}
QUERY_FILE, QUERY_KEY = "query_IDX.mat", "query_IDX"
MARS_TREE = (
    "<root>/bbox_train/, <root>/bbox_test/, <root>/info/{train_name.txt, test_name.txt, "
    "tracks_train_info.mat, tracks_test_info.mat, query_IDX.mat}"
)


@dataclass(frozen=True)
class Tracks:
    """One track file: per tracklet the 1-based first and last name line, pid and camera."""

    path: Path
    first: np.ndarray
    last: np.ndarray
    pid: np.ndarray
    cam: np.ndarray

    def __len__(self) -> int:
        return len(self.pid)


def _load_mat(path: Path, key: str, problems: Problems) -> np.ndarray | None:
    """``key`` of the MATLAB v5 file ``path`` as an integer array, or ``None`` once reported."""
    from scipy.io import loadmat

    if not path.is_file():
        problems.report(
            path, f"MARS file {path} is missing{dangling_note(path)}; expected {MARS_TREE}"
        )
        return None
    try:
        mat: dict[str, Any] = loadmat(str(path))
    except Exception as e:  # scipy: ValueError/TypeError/OSError/NotImplementedError (v7.3)
        problems.report(path, f"cannot read MARS file {path}: {type(e).__name__}: {e}")
        return None
    if key not in mat:
        present = ", ".join(k for k in mat if not k.startswith("__")) or "(none)"
        problems.report(path, f"MARS file {path} lacks the key {key!r} (keys present: {present})")
        return None
    value = np.asarray(mat[key])
    if value.dtype.kind not in "iuf" or (
        value.dtype.kind == "f" and not np.all(np.isfinite(value) & (value == np.round(value)))
    ):
        problems.report(path, f"MARS file {path}: {key!r} must hold integers")
        return None
    return value.astype(np.int64)


def read_tracks(path: Path, key: str, problems: Problems = RAISE) -> Tracks | None:
    """The ``(tracklets, 4)`` array ``key`` of ``path``, checked: ``1 <= first <= last``,
    ``pid >= -1``, camera in ``1..6``. ``None`` when a problem was reported."""
    path = Path(path)
    value = _load_mat(path, key, problems)
    if value is None:
        return None
    if value.ndim != 2 or value.shape[1] != 4 or value.shape[0] == 0:
        problems.report(
            path,
            f"MARS file {path}: {key!r} must be a (tracklets, 4) array of [first, last, pid, "
            f"camid], got shape {tuple(value.shape)}",
        )
        return None
    first, last, pid, cam = value.T
    checks = (
        (first < 1, "first frame index below 1"),
        (last < first, "last frame index before the first"),
        (pid < JUNK_PID, "pid below -1"),
        ((cam < 1) | (cam > CAMERAS), f"camid outside 1..{CAMERAS}"),
    )
    for bad, what in checks:
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            problems.report(
                path, f"MARS file {path}: {key!r} row {row + 1} {value[row].tolist()} has a {what}"
            )
            return None
    return Tracks(path, first, last, pid, cam)


def read_query_index(path: Path, tracklets: int, problems: Problems = RAISE) -> list[int] | None:
    """The 0-based test rows of ``query_IDX`` (1-based in the file), each in ``1..tracklets``
    and listed once. ``None`` when a problem was reported."""
    path = Path(path)
    value = _load_mat(path, QUERY_KEY, problems)
    if value is None:
        return None
    if value.ndim > 2 or (value.ndim == 2 and min(value.shape) > 1) or value.size == 0:
        problems.report(
            path, f"MARS file {path}: {QUERY_KEY!r} must be a vector, got shape {value.shape}"
        )
        return None
    rows = value.reshape(-1)
    bad = rows[(rows < 1) | (rows > tracklets)]
    if bad.size:
        problems.report(
            path,
            f"MARS file {path}: {QUERY_KEY!r} holds index {int(bad[0])}, out of range "
            f"1..{tracklets} (the tracklets of tracks_test_info.mat)",
        )
        return None
    unique, counts = np.unique(rows, return_counts=True)
    if (counts > 1).any():
        twice = int(unique[counts > 1][0])
        problems.report(path, f"MARS file {path}: {QUERY_KEY!r} lists tracklet {twice} twice")
        return None
    return [int(r) - 1 for r in rows]


def read_names(path: Path, problems: Problems = RAISE) -> list[str] | None:
    """The frame names of a name list, one a line (blank lines skipped), each of the
    :data:`NAME` pattern. ``None`` when a problem was reported."""
    path = Path(path)
    if not path.is_file():
        problems.report(
            path, f"MARS file {path} is missing{dangling_note(path)}; expected {MARS_TREE}"
        )
        return None
    text = read_text(path, what="MARS name list", error=DatasetError)
    names = [line.strip() for line in text.splitlines()]
    names = [n for n in names if n]
    bad = [n for n in names if NAME.match(n) is None]
    if bad:
        problems.report(
            path,
            f"MARS name list {path}: {len(bad)} line(s) are not frame names "
            f"PPPPCcTttttFfff.jpg such as 0001C1T0001F001.jpg: {listing(map(repr, bad))}",
        )
        return None
    return names


def _check_rows(tracks: Tracks, names: list[str], names_path: Path, problems: Problems) -> bool:
    """Every row's lines lie in the name list and name the row's identity and camera."""
    beyond = np.flatnonzero(tracks.last > len(names))
    if beyond.size:
        row = int(beyond[0])
        problems.report(
            tracks.path,
            f"MARS file {tracks.path}: row {row + 1} covers lines {int(tracks.first[row])}.."
            f"{int(tracks.last[row])}, out of range 1..{len(names)} of {names_path}",
        )
        return False
    parsed = [NAME.match(n) for n in names]
    pids = np.array([-1 if m["pid"] == "00-1" else int(m["pid"]) for m in parsed], np.int64)
    cams = np.array([int(m["cam"]) for m in parsed], np.int64)
    owner = np.repeat(np.arange(len(tracks)), tracks.last - tracks.first + 1)
    lines = np.concatenate([np.arange(f - 1, e) for f, e in zip(tracks.first, tracks.last)])
    wrong = (pids[lines] != tracks.pid[owner]) | (cams[lines] != tracks.cam[owner])
    if wrong.any():
        at = int(np.flatnonzero(wrong)[0])
        row, line = int(owner[at]), int(lines[at])
        problems.report(
            tracks.path,
            f"MARS file {tracks.path}: row {row + 1} (pid {int(tracks.pid[row])}, camera "
            f"{int(tracks.cam[row])}) covers line {line + 1} of {names_path}, "
            f"{names[line]!r}, of another identity or camera",
        )
        return False
    return True


def _check_images(names: list[str], folder: Path, names_path: Path, problems: Problems) -> None:
    """Every listed frame exists as ``folder/<first 4 characters>/<name>`` (one problem)."""
    present: dict[str, set[str]] = {}
    missing = []
    for name in names:
        sub = name[:4]
        if sub not in present:
            try:
                with os.scandir(folder / sub) as entries:
                    present[sub] = {e.name for e in entries if e.is_file()}
            except OSError:
                present[sub] = set()
        if name not in present[sub]:
            missing.append(folder / sub / name)
    if missing:
        shown = listing(f"{p}{dangling_note(p)}" for p in missing)
        problems.report(
            missing[0],
            f"MARS name list {names_path} lists {len(missing)} image(s) not in {folder}: {shown}",
        )


def split_samples(
    tracks: Tracks, rows: list[int] | range, names: list[str], folder: Path, split: str
) -> list[Sample]:
    """The frames of the tracklets ``rows`` (0-based) as samples, in row then line order."""
    base, sep = str(folder), os.sep
    samples = []
    for r in rows:
        pid, camid, clip = int(tracks.pid[r]), int(tracks.cam[r]) - 1, f"{split}-{r + 1:06d}"
        lines = names[int(tracks.first[r]) - 1 : int(tracks.last[r])]
        samples.extend(
            Sample(f"{base}{sep}{n[:4]}{sep}{n}", pid, camid, clip=clip, frame=i)
            for i, n in enumerate(lines)
        )
    return samples


def _read(
    root: Path, problems: Problems, check_images: bool
) -> tuple[list[Sample], list[Sample], list[Sample]]:
    """Train (original pids), query and gallery frames."""
    root = Path(root)
    for folder in ("bbox_train", "bbox_test", "info"):
        if not (root / folder).is_dir():
            problems.report(
                root / folder,
                f"folder {root / folder} is missing{dangling_note(root / folder)}; expected "
                f"the MARS layout {MARS_TREE} (with <root> = {root})",
            )
    info = root / "info"
    parts: dict[str, tuple[Tracks, list[str], Path]] = {}
    for split, (images, name_file, track_file, key) in SPLIT_FOLDERS.items():
        names = read_names(info / name_file, problems)
        tracks = read_tracks(info / track_file, key, problems)
        if names is None or tracks is None:
            continue
        if not _check_rows(tracks, names, info / name_file, problems):
            continue
        if check_images and (root / images).is_dir():
            _check_images(names, root / images, info / name_file, problems)
        parts[split] = (tracks, names, root / images)
    test = parts.get("test")
    query_rows = (
        read_query_index(info / QUERY_FILE, len(test[0]), problems) if test is not None else None
    )
    if "train" not in parts or test is None or query_rows is None:
        return [], [], []
    train_tracks, train_names, train_dir = parts["train"]
    train = split_samples(train_tracks, range(len(train_tracks)), train_names, train_dir, "train")
    tracks, names, folder = test
    chosen = set(query_rows)
    gallery_rows = [r for r in range(len(tracks)) if r not in chosen]
    query = split_samples(tracks, query_rows, names, folder, "test")
    gallery = split_samples(tracks, gallery_rows, names, folder, "test")
    return train, query, gallery


def read_mars(
    root: Path, problems: Problems = RAISE, *, check_images: bool = True
) -> tuple[list[Sample], list[Sample], list[Sample]]:
    """``(train, query, gallery)`` frames of the MARS release at ``root``, train not yet
    relabelled (all empty when a problem was reported). ``check_images`` looks for every
    listed frame on disk."""
    return _read(root, problems, check_images)


def mars_splits(root: Path, problems: Problems = RAISE, *, check_images: bool = True) -> Splits:
    """The MARS release at ``root`` as :class:`Splits`: training pids relabelled ``0..N-1``
    (:func:`bench.data.splits.relabel`: junk dropped), the original ones kept in
    ``meta["train_pids"]`` (``bench data check`` looks for them among the test identities)."""
    train, query, gallery = _read(root, problems, check_images)
    train_pids = sorted({s.pid for s in train} - {JUNK_PID})
    meta = {"root": str(root), "train_pids": train_pids}
    return Splits(relabel(train), query, gallery, meta=meta)
