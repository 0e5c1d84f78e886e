"""Tracklets in the method API (issue 15, points 2 and 3): a method may answer one embedding per
tracklet (``embed_clips``, each tracklet's frames in order), and a self-supervised method
(``supervision = "self"``) trains on samples that carry no identity."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bench.api import registry
from bench.api.method import Method
from bench.api.registry import register_method
from bench.engine.runner import RunRequest, run
from bench.errors import PluginError
from bench.evaluation import evaluate_features
from bench.plugins import get_dataset, load_plugins

SEEN: dict[str, list] = {}


def _pixels(path: str) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB").resize((8, 8)), dtype=np.float32).ravel() / 255


class TrackletMean(Method):
    """A temporal encoder stand-in: one embedding per tracklet, the frames' pixels weighted by
    their position in the tracklet (so it depends on the order, unlike a mean of frame
    features); trains on nothing, records what it was given."""

    name = "tracklet-probe"
    modalities = frozenset({"image", "clip"})
    supervision = "self"

    def fit(self, train):
        SEEN["train"] = list(train)

    def embed_clips(self, clips):
        SEEN.setdefault("clips", []).extend(clips)
        rows = []
        for clip in clips:
            frames = np.stack([_pixels(s.path) for s in clip])
            weights = np.arange(1, len(clip) + 1, dtype=np.float32)[:, None]
            rows.append((frames * weights).sum(0) / weights.sum())
        return torch.from_numpy(np.stack(rows))

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


@contextmanager
def registered(cls: type[Method]) -> Iterator[None]:
    load_plugins()
    saved = dict(registry._METHODS)
    register_method(cls)
    try:
        yield
    finally:
        registry._METHODS.clear()
        registry._METHODS.update(saved)


@pytest.fixture(scope="module")
def tracklet_run(tmp_path_factory) -> dict:
    SEEN.clear()
    with registered(TrackletMean):
        request = RunRequest(
            method="tracklet-probe",
            dataset="synthetic-polyp",
            fold="fold0",
            sets=["synthetic.identities=12", "protocol.level=clip"],
            results_dir=tmp_path_factory.mktemp("tracklets") / "results",
            progress=False,
        )
        (record,) = run(request)
    return record


def test_a_self_supervised_method_trains_without_identities(tracklet_run) -> None:
    train = SEEN["train"]
    cls = get_dataset("synthetic-polyp")
    true = cls(None, {**tracklet_run["config"]}).load("fold0").train
    assert len(train) == len(true)
    assert {s.pid for s in train} == {-1}
    assert all(s.text is None and s.text_level is None for s in train)
    assert all(re.fullmatch(r"q\d{6}\.\w+", Path(s.path).name) for s in train)
    assert all(re.fullmatch(r"clip-\d{5}", s.clip or "") for s in train)
    # what remains: which frames share a tracklet, and their order
    assert len({s.clip for s in train}) == len({s.clip for s in true})
    assert [s.frame for s in train] == [s.frame for s in true]


def test_tracklet_embeddings_are_asked_per_clip_in_frame_order(tracklet_run) -> None:
    clips = SEEN["clips"]
    assert all([s.frame for s in c] == sorted(s.frame for s in c) for c in clips)
    assert all(len({s.clip for s in c}) == 1 for c in clips)  # one tracklet per call row
    # the harness scored one row per tracklet: recompute its mAP from the same embeddings
    cls = get_dataset("synthetic-polyp")
    splits = cls(None, {**tracklet_run["config"]}).load("fold0")

    def per_clip(samples):
        groups: dict[str, list] = {}
        for s in samples:
            groups.setdefault(s.clip, []).append(s)
        return [sorted(g, key=lambda s: s.frame) for g in groups.values()]

    q, g = per_clip(splits.query), per_clip(splits.gallery)
    emb = TrackletMean({}, None).embed_clips
    metrics = evaluate_features(
        emb(q),
        emb(g),
        np.array([c[0].pid for c in q]),
        np.array([c[0].pid for c in g]),
        np.array([c[0].camid for c in q]),
        np.array([c[0].camid for c in g]),
        metric="cosine",
        max_rank=10,
    )
    assert tracklet_run["metrics"]["mAP"] == pytest.approx(metrics.mAP, abs=1e-6)
    assert tracklet_run["metrics"]["num_valid_queries"] == len(q)


def test_supervision_must_be_identity_or_self() -> None:
    class Odd(TrackletMean):
        name = "odd-supervision"
        supervision = "weak"

    with pytest.raises(PluginError, match="supervision must be one of identity, self"):
        register_method(Odd)
