"""Real-dataset adapters: Market/Duke releases, text sources, ``bench data check/info``,
Colo-Pair clip level, cross-domain runs, corrupt images met during a run."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from PIL import Image

from bench.api.samples import Sample
from bench.cli import main
from bench.config import dataset_config
from bench.data.check import check_dataset, format_report
from bench.engine.runner import RunRequest, run
from bench.errors import BenchError, DatasetError
from bench.evaluation.clips import clip_groups, pool_clips
from bench.plugins import get_dataset

SMALL_RUN = ["train.epochs=1", "synthetic.identities=16"]


def _jpegs(folder: Path, *names: str, size: tuple[int, int] = (8, 16)) -> None:
    """Tiny decodable JPEGs (colour from the name, so they differ)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        Image.new("RGB", size, (40 * i % 255, 90, 160)).save(folder / name, "JPEG")


MARKET = {
    "bounding_box_train": [
        "0002_c1s1_000451_03.jpg",
        "0002_c2s1_000500_01.jpg",
        "0007_c3s2_000100_01.jpg",
    ],
    "bounding_box_test": [
        "0003_c1s1_000001_01.jpg",
        "0003_c4s1_000020_01.jpg",
        "0009_c2s1_000001_01.jpg",
        "-1_c2s1_000001_01.jpg",
        "0000_c3s1_000001_01.jpg",
        "0000_c5s1_000002_01.jpg",
    ],
    "query": ["0003_c2s1_000009_01.jpg", "0009_c6s1_000003_01.jpg"],
}
DUKE = {
    "bounding_box_train": ["0001_c2_f0046182.jpg", "0001_c1_f0046000.jpg", "0005_c8_f0000001.jpg"],
    "bounding_box_test": ["0002_c1_f0000010.jpg", "0002_c7_f0000011.jpg", "7140_c3_f0000012.jpg"],
    "query": ["0002_c2_f0000001.jpg"],
}


def _release(root: Path, tree: dict[str, list[str]]) -> Path:
    for folder, names in tree.items():
        _jpegs(root / folder, *names)
    return root


def _adapter(name: str, root: Path | None, *sets: str):
    cls = get_dataset(name)
    return cls(root, dataset_config(cls, sets), show_progress=False)


# --------------------------------------------------------------------------- Market / Duke


def test_market_check_statistics_junk_and_distractors(tmp_path):
    root = _release(tmp_path / "Market-1501-v15.09.15", MARKET)
    (root / "bounding_box_train" / "Thumbs.db").write_bytes(b"\0")
    (root.parent / "gt_bbox").mkdir()
    report = check_dataset(_adapter("market1501", tmp_path))  # the folder holding the release
    assert report.ok, report.problems
    rows = {r["split"]: r for r in report.rows}
    assert (rows["train"]["ids"], rows["train"]["images"], rows["train"]["cameras"]) == (2, 3, 3)
    assert rows["train"]["distractors"] == "-"
    g = rows["gallery"]
    assert (g["ids"], g["images"], g["junk"], g["distractors"]) == (3, 5, 1, 2)
    assert (rows["query"]["ids"], rows["query"]["images"]) == (2, 2)
    assert rows["query"]["text"] == "0%"
    text = format_report(report)
    assert "no problems found" in text and "| gallery" in text


def test_duke_adapter_names_relabelling_and_nested_root(tmp_path):
    _release(tmp_path / "DukeMTMC-reID", DUKE)
    for root in (tmp_path, tmp_path / "DukeMTMC-reID"):
        ds = _adapter("dukemtmc", root)
        ds.prepare()
        sp = ds.load()
        assert [(s.pid, s.camid, s.frame) for s in sp.train] == [
            (0, 0, 46000),
            (0, 1, 46182),
            (1, 7, 1),
        ]
        assert sp.meta["train_pids"] == [1, 5]
        assert [s.pid for s in sp.gallery] == [2, 2, 7140] and [s.camid for s in sp.query] == [1]
    assert get_dataset("dukemtmc").provided_modalities(ds.config) == {"image"}


def test_check_lists_every_problem_with_its_path(tmp_path):
    root = _release(tmp_path / "m", MARKET)
    _jpegs(root / "bounding_box_test", "0002_c1s1_000001_01.jpg")  # a training identity
    _jpegs(root / "query", "0002_c3.jpg")  # does not parse
    (root / "bounding_box_test" / "0009_c3s1_000005_01.jpg").write_bytes(b"not a jpeg")
    (root / "bounding_box_test" / "0009_c4s1_000006_01.jpg").write_bytes(
        (root / "query" / "0009_c6s1_000003_01.jpg").read_bytes()[:60]  # truncated
    )
    report = check_dataset(_adapter("market1501", root))
    assert not report.ok and report.rows == []  # the unparsable name stops before loading
    assert [Path(p).name for p, _ in report.problems] == ["0002_c3.jpg"]
    (root / "query" / "0002_c3.jpg").unlink()
    report = check_dataset(_adapter("market1501", root))
    found = {Path(p).name: m for p, m in report.problems}
    assert set(found) == {
        "0002_c1s1_000001_01.jpg",
        "0009_c3s1_000005_01.jpg",
        "0009_c4s1_000006_01.jpg",
    }
    assert (
        "identity 2 is in both the training and the test split" in found["0002_c1s1_000001_01.jpg"]
    )
    assert "not an image" in found["0009_c3s1_000005_01.jpg"]
    assert "truncated or corrupt" in found["0009_c4s1_000006_01.jpg"]
    # decoding can be skipped; the identity problem stays
    quick = check_dataset(_adapter("market1501", root), verify_images=False)
    assert [Path(p).name for p, _ in quick.problems] == ["0002_c1s1_000001_01.jpg"]


def test_check_missing_folders_all_listed(tmp_path, capsys):
    root = tmp_path / "m"
    _jpegs(root / "query", *MARKET["query"])
    code = main(["data", "check", "market1501", "--root", str(root), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 1
    assert "2 problem(s)" in out
    assert f"{root / 'bounding_box_train'} is missing" in out
    assert f"{root / 'bounding_box_test'} is missing" in out
    assert main(["data", "check", "market1501", "--root", str(tmp_path / "none")]) == 1
    assert "root folder" in capsys.readouterr().out


def test_data_check_cli_ok_and_unknown_names(tmp_path, capsys):
    _release(tmp_path / "d", DUKE)
    assert main(["data", "check", "dukemtmc", "--root", str(tmp_path / "d"), "--no-progress"]) == 0
    assert "no problems found" in capsys.readouterr().out
    assert main(["data", "check", "dukemtm", "--root", str(tmp_path)]) == 1
    assert "dukemtmc" in capsys.readouterr().err
    assert main(["data", "check", "dukemtmc", "--set", "text.sorce=captions"]) == 1
    assert "text.source" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "needles"),
    [
        ("market1501", ["zheng-lab", "Research use only", "bounding_box_test/", "15,913"]),
        ("dukemtmc", ["DukeMTMC-reID_evaluation", "CC BY-NC-SA 4.0", "16,522", "17,661"]),
        ("colo-pair", ["on request", "no redistribution", "<polyp_id>/1/", "Eng_text"]),
        ("synthetic-polyp", ["generated by reid-bench", "protocol.level"]),
    ],
)
def test_data_info(name, needles, capsys):
    assert main(["data", "info", name]) == 0
    out = capsys.readouterr().out
    for needle in needles:
        assert needle in out, needle


# --------------------------------------------------------------------------- text sources


def test_captions_text_source_by_identity_and_file_name(tmp_path):
    root = _release(tmp_path / "m", MARKET)
    pd.DataFrame(
        {
            "key": ["0002", "3", "0009_c6s1_000003_01.jpg", "0009"],
            "text": ["id two", "id three", "one image", "id nine"],
        }
    ).to_csv(tmp_path / "caps.csv", index=False)
    sets = ("text.source=captions", f"text.file={tmp_path / 'caps.csv'}")
    ds = _adapter("market1501", root, *sets)
    assert get_dataset("market1501").provided_modalities(ds.config) == {"image", "text"}
    sp = ds.load()
    assert {s.text for s in sp.train if s.pid == 0} == {"id two"}
    assert [s.text for s in sp.query] == ["id three", "one image"]
    report = check_dataset(ds, verify_images=False)
    rows = {r["split"]: r for r in report.rows}
    assert rows["train"]["text"] == "67%" and rows["query"]["text"] == "100%"
    # a text source without its file names the key to set
    with pytest.raises(
        DatasetError, match=r"text.source=attributes.*market_attribute.mat.*text.file"
    ):
        _adapter("market1501", root, "text.source=attributes").prepare()
    with pytest.raises(DatasetError, match="text.file .*nowhere.csv does not exist"):
        _adapter("market1501", root, "text.source=captions", "text.file=nowhere.csv").prepare()


def test_text_needing_method_on_dataset_without_text_names_the_key(tmp_path, capsys):
    root = _release(tmp_path / "m", MARKET)
    from bench.api.method import MethodSpec
    from bench.engine.runner import check_modalities

    cls = get_dataset("market1501")

    class Needy:
        name = "needy"
        modalities = frozenset({"image", "text"})

    spec = MethodSpec("needy", Needy, None)  # type: ignore[arg-type]
    config = dataset_config(cls)
    with pytest.raises(BenchError, match=r"needs the text modality.*--set text.source="):
        check_modalities(spec, cls, "dataset", config)
    check_modalities(spec, cls, "dataset", {**config, "text.source": "captions"})
    assert root.is_dir()


# --------------------------------------------------------------------------- Colo-Pair


def _colo(root: Path, polyps: list[str], texts: dict[str, str]) -> Path:
    for p in polyps:
        for screening in ("1", "2"):
            _jpegs(root / p / screening, "f1.jpg", "f2.jpg")
    pd.DataFrame({"id": list(texts), "Eng_text": list(texts.values())}).to_excel(
        root / "process_text.xlsx", index=False
    )
    return root


def test_colo_pair_check_lists_sheet_and_tree_problems(tmp_path, capsys):
    polyps = [f"P{i}" for i in range(8)]
    texts = {p: f"text {p}" for p in polyps[:-1]} | {"Q9": "nobody"}
    root = _colo(tmp_path / "colo", polyps, texts)
    for f in (root / "P3" / "2").iterdir():
        f.unlink()
    code = main(["data", "check", "colo-pair", "--root", str(root), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 1 and "3 problem(s)" in out
    assert "no row for polyp folder 'P7'" in out
    assert "row id 'Q9' matches no polyp folder" in out
    assert f"{root / 'P3' / '2'} holds no images" in out
    # fixed: a table per fold, every polyp in exactly one test fold
    (root / "P3" / "2" / "f1.jpg").write_bytes((root / "P3" / "1" / "f1.jpg").read_bytes())
    _colo(root, [], {p: f"text {p}" for p in polyps})
    report = check_dataset(_adapter("colo-pair", root))
    assert report.ok, report.problems
    queries = [r for r in report.rows if r["split"] == "query"]
    assert [r["ids"] for r in queries] == [2, 2, 2, 2]
    assert all(r["text"] == "100%" for r in report.rows)


def test_clip_pooling_features_and_scores():
    samples = [
        Sample("a0", 1, 0, clip="A"),
        Sample("b0", 2, 0, clip="B"),
        Sample("a1", 1, 0, clip="A"),
        Sample("a2", 1, 0, clip="A"),
    ]
    clips, _ = clip_groups(samples, "query")
    assert [c.clip for c in clips] == ["A", "B"] and [c.path for c in clips] == ["a0", "b0"]
    feats = torch.randn(4, 5)
    gallery = [Sample("g0", 1, 1, clip="G"), Sample("g1", 1, 1, clip="G")]
    gfeats = torch.randn(2, 5)
    q, g, out = pool_clips(samples, gallery, {"query_features": feats, "gallery_features": gfeats})
    assert len(q) == 2 and len(g) == 1
    torch.testing.assert_close(out["query_features"][0], feats[[0, 2, 3]].mean(0))
    torch.testing.assert_close(out["gallery_features"][0], gfeats.mean(0))
    # a dot-product score pools to the dot product of pooled features
    _, _, pooled = pool_clips(samples, gallery, {"similarity": feats @ gfeats.T})
    torch.testing.assert_close(
        pooled["similarity"], out["query_features"] @ out["gallery_features"].T
    )
    with pytest.raises(BenchError, match=r"clip ids.*sample x"):
        clip_groups([Sample("x", 1, 0)], "query")
    with pytest.raises(BenchError, match="mixes identities"):
        clip_groups([Sample("x", 1, 0, clip="A"), Sample("y", 2, 0, clip="A")], "gallery")


def test_clip_level_run_ranks_clips(tmp_path):
    (record,) = run(
        RunRequest(
            method="bot",
            dataset="synthetic-polyp",
            preset="quick",
            fold="fold1",
            sets=[*SMALL_RUN, "protocol.level=clip"],
            results_dir=tmp_path / "results",
            progress=False,
        )
    )
    assert record["protocol"] == "colo-pair/clip"
    # 16 polyps, 4 folds: 4 test polyps, one query clip each
    assert record["metrics"]["num_queries"] == 4
    assert main(["leaderboard", "--results-dir", str(tmp_path / "results")]) == 0


# --------------------------------------------------------------------------- runs


def test_cross_domain_run_trains_on_one_and_evaluates_on_another(tmp_path, capsys):
    source = get_dataset("synthetic-person")
    person = source(None, dataset_config(source, ["synthetic.identities=16"]), show_progress=False)
    person.prepare()
    results = tmp_path / "results"
    code = main(
        [
            "run",
            "--method",
            "bot",
            "--preset",
            "quick",
            "--train-dataset",
            "synthetic-person",
            "--dataset",
            "market1501",
            "--root",
            str(person.root),
            "--set",
            "train.epochs=1",
            "--set",
            "synthetic.identities=16",
            "--results-dir",
            str(results),
            "--no-progress",
        ]
    )
    assert code == 0, capsys.readouterr().err
    (path,) = (results / "runs").glob("*.json")
    record = json.loads(path.read_text())
    assert (record["dataset"], record["train_dataset"]) == ("market1501", "synthetic-person")
    assert record["protocol"] == "market"
    assert main(["leaderboard", "--results-dir", str(results)]) == 0
    out = capsys.readouterr().out
    assert "| bot · quick · " in out and " [train: synthetic-person] |" in out


def test_corrupt_image_met_during_a_run_stops_it_naming_the_file(tmp_path, capsys):
    root = _release(tmp_path / "m", MARKET)
    bad = root / "bounding_box_train" / "0007_c3s2_000100_01.jpg"
    bad.write_bytes(bad.read_bytes()[:50])
    results = tmp_path / "results"
    code = main(
        [
            "run",
            "--method",
            "bot",
            "--preset",
            "quick",
            "--dataset",
            "market1501",
            "--root",
            str(root),
            "--set",
            "train.epochs=1",
            "--set",
            "sampler.p=2",
            "--set",
            "sampler.k=2",
            "--results-dir",
            str(results),
            "--no-progress",
        ]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert f"cannot read image {bad}: truncated or corrupt" in err
    assert not list(results.glob("runs/*.json"))


# --------------------------------------------------------------------------- full size (slow)

#: Published statistics: (ids, images) of train, query, gallery; gallery images without junk.
FULL_SIZE = {
    "market1501": {"train": (751, 12936), "query": (750, 3368), "gallery": (751, 15913)},
    "dukemtmc": {"train": (702, 16522), "query": (702, 2228), "gallery": (1110, 17661)},
}


def _spread(n_images: int, pids: list[int]) -> list[int]:
    """``n_images`` identity labels covering every pid, as evenly as possible."""
    return [pids[i % len(pids)] for i in range(n_images)]


def _full_tree(root: Path, name: str) -> None:
    """Empty files with real names in the real counts (Market: 3,819 junk gallery images)."""

    def write(folder: str, labels: list[int], cams: int) -> None:
        (root / folder).mkdir(parents=True)
        for i, pid in enumerate(labels):
            cam = 1 + i % cams
            file = (
                (
                    f"{pid:04d}_c{cam}s1_{i:06d}_01.jpg"
                    if pid >= 0
                    else f"-1_c{cam}s1_{i:06d}_01.jpg"
                )
                if name == "market1501"
                else f"{pid:04d}_c{cam}_f{i:07d}.jpg"
            )
            (root / folder / file).touch()

    if name == "market1501":
        train_ids, test_ids = list(range(1, 752)), list(range(752, 1502))
        write("bounding_box_train", _spread(12936, train_ids), 6)
        write("query", _spread(3368, test_ids), 6)
        gallery = _spread(15913 - 2793, test_ids) + [0] * 2793 + [-1] * 3819
        write("bounding_box_test", gallery, 6)
    else:
        train_ids, test_ids = list(range(1, 703)), list(range(703, 1405))
        write("bounding_box_train", _spread(16522, train_ids), 8)
        write("query", _spread(2228, test_ids), 8)
        distractors = list(range(5000, 5408))
        write("bounding_box_test", _spread(17661, test_ids + distractors), 8)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(FULL_SIZE))
def test_full_size_release_statistics(tmp_path, name):
    _full_tree(tmp_path, name)
    report = check_dataset(_adapter(name, tmp_path), verify_images=False)
    assert report.ok, report.problems[:3]
    got = {r["split"]: (r["ids"], r["images"]) for r in report.rows}
    assert got == FULL_SIZE[name]
    if name == "market1501":
        gallery = next(r for r in report.rows if r["split"] == "gallery")
        assert (gallery["junk"], gallery["distractors"]) == (3819, 2793)


def _shared_data() -> Path | None:
    """``shared/data`` beside the checkout (CI: ``../shared``; worktrees: ``../../shared``)."""
    here = Path(__file__).resolve().parent.parent
    for base in (here, here.parent, here.parent.parent):
        if (base / "shared" / "data").is_dir():
            return base / "shared" / "data"
    return None


def test_attribute_text_source_on_market(tmp_path):
    data = _shared_data()
    mat = data / "market1501_attribute" / "market_attribute.mat" if data else None
    if mat is None or not mat.is_file():
        pytest.skip("real market_attribute.mat not found (shared/data/ beside the repo)")
    root = _release(tmp_path / "m", MARKET)
    (root / "market_attribute.mat").symlink_to(mat)  # found in the root without text.file
    sp = _adapter("market1501", root, "text.source=attributes").load()
    train_texts = {s.pid: s.text for s in sp.train}
    assert train_texts[0] and train_texts[1] and train_texts[0] != train_texts[1]
    assert all(s.text for s in sp.query)  # test identities 3 and 9 are annotated
    assert [s.text for s in sp.gallery if s.pid in (-1, 0)] == [None, None, None]


def test_cuhk_pedes_text_source_on_market(tmp_path):
    root = _release(tmp_path / "m", MARKET)
    records = [
        {"file_path": "Market/0002_c1s1_000451_03.jpg", "id": 1, "captions": ["a", "b"]},
        {"file_path": "CUHK03/0002_c1s1_000451_03.jpg", "id": 2, "captions": ["other"]},
        {"file_path": "Market/0003_c2s1_000009_01.jpg", "id": 3, "captions": ["q", "r"]},
    ]
    (tmp_path / "reid_raw.json").write_text(json.dumps(records))
    sets = ("text.source=cuhk-pedes", f"text.file={tmp_path / 'reid_raw.json'}")
    sp = _adapter("market1501", root, *sets).load()
    assert [s.text for s in sp.train] == ["a", None, None]
    assert [s.text for s in sp.query] == ["q", None]
    sp = _adapter("market1501", root, *sets, "text.caption_index=1").load()
    assert [s.text for s in sp.query] == ["r", None]
    with pytest.raises(DatasetError, match="CUHK-PEDES holds no images"):
        _adapter("dukemtmc", _release(tmp_path / "d", DUKE), *sets).load()
