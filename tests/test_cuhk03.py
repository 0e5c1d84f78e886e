"""CUHK03 new protocol: CUHK03-NP folders, cuhk-03.mat (v7.3) + split files, the adapter."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image
from scipy.io import savemat

from bench.data.cuhk03 import (
    EXPECTED_COUNTS,
    extract_mat_images,
    find_split_file,
    mat_cache_folder,
    raw_image_name,
    read_mat_splits,
    read_np_folder,
    read_np_splits,
    read_protocol,
)
from bench.data.splits import relabel
from bench.errors import DatasetError
from bench.plugins import get_dataset

REPO = Path(__file__).resolve().parent.parent


def shared_data() -> Path | None:
    """``shared/data`` beside the checkout (CI: ``../shared``; worktrees: ``../../shared``)."""
    for base in (REPO, REPO.parent, REPO.parent.parent):
        if (base / "shared" / "data").is_dir():
            return base / "shared" / "data"
    return None


SHARED = shared_data()
PROTOCOL_DIR = SHARED / "cuhk03_np_protocol" if SHARED else None
needs_real_splits = pytest.mark.skipif(
    PROTOCOL_DIR is None or not (PROTOCOL_DIR / "cuhk03_new_protocol_config_labeled.mat").is_file(),
    reason="real CUHK03 split files not found (shared/data/cuhk03_np_protocol/ beside the repo)",
)


# --------------------------------------------------------------------------- real split files


@needs_real_splits
@pytest.mark.parametrize("variant", ["labeled", "detected"])
def test_real_split_files_give_the_published_statistics(variant):
    p = read_protocol(PROTOCOL_DIR / f"cuhk03_new_protocol_config_{variant}.mat")
    assert (len(p.train), len(p.query), len(p.gallery)) == EXPECTED_COUNTS[variant]
    train_ids = {p.pids[r] for r in p.train}
    test_ids = {p.pids[r] for r in p.query + p.gallery}
    assert len(train_ids) == 767 and len(test_ids) == 700 and len(train_ids | test_ids) == 1467
    # one query per camera per test identity (the README: "selected by both two cameras")
    assert sorted((p.pids[r], p.cams[r]) for r in p.query) == sorted(
        (pid, cam) for pid in test_ids for cam in (1, 2)
    )
    train, query, gallery = (
        [(p.pids[r], p.cams[r] - 1) for r in rows] for rows in (p.train, p.query, p.gallery)
    )
    assert {c for _, c in train + query + gallery} == {0, 1}
    # CUHK03-NP's names: query row 22 of both files is identity 3 seen by camera 1
    assert (p.names[21], p.pids[21], p.cams[21]) == ("1_003_1_02.png", 3, 1)
    assert 21 in p.query and 20 in p.gallery


# --------------------------------------------------------------------------- miniature data

PERSONS = {1: 3, 2: 2}  # camera pair -> persons; labels 1..5 in (pair, person) order
TRAIN_IDS = {1, 4}
EMPTY = {  # cells left empty, as in the real file (not every person has 10 images)
    "labeled": {(1, 1, 4), (1, 3, 7), (2, 2, 10)},
    "detected": {(1, 1, 4), (1, 2, 2), (2, 1, 9)},
}


def _pixels(variant: str, pair: int, person: int, image: int) -> np.ndarray:
    rng = np.random.default_rng([VARIANT_SEED[variant], pair, person, image])
    return rng.integers(0, 256, size=(6, 4, 3), dtype=np.uint8)  # H x W x 3


VARIANT_SEED = {"labeled": 1, "detected": 2}


def _cells(variant: str) -> list[tuple[int, int, int]]:
    return [
        (pair, person, image)
        for pair, n in PERSONS.items()
        for person in range(1, n + 1)
        for image in range(1, 11)
        if (pair, person, image) not in EMPTY[variant]
    ]


def _label(pair: int, person: int) -> int:
    return sum(n for p, n in PERSONS.items() if p < pair) + person


def _protocol(variant: str) -> dict[str, list]:
    """Rows of a split file in the real order; test identities: the first image of each
    camera is the query, the rest the gallery."""
    cells = _cells(variant)
    names = [raw_image_name(*c) for c in cells]
    labels = [_label(pair, person) for pair, person, _ in cells]
    cams = [1 if image <= 5 else 2 for _, _, image in cells]
    train, query, gallery, seen = [], [], [], set()
    for row, (label, cam) in enumerate(zip(labels, cams), start=1):
        if label in TRAIN_IDS:
            train.append(row)
        elif (label, cam) not in seen:
            seen.add((label, cam))
            query.append(row)
        else:
            gallery.append(row)
    return {"names": names, "labels": labels, "cams": cams, "train": train, "query": query,
            "gallery": gallery}  # fmt: skip


def write_split_file(path: Path, variant: str, **changes) -> Path:
    """A split file in the real structure: cell column ``filelist``, column vectors of class
    double, 1-based indices."""
    p = _protocol(variant)
    filelist = np.empty((len(p["names"]), 1), dtype=object)
    for i, name in enumerate(p["names"]):
        filelist[i, 0] = name
    content = {
        "filelist": filelist,
        "labels": np.array(p["labels"], dtype=float).reshape(-1, 1),
        "camId": np.array(p["cams"], dtype=float).reshape(-1, 1),
        "train_idx": np.array(p["train"], dtype=float).reshape(-1, 1),
        "query_idx": np.array(p["query"], dtype=float).reshape(-1, 1),
        "gallery_idx": np.array(p["gallery"], dtype=float).reshape(-1, 1),
    }
    for key, value in changes.items():
        if value is None:
            del content[key]
        else:
            content[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    savemat(path, content)
    return path


MATLAB_HEADER = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Fri Jan  1 00:00:00 2016 HDF5 schema 1.00 ."  # noqa: E501


def write_cuhk03_mat(path: Path, variants=("labeled", "detected")) -> Path:
    """A miniature ``cuhk-03.mat`` as MATLAB v7.3 writes it: a 512-byte header, images and
    cells under ``#refs#``, each variant a 1 x 5-style cell of object references to persons x 10
    cells (stored transposed), each image uint8 H x W x 3 stored transposed as 3 x W x H, empty
    cells as MATLAB's 2-element placeholder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w", userblock_size=512) as f:
        refs = f.create_group("#refs#")
        for variant in variants:
            pair_refs = []
            for pair, n in PERSONS.items():
                cell = np.empty((10, n), dtype=h5py.ref_dtype)
                for person in range(1, n + 1):
                    for image in range(1, 11):
                        key = f"{variant}_{pair}_{person}_{image}"
                        if (pair, person, image) in EMPTY[variant]:
                            ds = refs.create_dataset(key, data=np.zeros(2, dtype=np.uint64))
                            ds.attrs["MATLAB_class"] = np.bytes_("double")
                            ds.attrs["MATLAB_empty"] = np.uint8(1)
                        else:
                            ds = refs.create_dataset(
                                key, data=_pixels(variant, pair, person, image).T
                            )
                            ds.attrs["MATLAB_class"] = np.bytes_("uint8")
                        cell[image - 1, person - 1] = ds.ref
                cds = refs.create_dataset(f"{variant}_{pair}", data=cell)
                cds.attrs["MATLAB_class"] = np.bytes_("cell")
                pair_refs.append(cds.ref)
            top = np.empty((1, len(pair_refs)), dtype=h5py.ref_dtype)
            top[0, :] = pair_refs
            f.create_dataset(variant, data=top).attrs["MATLAB_class"] = np.bytes_("cell")
    with path.open("r+b") as fh:
        fh.write(MATLAB_HEADER.ljust(116) + b"\0" * 8 + b"\x00\x02IM")
    return path


def write_release(root: Path) -> Path:
    """torchreid's layout: ``cuhk03_release/cuhk-03.mat`` and the two split files."""
    write_cuhk03_mat(root / "cuhk03_release" / "cuhk-03.mat")
    for variant in ("labeled", "detected"):
        write_split_file(root / f"cuhk03_new_protocol_config_{variant}.mat", variant)
    return root


def write_np_tree(root: Path, variants=("labeled", "detected")) -> Path:
    """The CUHK03-NP release of the same miniature data: ``PPPP_cC_N.png``, N the split row."""
    for variant in variants:
        p = _protocol(variant)
        cells = _cells(variant)
        for folder, rows in (
            ("bounding_box_train", p["train"]),
            ("query", p["query"]),
            ("bounding_box_test", p["gallery"]),
        ):
            (root / variant / folder).mkdir(parents=True, exist_ok=True)
            for row in rows:
                name = f"{p['labels'][row - 1]:04d}_c{p['cams'][row - 1]}_{row}.png"
                Image.fromarray(_pixels(variant, *cells[row - 1])).save(
                    root / variant / folder / name
                )
        (root / variant / "bounding_box_train" / "Thumbs.db").write_bytes(b"")
    return root


def _key(samples):
    return [(s.pid, s.camid, s.frame) for s in samples]


# --------------------------------------------------------------------------- CUHK03-NP


@pytest.mark.parametrize("variant", ["labeled", "detected"])
def test_np_tree_parsing_counts_relabel_and_cameras(tmp_path, variant):
    root = write_np_tree(tmp_path / "np")
    p = _protocol(variant)
    train, query, gallery = read_np_splits(root, variant)
    assert (len(train), len(query), len(gallery)) == (
        len(p["train"]),
        len(p["query"]),
        len(p["gallery"]),
    )
    assert {s.pid for s in train} == TRAIN_IDS
    assert {s.pid for s in query} == {s.pid for s in gallery} == {2, 3, 5}
    assert sorted((s.pid, s.camid) for s in query) == [(i, c) for i in (2, 3, 5) for c in (0, 1)]
    assert all(Path(s.path).parent.name == "query" for s in query)
    # names are sorted as strings; (pid, camid, frame) come from the name
    first = train[0]
    assert Path(first.path).name == "0001_c1_1.png" and _key([first]) == [(1, 0, 1)]
    assert sorted(_key(train)) == sorted(
        (p["labels"][r - 1], p["cams"][r - 1] - 1, r) for r in p["train"]
    )
    assert [s.pid for s in relabel(train)] == [0 if s.pid == 1 else 1 for s in train]


def test_np_errors(tmp_path):
    root = write_np_tree(tmp_path / "np", variants=("labeled",))
    with pytest.raises(DatasetError, match=r"detected/bounding_box_train is missing.*CUHK03-NP"):
        read_np_splits(root, "detected")
    with pytest.raises(DatasetError, match="unknown CUHK03 variant 'both'"):
        read_np_splits(root, "both")
    query = root / "labeled" / "query"
    (query / "0002_c3_99.png").write_bytes(b"")
    with pytest.raises(DatasetError, match=r"'0002_c3_99.png'.*camera 3"):
        read_np_folder(query)
    (query / "0002_c3_99.png").unlink()
    (query / "0002_c1s1_000451_03.png").write_bytes(b"")  # a Market name is not a CUHK03 name
    with pytest.raises(DatasetError, match=r"cannot parse.*'0002_c1s1_000451_03.png'"):
        read_np_folder(query)
    empty = root / "labeled" / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("x")
    with pytest.raises(DatasetError, match=r"empty holds no .png"):
        read_np_folder(empty)


# --------------------------------------------------------------------------- split files


def test_split_file_reading(tmp_path):
    p = _protocol("labeled")
    proto = read_protocol(write_split_file(tmp_path / "s.mat", "labeled"))
    assert proto.names == p["names"] and proto.pids == p["labels"] and proto.cams == p["cams"]
    assert proto.train == [r - 1 for r in p["train"]]
    assert proto.query == [r - 1 for r in p["query"]]
    assert proto.locate(0) == (1, 1, 1) and proto.names[3] == "1_001_1_05.png"
    # integer classes (uint8/uint16, as the real files store them) read the same
    proto16 = read_protocol(
        write_split_file(
            tmp_path / "u.mat",
            "labeled",
            labels=np.array(p["labels"], dtype=np.uint16).reshape(-1, 1),
            camId=np.array(p["cams"], dtype=np.uint8).reshape(-1, 1),
            train_idx=np.array(p["train"], dtype=np.uint16).reshape(-1, 1),
        )
    )
    for field in ("names", "pids", "cams", "train", "query", "gallery"):
        assert getattr(proto16, field) == getattr(proto, field)


def _column(values, dtype=float):
    return np.array(values, dtype=dtype).reshape(-1, 1)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"train_idx": None}, r"lacks the key 'train_idx' \(keys present: filelist, labels"),
        ({"query_idx": _column([3, 999])}, r"'query_idx' holds index 999, out of range 1\.\.47"),
        ({"gallery_idx": _column([0, 5])}, r"'gallery_idx' holds index 0, out of range"),
        ({"labels": _column([1, 2, 3])}, r"'labels' has 3 rows but 'filelist' has 47"),
        ({"train_idx": _column([1.5])}, r"'train_idx' must hold integers"),
        ({"camId": np.ones((47, 2))}, r"'camId' must be a vector, got shape \(47, 2\)"),
        ({"camId": _column([2] * 47)}, r"row 1 has camId 2 but its file name '1_001_1_01.png'"),
        ({"query_idx": _column([1])}, r"row 1 is in both 'train_idx' and 'query_idx'"),
        (
            {
                "train_idx": _column([r for r in _protocol("labeled")["train"] if r != 38]),
                "gallery_idx": _column([38]),
            },
            r"identity 4 is both a training and a test identity",
        ),
    ],
)
def test_split_file_errors(tmp_path, changes, message):
    path = write_split_file(tmp_path / "s.mat", "labeled", **changes)
    with pytest.raises(DatasetError, match=message) as err:
        read_protocol(path)
    assert str(path) in str(err.value)


def test_split_file_bad_names_and_formats(tmp_path):
    filelist = np.empty((47, 1), dtype=object)
    filelist[:, 0] = _protocol("labeled")["names"]
    filelist[5, 0] = "0002_c1_6.png"
    with pytest.raises(DatasetError, match=r"'filelist' row 6 '0002_c1_6.png' is not a CUHK03"):
        read_protocol(write_split_file(tmp_path / "n.mat", "labeled", filelist=filelist))
    with pytest.raises(DatasetError, match=r"split file .*missing.mat does not exist"):
        read_protocol(tmp_path / "missing.mat")
    (tmp_path / "junk.mat").write_bytes(b"not a mat file at all" * 10)
    with pytest.raises(DatasetError, match=r"cannot read split file .*junk.mat"):
        read_protocol(tmp_path / "junk.mat")
    v73 = write_cuhk03_mat(tmp_path / "v73.mat", variants=("labeled",))
    with pytest.raises(DatasetError, match=r"v73.mat is a MATLAB v7.3 file"):
        read_protocol(v73)


def test_find_split_file(tmp_path):
    with pytest.raises(DatasetError) as err:
        find_split_file(tmp_path, "detected", also=[tmp_path / "cuhk03_release"])
    assert "cuhk03_new_protocol_config_detected.mat not found" in str(err.value)
    assert str(tmp_path / "cuhk03_release") in str(err.value)
    path = write_split_file(
        tmp_path / "cuhk03_release" / "cuhk03_new_protocol_config_detected.mat", "detected"
    )
    assert find_split_file(tmp_path, "detected", also=[path.parent]) == path


# --------------------------------------------------------------------------- cuhk-03.mat


@pytest.mark.parametrize("variant", ["labeled", "detected"])
def test_mat_source_matches_np_source(tmp_path, variant):
    release = write_release(tmp_path / "release")
    mat = release / "cuhk03_release" / "cuhk-03.mat"
    split = release / f"cuhk03_new_protocol_config_{variant}.mat"
    m_train, m_query, m_gallery = read_mat_splits(
        mat, split, variant, tmp_path / "cache", show_progress=False
    )
    n_train, n_query, n_gallery = read_np_splits(write_np_tree(tmp_path / "np"), variant)
    for m, n in ((m_train, n_train), (m_query, n_query), (m_gallery, n_gallery)):
        assert sorted(_key(m)) == sorted(_key(n))  # same identities, cameras, rows
        by_row = {s.frame: s for s in n}
        for s in m:  # and the same pixels: the .mat images stored transposed come back upright
            a = np.asarray(Image.open(s.path))
            assert a.shape == (6, 4, 3)
            assert np.array_equal(a, np.asarray(Image.open(by_row[s.frame].path)))
    # names of the extracted files are the split file's (torchreid's) names
    folder = mat_cache_folder(mat, variant, tmp_path / "cache")
    assert Path(m_train[0].path) == folder / "1_001_1_01.png"
    # every non-empty cell is extracted; the empty ones are not
    files = sorted(p.name for p in folder.glob("*.png"))
    assert files == sorted(raw_image_name(*c) for c in _cells(variant))
    assert raw_image_name(*sorted(EMPTY[variant])[0]) not in files
    assert not [p for p in folder.parent.iterdir() if ".tmp-" in p.name]


def test_extraction_is_cached_and_atomic(tmp_path, monkeypatch):
    mat = write_cuhk03_mat(tmp_path / "cuhk-03.mat")
    calls = []
    real_save = Image.Image.save

    def failing_save(self, fp, *args, **kwargs):
        calls.append(fp)
        if len(calls) == 7:
            raise OSError("disk full")
        return real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        extract_mat_images(mat, "labeled", tmp_path / "cache", show_progress=False)
    folder = mat_cache_folder(mat, "labeled", tmp_path / "cache")
    assert not folder.exists() and list(folder.parent.iterdir()) == []  # nothing half-written
    monkeypatch.setattr(Image.Image, "save", real_save)
    assert extract_mat_images(mat, "labeled", tmp_path / "cache", show_progress=False) == folder
    stamp = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    monkeypatch.setattr(Image.Image, "save", failing_save)  # a second call writes nothing
    calls.clear()
    assert extract_mat_images(mat, "labeled", tmp_path / "cache", show_progress=False) == folder
    assert calls == [] and {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == stamp
    # the other variant has its own folder; a replaced .mat gets a new one
    assert mat_cache_folder(mat, "detected", tmp_path / "cache") != folder
    os.utime(mat, ns=(1, 1))
    assert mat_cache_folder(mat, "labeled", tmp_path / "cache") != folder


def test_mat_errors(tmp_path):
    cache = tmp_path / "cache"
    split = write_split_file(tmp_path / "s.mat", "labeled")
    only_detected = write_cuhk03_mat(tmp_path / "d" / "cuhk-03.mat", variants=("detected",))
    with pytest.raises(
        DatasetError, match=r"has no 'labeled' cell array \(keys present: detected\)"
    ):
        read_mat_splits(only_detected, split, "labeled", cache, show_progress=False)
    (tmp_path / "bad.mat").write_bytes(b"MATLAB 5.0 MAT-file" + b"\0" * 200)
    with pytest.raises(DatasetError, match=r"cannot read .*bad.mat as a MATLAB v7.3 \(HDF5\)"):
        read_mat_splits(tmp_path / "bad.mat", split, "labeled", cache, show_progress=False)
    with pytest.raises(DatasetError, match=r"nowhere.mat does not exist"):
        extract_mat_images(tmp_path / "nowhere.mat", "labeled", cache, show_progress=False)
    mat = write_cuhk03_mat(tmp_path / "cuhk-03.mat")

    def with_name(name: str, cam: int | None = None) -> Path:
        """The miniature split file with row 1 renamed (and its camId set to the name's)."""
        p = _protocol("labeled")
        filelist = np.empty((47, 1), dtype=object)
        filelist[:, 0] = p["names"]
        filelist[0, 0] = name
        cams = [int(name.split("_")[2]) if cam is None else cam, *p["cams"][1:]]
        return write_split_file(
            tmp_path / "x.mat", "labeled", filelist=filelist, camId=_column(cams)
        )

    cases = [
        ("3_001_1_01.png", None, r"image '3_001_1_01.png': .* has 2 camera pairs in 'labeled'"),
        ("2_003_1_01.png", None, r"camera pair 2 of 'labeled' .* has 2 persons x 10 images"),
        ("1_001_2_11.png", None, r"image '1_001_2_11.png': camera pair 1 .* 3 persons x 10 images"),
        (
            "1_001_2_03.png",
            1,
            r"row 1 has camId 1 but its file name '1_001_2_03.png' names camera 2",
        ),
        ("1_001_1_07.png", None, r"row 1 '1_001_1_07.png' should read '1_001_2_07.png'"),
        ("1_1_1_01.png", None, r"row 1 '1_1_1_01.png' should read '1_001_1_01.png'"),
        (
            "1_003_2_07.png",
            None,
            r"names image '1_003_2_07.png' \(row 1\), but its cell .* is empty",
        ),
    ]
    for name, cam, message in cases:
        with pytest.raises(DatasetError, match=message):
            read_mat_splits(mat, with_name(name, cam), "labeled", cache, show_progress=False)
    assert not (cache / "cuhk03").exists()  # nothing extracted before the names were checked


# --------------------------------------------------------------------------- adapter


def test_adapter_np_and_mat_roots(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "bench-cache"))
    cls = get_dataset("cuhk03")
    assert cls.default_config == {"cuhk03": {"variant": "labeled", "source": "auto"}}
    assert cls.config_choices["cuhk03.variant"] == ("labeled", "detected")
    assert cls.protocol == "market"
    np_root = write_np_tree(tmp_path / "dl" / "cuhk03-np")
    release = write_release(tmp_path / "cuhk03")
    loaded = {}
    for root, source in ((tmp_path / "dl", "np"), (np_root, "np"), (release, "mat")):
        for variant in ("labeled", "detected"):
            ds = cls(
                root, {"cuhk03.variant": variant, "cuhk03.source": "auto"}, show_progress=False
            )
            ds.prepare()
            sp = ds.load(None)
            assert sp.meta["source"] == source and sp.meta["variant"] == variant
            assert sorted({s.pid for s in sp.train}) == [0, 1]  # relabelled
            assert sp.num_train_pids == 2
            loaded[(source, variant)] = sp
    for variant in ("labeled", "detected"):
        a, b = loaded[("np", variant)], loaded[("mat", variant)]
        for x, y in ((a.train, b.train), (a.query, b.query), (a.gallery, b.gallery)):
            assert sorted(_key(x)) == sorted(_key(y))
    assert len(loaded[("mat", "labeled")].train) != len(loaded[("mat", "detected")].train)
    # extracted under the harness cache, not next to the user's data
    assert loaded[("mat", "labeled")].train[0].path.startswith(str(tmp_path / "bench-cache"))
    assert not list(release.rglob("*.png"))
    # both layouts under one root: auto prefers CUHK03-NP; source=mat forces the .mat
    write_np_tree(release)
    assert cls(release, {}, show_progress=False).load().meta["source"] == "np"
    forced = cls(release, {"cuhk03.source": "mat"}, show_progress=False)
    assert forced.load().meta["source"] == "mat"


def test_adapter_errors(tmp_path):
    cls = get_dataset("cuhk03")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"holds neither CUHK03-NP .* nor the original release"):
        cls(tmp_path / "empty", {}).prepare()
    with pytest.raises(DatasetError, match=r"cuhk03.source=np expects"):
        cls(tmp_path / "empty", {"cuhk03.source": "np"}).prepare()
    with pytest.raises(DatasetError, match=r"cuhk-03.mat not found in .*cuhk03_release"):
        cls(tmp_path / "empty", {"cuhk03.source": "mat"}).prepare()
    write_cuhk03_mat(tmp_path / "r" / "cuhk03_release" / "cuhk-03.mat")
    with pytest.raises(DatasetError, match=r"cuhk03_new_protocol_config_labeled.mat not found"):
        cls(tmp_path / "r", {}).prepare()
    with pytest.raises(DatasetError, match="root folder .* does not exist"):
        cls(tmp_path / "nowhere", {}).prepare()
    with pytest.raises(DatasetError, match="one fixed split"):
        cls(tmp_path / "r", {}).load("fold1")


def test_mat_structure_errors(tmp_path):
    split = write_split_file(tmp_path / "s.mat", "labeled")
    cache = tmp_path / "cache"

    def broken(change) -> Path:
        path = write_cuhk03_mat(tmp_path / "broken" / "cuhk-03.mat")
        with h5py.File(path, "r+") as f:
            change(f)
        return path

    def numeric_variant(f):
        del f["labeled"]
        f.create_dataset("labeled", data=np.zeros((1, 2)))

    def flat_pair(f):
        pair = f["#refs#/labeled_2"]
        refs = pair[()].reshape(-1)
        del f["#refs#/labeled_2"]
        f["#refs#"].create_dataset("labeled_2", data=refs)
        top = f["labeled"][()]
        top[0, 1] = f["#refs#/labeled_2"].ref
        f["labeled"][...] = top

    def grey_image(f):  # image 1 of person 1 of pair 1 -> a one-channel array
        grey = f["#refs#"].create_dataset("grey", data=np.zeros((1, 4, 6), dtype=np.uint8))
        cell = f["#refs#/labeled_1"]
        refs = cell[()]
        refs[0, 0] = grey.ref
        cell[...] = refs

    cases = [
        (numeric_variant, r"'labeled' is not a MATLAB cell array"),
        (flat_pair, r"'labeled' camera pair 2 is not a persons x images cell array"),
        (grey_image, r"image '1_001_1_01.png' in .* is not an RGB uint8 image \(stored shape "
         r"\(1, 4, 6\)"),
    ]  # fmt: skip
    for change, message in cases:
        with pytest.raises(DatasetError, match=message):
            read_mat_splits(broken(change), split, "labeled", cache, show_progress=False)
    filelist = np.empty((47, 1), dtype=object)
    filelist[:, 0] = _protocol("labeled")["names"]
    filelist[2, 0] = np.array([[1.0, 2.0]])
    with pytest.raises(DatasetError, match=r"'filelist' row 3 is not a file name"):
        read_protocol(write_split_file(tmp_path / "f.mat", "labeled", filelist=filelist))


def test_unwritable_cache_is_a_clear_error(tmp_path):
    mat = write_cuhk03_mat(tmp_path / "cuhk-03.mat")
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache folder should be")
    with pytest.raises(
        DatasetError, match=r"cannot write the extracted CUHK03 images .*BENCH_CACHE"
    ):
        extract_mat_images(mat, "labeled", blocker, show_progress=False)
