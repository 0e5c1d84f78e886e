"""The test side a method sees: shuffled order, hidden pids, opaque clip ids and paths, and no
identity-level text on the gallery unless the run is an oracle; an adversary scores at chance."""

from __future__ import annotations

import re
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.api import registry
from bench.api.method import Method
from bench.api.registry import register_method
from bench.api.samples import Sample
from bench.engine.runner import RunRequest, run
from bench.engine.test_side import FAIR, ORACLE, method_view, presentation_order
from bench.errors import BenchError, DatasetError
from bench.evaluation.protocol import evaluate, evaluate_labels, get_protocol, sample_labels
from bench.plugins import load_plugins
from bench.results.artifacts import load_eval_artifacts


def _samples(n: int = 12) -> list[Sample]:
    return [
        Sample(
            f"/data/{pid:04d}/{cam + 1}/{pid:04d}_{i}.jpg",
            pid,
            cam,
            text=f"polyp {pid}",
            clip=f"{pid:04d}/{cam + 1}",
            frame=i,
            text_level="identity" if pid % 2 else "image",
        )
        for pid in range(n // 4)
        for cam in (0, 1)
        for i in range(2)
    ]


def test_presentation_order_is_seeded_and_not_reading_order() -> None:
    q = g = _samples(40)
    a, b = presentation_order(q, g, seed=0)
    assert presentation_order(q, g, seed=0) == (a, b)
    assert presentation_order(q, g, seed=1)[0] != a
    assert sorted(a, key=q.index) == q and a != q


def test_view_hides_identity_but_keeps_clips_grouped(tmp_path: Path) -> None:
    files = []
    for s in _samples():
        p = tmp_path / Path(s.path).relative_to("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x" * (s.pid + 1))
        files.append(Sample(str(p), s.pid, s.camid, s.text, s.clip, s.frame, s.text_level))
    query = [s for s in files if s.camid == 0]
    gallery = [s for s in files if s.camid == 1]
    with method_view(query, gallery, FAIR) as view:
        for true, seen in zip(query + gallery, view.query + view.gallery):
            assert seen.pid == -1
            assert re.fullmatch(r"[qg]\d{6}\.jpg", Path(seen.path).name)
            assert Path(seen.path).read_bytes() == Path(true.path).read_bytes()
            assert re.fullmatch(r"clip-\d{5}", seen.clip or "")
            assert seen.camid == true.camid and seen.frame == true.frame
        # frames of one clip share one opaque id; different clips never do
        pairs = {(t.clip, s.clip) for t, s in zip(query + gallery, view.query + view.gallery)}
        assert len({a for a, _ in pairs}) == len({b for _, b in pairs}) == len(pairs)
        assert [s.text for s in view.query] == [s.text for s in query]
        for true, seen in zip(gallery, view.gallery):
            assert seen.text == (None if true.text_level == "identity" else true.text)
        folder = Path(view.query[0].path).parent
        with (
            pytest.raises(DatasetError, match=re.escape(query[0].path)),
            method_view(query, gallery, FAIR) as inner,
        ):
            raise DatasetError(f"cannot read image {inner.query[0].path}: truncated")
    assert not folder.exists()  # the links are gone with the view
    with method_view(query, gallery, ORACLE) as view:
        assert [s.text for s in view.gallery] == [s.text for s in gallery]


class Adversary(Method):
    """Tries to recover identity from every field a method is given except the pixels: pid,
    clip id, path (file name digits, folder names), text, frame and position in the list."""

    name = "identity-adversary"  # image modality: it reads whatever text it is given

    def fit(self, train):
        pass

    @staticmethod
    def guesses(s: Sample, i: int) -> list[str]:
        path = Path(s.path)
        digits = re.findall(r"\d+", path.name)
        return [
            f"pid{s.pid}",
            f"clip{(s.clip or '').split('/')[0]}",
            f"name{digits[0] if digits else ''}",
            f"dir{path.parent.parent.name}/{path.parent.name}",
            f"text{s.text}",
            f"pos{i * 12 // 96}",
        ]

    def embed(self, samples):
        rows = torch.zeros(len(samples), 6 * 64)
        for i, s in enumerate(samples):
            for j, guess in enumerate(self.guesses(s, i)):
                rows[i, 64 * j + zlib.crc32(guess.encode()) % 64] = 1.0
        return rows

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


def identity_null(record: dict, results: Path, draws: int = 200) -> np.ndarray:
    """mAPs of a run's saved representations against its labels with the gallery identities
    permuted: what the scores give when they carry no information about identity (clip and
    camera structure kept, so a method that ranks a clip's frames together is no better)."""
    art = load_eval_artifacts(**{k: results / v for k, v in record["eval_artifacts"].items()})
    q_pids, q_cams = sample_labels(art.query)
    g_pids, g_cams = sample_labels(art.gallery)
    ids = np.unique(g_pids)
    rng = np.random.default_rng(0)
    protocol = get_protocol("colo-pair")
    dist = torch.from_numpy(art.distance("cosine"))
    out = []
    for _ in range(draws):
        mapping = dict(zip(ids, rng.permutation(ids)))
        permuted = np.array([mapping[p] for p in g_pids])
        out.append(
            evaluate_labels(protocol, q_pids, q_cams, permuted, g_cams, similarity=-dist).mAP
        )
    return np.array(out)


def at_chance(record: dict, results: Path) -> tuple[float, np.ndarray]:
    null = identity_null(record, results)
    measured = float(record["metrics"]["mAP"])
    print(f"mAP {measured:.3f}; identity-free null {null.mean():.3f} ± {null.std():.3f}")
    return measured, null


@pytest.fixture
def adversary():
    load_plugins()
    saved = dict(registry._METHODS)
    register_method(Adversary)
    yield
    registry._METHODS.clear()
    registry._METHODS.update(saved)


def test_view_hides_video_names_but_keeps_videos_grouped(tmp_path: Path) -> None:
    """A REAL-Colon identity is named after its video (``001-013_2``): the view numbers videos
    (one id per video across query and gallery) and keeps the boxes."""
    box = (1.0, 2.0, 3.0, 4.0)
    samples = [
        Sample(str(tmp_path / f"{i}.jpg"), pid=i, camid=0, clip=f"t{i}", video=v, box=box)
        for i, v in enumerate(["001-013", "001-013", "002-001"])
    ]
    with method_view(samples[:2], samples[1:], FAIR) as view:
        seen = [s.video for s in view.query + view.gallery]
        assert seen == ["video-0000", "video-0000", "video-0000", "video-0001"]
        assert all(s.box == box for s in view.query + view.gallery)


def test_an_adversary_of_every_field_but_pixels_scores_at_chance(tmp_path: Path, adversary):
    from bench.plugins import get_dataset

    data = get_dataset("synthetic-polyp")(None, {"protocol.folds": 4})
    data.prepare()
    splits = data.load("fold0")
    # Given the true samples, the same adversary finds every identity (the test can fail) ...
    method = Adversary({}, None)  # type: ignore[arg-type]
    protocol = get_protocol("colo-pair")
    naive = evaluate(
        protocol,
        splits.query,
        splits.gallery,
        query_features=method.embed(splits.query),
        gallery_features=method.embed(splits.gallery),
    )
    assert naive.mAP > 0.9
    # ... and through the harness it is at chance.
    (record,) = run(
        RunRequest(
            method="identity-adversary",
            dataset="synthetic-polyp",
            fold="fold0",
            results_dir=tmp_path,
            progress=False,
        )
    )
    measured, null = at_chance(record, tmp_path)
    assert null.min() <= measured <= null.max()
    assert record["text_policy"] == "fair" and record["oracle"] is False
    assert record["gallery_text_withheld"] == len(splits.gallery)


def _text_only(tmp_path: Path, where: str, sets: list[str]) -> dict:
    (record,) = run(
        RunRequest(
            method="dmcl-no-image",
            dataset="synthetic-polyp",
            preset="quick",
            fold="fold0",
            sets=["train.epochs=2", *sets],
            results_dir=tmp_path / where,
            progress=False,
        )
    )
    return record


def test_text_only_dmcl_is_at_chance_unless_the_gallery_is_given_its_label(tmp_path: Path):
    """synthetic-polyp's text describes the polyp: under the fair protocol the text-only variant
    gives every gallery item of a query the same score; given the gallery's own text (oracle),
    the text alone finds the identity."""
    fair = _text_only(tmp_path, "fair", [])
    assert fair["text_policy"] == "fair" and fair["oracle"] is False
    assert fair["answers"] == "score"
    with np.load(tmp_path / "fair" / fair["eval_artifacts"]["features"]) as npz:
        sim = npz["similarity"]
    assert np.ptp(sim, axis=1).max() < 1e-5  # one score per query: ties, broken by shuffled order
    measured, null = at_chance(fair, tmp_path / "fair")
    assert null.min() <= measured <= null.max()
    oracle = _text_only(
        tmp_path, "oracle", ["dmcl.gallery_text=own", "protocol.oracle_gallery_text=true"]
    )
    assert oracle["text_policy"] == "oracle-gallery-text" and oracle["oracle"] is True
    assert oracle["gallery_text_withheld"] == 0
    print(f"text-only mAP: fair {measured:.3f}, oracle {oracle['metrics']['mAP']:.3f}")
    assert oracle["metrics"]["mAP"] > null.max() + 0.1


def test_own_gallery_text_without_the_oracle_key_stops_before_training(tmp_path: Path):
    with pytest.raises(BenchError, match="protocol.oracle_gallery_text=true"):
        _text_only(tmp_path, "own", ["dmcl.gallery_text=own"])
    assert not (tmp_path / "own" / "checkpoints").exists()
