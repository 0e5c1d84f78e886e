"""``bench report`` and ``bench leaderboard --plot``: saved features, ranked lists, pictures."""

from __future__ import annotations

import copy
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bench.api import registry
from bench.api.method import Method
from bench.api.registry import register_method
from bench.cli import main
from bench.engine.runner import RunRequest, run
from bench.evaluation import evaluate_rank
from bench.plugins import load_plugins
from bench.report import figures as plots
from bench.report.cam import attention_maps, principal_projection
from bench.report.ranking import ranked_list
from bench.report.run_report import ReportOptions, make_report
from bench.results.artifacts import load_eval_artifacts
from bench.results.records import write_record

# A tiny BoT run: 16 polyps (4 per fold), one epoch of the quick preset.
TINY = ["synthetic.identities=16", "train.epochs=1"]


@pytest.fixture(scope="module")
def polyp_run(tmp_path_factory) -> tuple[Path, dict]:
    results = tmp_path_factory.mktemp("report") / "results"
    request = RunRequest(
        method="bot",
        dataset="synthetic-polyp",
        preset="quick",
        fold="fold0",
        sets=TINY,
        results_dir=results,
        progress=False,
    )
    (record,) = run(request)
    return results, record


def _png(path: Path) -> tuple[int, int]:
    with Image.open(path) as img:
        img.verify()  # a complete, uncorrupted PNG
    with Image.open(path) as img:
        assert img.format == "PNG"
        return img.size


def _one_line_error(capsys, argv: list[str]) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 1
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


# ------------------------------------------------------------------------------ saved features


def test_run_saves_features_that_reproduce_its_metrics(polyp_run):
    results, record = polyp_run
    saved = record["eval_artifacts"]
    assert Path(saved["features"]).parent == Path(record["checkpoint"]).parent
    assert not Path(record["checkpoint"]).is_absolute()  # relative to the results folder
    art = load_eval_artifacts(results / saved["features"], results / saved["samples"])
    assert art.has_features and art.similarity is None
    assert art.query_features.shape[0] == record["metrics"]["num_queries"] == len(art.query)
    assert art.query_features.shape[1] == art.gallery_features.shape[1]
    assert all(s.text for s in art.query)  # synthetic-polyp has a text per polyp
    assert {s.camid for s in art.query} == {0} and {s.camid for s in art.gallery} == {1}
    dist = art.distance(record["config"]["eval.metric"])
    metrics = evaluate_rank(
        dist,
        [s.pid for s in art.query],
        [s.pid for s in art.gallery],
        [s.camid for s in art.query],
        [s.camid for s in art.gallery],
    ).as_dict()
    assert metrics["cmc"] == pytest.approx(record["metrics"]["cmc"])
    assert metrics["mAP"] == pytest.approx(record["metrics"]["mAP"])


# ---------------------------------------------------------------------------------- ranking


def test_ranked_list_drops_same_camera_matches_and_junk_and_breaks_ties_by_order():
    g_pids = np.array([5, 5, -1, 7, 5, 8])
    g_camids = np.array([0, 1, 1, 1, 0, 1])
    dist = np.array([0.1, 0.5, 0.0, 0.5, 0.2, 0.3])
    rl = ranked_list(dist, 5, 0, g_pids, g_camids, top_k=10)
    # 0 and 4: same pid and camera; 2: junk. 1 and 3 tie at 0.5: gallery order decides.
    assert rl.gallery.tolist() == [5, 1, 3]
    assert rl.matches.tolist() == [False, True, False]
    assert rl.distances.tolist() == [0.3, 0.5, 0.5]
    assert ranked_list(dist, 5, 0, g_pids, g_camids, top_k=1).gallery.tolist() == [5]


def test_ranked_lists_agree_with_evaluation_cmc():
    rng = np.random.default_rng(3)
    q_pids, g_pids = rng.integers(0, 12, 40), rng.integers(-1, 12, 150)
    q_cams, g_cams = rng.integers(0, 3, 40), rng.integers(0, 3, 150)
    dist = rng.random((40, 150)).round(2)  # rounded: many ties
    metrics = evaluate_rank(dist, q_pids, g_pids, q_cams, g_cams, max_rank=10)
    lists = [ranked_list(dist[i], q_pids[i], q_cams[i], g_pids, g_cams, i, None) for i in range(40)]
    valid = [rl for rl in lists if rl.matches.any()]
    assert len(valid) == metrics.num_valid_queries
    for k in (1, 5, 10):
        hit = np.mean([rl.matches[:k].any() for rl in valid])
        assert hit == pytest.approx(metrics.rank(k))


def test_border_colours():
    img = np.full((20, 10, 3), 128, dtype=np.uint8)
    for match, rgb in ((True, plots.MATCH_RGB), (False, plots.NON_MATCH_RGB)):
        out = plots.with_border(img, match)
        b = (out.shape[1] - 10) // 2
        assert b >= 2 and out.shape == (20 + 2 * b, 10 + 2 * b, 3)
        assert tuple(out[0, 0]) == rgb and tuple(out[-1, -1]) == rgb
        assert tuple(out[b + 5, b + 5]) == (128, 128, 128)


# ------------------------------------------------------------------------------- attention


def test_principal_projection_marks_the_responding_region():
    rng = np.random.default_rng(0)
    acts = rng.random((1, 16, 6, 4)) * 0.1
    acts[0, :, 4:6, 0:2] += rng.random(16)[:, None, None] + 1.0  # the "object"
    heat = principal_projection(acts)[0]
    assert heat.shape == (6, 4)
    assert np.unravel_index(heat.argmax(), heat.shape) in {(4, 0), (4, 1), (5, 0), (5, 1)}
    assert heat[4:6, 0:2].min() > heat[0:3].max()
    # Whatever sign the SVD returns, the map correlates positively with the channel sum.
    for seed in range(5):
        a = np.random.default_rng(seed).random((1, 8, 5, 5)) ** 3
        m = principal_projection(a)[0].ravel()
        assert np.corrcoef(m, a[0].sum(0).ravel())[0, 1] > 0


def test_attention_maps_of_bot(polyp_run):
    from bench.report.rebuild import rebuild_method as _rebuild_method

    results, record = polyp_run
    art_paths = record["eval_artifacts"]
    art = load_eval_artifacts(results / art_paths["features"], results / art_paths["samples"])
    method = _rebuild_method(results, record, "cpu", False)
    samples = [art.query[0], art.gallery[0], art.gallery[1]]
    h, w = record["config"]["input.height"], record["config"]["input.width"]
    eigen = attention_maps(method, samples, "eigencam")
    assert eigen.shape == (3, h, w)
    assert eigen.min() >= 0 and eigen.max() == pytest.approx(1.0)
    from bench.report.cam import embeddings

    emb = embeddings(method, samples)
    refs = torch.stack([emb[1], emb[0], emb[0]])
    grad = attention_maps(method, samples, "eigengradcam", refs)
    assert grad.shape == (3, h, w) and not np.allclose(grad, eigen)
    with pytest.raises(ValueError, match="reference"):
        attention_maps(method, samples, "gradcam")


# ---------------------------------------------------------------------------------- report


def test_report_writes_valid_pictures_and_a_page_that_shows_them(polyp_run, tmp_path, capsys):
    results, record = polyp_run
    rid = record["run_id"]
    out = tmp_path / "report"
    code = main(
        [
            *("report", rid, "--results-dir", str(results), "--out", str(out)),
            *("--queries", "3", "--no-progress"),
        ]
    )
    assert code == 0, capsys.readouterr().err
    art = load_eval_artifacts(
        results / record["eval_artifacts"]["features"],
        results / record["eval_artifacts"]["samples"],
    )
    with Image.open(art.query[0].path) as img:
        aspect = img.height / img.width
    expected = {
        "cmc.png": plots.pixel_size(*plots.CMC_SIZE),
        "tsne.png": plots.pixel_size(*plots.TSNE_SIZE),
        "ranked_lists.png": plots.ranked_list_size(3, aspect),
        "attention.png": plots.ranked_list_size(3, aspect),
    }
    for name, size in expected.items():
        assert _png(out / name) == size, name
    page = (out / "index.html").read_text(encoding="utf-8")
    refs = set(re.findall(r"<img src='([^']+)'", page))
    assert refs == set(expected)  # every picture shown, by relative name
    assert rid in page and "<h2>Config</h2>" in page and "eval.metric: cosine" in page
    assert f"{100 * record['metrics']['mAP']:.1f}" in page
    assert f"{100 * record['metrics']['rank1']:.1f}" in page
    assert "(net.backbone.layer4)" in page  # the explained stage, by name
    # Borders: the lists contain true and false matches, drawn in exactly these colours.
    pixels = np.asarray(Image.open(out / "ranked_lists.png").convert("RGB")).reshape(-1, 3)
    colours = {tuple(p) for p in np.unique(pixels, axis=0)}
    assert plots.NON_MATCH_RGB in colours
    assert plots.MATCH_RGB in colours or record["metrics"]["rank10"] == 0


def test_report_chosen_queries_and_bad_query(polyp_run, tmp_path, capsys):
    results, record = polyp_run
    rep = make_report(
        results,
        record["run_id"],
        ReportOptions(out=tmp_path / "r", queries=["0", "5"], cam="none", progress=False),
    )
    assert "attention" not in rep.images and "no attention maps: --cam none" in rep.notes
    with Image.open(rep.images["ranked"]) as img:
        assert img.height == plots.ranked_list_size(2, 1.0)[1]
    line = _one_line_error(
        capsys,
        ["report", record["run_id"], "--results-dir", str(results), "--query", "nope.jpg"],
    )
    assert "--query 'nope.jpg'" in line and "index from 0 to" in line


def test_report_without_checkpoint_still_draws_the_rest(polyp_run, tmp_path):
    results, record = polyp_run
    shutil.copytree(results, tmp_path / "results")  # a moved folder: its paths are relative
    moved = copy.deepcopy(record)
    moved["run_id"], moved["checkpoint"] = "moved", "checkpoints/gone/final.pt"
    write_record(tmp_path / "results", moved)
    rep = make_report(tmp_path / "results", "moved", ReportOptions(progress=False))
    assert set(rep.images) == {"cmc", "ranked", "tsne"}
    assert any("checkpoint" in n and "is gone" in n for n in rep.notes)
    assert "is gone" in rep.html.read_text(encoding="utf-8")


def test_bad_run_id_is_one_line_naming_close_ids(polyp_run, capsys):
    results, record = polyp_run
    wrong = record["run_id"][:-2] + "zz"
    line = _one_line_error(capsys, ["report", wrong, "--results-dir", str(results)])
    assert f"no run record {wrong!r}" in line and record["run_id"] in line


def test_run_without_saved_features_says_how_and_recompute_recreates_them(
    polyp_run, tmp_path, capsys
):
    results, record = polyp_run
    old = copy.deepcopy(record)
    old["run_id"] = "old-run"
    old["eval_artifacts"] = None
    other = tmp_path / "results"
    shutil.copytree(results, other)
    write_record(other, old)
    line = _one_line_error(capsys, ["report", "old-run", "--results-dir", str(other)])
    assert "has no saved query/gallery features" in line
    assert "bench report old-run --recompute" in line
    with np.load(other / record["eval_artifacts"]["features"]) as npz:
        before = npz["query_features"]
    (other / record["eval_artifacts"]["features"]).unlink()
    code = main(
        [
            *("report", "old-run", "--results-dir", str(other)),
            *("--recompute", "--cam", "none", "--no-progress"),
        ]
    )
    assert code == 0, capsys.readouterr().err
    updated = json.loads((other / "runs" / "old-run.json").read_text())
    assert updated["eval_artifacts"] == record["eval_artifacts"]
    with np.load(other / updated["eval_artifacts"]["features"]) as npz:
        assert np.allclose(npz["query_features"], before, atol=1e-5)
    assert (other / "reports" / "old-run" / "index.html").is_file()


def test_score_method_report_and_switching_saving_off(tmp_path, capsys):
    load_plugins()
    saved = dict(registry._METHODS)

    class FileNameScore(Method):
        """Answers with score(): similarity from the polyp folder in the file path."""

        name = "path-score"

        def fit(self, train):
            pass

        def score(self, query, gallery):
            q = [Path(s.path).parent.parent.name for s in query]
            g = [Path(s.path).parent.parent.name for s in gallery]
            return torch.tensor([[float(a == b) for b in g] for a in q])

        def state_dict(self):
            return {}

        def load_state_dict(self, state):
            pass

    register_method(FileNameScore)
    try:
        base = dict(method="path-score", dataset="synthetic-polyp", fold="fold0")
        req = RunRequest(**base, sets=TINY[:1], results_dir=tmp_path / "a", progress=False)
        (record,) = run(req)
        off = RunRequest(
            **base,
            sets=[*TINY[:1], "report.save_features=false"],
            results_dir=tmp_path / "b",
            progress=False,
        )
        assert run(off)[0]["eval_artifacts"] is None
        with np.load(tmp_path / "a" / record["eval_artifacts"]["features"]) as npz:
            assert set(npz.files) == {"similarity"}
        rep = make_report(tmp_path / "a", record["run_id"], ReportOptions(progress=False))
    finally:
        registry._METHODS.clear()
        registry._METHODS.update(saved)
    assert set(rep.images) == {"cmc", "ranked"}
    assert any("answers with score()" in n for n in rep.notes)
    assert "no attention maps: method does not expose a CNN stage" in rep.notes
    page = rep.html.read_text(encoding="utf-8")
    assert "does not expose a CNN stage" in page and "tsne.png" not in page
    # Ranked by the similarity: every shown list starts with true matches.
    pixels = np.asarray(Image.open(rep.images["ranked"]).convert("RGB")).reshape(-1, 3)
    assert plots.MATCH_RGB in {tuple(p) for p in np.unique(pixels, axis=0)}


# ------------------------------------------------------------------------------ leaderboard


def test_leaderboard_plot_writes_bars_and_cmc(polyp_run, tmp_path, capsys):
    _, record = polyp_run
    results = tmp_path / "results"
    for i, (method, scale) in enumerate((("bot", 1.0), ("bot", 0.9), ("other", 0.5))):
        r = copy.deepcopy(record)
        r["run_id"], r["method"], r["seed"] = f"r{i}", method, i
        r["metrics"] = {
            **r["metrics"],
            "mAP": r["metrics"]["mAP"] * scale,
            "rank1": r["metrics"]["rank1"] * scale,
            "cmc": [c * scale for c in r["metrics"]["cmc"]],
        }
        write_record(results, r)
    reported = {
        "run_id": "paper",
        "method": "dmcl",
        "dataset": record["dataset"],
        "seed": 0,
        "reported": True,
        "metrics": {"mAP": 0.5, "rank1": 0.6},
    }
    write_record(results, reported)
    elsewhere = copy.deepcopy(record)
    elsewhere["run_id"], elsewhere["dataset"] = "person", "synthetic-person"
    write_record(results, elsewhere)
    code = main(["leaderboard", "--results-dir", str(results), "--plot"])
    err = capsys.readouterr().err
    assert code == 0, err
    bars, cmc = results / "leaderboard_bars.png", results / "leaderboard_cmc.png"
    assert f"written to {bars}" in err and f"written to {cmc}" in err
    assert _png(bars) == plots.leaderboard_size("bars", 2)  # one panel per dataset
    assert _png(cmc) == plots.leaderboard_size("cmc", 2)
    # --dataset keeps one panel; the pictures go next to --out.
    out = tmp_path / "tables" / "polyp.md"
    argv = ["leaderboard", "--results-dir", str(results), "--dataset", record["dataset"]]
    assert main([*argv, "--out", str(out), "--plot"]) == 0
    assert _png(out.with_name("polyp_bars.png")) == plots.leaderboard_size("bars", 1)
    assert _png(out.with_name("polyp_cmc.png")) == plots.leaderboard_size("cmc", 1)
