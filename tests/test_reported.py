"""Reported numbers (results/reported/*.yaml) beside measured rows: loading, errors, CLI."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bench.results.leaderboard import render, summarize, write_leaderboard
from bench.results.records import write_record
from bench.results.reported import ReportedError, load_reported, load_reported_file

from .conftest import PYTHON, REPO

DMCL_YAML = REPO / "results" / "reported" / "dmcl.yaml"


def test_dmcl_paper_tables_load_as_printed():
    records = load_reported_file(DMCL_YAML)
    by = {(r["dataset"], r["preset"], r["method"]): r for r in records}
    t1 = by[("colo-pair", "Table 1", "dmcl")]["metrics"]
    assert [round(100 * t1[k], 1) for k in ("mAP", "rank1", "rank5", "rank10")] == [
        46.4,
        54.3,
        57.9,
        60.4,
    ]
    t3 = {m: r["metrics"] for (d, t, m), r in by.items() if t == "Table 3"}
    assert set(t3) == {"dmcl", "dmcl-baseline", "dmcl-no-image", "dmcl-no-text"}
    assert round(100 * t3["dmcl-no-text"]["mAP"], 1) == 36.6 and "rank10" not in t3["dmcl"]
    market = by[("market1501", "Table 2", "dmcl")]["metrics"]
    assert round(100 * market["mAP"], 1) == 92.1 and set(market) == {"mAP", "rank1"}
    assert by[("colo-pair", "Table 1", "VT-ReID")]["reported"] is True
    assert all("ranks 2/3" in r["source"] for r in records if r["preset"] == "Table 1")
    assert len([r for r in records if r["dataset"] == "cuhk03"]) == 11


def test_reported_rows_are_separate_and_unranked(tmp_path):
    write_record(
        tmp_path,
        {
            "run_id": "m1",
            "method": "dmcl",
            "dataset": "colo-pair",
            "train_dataset": "colo-pair",
            "preset": "quick",
            "seed": 0,
            "fold": "fold0",
            "metrics": {"mAP": 0.2, "rank1": 0.1, "rank5": 0.3, "rank10": 0.4, "mINP": 0.1},
        },
    )
    _, text = write_leaderboard(tmp_path, dataset="colo-pair", reported_dir=DMCL_YAML.parent)
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    assert lines[1].startswith("| dmcl ") and "**20.0**" in lines[1]  # measured first, ranked
    reported = [line for line in lines if "(reported)" in line]
    assert len(reported) == 15 and not any("**" in r or "<u>" in r for r in reported)
    assert "| dmcl · Table 1 (reported)" in text and "Table 1" in text and "Table 3" in text
    assert "Xiang, Guan" in text  # the citation, in the footnote
    # the measured row's mean is its own run only
    df = summarize(load_reported(DMCL_YAML.parent))
    assert not df.empty and bool(df["reported"].all())
    assert "market1501" in render(df)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("tables: []\n", "citation"),
        ("citation: x\ntables: [{table: T, dataset: d, metrics: [mAP, top3], rows: []}]\n", "top3"),
        (
            "citation: x\ntables: [{table: T, dataset: d, metrics: [mAP], rows: [[A, 1, 2]]}]\n",
            r"rows\[0\]",
        ),
        (
            "citation: x\ntables: [{table: T, dataset: d, metrics: [mAP], rows: [[A, 130]]}]\n",
            "percentage",
        ),
        ("citation: x\ntables: [{table: T, metrics: [mAP], rows: []}]\n", "dataset"),
        ("citation: [unclosed\n", "cannot read"),
    ],
)
def test_malformed_reported_files_name_file_and_entry(tmp_path, content, match):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(ReportedError, match=match) as info:
        load_reported_file(path)
    assert str(path) in str(info.value)


def test_cli_with_reported(tmp_path, subprocess_env):
    out = subprocess.run(
        [PYTHON, "-m", "bench", "leaderboard", "--results-dir", str(tmp_path), "--with-reported",
         str(DMCL_YAML.parent), "--dataset", "colo-pair"],
        capture_output=True, text=True, env=subprocess_env, cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "dmcl-no-text · Table 3 (reported)" in out.stdout
    missing = subprocess.run(
        [PYTHON, "-m", "bench", "leaderboard", "--results-dir", str(tmp_path), "--with-reported"],
        capture_output=True, text=True, env=subprocess_env, cwd=tmp_path,
    )  # fmt: skip
    assert missing.returncode == 1
    assert "reported-results folder results/reported does not exist" in missing.stderr
    assert "Traceback" not in missing.stderr
    assert Path(tmp_path / "leaderboard.md").exists()
