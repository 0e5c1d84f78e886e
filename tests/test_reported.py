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


MMET_YAML = REPO / "results" / "reported" / "mmet.yaml"
VIT_YAML = REPO / "results" / "reported" / "vit-baseline.yaml"


def _percent(record: dict) -> dict[str, float]:
    return {k: round(100 * v, 1) for k, v in record["metrics"].items()}


def test_mmet_tables_load_as_printed_with_their_sources():
    records = load_reported_file(MMET_YAML)
    by = {(r["preset"], r["train_dataset"], r["dataset"], r["method"]): r for r in records}
    # Table 1: FineGPR -> Market-1501 / DukeMTMC-reID
    t1 = {(d, m): _percent(r) for (t, s, d, m), r in by.items() if t == "Table 1"}
    assert t1[("market1501", "mmet-baseline")] == {"mAP": 15.4, "rank1": 38.9}
    assert t1[("dukemtmc", "mmet-random-mask")] == {"mAP": 19.2, "rank1": 35.1}
    assert t1[("dukemtmc", "mmet")] == {"mAP": 23.5, "rank1": 43.6}
    # Table 2: FineGPR -> CUHK-PEDES (not a registered dataset: free text), with Rank-5
    assert _percent(by[("Table 2", "finegpr", "cuhk-pedes", "mmet-mlm")]) == {
        "mAP": 14.4,
        "rank1": 27.8,
        "rank5": 39.5,
    }
    assert _percent(by[("Table 2", "finegpr", "cuhk-pedes", "mmet")])["rank5"] == 50.4
    # Table 3: MMET from FineGPR; the cited rows' training data is not stated
    assert _percent(by[("Table 3", "finegpr", "cuhk03", "mmet")]) == {"mAP": 20.3, "rank1": 23.6}
    cited = {(d, m) for (t, s, d, m) in by if t == "Table 3" and s != "finegpr"}
    assert ("cuhk03", "QAConv-GS") in cited and ("market1501", "QAConv-GS") not in cited
    assert ("dukemtmc", "QAConv") not in cited and ("cuhk03", "LOMO") not in cited
    assert _percent(
        by[("Table 3", "not stated (cited in MMET Table 3)", "market1501", "SPGAN")]
    ) == {
        "mAP": 22.8,
        "rank1": 51.5,
    }
    # Table 4: RandPerson vs FineGPR as the source
    assert _percent(by[("Table 4", "randperson", "dukemtmc", "mmet")]) == {
        "mAP": 27.1,
        "rank1": 47.6,
    }
    assert _percent(by[("Table 4", "finegpr", "cuhk03", "mmet")]) == {"mAP": 20.3, "rank1": 23.6}
    mmet_rows = [r for r in records if r["method"].startswith("mmet")]
    assert all(r["train_dataset"] in ("finegpr", "randperson") for r in mmet_rows)
    assert all("target-test mAP" in r["source"] and "AdamW 1e-5" in r["source"] for r in mmet_rows)


def test_vit_baseline_readme_numbers_are_in_domain():
    records = load_reported_file(VIT_YAML)
    got = {r["dataset"]: _percent(r) for r in records}
    assert got == {
        "market1501": {"mAP": 87.1, "rank1": 94.6},
        "dukemtmc": {"mAP": 79.6, "rank1": 89.0},
        "msmt17": {"mAP": 61.8, "rank1": 81.8},
    }
    assert all(r["method"] == "vit-baseline" for r in records)
    assert all(r["train_dataset"] == r["dataset"] for r in records)  # no source: in-domain
    assert "TransReID" in records[0]["citation"]


@pytest.mark.parametrize(
    ("source", "match"),
    [
        ("[a, b]", "expected the training dataset's name"),
        ("''", "expected the training dataset's name"),
        ("3", "expected the training dataset's name"),
        ("d", "is the table's dataset; leave source out"),
    ],
)
def test_bad_source_is_refused_naming_file_and_table(tmp_path, source, match):
    path = tmp_path / "bad.yaml"
    path.write_text(
        f"citation: x\ntables: [{{table: T, dataset: d, source: {source}, metrics: [mAP], "
        "rows: [[A, 10]]}]\n"
    )
    with pytest.raises(ReportedError, match=match) as info:
        load_reported_file(path)
    message = str(info.value)
    assert str(path) in message and "tables[0].source" in message and "\n" not in message
