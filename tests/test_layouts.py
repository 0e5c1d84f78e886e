"""Layout readers: Market/Duke names, captions, Colo-Pair trees and sheets, k-fold splits."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from bench.api.samples import Sample
from bench.data.captions import attach_text, read_captions
from bench.data.colo_pair import colo_pair_splits, find_text_sheet, read_colo_pair, read_text_sheet
from bench.data.market import DUKE, read_market_folder, read_market_splits
from bench.data.splits import kfold_by_identity, relabel
from bench.errors import DatasetError
from bench.plugins import get_dataset


def _touch(folder: Path, *names: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"")


# --------------------------------------------------------------------------- Market / Duke


def test_market_names_junk_distractors_and_non_jpg(tmp_path):
    _touch(
        tmp_path,
        "0002_c1s1_000451_03.jpg",
        "-1_c1s1_000401_03.jpg",
        "0000_c6s2_012345_01.jpg",
        "1501_c3s4_000002_02.jpg",
        "Thumbs.db",
        "notes.txt",
    )
    got = [(Path(s.path).name, s.pid, s.camid, s.frame) for s in read_market_folder(tmp_path)]
    assert got == [
        ("-1_c1s1_000401_03.jpg", -1, 0, 401),
        ("0000_c6s2_012345_01.jpg", 0, 5, 12345),
        ("0002_c1s1_000451_03.jpg", 2, 0, 451),
        ("1501_c3s4_000002_02.jpg", 1501, 2, 2),
    ]
    assert all(s.text is None and s.clip is None for s in read_market_folder(tmp_path))


def test_duke_names(tmp_path):
    _touch(tmp_path, "0001_c2_f0046182.jpg", "7140_c8_f0000001.jpg")
    for pattern in (DUKE, "duke"):
        got = [(s.pid, s.camid, s.frame) for s in read_market_folder(tmp_path, pattern)]
        assert got == [(1, 1, 46182), (7140, 7, 1)]
    with pytest.raises(DatasetError, match="0001_c2_f0046182.jpg"):
        read_market_folder(tmp_path)  # a Duke name is not a Market name


@pytest.mark.parametrize("bad", ["0002_c1_000451_03.jpg", "abc_c1s1_000451_03.jpg", "0002.jpg"])
def test_unparsable_name_names_the_file(tmp_path, bad):
    _touch(tmp_path, "0002_c1s1_000451_03.jpg", bad)
    with pytest.raises(DatasetError, match=bad.replace(".", r"\.")):
        read_market_folder(tmp_path)


def test_missing_folder_names_it_and_the_tree(tmp_path):
    with pytest.raises(DatasetError) as err:
        read_market_folder(tmp_path / "query")
    assert str(tmp_path / "query") in str(err.value)
    assert "bounding_box_train/" in str(err.value) and "bounding_box_test/" in str(err.value)
    _touch(tmp_path / "bounding_box_train", "0002_c1s1_000451_03.jpg")
    _touch(tmp_path / "bounding_box_test", "0002_c2s1_000451_03.jpg")
    with pytest.raises(DatasetError, match=str(tmp_path / "query")):
        read_market_splits(tmp_path)
    (tmp_path / "query").mkdir()
    with pytest.raises(DatasetError, match="no .jpg"):
        read_market_splits(tmp_path)


def test_relabel_sorted_original_pids_and_drops_junk():
    samples = [Sample(f"{i}.jpg", pid, i % 3, frame=i) for i, pid in enumerate([9, 2, 5, 2, -1, 9])]
    out = relabel(samples)
    assert [s.pid for s in out] == [2, 0, 1, 0, 2]
    assert [s.path for s in out] == ["0.jpg", "1.jpg", "2.jpg", "3.jpg", "5.jpg"]
    assert [(s.camid, s.frame) for s in out] == [(0, 0), (1, 1), (2, 2), (0, 3), (2, 5)]


# --------------------------------------------------------------------------- captions


def test_captions_json_csv_and_attach_priority(tmp_path):
    samples = [
        Sample("/x/0002_c1s1_000451_03.jpg", 2, 0),
        Sample("/x/0002_c2s1_000500_01.jpg", 2, 1),
        Sample("/x/0007_c2s1_000500_01.jpg", 7, 1),
        Sample("/x/0009_c2s1_000500_01.jpg", 9, 1),
    ]
    caps = {"0002_c1s1_000451_03.jpg": "by file", "0002": "by padded id", "7": "by plain id"}
    (tmp_path / "c.json").write_text(json.dumps(caps))
    pd.DataFrame({"key": list(caps), "text": list(caps.values()), "extra": 1}).to_csv(
        tmp_path / "c.csv", index=False
    )
    for path in (tmp_path / "c.json", tmp_path / "c.csv"):
        loaded = read_captions(path)
        assert loaded == caps
        assert [s.text for s in attach_text(samples, loaded)] == [
            "by file",
            "by padded id",
            "by plain id",
            None,
        ]


def test_captions_errors(tmp_path):
    pd.DataFrame({"key": ["a"], "caption": ["t"]}).to_csv(tmp_path / "c.csv", index=False)
    with pytest.raises(DatasetError, match=r"'text'.*columns present: key, caption"):
        read_captions(tmp_path / "c.csv")
    (tmp_path / "c.json").write_text("[1, 2]")
    with pytest.raises(DatasetError, match="c.json"):
        read_captions(tmp_path / "c.json")
    with pytest.raises(DatasetError, match="missing.json"):
        read_captions(tmp_path / "missing.json")


# --------------------------------------------------------------------------- Colo-Pair

POLYPS = ["B2", "A1", "C3", "E5", "D4"]  # sorted: A1 B2 C3 D4 E5
TEXTS = {p: f"text of {p}" for p in POLYPS}


def _colo_tree(root: Path, polyps=POLYPS, frames=("f2.jpg", "f10.jpg", "f1.jpg")) -> Path:
    for p in polyps:
        for s in ("1", "2"):
            _touch(root / p / s, *frames)
    return root


def _sheet(root: Path, kind: str, texts=TEXTS, columns=("id", "Eng_text")) -> Path:
    frame = pd.DataFrame({columns[0]: list(texts), columns[1]: list(texts.values())})
    path = root / f"text.{kind}"
    if kind == "xlsx":
        frame.to_excel(path, index=False)
    elif kind == "csv":
        frame.to_csv(path, index=False)
    else:
        path.write_text(
            json.dumps(frame.to_dict("records") if columns != ("id", "Eng_text") else texts)
        )
    return path


@pytest.mark.parametrize("kind", ["xlsx", "csv", "json"])
def test_colo_pair_tree_and_sheets(tmp_path, kind):
    root = _colo_tree(tmp_path / "colo")
    sheet = _sheet(tmp_path, kind)
    assert read_text_sheet(sheet) == TEXTS
    samples = read_colo_pair(root, sheet)
    assert len(samples) == 5 * 2 * 3
    first = samples[:6]
    assert [Path(s.path).name for s in first] == ["f1.jpg", "f2.jpg", "f10.jpg"] * 2
    assert [(s.pid, s.camid, s.frame, s.clip) for s in first] == [
        (0, 0, 0, "A1/1"),
        (0, 0, 1, "A1/1"),
        (0, 0, 2, "A1/1"),
        (0, 1, 0, "A1/2"),
        (0, 1, 1, "A1/2"),
        (0, 1, 2, "A1/2"),
    ]
    for s in samples:
        polyp = s.clip.split("/")[0]
        assert s.pid == sorted(POLYPS).index(polyp)
        assert s.text == TEXTS[polyp]
        assert Path(s.path).parent.name == str(s.camid + 1)


def test_colo_pair_json_records_ids_as_text_and_patient_key(tmp_path):
    records = [{"id": "0011", "Eng_text": "patient 001"}, {"id": "A", "Eng_text": "patient A"}]
    (tmp_path / "s.json").write_text(json.dumps(records))
    assert read_text_sheet(tmp_path / "s.json") == {"0011": "patient 001", "A": "patient A"}
    pd.DataFrame({"id": ["0011"], "Eng_text": ["x"]}).to_excel(tmp_path / "s.xlsx", index=False)
    assert read_text_sheet(tmp_path / "s.xlsx") == {"0011": "x"}  # not 11
    root = _colo_tree(tmp_path / "colo", ["A1", "A2", "0011"])
    texts = {s.clip: s.text for s in read_colo_pair(root, tmp_path / "s.json", text_key="patient")}
    # colo_pair.text_key=patient: the row of the polyp's patient (DMCL's released matching)
    assert texts == {
        "0011/1": "patient 001",
        "0011/2": "patient 001",
        "A1/1": "patient A",
        "A1/2": "patient A",
        "A2/1": "patient A",
        "A2/2": "patient A",
    }
    assert all(s.text is None for s in read_colo_pair(root, None))


def test_colo_pair_errors(tmp_path):
    with pytest.raises(DatasetError, match=str(tmp_path / "nowhere")):
        read_colo_pair(tmp_path / "nowhere", None)
    root = _colo_tree(tmp_path / "colo")
    (tmp_path / "colo" / "C3" / "2" / "f1.jpg").unlink()
    for f in ("f2.jpg", "f10.jpg"):
        (tmp_path / "colo" / "C3" / "2" / f).unlink()
    with pytest.raises(DatasetError, match=r"C3/2.*no images"):
        read_colo_pair(root, None)
    (tmp_path / "colo" / "C3" / "2").rmdir()
    with pytest.raises(DatasetError, match=r"C3/2 is missing"):
        read_colo_pair(root, None)
    _touch(root / "C3" / "2", "a.jpg")
    bad = _sheet(tmp_path, "xlsx", columns=("id", "text"))
    with pytest.raises(DatasetError, match=r"'Eng_text'.*columns present: id, text"):
        read_colo_pair(root, bad)
    bad = _sheet(tmp_path, "csv", columns=("ID", "Eng_text"))
    with pytest.raises(DatasetError, match=r"'id'.*columns present: ID, Eng_text"):
        read_text_sheet(bad)
    partial = _sheet(tmp_path, "json", texts={p: "t" for p in POLYPS[:-1]})
    with pytest.raises(DatasetError, match="D4"):
        read_colo_pair(root, partial)
    pd.DataFrame({"id": ["a", "a"], "Eng_text": ["x", "y"]}).to_csv(tmp_path / "d.csv")
    with pytest.raises(DatasetError, match="'a' twice"):
        read_text_sheet(tmp_path / "d.csv")
    with pytest.raises(DatasetError, match="no polyp folders"):
        read_colo_pair(tmp_path / "colo" / "A1" / "1", None)


def test_find_text_sheet(tmp_path):
    with pytest.raises(DatasetError, match="no text sheet"):
        find_text_sheet(tmp_path)
    _sheet(tmp_path, "xlsx")
    (tmp_path / "~$text.xlsx").write_bytes(b"lock")
    (tmp_path / ".hidden.json").write_text("{}")
    assert find_text_sheet(tmp_path) == tmp_path / "text.xlsx"
    _sheet(tmp_path, "csv")
    with pytest.raises(DatasetError, match=r"several.*text.csv, text.xlsx"):
        find_text_sheet(tmp_path)


# --------------------------------------------------------------------------- folds


@pytest.mark.parametrize("n", [2, 3, 7, 12, 31, 48])
def test_kfold_properties(n):
    ids = [f"id{i:03d}" for i in range(n)][::-1]  # order given does not matter
    for k in range(2, min(n, 9) + 1):
        folds = kfold_by_identity(ids, k)
        assert len(folds) == k
        flat = [i for f in folds for i in f]
        assert sorted(flat) == sorted(ids) and len(set(flat)) == n  # disjoint, covering
        sizes = [len(f) for f in folds]
        assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1
        # contiguous blocks of the sorted ids, last block first
        assert [i for f in folds[::-1] for i in f] == sorted(ids)
        assert folds == kfold_by_identity(list(ids), k)


def test_kfold_matches_dmcl_slices():
    ids = list(range(31))
    assert kfold_by_identity(ids, 4) == [ids[24:31], ids[16:24], ids[8:16], ids[0:8]]


@pytest.mark.parametrize("k", [0, 1, 6, "4"])
def test_kfold_bad_k_names_protocol_folds(k):
    with pytest.raises(DatasetError, match="protocol.folds"):
        kfold_by_identity([1, 2, 3, 4, 5], k)


def test_colo_pair_splits(tmp_path):
    root = _colo_tree(tmp_path / "colo", [f"P{i:02d}" for i in range(10)])
    samples = read_colo_pair(root, None)
    seen: list[int] = []
    for i in range(3):
        sp = colo_pair_splits(samples, f"fold{i}", 3)
        test = {s.pid for s in sp.query}
        assert test == {s.pid for s in sp.gallery}
        seen += sorted(test)
        assert test == set(kfold_by_identity(range(10), 3)[i])
        assert all(s.camid == 0 for s in sp.query) and all(s.camid == 1 for s in sp.gallery)
        assert len(sp.query) == len(sp.gallery) == 3 * len(test)
        assert sorted({s.pid for s in sp.train}) == list(range(10 - len(test)))
        assert len(sp.train) == 6 * (10 - len(test))
        train_polyps = {s.clip.split("/")[0] for s in sp.train}
        assert not train_polyps & set(sp.meta["test_polyps"])
        assert sp.fold == f"fold{i}"
    assert sorted(seen) == list(range(10))
    assert colo_pair_splits(samples, None, 3).query == colo_pair_splits(samples, "fold0", 3).query
    with pytest.raises(DatasetError, match="fold0, fold1, fold2"):
        colo_pair_splits(samples, "fold3", 3)


# --------------------------------------------------------------------------- adapters


def _market_tree(root: Path) -> None:
    _touch(
        root / "bounding_box_train",
        "0002_c1s1_000451_03.jpg",
        "0007_c2s1_000100_01.jpg",
        "Thumbs.db",
    )
    _touch(
        root / "bounding_box_test",
        "0003_c1s1_000001_01.jpg",
        "-1_c2s1_000001_01.jpg",
        "0000_c3s1_000001_01.jpg",
    )
    _touch(root / "query", "0003_c2s1_000009_01.jpg")


def test_market1501_adapter_direct_and_nested_root(tmp_path):
    cls = get_dataset("market1501")
    _market_tree(tmp_path / "dl" / "Market-1501-v15.09.15")
    for root in (tmp_path / "dl", tmp_path / "dl" / "Market-1501-v15.09.15"):
        ds = cls(root, {})
        ds.prepare()
        sp = ds.load(None)
        assert [s.pid for s in sp.train] == [0, 1]
        assert [s.pid for s in sp.gallery] == [-1, 0, 3] and [s.pid for s in sp.query] == [3]
    (tmp_path / "dl" / "Market-1501-v15.09.15" / "query" / "0003_c2s1_000009_01.jpg").unlink()
    (tmp_path / "dl" / "Market-1501-v15.09.15" / "query").rmdir()
    with pytest.raises(DatasetError, match=r"query is missing.*bounding_box_train/"):
        cls(tmp_path / "dl", {}).prepare()
    with pytest.raises(DatasetError, match="--root"):
        cls(None, {})


def test_colo_pair_adapter(tmp_path):
    cls = get_dataset("colo-pair")
    assert cls.default_config == {
        "protocol": {"folds": 4, "level": "frame"},
        "colo_pair": {"text_key": "polyp"},
    }
    root = _colo_tree(tmp_path / "colo", [f"P{i:02d}" for i in range(8)])
    _sheet(root, "csv", texts={f"P{i:02d}": f"t{i}" for i in range(8)})
    ds = cls(root, {"protocol.folds": 4})
    ds.prepare()
    assert ds.folds() == ["fold0", "fold1", "fold2", "fold3"]
    sp = ds.load("fold1")
    assert sp.meta["test_polyps"] == ["P04", "P05"]
    assert {s.text for s in sp.query} == {"t4", "t5"}
    _sheet(root, "json", texts={f"P{i:02d}": "x" for i in range(8)})
    with pytest.raises(DatasetError, match="several"):
        ds.prepare()
    with pytest.raises(DatasetError, match="protocol.folds"):
        cls(root, {"protocol.folds": 1}).folds()
