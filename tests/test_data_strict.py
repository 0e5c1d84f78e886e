"""No silent accept (issue 14): a text file that is not UTF-8, a caption key listed twice, an
empty text, an image symlink to nothing and an identity in both train and test are each one
error naming the file and the key, path or identity, the same in ``bench run`` (before any
training) as in ``bench data check``."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from bench.api.samples import Sample, Splits
from bench.cli import main
from bench.config import dataset_config
from bench.data.captions import read_captions
from bench.data.check import check_dataset
from bench.data.colo_pair import read_text_sheet
from bench.data.guards import refuse_unsafe_splits
from bench.data.market import read_market_folder
from bench.data.text_sources import read_cuhk_pedes
from bench.errors import BenchError, DatasetError
from bench.plugins import get_dataset, get_method
from bench.results.reported import load_reported_file
from bench.sweep.spec import load_sweep_file


def _run(root: Path, results: Path, *sets: str) -> int:
    args = ["run", "--method", "bot", "--preset", "quick", "--dataset", "market1501"]
    args += ["--root", str(root), "--results-dir", str(results), "--no-progress"]
    for item in ("train.epochs=1", "sampler.p=2", "sampler.k=2", *sets):
        args += ["--set", item]
    return main(args)


def _check(root: Path, *args: str) -> int:
    return main(["data", "check", "market1501", "--root", str(root), "--no-progress", *args])


@pytest.fixture
def no_training(monkeypatch):
    """``bot`` fails the test if it starts training."""

    def fit(self, train):
        raise AssertionError("training started")

    monkeypatch.setattr(get_method("bot").family, "fit", fit)


# --------------------------------------------------------------------------- not UTF-8


def test_caption_file_not_utf8_names_the_file_and_the_encoding(tmp_path):
    latin = tmp_path / "captions.json"
    latin.write_bytes('{"0002": "un caf\u00e9"}'.encode("latin-1"))
    with pytest.raises(DatasetError) as e:
        read_captions(latin)
    assert str(e.value) == (
        f"captions file {latin}: not UTF-8 text (byte 0xe9 at offset 16); save it as UTF-8"
    )
    sheet = tmp_path / "captions.csv"
    sheet.write_bytes(b"\xef\xbb\xbfkey,text\n0002,un caf\xe9\n")  # BOM, then latin-1
    with pytest.raises(DatasetError, match=r"captions\.csv: not UTF-8 text \(byte 0xe9 at offset"):
        read_captions(sheet)
    sheet.write_bytes("\ufeffkey,text\n0002,un café\n".encode())  # UTF-8 with a BOM: fine
    assert read_captions(sheet) == {"0002": "un café"}


def test_sheets_and_yaml_files_not_utf8_name_the_file(tmp_path):
    text_sheet = tmp_path / "text.csv"
    text_sheet.write_bytes(b"id,Eng_text\nP001,caf\xe9\n")
    with pytest.raises(DatasetError, match=r"text sheet .*text\.csv: not UTF-8 text"):
        read_text_sheet(text_sheet)
    pedes = tmp_path / "reid_raw.json"
    pedes.write_bytes(b'[{"file_path": "Market/a.jpg", "captions": ["caf\xe9"]}]')
    with pytest.raises(DatasetError, match=r"CUHK-PEDES file .*reid_raw\.json: not UTF-8"):
        read_cuhk_pedes(pedes, "Market")
    reported = tmp_path / "paper.yaml"
    reported.write_bytes(b"citation: Caf\xe9 et al.\n")
    with pytest.raises(BenchError, match=r"reported results .*paper\.yaml: not UTF-8 text"):
        load_reported_file(reported)
    sweep = tmp_path / "sweep.yaml"
    sweep.write_bytes(b"methods: [bot]\n# caf\xe9\n")
    with pytest.raises(BenchError) as e:
        load_sweep_file(sweep)
    assert (
        str(e.value)
        == f"sweep file {sweep}: not UTF-8 text (byte 0xe9 at offset 20); save it as UTF-8"
    )


def test_run_and_check_name_a_caption_file_that_is_not_utf8(
    tmp_path, capsys, no_training, market_release
):
    root = market_release(tmp_path / "m")
    captions = tmp_path / "captions.csv"
    captions.write_bytes(b"key,text\n0002,un caf\xe9\n")
    sets = ["text.source=captions", f"text.file={captions}"]
    assert _run(root, tmp_path / "results", *sets) == 1
    err = capsys.readouterr().err
    assert f"captions file {captions}: not UTF-8 text (byte 0xe9" in err
    assert "unexpected" not in err
    assert _check(root, *[a for s in sets for a in ("--set", s)]) == 1
    assert f"captions file {captions}: not UTF-8 text" in capsys.readouterr().out


# --------------------------------------------------------------------------- repeated keys


def test_duplicate_json_caption_key_names_the_key(tmp_path):
    path = tmp_path / "captions.json"
    path.write_text('{"0002": "a man", "0003": "a girl", "0002": "a woman"}')
    with pytest.raises(DatasetError) as e:
        read_captions(path)
    assert str(e.value) == (
        f"captions file {path} lists the key '0002' twice with different texts; keep one"
    )
    path.write_text('{"0002": "a man", "0002": "a man"}')  # the same text twice loses nothing
    assert read_captions(path) == {"0002": "a man"}


def test_duplicate_csv_rows_and_one_identity_under_two_keys(tmp_path):
    path = tmp_path / "captions.csv"
    rows = [(f"{i:04d}", "a") for i in range(6)] + [(f"{i:04d}", "b") for i in range(6)]
    pd.DataFrame(rows, columns=["key", "text"]).to_csv(path, index=False)
    with pytest.raises(DatasetError, match=r"keys '0000', '0001', '0002' and 3 more twice"):
        read_captions(path)
    path.write_text("key,text\n0002,a man\n2,a woman\n")
    with pytest.raises(DatasetError, match=r"keys '0002' and '2' name the same identity"):
        read_captions(path)
    path.write_text("key,text\n,a caption without a key\n")
    with pytest.raises(DatasetError, match=r"line 2 has a text but no key"):
        read_captions(path)


def test_text_sheet_id_twice_lists_the_ids(tmp_path):
    path = tmp_path / "text.json"
    path.write_text('{"P001": "a", "P002": "b", "P001": "c"}')
    with pytest.raises(DatasetError, match=r"lists the key 'P001' twice with different texts"):
        read_text_sheet(path)


# --------------------------------------------------------------------------- empty texts


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("captions.json", '{"0002": "a man", "0003": ""}'),
        ("captions.json", '{"0002": "a man", "0003": " \\t "}'),
        ("captions.csv", "key,text\n0002,a man\n0003,\n"),
        ("captions.csv", 'key,text\n0002,a man\n0003,"   "\n'),
    ],
)
def test_empty_text_names_the_key(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DatasetError) as e:
        read_captions(path)
    assert str(e.value) == (
        f"captions file {path}: the key '0003' has an empty text; write a text or drop the key"
    )


def test_empty_texts_in_sheets_and_cuhk_pedes(tmp_path):
    sheet = tmp_path / "text.csv"
    sheet.write_text("id,Eng_text\nP001,a polyp\nP002,\nP003, \nP004,\nP005,\n")
    with pytest.raises(DatasetError) as e:
        read_text_sheet(sheet)
    assert str(e.value) == (
        f"text sheet {sheet}: ids 'P002', 'P003', 'P004' and 1 more have empty Eng_text; "
        f"write a text or drop the row"
    )
    pedes = tmp_path / "reid_raw.json"
    records = [
        {"file_path": "Market/0002_c1s1_000451_03.jpg", "captions": ["a man", "x"]},
        {"file_path": "Market/0003_c1s1_000001_01.jpg", "captions": [" ", "y"]},
    ]
    pedes.write_text(json.dumps(records))
    with pytest.raises(
        DatasetError, match=r"caption 0 of Market/0003_c1s1_000001_01\.jpg is empty"
    ):
        read_cuhk_pedes(pedes, "Market")
    assert read_cuhk_pedes(pedes, "Market", caption=1)["0003_c1s1_000001_01.jpg"] == "y"


def test_empty_sample_text_is_refused_whatever_reader_made_it(tmp_path):
    t, q, g = (str(tmp_path / n) for n in ("t.jpg", "q.jpg", "g.jpg"))
    for path in (t, q, g):
        Path(path).touch()
    splits = Splits([Sample(t, 0, 0, "a man")], [Sample(q, 1, 0, "  ")], [Sample(g, 1, 1)])
    with pytest.raises(DatasetError) as e:
        refuse_unsafe_splits(splits, "plugin-set")
    assert str(e.value) == f"image {q} of plugin-set has an empty text; give a text or none"
    Path(g).unlink()
    with pytest.raises(DatasetError, match=rf"image {g} of plugin-set does not exist$"):
        refuse_unsafe_splits(splits, "plugin-set")


# --------------------------------------------------------------------------- symlinks


def test_dangling_symlink_image_names_the_path(tmp_path, capsys, no_training, market_release):
    root = market_release(tmp_path / "m")
    link = root / "bounding_box_train" / "0007_c5s2_000102_01.jpg"
    gone = tmp_path / "elsewhere" / "0007.jpg"
    os.symlink(gone, link)
    with pytest.raises(DatasetError) as e:
        read_market_folder(root / "bounding_box_train")
    assert str(e.value) == f"image {link} is a symlink to {gone}, which does not exist"
    assert _run(root, tmp_path / "results") == 1
    assert f"bench: error: image {link} is a symlink to {gone}" in capsys.readouterr().err
    assert _check(root) == 1
    out = capsys.readouterr().out
    assert f"image {link} is a symlink to {gone}, which does not exist" in out
    # several: one line, a few named
    for i in range(4):
        os.symlink(gone, root / "query" / f"0003_c{i + 1}s1_00000{i}_02.jpg")
    report = check_dataset(_adapter(root), verify_images=False)
    (line,) = [m for _, m in report.problems if m.startswith("4 images")]
    assert line.startswith(f"4 images in {root / 'query'} are symlinks whose targets do not exist")
    assert line.endswith(" and 1 more")


def test_a_symlinked_folder_to_nothing_says_so(tmp_path, market_release):
    root = market_release(tmp_path / "m")
    (root / "query").rename(tmp_path / "moved")
    os.symlink(tmp_path / "gone", root / "query")
    report = check_dataset(_adapter(root), verify_images=False)
    assert any(
        f"folder {root / 'query'} is missing (a symlink to {tmp_path / 'gone'}, which does not "
        "exist)" in m
        for _, m in report.problems
    )


def _adapter(root: Path, *sets: str):
    cls = get_dataset("market1501")
    return cls(root, dataset_config(cls, sets), show_progress=False)


# --------------------------------------------------------------------------- train/test overlap


def test_train_test_overlap_stops_run_before_training_and_is_listed_by_check(
    tmp_path, capsys, no_training, market_release
):
    root = market_release(tmp_path / "m")
    leaked = root / "bounding_box_test" / "0002_c5s1_000001_01.jpg"
    Image.new("RGB", (8, 16), (1, 2, 3)).save(leaked, "JPEG")
    expected = (
        f"identity 2 is in both the training and the test split of market1501 (e.g. {leaked}); "
        f"a run would be scored on identities it trained on"
    )
    results = tmp_path / "results"
    assert _run(root, results) == 1
    assert f"bench: error: {expected}\n" in capsys.readouterr().err
    assert not list(results.glob("runs/*.json")) and not list(results.rglob("*.pt"))
    assert _check(root) == 1
    out = capsys.readouterr().out
    assert f"  {expected}" in out.splitlines()
    leaked.unlink()
    assert _check(root) == 0  # distractors (0000) and junk (-1) in the test split are no overlap


def test_several_overlapping_identities_are_one_line():
    train = [Sample(f"t{p}.jpg", p, 0) for p in range(6)]
    test = [Sample(f"g{p}.jpg", p, 1) for p in (-1, 0, 1, 2, 3, 4, 5)]
    splits = Splits(train, test[:1], test, meta={"train_pids": [0, 1, 2, 3, 4, 5]})
    with pytest.raises(DatasetError) as e:
        refuse_unsafe_splits(splits, "set", "fold1")
    message = str(e.value)
    assert message.startswith("identities 1, 2, 3 and 2 more are in both the training and the ")
    assert "test split of set fold1 (e.g. g1.jpg)" in message


# --------------------------------------------------------------------------- property


def _json_text(draw_pairs: list[tuple[str, object]]) -> str:
    """A JSON object written by hand, so that keys can repeat."""
    return "{" + ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in draw_pairs) + "}"


values = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", " ", "\t\n"]),
    st.integers(),
    st.none(),
    st.booleans(),
    st.lists(st.text(max_size=3), max_size=2),
)
keys = st.one_of(st.text(max_size=8), st.sampled_from(["0002", "2", "02", "a.jpg", "", " "]))
caption_files = st.one_of(
    st.tuples(st.just(".json"), st.binary(max_size=80)),
    st.tuples(st.just(".csv"), st.binary(max_size=80)),
    st.tuples(
        st.just(".json"),
        st.lists(st.tuples(keys, values), max_size=6).map(lambda p: _json_text(p).encode()),
    ),
    st.tuples(
        st.just(".csv"),
        st.lists(st.tuples(keys, st.text(max_size=10)), max_size=6).map(
            lambda rows: pd.DataFrame(rows, columns=["key", "text"]).to_csv(index=False).encode()
        ),
    ),
    st.tuples(
        st.sampled_from([".json", ".csv"]),
        st.text(max_size=60).map(str.encode),
    ),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(caption_files)
def test_caption_reader_returns_clean_captions_or_its_own_error(case):
    suffix, content = case
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"captions{suffix}"
        path.write_bytes(content)
        try:
            captions = read_captions(path)
        except DatasetError as e:
            assert str(path) in str(e)
            return
    assert isinstance(captions, dict)
    for key, text in captions.items():
        assert isinstance(key, str) and key.strip()
        assert isinstance(text, str) and text.strip()
