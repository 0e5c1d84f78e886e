"""MARS: the reader on a tiny fake release, every error it names, the adapter and
``bench data check/info``, and the real split files of the release (``shared/data/mars_info``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.io import savemat

from bench.cli import main
from bench.config import dataset_config
from bench.data.check import check_dataset
from bench.data.mars import mars_splits, read_mars, read_query_index, read_tracks
from bench.data.splits import relabel
from bench.engine.runner import RunRequest, run
from bench.errors import DatasetError, Problems
from bench.evaluation.clips import LEVELS
from bench.plugins import get_dataset

REPO = Path(__file__).resolve().parent.parent


def shared_data() -> Path | None:
    """``shared/data`` beside the checkout (CI: ``../shared``; worktrees: ``../../shared``)."""
    for base in (REPO, REPO.parent, REPO.parent.parent):
        if (base / "shared" / "data").is_dir():
            return base / "shared" / "data"
    return None


SHARED = shared_data()
INFO_DIR = SHARED / "mars_info" if SHARED else None
needs_real_info = pytest.mark.skipif(
    INFO_DIR is None
    or not all((INFO_DIR / f).is_file() for f in ("tracks_test_info.mat", "query_IDX.mat")),
    reason="real MARS info files not found (shared/data/mars_info/ beside the repo)",
)

# --------------------------------------------------------------------------- a tiny release

#: Tracklets as (pid, camera 1-6, frames); the test rows 1 and 4 are the queries.
TRAIN = [(1, 1, 3), (1, 2, 2), (-1, 2, 2), (3, 1, 2)]
TEST = [(2, 1, 2), (2, 2, 3), (2, 1, 2), (4, 3, 2), (4, 5, 2), (0, 4, 2), (-1, 1, 2)]
QUERY = [1, 4]


def frame_name(pid: int, cam: int, track: int, frame: int) -> str:
    """``0001C1T0001F001.jpg``; junk frames are ``00-1C...``."""
    prefix = "00-1" if pid == -1 else f"{pid:04d}"
    return f"{prefix}C{cam}T{track:04d}F{frame:03d}.jpg"


def write_split(root: Path, split: str, tracks: list[tuple[int, int, int]]) -> list[str]:
    """Images, name list and track file of one split; returns the names."""
    names, rows = [], []
    for t, (pid, cam, n) in enumerate(tracks, start=1):
        rows.append([len(names) + 1, len(names) + n, pid, cam])
        names += [frame_name(pid, cam, t, f) for f in range(1, n + 1)]
    for i, name in enumerate(names):
        folder = root / f"bbox_{split}" / name[:4]
        folder.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 16), (20 * i % 255, 90, 160)).save(folder / name, "JPEG")
    (root / "info").mkdir(parents=True, exist_ok=True)
    (root / "info" / f"{split}_name.txt").write_text("\n".join(names) + "\n")
    key = f"track_{split}_info"
    savemat(root / "info" / f"tracks_{split}_info.mat", {key: np.array(rows, dtype=np.int32)})
    return names


def write_release(root: Path, query: list[int] = QUERY) -> Path:
    write_split(root, "train", TRAIN)
    write_split(root, "test", TEST)
    savemat(root / "info" / "query_IDX.mat", {"query_IDX": np.array([query], dtype=np.uint16)})
    return root


@pytest.fixture
def release(tmp_path: Path) -> Path:
    return write_release(tmp_path / "MARS")


def _adapter(root: Path, *sets: str):
    cls = get_dataset("mars")
    return cls(root, dataset_config(cls, sets), show_progress=False)


# --------------------------------------------------------------------------- samples


def test_samples_clips_frames_and_query_gallery_split(release):
    train, query, gallery = read_mars(release)
    assert len(train) == 9 and len(query) == 4 and len(gallery) == 11
    first = query[0]
    assert first.path == str(release / "bbox_test" / "0002" / "0002C1T0001F001.jpg")
    assert (first.pid, first.camid, first.clip, first.frame) == (2, 0, "test-000001", 0)
    assert [(s.clip, s.frame) for s in query] == [
        ("test-000001", 0),
        ("test-000001", 1),
        ("test-000004", 0),
        ("test-000004", 1),
    ]
    assert sorted({s.clip for s in gallery}) == [f"test-00000{r}" for r in (2, 3, 5, 6, 7)]
    clips = {s.clip: (s.pid, s.camid) for s in gallery}
    assert clips["test-000006"] == (0, 3) and clips["test-000007"] == (
        -1,
        0,
    )  # kept, ranked by rules
    assert {s.clip for s in train} == {f"train-00000{r}" for r in range(1, 5)}
    assert [s.frame for s in train if s.clip == "train-000001"] == [0, 1, 2]


def test_training_pids_relabelled_and_junk_never_trained_on(release):
    splits = _adapter(release.parent).load()  # the folder holding MARS/
    assert {s.pid for s in splits.train} == {0, 1}
    assert len(splits.train) == 7  # the junk tracklet's 2 frames dropped
    assert not any("00-1" in s.path for s in splits.train)
    assert splits.meta["train_pids"] == [1, 3]
    assert splits.train == relabel(read_mars(release)[0])  # the harness's rule
    assert {s.pid for s in splits.query} == {2, 4}  # test pids as released


def test_adapter_declares_clip_level_market_rules():
    cls = get_dataset("mars")
    assert cls.protocol == "market" and "clip" in cls.modalities
    assert dataset_config(cls)["protocol.level"] == "clip"
    assert cls.config_choices["protocol.level"] == LEVELS
    assert dataset_config(cls, ["protocol.level=frame"])["protocol.level"] == "frame"


def test_check_statistics_junk_and_distractors(release):
    report = check_dataset(_adapter(release))
    assert report.ok, report.problems
    rows = {r["split"]: r for r in report.rows}
    assert (rows["train"]["ids"], rows["train"]["images"], rows["train"]["clips"]) == (2, 7, 3)
    g = rows["gallery"]
    assert (g["clips"], g["images"], g["junk"], g["distractors"]) == (4, 9, 2, 2)
    assert (rows["query"]["clips"], rows["query"]["ids"]) == (2, 2)


def test_annotation_files_are_the_info_files(release):
    files = _adapter(release).annotation_files()
    assert [f.name for f in files] == sorted(
        [
            "query_IDX.mat",
            "test_name.txt",
            "tracks_test_info.mat",
            "tracks_train_info.mat",
            "train_name.txt",
        ]
    )


def test_clip_level_run_ranks_tracklets_under_market_rules(release, tmp_path):
    (record,) = run(
        RunRequest(
            method="bot",
            dataset="mars",
            root=release,
            preset="quick",
            sets=["train.epochs=1", "sampler.p=2", "sampler.k=2", "eval.max_rank=5"],
            results_dir=tmp_path / "results",
            progress=False,
        )
    )
    assert record["protocol"] == "market/clip"
    assert record["metrics"]["num_queries"] == 2  # one per query tracklet


# --------------------------------------------------------------------------- errors


def _savemat(path: Path, key: str, value) -> None:
    savemat(path, {key: np.asarray(value)})


def test_missing_folder_and_file_name_them(release):
    shutil.rmtree(release / "bbox_test")
    with pytest.raises(DatasetError, match=r"folder .*bbox_test is missing"):
        mars_splits(release)
    write_release(release)
    (release / "info" / "tracks_test_info.mat").unlink()
    with pytest.raises(DatasetError, match=r"MARS file .*tracks_test_info\.mat is missing"):
        mars_splits(release)


def test_mat_without_the_key_names_file_and_key(release):
    _savemat(release / "info" / "query_IDX.mat", "query_idx", [[1, 4]])
    with pytest.raises(DatasetError) as e:
        mars_splits(release)
    assert "query_IDX.mat lacks the key 'query_IDX' (keys present: query_idx)" in str(e.value)


def test_track_rows_beyond_the_name_list(release):
    rows = [[1, 2, 2, 1], [3, 40, 2, 2]]
    _savemat(release / "info" / "tracks_test_info.mat", "track_test_info", rows)
    with pytest.raises(DatasetError) as e:
        mars_splits(release)
    assert "tracks_test_info.mat: row 2 covers lines 3..40, out of range 1..15 of" in str(e.value)
    assert "test_name.txt" in str(e.value)


def test_query_index_out_of_range_or_twice(release):
    _savemat(release / "info" / "query_IDX.mat", "query_IDX", [[1, 8]])
    with pytest.raises(DatasetError, match=r"query_IDX\.mat: 'query_IDX' holds index 8, out of"):
        mars_splits(release)
    _savemat(release / "info" / "query_IDX.mat", "query_IDX", [[4, 1, 4]])
    with pytest.raises(DatasetError, match=r"query_IDX\.mat: 'query_IDX' lists tracklet 4 twice"):
        mars_splits(release)


def test_bad_rows_name_the_row(release):
    path = release / "info" / "tracks_train_info.mat"
    _savemat(path, "track_train_info", [[1, 3, 1, 1], [4, 5, 1, 7]])
    with pytest.raises(DatasetError, match=r"row 2 \[4, 5, 1, 7\] has a camid outside 1\.\.6"):
        read_tracks(path, "track_train_info")
    _savemat(path, "track_train_info", [[1, 3, 1]])
    with pytest.raises(DatasetError, match=r"must be a \(tracklets, 4\) array .* shape \(1, 3\)"):
        read_tracks(path, "track_train_info")


def test_row_and_names_of_another_identity(release):
    rows = [[1, 2, 2, 1], [3, 5, 4, 2]]  # lines 3-5 are identity 2, camera 2
    _savemat(release / "info" / "tracks_test_info.mat", "track_test_info", rows)
    with pytest.raises(DatasetError) as e:
        mars_splits(release)
    assert "row 2 (pid 4, camera 2) covers line 3 of" in str(e.value)
    assert "'0002C2T0002F001.jpg', of another identity or camera" in str(e.value)


def test_name_list_listing_images_that_do_not_exist(release):
    gone = release / "bbox_test" / "0004" / "0004C3T0004F002.jpg"
    gone.unlink()
    with pytest.raises(DatasetError) as e:
        mars_splits(release)
    assert f"test_name.txt lists 1 image(s) not in {release / 'bbox_test'}: {gone}" in str(e.value)


def test_name_list_lines_that_are_not_frame_names(release):
    names = release / "info" / "train_name.txt"
    names.write_text(names.read_text() + "Thumbs.db\n")
    with pytest.raises(DatasetError, match=r"train_name\.txt: 1 line\(s\) are not frame names"):
        mars_splits(release)
    names.write_bytes(b"\xff\xfe")
    with pytest.raises(DatasetError, match=r"train_name\.txt: not UTF-8"):
        mars_splits(release)


def test_check_collects_every_problem(release):
    shutil.rmtree(release / "bbox_train")
    (release / "bbox_test" / "0000" / "0000C4T0006F001.jpg").unlink()
    _savemat(release / "info" / "query_IDX.mat", "wrong", [[1]])
    problems = Problems(collect=True)
    _adapter(release).scan(problems)
    messages = [m for _, m in problems.items]
    assert any("bbox_train is missing" in m for m in messages)
    assert any("test_name.txt lists 1 image(s) not in" in m for m in messages)
    assert any("lacks the key 'query_IDX'" in m for m in messages)


# --------------------------------------------------------------------------- the CLI


def test_data_check_and_info_through_the_cli(release, capsys):
    assert main(["data", "check", "mars", "--root", str(release), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "no problems found" in out
    (release / "info" / "test_name.txt").unlink()
    assert main(["data", "check", "mars", "--root", str(release), "--no-progress"]) == 1
    assert f"MARS file {release / 'info' / 'test_name.txt'} is missing" in capsys.readouterr().out
    assert main(["data", "info", "mars"]) == 0
    out = capsys.readouterr().out
    for needle in ("project_mars", "Research use only", "query_IDX.mat", "protocol.level='clip'"):
        assert needle in out, needle


# --------------------------------------------------------------------------- the real files


@needs_real_info
def test_real_test_split_gives_the_published_statistics():
    tracks = read_tracks(INFO_DIR / "tracks_test_info.mat", "track_test_info")
    query = read_query_index(INFO_DIR / "query_IDX.mat", len(tracks))
    assert len(tracks) == 12180 and len(query) == 1980
    assert int((tracks.last - tracks.first + 1).sum()) == 681089 == int(tracks.last.max())
    assert np.all(tracks.first[1:] == tracks.last[:-1] + 1)  # the rows tile test_name.txt
    pids = set(tracks.pid.tolist())
    assert len(pids) == 636 and len({p for p in pids if p > 0}) == 634 and {-1, 0} <= pids
    assert (int((tracks.pid == -1).sum()), int((tracks.pid == 0).sum())) == (870, 3248)
    q = np.array(query)
    g = np.setdiff1d(np.arange(len(tracks)), q)
    assert len(g) == 10200 and int((tracks.pid[g] != -1).sum()) == 9330  # torchreid's gallery
    assert not (tracks.pid[q] <= 0).any()  # no junk or distractor query
    assert len(set(tracks.pid[q].tolist())) == 626
    assert set(tracks.cam.tolist()) == set(range(1, 7))


@pytest.mark.slow
@needs_real_info
def test_real_rows_read_with_names_of_the_release_pattern(tmp_path):
    """The whole reader on the real test rows, with a name list written to match them."""
    train = INFO_DIR / "tracks_train_info.mat"
    if not train.is_file():
        pytest.skip("tracks_train_info.mat not in shared/data/mars_info/")
    root = tmp_path / "mars"
    (root / "info").mkdir(parents=True)
    for split in ("train", "test"):
        (root / f"bbox_{split}").mkdir()
        shutil.copy(INFO_DIR / f"tracks_{split}_info.mat", root / "info")
        tracks = read_tracks(root / "info" / f"tracks_{split}_info.mat", f"track_{split}_info")
        names = [
            frame_name(int(p), int(c), t + 1, f)
            for t, (p, c, n) in enumerate(zip(tracks.pid, tracks.cam, tracks.last - tracks.first))
            for f in range(1, int(n) + 2)
        ]
        (root / "info" / f"{split}_name.txt").write_text("\n".join(names))
    shutil.copy(INFO_DIR / "query_IDX.mat", root / "info")
    splits = mars_splits(root, check_images=False)
    counts = {
        part: (len({s.clip for s in samples if s.pid != -1}), len({s.pid for s in samples}))
        for part, samples in (("train", splits.train), ("query", splits.query))
    }
    assert counts == {"train": (8298, 625), "query": (1980, 626)}
    assert len(splits.train) == 509914 and len(splits.query) + len(splits.gallery) == 681089
    assert len({s.clip for s in splits.gallery if s.pid != -1}) == 9330
    assert len(splits.meta["train_pids"]) == 625
