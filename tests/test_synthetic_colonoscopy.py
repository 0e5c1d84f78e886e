"""synthetic-colonoscopy: determinism, the polyp-tracklets layout read through the adapter, the
statistics the generator guarantees (tracklets per polyp, lengths, labels, temporal neighbours),
``bench data check`` and the generation time."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from itertools import pairwise
from pathlib import Path

import pytest

from bench.cli import main
from bench.config import dataset_config
from bench.data.fingerprint import data_fingerprint
from bench.data.synthetic import ensure_dataset
from bench.data.synthetic.colonoscopy import DIMINUTIVE_MM, make_videos, split_videos
from bench.data.tracklets import build_tracklets, read_instances
from bench.errors import DatasetError
from bench.evaluation.probes import HISTOLOGY_CLASSES
from bench.plugins import get_dataset

NAME = "synthetic-colonoscopy"


def _adapter(root: Path | None, *sets: str):
    cls = get_dataset(NAME)
    return cls(root, dataset_config(cls, list(sets)), show_progress=False)


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _fingerprint(root: Path, seed: int) -> str:
    ds = _adapter(root, "synthetic.videos=1", f"synthetic.seed={seed}")
    return data_fingerprint(root, ds.load(), ds.annotation_files())["fingerprint"]


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    seeds = {"a": 0, "b": 0, "c": 1}
    roots = [ensure_dataset(NAME, tmp_path / k, s, 1, progress=False) for k, s in seeds.items()]
    a, b, c = (_files(r) for r in roots)
    assert list(a) == list(b) and a == b and len(a) > 500
    images_a = {v for k, v in a.items() if k.endswith(".jpg")}
    images_c = {v for k, v in c.items() if k.endswith(".jpg")}
    assert not images_a & images_c
    assert a["annotations/instances_test.json"] != c["annotations/instances_test.json"]
    fingerprints = [_fingerprint(r, s) for r, s in zip(roots, seeds.values())]
    assert fingerprints[0] == fingerprints[1] != fingerprints[2]
    assert not (tmp_path / "cache").exists(), "an explicit root must not write to the cache"
    with pytest.raises(DatasetError, match="synthetic.videos"):
        ensure_dataset(NAME, tmp_path / "x", 0, 0)
    with pytest.raises(DatasetError, match="generated with"):
        ensure_dataset(NAME, roots[0], 1, 1)


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> tuple[Path, float]:
    root = tmp_path_factory.mktemp("colonoscopy") / "root"
    t0 = time.perf_counter()
    ensure_dataset(NAME, root, 0, 8, progress=False)
    seconds = time.perf_counter() - t0
    print(f"{NAME} (8 videos) generated in {seconds:.1f} s")
    return root, seconds


def _tracklets(root: Path, split: str) -> list:
    path = root / "annotations" / f"instances_{split}.json"
    return build_tracklets(read_instances(path, root / "images"), min_length=30)


def test_layout_is_polyp_tracklets_and_generation_is_fast(generated):
    root, seconds = generated
    assert seconds < 60
    counts = split_videos(8)
    assert counts == {"train": 8, "val": 2, "test": 4}
    videos_seen: dict[str, set[str]] = {}
    for split in ("train", "val", "test"):
        coco = json.loads((root / "annotations" / f"instances_{split}.json").read_text())
        image = coco["images"][0]
        assert {"id", "file_name", "frame_id", "sequence_id", "dataset_id"} <= set(image)
        assert all((root / "images" / i["file_name"]).is_file() for i in coco["images"][:50])
        ann = coco["annotations"][0]
        assert {"id", "image_id", "bbox", "identity_id", "histology", "size"} <= set(ann)
        assert isinstance(ann["size"], float) and len(ann["bbox"]) == 4
        videos_seen[split] = {i["sequence_id"] for i in coco["images"]}
        assert len(videos_seen[split]) == counts[split]
        assert all("_" not in v for v in videos_seen[split])
        assert {a["identity_id"].split("_")[0] for a in coco["annotations"]} <= videos_seen[split]
        assert {a["histology"].lower() for a in coco["annotations"]} <= set(HISTOLOGY_CLASSES)
    assert not videos_seen["train"] & videos_seen["test"]
    assert not videos_seen["val"] & (videos_seen["train"] | videos_seen["test"])


def test_each_visit_is_one_tracklet_and_statistics(generated):
    root, _ = generated
    plan = make_videos(0, 8)
    for split in ("train", "val", "test"):
        tracklets = build_tracklets(
            read_instances(root / "annotations" / f"instances_{split}.json", root / "images"),
            min_length=1,
        )
        # every visit (or piece of a cut one) is exactly one tracklet, all of >= 30 frames
        pieces = sum(1 + (v.cut is not None) for video in plan[split] for v in video.visits)
        assert len(tracklets) == pieces
        lengths = [len(t) for t in tracklets]
        assert min(lengths) >= 30 and max(lengths) <= 80
        per_identity: dict[str, int] = defaultdict(int)
        for t in tracklets:
            per_identity[t[0].identity] += 1
        assert sum(n > 1 for n in per_identity.values()) >= 0.6 * len(per_identity)
    test = _tracklets(root, "test")
    identities = {t[0].identity: t[0] for t in test}
    assert len(identities) >= 6
    classes = {HISTOLOGY_CLASSES[i.histology] for i in identities.values()}
    assert classes == {0, 1}
    assert {float(i.size) <= DIMINUTIVE_MM for i in identities.values()} == {True, False}


def test_temporal_neighbours_are_usually_the_same_polyp(generated):
    root, _ = generated
    same = pairs = overlapping = 0
    for split in ("train", "test"):
        by_video: dict[str, list] = defaultdict(list)
        for t in _tracklets(root, split):
            by_video[t[0].video].append((t[0].frame_id, t[-1].frame_id, t[0].identity))
        for tracks in by_video.values():
            tracks.sort()
            for (_, end, a), (start, _, b) in pairwise(tracks):
                pairs += 1
                same += a == b
                overlapping += start <= end  # two polyps in view at once
    share = same / pairs
    print(f"adjacent tracklets of one polyp: {share:.2f} of {pairs}; {overlapping} overlap")
    assert 0.5 <= share <= 0.85
    assert overlapping >= 1


def test_adapter_generates_on_first_use_and_data_check_prints_the_table(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    ds = _adapter(None, "synthetic.videos=1")
    assert ds.root.parent == tmp_path / "cache" / "synthetic"
    assert ds.root.name.startswith(f"{NAME}-")
    assert _adapter(None, "synthetic.videos=1", "synthetic.seed=1").root != ds.root
    splits = ds.load()
    assert splits.query == splits.gallery and splits.train
    assert {s.video for s in splits.train}.isdisjoint({s.video for s in splits.query})
    labels = splits.meta["tracklet_labels"]
    assert len(labels) == len({s.clip for s in splits.query})
    assert all(v["histology"] and v["size"] for v in labels.values())
    assert main(["data", "check", NAME, "--set", "synthetic.videos=1", "--no-progress"]) == 0
    out = capsys.readouterr().out
    print(out)
    assert "videos" in out and "frames/clip" in out and "no problems found" in out
    assert get_dataset(NAME).default_config["tracklets"]["min_length"] == 30
