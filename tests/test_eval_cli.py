"""``bench eval --features FILE``: saved features in, the same metrics as bench run out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.cli import main
from bench.evaluation import compute_distance, evaluate_rank
from bench.evaluation.rerank import re_ranking


def make_file(path: Path, metric: str | None = "euclidean", **overrides) -> dict:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(6, 8))
    q_pids = rng.integers(1, 6, size=25)
    g_pids = np.concatenate([rng.integers(1, 6, size=70), [0, 0, -1, -1, -1]])
    arrays = {
        "query_features": (centres[q_pids] + rng.normal(size=(25, 8))).astype(np.float32),
        "gallery_features": (centres[np.abs(g_pids)] + rng.normal(size=(75, 8))).astype(np.float32),
        "query_pids": q_pids,
        "gallery_pids": g_pids,
        "query_camids": rng.integers(0, 3, size=25),
        "gallery_camids": rng.integers(0, 3, size=75),
    }
    if metric is not None:
        arrays["metric"] = np.array(metric)
    arrays.update(overrides)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(path, **arrays)
    return arrays


def expected(arrays: dict, metric: str, rerank: bool = False):
    q = torch.from_numpy(arrays["query_features"])
    g = torch.from_numpy(arrays["gallery_features"])
    dist = compute_distance(q, g, metric).numpy()
    if rerank:
        dist = re_ranking(
            dist, compute_distance(q, q, metric).numpy(), compute_distance(g, g, metric).numpy()
        )
    return evaluate_rank(
        dist,
        arrays["query_pids"],
        arrays["gallery_pids"],
        arrays["query_camids"],
        arrays["gallery_camids"],
    )


@pytest.mark.parametrize("metric", [None, "cosine"])
@pytest.mark.parametrize("rerank", [False, True])
def test_json_output_equals_library(capsys, tmp_path: Path, metric, rerank) -> None:
    path = tmp_path / "feats.npz"
    arrays = make_file(path, metric)
    code = main(["eval", "--features", str(path), "--json", *(["--rerank"] if rerank else [])])
    out, _ = capsys.readouterr()
    assert code == 0
    got = json.loads(out)
    want = expected(arrays, metric or "euclidean", rerank)
    assert got["mAP"] == pytest.approx(want.mAP, abs=1e-9)
    assert got["mINP"] == pytest.approx(want.mINP, abs=1e-9)
    assert len(got["cmc"]) == 50
    np.testing.assert_allclose(got["cmc"], want.cmc, atol=1e-9)
    assert got["num_valid_queries"] == want.num_valid_queries
    assert got["metric"] == (metric or "euclidean") and got["rerank"] is rerank


def test_table_output(capsys, tmp_path: Path) -> None:
    path = tmp_path / "feats.npz"
    make_file(path)
    assert main(["eval", "--features", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "mAP" in out.splitlines()[0] and "Rank-1" in out
    assert "queries valid" in err


@pytest.mark.parametrize(
    ("overrides", "needles"),
    [
        ({"query_pids": None}, ["missing key 'query_pids'"]),
        ({"gallery_camids": np.zeros(3, dtype=int)}, ["'gallery_camids'", "3 entries"]),
        ({"query_pids": np.full(25, 1.5)}, ["'query_pids'", "integers"]),
        ({"query_pids": np.array(["a"] * 25)}, ["'query_pids'", "integers"]),
        ({"gallery_features": np.zeros((75, 5), np.float32)}, ["differ in size"]),
        ({"query_features": np.zeros(25, np.float32)}, ["'query_features'", "2-D"]),
        ({"metric": np.array("manhattan")}, ["'metric'", "manhattan"]),
    ],
)
def test_bad_file_is_one_line_naming_file_and_key(capsys, tmp_path, overrides, needles) -> None:
    path = tmp_path / "bad.npz"
    make_file(path, **overrides)
    code = main(["eval", "--features", str(path)])
    _, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 1 and len(lines) == 1 and "Traceback" not in err, err
    assert str(path) in lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_missing_and_unreadable_file(capsys, tmp_path: Path) -> None:
    assert main(["eval", "--features", str(tmp_path / "nope.npz")]) == 1
    assert "not found" in capsys.readouterr().err
    bad = tmp_path / "junk.npz"
    bad.write_bytes(b"not a zip")
    assert main(["eval", "--features", str(bad)]) == 1
    err = capsys.readouterr().err
    assert str(bad) in err and "readable" in err


def test_cuda_without_gpu_is_one_line(capsys, tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    path = tmp_path / "feats.npz"
    make_file(path)
    assert main(["eval", "--features", str(path), "--device", "cuda"]) == 1
    assert "CUDA" in capsys.readouterr().err


def test_run_rerank_flag_sets_config(capsys) -> None:
    args = ["run", "--method", "bot", "--dataset", "synthetic-person", "--preset", "quick"]
    assert main([*args, "--print-config"]) == 0
    assert "eval.rerank: false" in capsys.readouterr().out
    assert main([*args, "--rerank", "--print-config"]) == 0
    assert "eval.rerank: true" in capsys.readouterr().out


def test_rerank_refused_for_score_methods() -> None:
    from bench.errors import BenchError
    from bench.evaluation.protocol import evaluate_labels, get_protocol

    labels = (np.array([1]), np.array([0]), np.array([1, 2]), np.array([1, 1]))
    with pytest.raises(BenchError, match="re-ranking needs"):
        evaluate_labels(get_protocol("market"), *labels, similarity=torch.zeros(1, 2), rerank=True)
    m = evaluate_labels(get_protocol("market"), *labels, similarity=torch.tensor([[0.9, 0.1]]))
    assert m.mAP == 1.0
