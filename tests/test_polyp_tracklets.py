"""polyp-tracklets: NTSSL's COCO layout read into tracklets as its released code builds them."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
from PIL import Image

from bench.cli import main
from bench.config import dataset_config
from bench.data.tracklets import Instance, build_tracklets, iou, read_instances, video_of
from bench.errors import ConfigError, DatasetError
from bench.plugins import get_dataset


def write_root(root: Path, split_instances: dict[str, list[dict]], image_size=(32, 24)) -> Path:
    """A COCO root: per split a list of {identity, frame, box, histology?, size?} dicts; one
    image per (split, frame, video)."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "annotations").mkdir(exist_ok=True)
    for split, items in split_instances.items():
        images, anns, ids = [], [], {}
        for k, item in enumerate(items):
            video = video_of(item["identity"])
            key = (video, item["frame"])
            if key not in ids:
                ids[key] = len(ids) + 1
                name = f"{split}_{video}_{item['frame']:05d}.jpg"
                Image.new("RGB", image_size, (k % 255, 40, 90)).save(root / "images" / name)
                images.append(
                    {
                        "id": ids[key],
                        "file_name": name,
                        "frame_id": item["frame"],
                        "sequence_id": video,
                        "dataset_id": 0,
                    }
                )
            ann = {"id": k + 1, "image_id": ids[key], "bbox": item["box"]}
            ann["identity_id"] = item["identity"]
            for extra in ("histology", "size"):
                if extra in item:
                    ann[extra] = item[extra]
            anns.append(ann)
        data = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "polyp"}]}
        (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(data))
    return root


def run_of(identity: str, frames, box=(4.0, 4.0, 8.0, 8.0), **extra) -> list[dict]:
    return [{"identity": identity, "frame": f, "box": list(box), **extra} for f in frames]


def reference_trackleter(instances: list[Instance], sep: int = 1, thr: float = 0.1):
    """NTSSL's Trackleter, literally: identities in sorted order; within one, instances in
    (frame_id) order by a stable lexsort; join when |gap| <= sep and IoU >= thr."""
    order = sorted(
        range(len(instances)), key=lambda i: (instances[i].identity, instances[i].frame_id)
    )
    out = []
    for identity in sorted({i.identity for i in instances}):
        cur: list[Instance] = []
        for i in order:
            inst = instances[i]
            if inst.identity != identity:
                continue
            if not cur or (
                abs(inst.frame_id - cur[-1].frame_id) <= sep and iou(inst.box, cur[-1].box) >= thr
            ):
                cur.append(inst)
            else:
                out.append(cur)
                cur = [inst]
        out.append(cur)
    return out


def test_iou_of_boxes() -> None:
    assert iou((0, 0, 2, 2), (0, 0, 2, 2)) == 1.0
    assert iou((0, 0, 2, 2), (1, 0, 2, 2)) == pytest.approx(2 / 6)
    assert iou((0, 0, 2, 2), (2, 0, 2, 2)) == 0.0  # touching: no overlap
    assert iou((0, 0, 2, 2), (5, 5, 1, 1)) == 0.0


def test_tracklets_split_at_gaps_and_jumps_and_drop_short_ones() -> None:
    inst = [Instance(f"{f}.jpg", f, "v", "001-001_1", (0.0, 0.0, 10.0, 10.0)) for f in range(0, 5)]
    inst += [Instance(f"{f}.jpg", f, "v", "001-001_1", (0.0, 0.0, 10.0, 10.0)) for f in (7, 8)]
    inst += [Instance("9.jpg", 9, "v", "001-001_1", (50.0, 50.0, 10.0, 10.0))]  # box jumps
    inst += [Instance(f"{f}.jpg", f, "v", "001-001_0", (0.0, 0.0, 4.0, 4.0)) for f in (3, 4)]
    got = build_tracklets(inst)
    assert [[i.frame_id for i in t] for t in got] == [[3, 4], [0, 1, 2, 3, 4], [7, 8], [9]]
    assert [len(t) for t in build_tracklets(inst, min_length=2)] == [2, 5, 2]
    assert video_of("001-013_2") == "001-013"


def test_tracklets_equal_the_released_trackleter_on_random_annotations() -> None:
    rng = random.Random(0)
    for _ in range(30):
        inst = []
        for n in range(rng.randint(1, 60)):
            x = rng.choice([0.0, 1.0, 3.0, 9.0])
            identity = f"00{rng.randint(1, 2)}-00{rng.randint(1, 2)}_{rng.randint(0, 2)}"
            inst.append(Instance(f"{n}.jpg", rng.randint(0, 30), "v", identity, (x, 0.0, 4.0, 4.0)))
        want = reference_trackleter(inst)
        got = build_tracklets(inst)
        assert [[i.path for i in t] for t in got] == [[i.path for i in t] for t in want]


def _adapter(root: Path, test_root: Path | None = None, *sets: str):
    cls = get_dataset("polyp-tracklets")
    adapter = cls(root, dataset_config(cls, ["tracklets.min_length=3", *sets]))
    adapter.use_test_root(test_root)
    return adapter


def _layout(tmp_path: Path) -> tuple[Path, Path]:
    train = run_of("001-001_1", range(0, 6)) + run_of("001-001_2", range(2, 5), box=(20, 10, 6, 6))
    train += run_of("001-001_2", range(9, 10))  # one frame: dropped by min_length 3
    test = run_of("002-001_1", range(0, 4), histology="adenoma", size=4.0)
    test += run_of("002-001_1", range(8, 12), histology="adenoma", size=4.0)
    test += run_of("003-002_1", range(0, 5), histology="hyperplastic", size=7.0)
    root = write_root(tmp_path / "rc27", {"train": train})
    test_root = write_root(tmp_path / "rc19", {"test": test})
    return root, test_root


def test_training_and_test_roots_load_into_tracklet_samples(tmp_path: Path) -> None:
    root, test_root = _layout(tmp_path)
    splits = _adapter(root, test_root).load()
    assert {s.clip for s in splits.train} == {"train-00000", "train-00001"}
    assert sorted({s.pid for s in splits.train}) == [0, 1]  # relabelled
    assert len(splits.train) == 6 + 3
    first = splits.train[0]
    assert first.video == "001-001" and first.box == (4.0, 4.0, 8.0, 8.0) and first.frame == 0
    assert Path(first.path).parent == root / "images"
    assert splits.query == splits.gallery  # every test tracklet against every other
    clips = sorted({s.clip for s in splits.query})
    assert clips == ["test-00000", "test-00001", "test-00002"]
    assert Path(splits.query[0].path).parent == test_root / "images"
    labels = splits.meta["tracklet_labels"]
    assert labels["test-00000"] == {"identity": "002-001_1", "histology": "adenoma", "size": 4.0}
    assert labels["test-00002"]["histology"] == "hyperplastic"
    pids = {s.clip: s.pid for s in splits.query}
    assert pids["test-00000"] == pids["test-00001"] != pids["test-00002"]


def test_an_identity_in_training_and_test_is_refused_by_bench_run(tmp_path: Path, capsys):
    root, test_root = _layout(tmp_path)
    write_root(test_root, {"test": run_of("001-001_1", range(20, 24))})
    argv = ["data", "check", "polyp-tracklets", "--root", str(root), "--test-root", str(test_root)]
    assert main([*argv, "--set", "tracklets.min_length=3", "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert "is in both the training and the test split of polyp-tracklets" in out


def test_malformed_annotations_are_each_named(tmp_path: Path) -> None:
    path = tmp_path / "instances_train.json"
    images = [{"id": 1, "file_name": "a.jpg", "frame_id": 0}, {"id": 2, "file_name": "b.jpg"}]
    anns = [
        {"image_id": 1, "bbox": [0, 0, 1, 1], "identity_id": "001-001_1"},
        {"image_id": 9, "bbox": [0, 0, 1, 1], "identity_id": "001-001_1"},
        {"image_id": 1, "bbox": [0, 0, 0, 1], "identity_id": "001-001_1"},
        {"image_id": 1, "bbox": [0, 0, 1], "identity_id": "001-001_1"},
        {"image_id": 1, "bbox": [0, 0, 1, 1], "identity_id": 3},
    ]
    path.write_text(json.dumps({"images": images, "annotations": anns}))
    with pytest.raises(DatasetError, match=r"images\[1\] \(b\.jpg\) needs an integer 'frame_id'"):
        read_instances(path, tmp_path)
    from bench.errors import Problems

    problems = Problems(collect=True)
    got = read_instances(path, tmp_path, problems)
    assert len(got) == 1
    messages = [m for _, m in problems.items]
    assert any("annotations[1] names image_id 9, not listed" in m for m in messages)
    assert any("annotations[2]: 'bbox' [0, 0, 0, 1] has no area" in m for m in messages)
    assert any("annotations[3] needs a 'bbox' of 4 numbers" in m for m in messages)
    assert any("annotations[4] needs a string 'identity_id', got 3" in m for m in messages)
    path.write_text("{not json")
    with pytest.raises(DatasetError, match="is not valid JSON"):
        read_instances(path, tmp_path)


def test_data_check_lists_statistics_and_test_root_is_refused_elsewhere(tmp_path, capsys):
    root, test_root = _layout(tmp_path)
    argv = ["data", "check", "polyp-tracklets", "--root", str(root), "--test-root", str(test_root)]
    assert main([*argv, "--set", "tracklets.min_length=3", "--no-progress"]) == 0, (
        capsys.readouterr()
    )
    out = capsys.readouterr().out
    assert "videos" in out and "frames/clip" in out
    with pytest.raises(DatasetError, match="drop --test-root"):
        get_dataset("market1501")(tmp_path, {}).use_test_root(tmp_path)


def _protocol_root(tmp_path: Path) -> Path:
    """Three training and two test videos, two polyps each, every polyp seen twice (two
    tracklets); test polyps annotated with size and histology (both classes of each)."""
    train, test = [], []
    for v in range(3):
        for p in range(2):
            for frames in (range(0, 8), range(12, 20)):
                train += run_of(f"00{v}-001_{p}", frames, box=(2 + 8 * p, 2, 8, 8))
    for v in range(3, 5):
        for p in range(2):
            extra = {
                "histology": "tubular adenoma" if p else "hyperplastic polyp",
                "size": 3.0 if p else 8.0,
            }
            for frames in (range(0, 6), range(10, 16)):
                test += run_of(f"00{v}-001_{p}", frames, box=(2 + 8 * p, 2, 8, 8), **extra)
    return write_root(tmp_path / "r", {"train": train, "test": test})


def test_bench_run_scores_the_tracklet_protocol_and_the_leaderboard_shows_its_columns(
    tmp_path: Path, capsys
) -> None:
    root = _protocol_root(tmp_path)
    results = tmp_path / "results"
    sets = ["tracklets.min_length=3", "train.epochs=1", "sampler.p=2", "sampler.k=2"]
    argv = ["run", "--method", "bot", "--dataset", "polyp-tracklets", "--preset", "quick"]
    argv += ["--root", str(root), "--results-dir", str(results), "--no-progress"]
    assert main([*argv, *(a for s in sets for a in ("--set", s))]) == 0
    (path,) = (results / "runs").glob("*.json")
    record = json.loads(path.read_text())
    assert record["protocol"] == "tracklets"
    m = record["metrics"]
    assert m["num_queries"] == 8  # 8 test tracklets, each with one other of its polyp
    for key in ("mAP", "HR@1", "HR@5", "AUROC", "AP", "size_F1", "histology_acc"):
        assert 0.0 <= m[key] <= 1.0, key
    capsys.readouterr()
    assert main(["leaderboard", "--results-dir", str(results)]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("| Method"))
    titles = [c.strip() for c in header.strip("|").split("|")]
    assert titles == [
        "Method",
        "mAP",
        "HR@1",
        "HR@5",
        "AUROC",
        "AP",
        "size F1",
        "histology acc",
        "n",
    ]


def test_the_tracklet_protocol_is_its_parts() -> None:
    """evaluate_tracklets = retrieval + re-identification + probes on the same embeddings."""
    from bench.api.samples import Sample
    from bench.evaluation.tracklet_protocol import evaluate_tracklets
    from bench.evaluation.tracklets import tracklet_reidentification, tracklet_retrieval

    g = torch.Generator().manual_seed(0)
    pids = [1, 1, 2, 2, 3, 3, 4]
    feats = torch.randn(len(pids), 8, generator=g) + torch.tensor(pids)[:, None].float()
    clips = [Sample(f"{i}.jpg", pid, 0, clip=f"test-{i:05d}") for i, pid in enumerate(pids)]
    got = evaluate_tracklets(feats, clips)
    retrieval = tracklet_retrieval(feats, pids, empty_target_action="skip")
    reid = tracklet_reidentification(feats, pids)
    assert got.as_dict()["mAP"] == retrieval["mAP"] and got.as_dict()["AP"] == reid["AP"]
    assert got.as_dict()["num_queries"] == 6  # polyp 4 has no other tracklet: left out
    assert got.as_dict()["num_tracklets"] == 7
    assert got.size is None and got.histology is None  # no annotations, no probes


def test_best_val_selection_validates_on_held_out_tracklets(tmp_path: Path) -> None:
    """Validation under the tracklet protocol: the held-out training polyps' tracklets, every
    one against every other; the harness, not the method, uses their labels."""
    from bench.engine.runner import RunRequest, run

    root = _protocol_root(tmp_path)
    sets = ["tracklets.min_length=3", "train.epochs=2", "sampler.p=2", "sampler.k=2"]
    sets += ["protocol.val_identities=2", "train.select=best-val"]
    request = RunRequest(
        method="bot",
        dataset="polyp-tracklets",
        preset="quick",
        root=root,
        sets=sets,
        results_dir=tmp_path / "results",
        progress=False,
    )
    (record,) = run(request)
    selection = record["selection"]
    assert selection["rule"] == "best-val" and selection["val_identities"] == 2
    assert selection["val_query"] == selection["val_gallery"] == 2 * 16  # 2 polyps x 2 x 8
    assert [set(h) for h in selection["history"]] == [{"epoch", "mAP", "HR@1"}] * 2
    assert 0.0 <= selection["val"]["mAP"] <= 1.0
    one = RunRequest(**{**vars(request), "sets": [*sets, "protocol.val_identities=1"]})
    with pytest.raises(ConfigError, match="validation and training each need at least 2"):
        run(one)  # before any training: the tracklet protocol needs pairs of identities
