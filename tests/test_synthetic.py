"""Synthetic datasets: determinism, exact layouts, split statistics, atomic generation, and cheap
learnability checks (hand-crafted features, no training)."""

from __future__ import annotations

import os
import re
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.api.samples import Sample
from bench.data.colo_pair import read_colo_pair
from bench.data.market import read_market_folder
from bench.data.synthetic import MARKER, default_root, ensure_dataset
from bench.errors import DatasetError
from bench.evaluation import evaluate_rank
from bench.plugins import get_dataset

MARKET_NAME = re.compile(r"^(-1|\d{4})_c[1-6]s[1-6]_\d{6}_0[1-3]\.jpg$")
POLYP_FILE = re.compile(r"^P\d{3}/[12]/\d{5}\.jpg$")


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


# --------------------------------------------------------------------------- small datasets


@pytest.mark.parametrize("name", ["synthetic-person", "synthetic-polyp"])
def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path, cache, name):
    a = _files(ensure_dataset(name, tmp_path / "a", 0, 6))
    b = _files(ensure_dataset(name, tmp_path / "b", 0, 6))
    c = _files(ensure_dataset(name, tmp_path / "c", 1, 6))
    assert list(a) == list(b) and a == b
    assert len(a) > 50
    # another seed: no image is byte-equal to any image of seed 0 (names may coincide or not)
    images_a = {v for k, v in a.items() if k.endswith(".jpg")}
    images_c = {v for k, v in c.items() if k.endswith(".jpg")}
    assert len(images_a) == sum(k.endswith(".jpg") for k in a) and not images_a & images_c
    assert not list(cache.glob("**/*")), "an explicit root must not write to the cache"


def test_person_layout_is_market(tmp_path, cache):
    root = ensure_dataset("synthetic-person", tmp_path / "p", 3, 8)
    top = sorted(p.name for p in root.iterdir())
    assert top == [MARKER, "bounding_box_test", "bounding_box_train", "captions.json", "query"]
    for folder in ("bounding_box_train", "bounding_box_test", "query"):
        names = [p.name for p in (root / folder).iterdir()]
        assert names and all(MARKET_NAME.match(n) for n in names), names
        for n in names[:3]:
            assert Image.open(root / folder / n).size == (64, 128)


def test_polyp_layout_is_colo_pair(tmp_path, cache):
    root = ensure_dataset("synthetic-polyp", tmp_path / "p", 3, 5)
    files = [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()]
    assert sorted(f for f in files if not POLYP_FILE.match(f)) == [MARKER, "text.xlsx"]
    assert len(files) == 2 + 5 * 2 * 8
    first = next(root.rglob("*.jpg"))
    assert Image.open(first).size == (96, 96)


def test_interrupted_generation_leaves_nothing_and_leftovers_are_not_used(
    tmp_path, cache, monkeypatch
):
    import bench.data.synthetic.person as person

    target = tmp_path / "ds"
    calls = {"n": 0}
    real = person.render_person

    def flaky(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 20:
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(person, "render_person", flaky)
    with pytest.raises(KeyboardInterrupt):
        ensure_dataset("synthetic-person", target, 0, 4)
    assert not target.exists() and list(tmp_path.iterdir()) == []
    monkeypatch.setattr(person, "render_person", real)

    # a temp folder left by a killed run (no cleanup): fresh or stale, it is never used
    fresh = tmp_path / ".ds.tmp-killed"
    (fresh / "query").mkdir(parents=True)
    (fresh / "query" / "0001_c1s1_000001_01.jpg").write_bytes(b"half")
    stale = tmp_path / ".ds.tmp-old"
    stale.mkdir()
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    ensure_dataset("synthetic-person", target, 0, 4)
    assert (target / MARKER).is_file()
    assert not (target / "query" / "0001_c1s1_000001_01.jpg").exists()
    assert fresh.exists() and not stale.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".ds.tmp-")] == [fresh.name]
    reference = _files(ensure_dataset("synthetic-person", tmp_path / "ref", 0, 4))
    assert _files(target) == reference


def test_incomplete_or_foreign_root_is_an_error(tmp_path, cache):
    half = tmp_path / "half"
    (half / "query").mkdir(parents=True)
    with pytest.raises(DatasetError, match="not a complete synthetic dataset"):
        ensure_dataset("synthetic-person", half, 0, 4)
    done = ensure_dataset("synthetic-person", tmp_path / "done", 0, 4)
    with pytest.raises(DatasetError, match="generated with"):
        ensure_dataset("synthetic-person", done, 1, 4)
    with pytest.raises(DatasetError, match="synthetic.seed"):
        ensure_dataset("synthetic-person", tmp_path / "x", -1, 4)
    with pytest.raises(DatasetError, match="synthetic.identities"):
        ensure_dataset("synthetic-polyp", tmp_path / "x", 0, 1)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (ensure_dataset("synthetic-polyp", empty, 0, 4) / "text.xlsx").is_file()


def test_adapters_default_root_and_explicit_root(tmp_path, cache):
    person = get_dataset("synthetic-person")
    assert person.default_config == {"synthetic": {"seed": 0, "identities": 100, "domain": 0}}
    assert get_dataset("synthetic-polyp").default_config == {
        "synthetic": {"seed": 0, "identities": 48},
        "protocol": {"folds": 4, "level": "frame"},
        "colo_pair": {"text_key": "polyp"},
    }
    config = {"synthetic.seed": 2, "synthetic.identities": 4}
    ds = person(None, config)
    assert ds.root == default_root("synthetic-person", 2, 4)
    assert ds.root.parent == cache / "synthetic" and ds.root.name.startswith("synthetic-person-")
    assert person(None, {**config, "synthetic.seed": 3}).root != ds.root
    ds.prepare()
    assert (ds.root / MARKER).is_file()
    explicit = person(tmp_path / "new" / "here", config)
    explicit.prepare()
    assert _files(explicit.root) == _files(ds.root)
    lazy = person(tmp_path / "lazy", config)  # load() generates on demand
    assert [Path(s.path).name for s in lazy.load(None).query] == [
        Path(s.path).name for s in ds.load(None).query
    ]


# --------------------------------------------------------------------------- default datasets


@pytest.fixture(scope="module")
def person_splits(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BENCH_CACHE", str(tmp_path_factory.mktemp("cache")))
        ds = get_dataset("synthetic-person")(None, {})
        t0 = time.perf_counter()
        ds.prepare()
        print(f"synthetic-person generated in {time.perf_counter() - t0:.1f} s")
        return ds.root, ds.load(None)


@pytest.fixture(scope="module")
def polyp_data(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BENCH_CACHE", str(tmp_path_factory.mktemp("cache")))
        ds = get_dataset("synthetic-polyp")(None, {"protocol.folds": 4})
        t0 = time.perf_counter()
        ds.prepare()
        print(f"synthetic-polyp generated in {time.perf_counter() - t0:.1f} s")
        return ds, {f: ds.load(f) for f in ds.folds()}


def test_person_split_statistics(person_splits):
    root, sp = person_splits
    train, query, gallery = sp.train, sp.query, sp.gallery
    assert len(train) == 800 and sorted({s.pid for s in train}) == list(range(100))
    assert set(Counter(s.pid for s in train).values()) == {8}
    train_cams = defaultdict(set)
    for s in train:
        train_cams[s.pid].add(s.camid)
    assert min(len(c) for c in train_cams.values()) >= 2
    raw_train = {s.pid for s in read_market_folder(root / "bounding_box_train")}
    test_ids = {s.pid for s in gallery} - {-1, 0}
    assert len(test_ids) == 100 and not raw_train & test_ids and 0 not in raw_train
    gal_cams = defaultdict(set)
    for s in gallery:
        gal_cams[s.pid].add(s.camid)
    assert all(len(gal_cams[p]) >= 2 for p in test_ids)
    assert {s.pid for s in query} == test_ids
    per_cam = Counter((s.pid, s.camid) for s in query)
    assert set(per_cam.values()) == {1}  # one query per (identity, camera)
    for s in query:  # every query has a true match in another camera
        assert gal_cams[s.pid] - {s.camid}
    assert {s.path for s in query}.isdisjoint(s.path for s in gallery)
    counts = Counter(s.pid for s in gallery)
    assert counts[-1] == 50 and counts[0] == 50
    assert 200 <= len(query) <= 300 and 600 <= len(gallery) <= 900
    assert {s.camid for s in train + query + gallery} == set(range(6))
    assert all(isinstance(s.text, str) and len(s.text) > 10 for s in train + query + gallery)


def test_polyp_split_statistics(polyp_data):
    ds, folds = polyp_data
    assert list(folds) == ["fold0", "fold1", "fold2", "fold3"]
    all_test: list[str] = []
    for name, sp in folds.items():
        assert sp.fold == name
        assert len(sp.meta["test_polyps"]) == 12
        all_test += sp.meta["test_polyps"]
        assert len(sp.train) == 36 * 16 and sorted({s.pid for s in sp.train}) == list(range(36))
        assert len(sp.query) == len(sp.gallery) == 12 * 8
        assert {s.camid for s in sp.query} == {0} and {s.camid for s in sp.gallery} == {1}
        assert {s.camid for s in sp.train} == {0, 1}
        assert Counter(s.clip for s in sp.query + sp.gallery).most_common()[-1][1] == 8
        assert all(s.text and "mm" in s.text for s in sp.train + sp.query + sp.gallery)
        assert sorted(s.frame for s in sp.query if s.clip == sp.query[0].clip) == list(range(8))
    assert sorted(all_test) == [f"P{i:03d}" for i in range(1, 49)]
    assert folds["fold0"].query == ds.load(None).query
    # the real Colo-Pair adapter reads the synthetic root the same way
    real = get_dataset("colo-pair")(ds.root, {"protocol.folds": 4})
    real.prepare()
    assert real.load("fold2").gallery == folds["fold2"].gallery


def test_market_adapter_reads_synthetic_person(person_splits):
    root, sp = person_splits
    real = get_dataset("market1501")(root, {}).load(None)
    assert [s.path for s in real.query] == [s.path for s in sp.query]
    assert [(s.pid, s.camid) for s in real.train] == [(s.pid, s.camid) for s in sp.train]


# --------------------------------------------------------------------------- learnability


def _colour_hist(samples: list[Sample], box: tuple[float, float, float, float]) -> np.ndarray:
    """Grey-world-normalised 4x4x4 RGB histogram of a central box (x0, y0, x1, y1), sqrt'd."""
    out = []
    for s in samples:
        a = np.asarray(Image.open(s.path).convert("RGB"), np.float32)
        h, w = a.shape[:2]
        a = a[int(box[1] * h) : int(box[3] * h), int(box[0] * w) : int(box[2] * w)]
        a = a / (a.reshape(-1, 3).mean(0) + 1e-6) * 128
        q = np.clip((a / 64).astype(int), 0, 3)
        hist = np.bincount(((q[..., 0] * 4 + q[..., 1]) * 4 + q[..., 2]).ravel(), minlength=64)
        out.append(np.sqrt(hist / hist.sum()))
    return np.stack(out).astype(np.float32)


def _bag_of_words(texts: list[str]) -> np.ndarray:
    tokens = [re.findall(r"[a-z0-9]+", t.lower()) for t in texts]
    vocab = {w: i for i, w in enumerate(sorted({w for t in tokens for w in t}))}
    m = np.zeros((len(texts), len(vocab)), np.float32)
    for i, t in enumerate(tokens):
        m[i, [vocab[w] for w in t]] = 1
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def _map(qf: np.ndarray, gf: np.ndarray, query: list[Sample], gallery: list[Sample]) -> float:
    qf = qf / np.linalg.norm(qf, axis=1, keepdims=True)
    gf = gf / np.linalg.norm(gf, axis=1, keepdims=True)
    metrics = evaluate_rank(
        1 - qf @ gf.T,
        np.array([s.pid for s in query]),
        np.array([s.pid for s in gallery]),
        np.array([s.camid for s in query]),
        np.array([s.camid for s in gallery]),
    )
    return metrics.mAP


def _features(query, gallery, box):
    img = _colour_hist(query, box), _colour_hist(gallery, box)
    bow = _bag_of_words([s.text for s in query + gallery])
    txt = bow[: len(query)], bow[len(query) :]
    both = tuple(np.hstack(pair) for pair in zip(img, txt))
    rng = np.random.default_rng(0)
    rand = rng.normal(size=(len(query), 16)), rng.normal(size=(len(gallery), 16))
    return {
        k: _map(*v, query, gallery)
        for k, v in {"chance": rand, "image": img, "text": txt, "image+text": both}.items()
    }


def test_person_is_learnable_from_images_and_text_is_coarse(person_splits):
    _, sp = person_splits
    m = _features(sp.query, sp.gallery, (0.2, 0.1, 0.8, 0.95))
    print("synthetic-person mAP:", {k: round(v, 3) for k, v in m.items()})
    assert m["chance"] < 0.04
    assert m["image"] > 3 * m["chance"] and m["image"] > 0.07
    assert 3 * m["chance"] < m["text"] < 0.6  # informative but coarse
    assert m["image+text"] > max(m["image"], m["text"])


def test_polyp_image_and_text_beat_either_alone(polyp_data):
    ds, _ = polyp_data
    samples = read_colo_pair(ds.root, ds.root / "text.xlsx")
    query = [s for s in samples if s.camid == 0]
    gallery = [s for s in samples if s.camid == 1]
    m = _features(query, gallery, (0.25, 0.25, 0.75, 0.75))
    print("synthetic-polyp mAP (48 polyps):", {k: round(v, 3) for k, v in m.items()})
    assert m["image"] > 3 * m["chance"]
    assert 3 * m["chance"] < m["text"] < 0.9
    assert m["image+text"] > max(m["image"], m["text"]) + 0.05
