"""Leaderboard: mean ± std over seeds/folds, best/second marks, md/csv/latex output."""

from __future__ import annotations

import io
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from bench.errors import BenchError
from bench.evaluation.protocol import RANK_COLUMNS
from bench.results.leaderboard import (
    METRIC_COLUMNS,
    rank_marks,
    render,
    summarize,
    write_leaderboard,
)
from bench.results.records import write_record

TITLES = ["mAP", "Rank-1", "Rank-5", "Rank-10", "mINP"]


def rec(
    method: str,
    dataset: str = "ds",
    seed: int = 0,
    fold: str | None = None,
    mAP: float = 0.5,
    rank1: float = 0.7,
    rank5: float = 0.8,
    rank10: float = 0.9,
    mINP: float = 0.2,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "run_id": f"{method}-{dataset}-s{seed}-{fold}-{extra.get('train_dataset', '')}",
        "method": method,
        "family": method,
        "dataset": dataset,
        "train_dataset": dataset,
        "protocol": "market",
        "preset": "quick",
        "seed": seed,
        "fold": fold,
        "metrics": {"mAP": mAP, "rank1": rank1, "rank5": rank5, "rank10": rank10, "mINP": mINP},
        **extra,
    }


def parse_md(text: str) -> dict[str, list[dict[str, str]]]:
    """``{dataset: [row dict, ...]}`` from render's Markdown, in table order."""
    tables: dict[str, list[dict[str, str]]] = {}
    current = None
    header: list[str] = []
    for line in text.splitlines():
        if line.startswith("## "):
            current = line[3:]
            tables[current] = []
            header = []
        elif line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if not header:
                header = cells
            elif not set(line) <= set("|-: "):
                assert current is not None
                tables[current].append(dict(zip(header, cells)))
    return tables


def test_summarize_mean_std_over_seeds_matches_numpy() -> None:
    maps = [0.50, 0.55, 0.62]
    r1s = [0.70, 0.71, 0.75]
    records = [rec("bot", seed=s, mAP=m, rank1=r) for s, (m, r) in enumerate(zip(maps, r1s))]
    records.append(rec("agw", seed=0, mAP=0.4))
    df = summarize(records)
    assert list(df["method"]) == ["bot", "agw"]  # mAP descending
    bot = df.iloc[0]
    assert bot["runs"] == 3 and bot["seeds"] == 3 and bot["folds"] == 0
    assert bot["mAP_mean"] == pytest.approx(np.mean(maps) * 100)
    assert bot["mAP_std"] == pytest.approx(np.std(np.array(maps) * 100, ddof=1))
    assert bot["rank1_mean"] == pytest.approx(np.mean(r1s) * 100)
    assert bot["rank1_std"] == pytest.approx(np.std(np.array(r1s) * 100, ddof=1))
    assert bot["rank5_std"] == pytest.approx(0.0)
    agw = df.iloc[1]
    assert agw["runs"] == 1 and math.isnan(agw["mAP_std"])
    for col in ["dataset", "method", "protocol", "preset", "runs", "seeds", "folds"]:
        assert col in df.columns
    for m in METRIC_COLUMNS:
        assert f"{m}_mean" in df.columns and f"{m}_std" in df.columns


def test_summarize_over_seeds_and_folds_and_groups() -> None:
    records = [
        rec(
            "bot",
            seed=s,
            fold=f,
            mAP=0.1 * (s + 1) + (0.01 if f == "fold1" else 0.0),
            preset="quick",
        )
        for s in (0, 1)
        for f in ["fold0", "fold1"]
    ]
    records += [
        rec("bot", dataset="other", mAP=0.9),
        rec("bot", seed=5, mAP=0.3, train_dataset="src"),
    ]
    records += [rec("bot", seed=0, mAP=0.5, preset="paper")]
    df = summarize(records)
    assert len(df) == 4
    main = df[
        (df["dataset"] == "ds") & (df["train_dataset"] == "ds") & (df["preset"] == "quick")
    ].iloc[0]
    values = [10.0, 11.0, 20.0, 21.0]
    assert main["runs"] == 4 and main["seeds"] == 2 and main["folds"] == 2
    assert main["mAP_mean"] == pytest.approx(np.mean(values))
    assert main["mAP_std"] == pytest.approx(np.std(values, ddof=1))
    paper = df[df["preset"] == "paper"].iloc[0]  # another preset is another row
    assert paper["runs"] == 1 and paper["mAP_mean"] == pytest.approx(50.0)
    cross = df[df["train_dataset"] == "src"].iloc[0]  # cross-domain: never mixed in
    assert cross["runs"] == 1 and cross["mAP_mean"] == pytest.approx(30.0)


def test_summarize_empty_and_missing_metrics() -> None:
    assert summarize([]).empty
    r = rec("bot")
    del r["metrics"]["rank5"]
    r["metrics"]["cmc"] = [0.7, 0.75, 0.8, 0.85, 0.88, 0.9]  # Rank-5 from the CMC curve
    del r["metrics"]["mINP"]
    row = summarize([r]).iloc[0]
    assert row["rank5_mean"] == pytest.approx(88.0)
    assert math.isnan(row["mINP_mean"])
    (shown,) = parse_md(render(summarize([r])))["ds"]
    assert shown["mINP"] == "-" and shown["Rank-5"] == "**88.0**"


def test_rank_marks_dense_with_ties() -> None:
    assert rank_marks(pd.Series([60.0, 58.0, 58.0, 50.0])) == ["best", "second", "second", ""]
    assert rank_marks(pd.Series([80.0, 80.0, 70.0, 60.0])) == ["best", "best", "second", ""]
    assert rank_marks(pd.Series([42.0])) == ["best"]
    assert rank_marks(pd.Series([42.0, 42.0])) == ["best", "best"]
    # ranked as displayed: 54.31 and 54.34 both read 54.3
    assert rank_marks(pd.Series([54.31, 54.34, 50.0])) == ["best", "best", "second"]
    assert rank_marks(pd.Series([math.nan, 1.0, 2.0])) == ["", "second", "best"]


def marks_records() -> list[dict[str, Any]]:
    # mAP: A 60, B 58 (tie second with C), C 58, D 50; Rank-1: A and B tie best, C second.
    table = {
        "A": dict(mAP=0.60, rank1=0.80, rank5=0.90, rank10=0.95, mINP=0.30),
        "B": dict(mAP=0.58, rank1=0.80, rank5=0.91, rank10=0.95, mINP=0.20),
        "C": dict(mAP=0.58, rank1=0.70, rank5=0.85, rank10=0.96, mINP=0.25),
        "D": dict(mAP=0.50, rank1=0.60, rank5=0.92, rank10=0.94, mINP=0.10),
    }
    records = []
    for name, metrics in table.items():
        for seed, delta in enumerate([-0.01, 0.0, 0.01]):
            records.append(rec(name, seed=seed, **{k: v + delta for k, v in metrics.items()}))
    return records


def test_md_marks_best_and_second_per_column() -> None:
    text = render(summarize(marks_records()), fmt="md")
    rows = {r["Method"].removesuffix(" · quick"): r for r in parse_md(text)["ds"]}
    assert rows["A"]["mAP"] == "**60.0 ± 1.0**"
    assert rows["B"]["mAP"] == "<u>58.0 ± 1.0</u>"
    assert rows["C"]["mAP"] == "<u>58.0 ± 1.0</u>"
    assert rows["D"]["mAP"] == "50.0 ± 1.0"
    assert rows["A"]["Rank-1"] == rows["B"]["Rank-1"] == "**80.0 ± 1.0**"
    assert rows["C"]["Rank-1"] == "<u>70.0 ± 1.0</u>"
    assert rows["D"]["Rank-1"] == "60.0 ± 1.0"
    assert rows["D"]["Rank-5"] == "**92.0 ± 1.0**" and rows["B"]["Rank-5"] == "<u>91.0 ± 1.0</u>"
    assert rows["A"]["Rank-5"] == "90.0 ± 1.0"
    assert rows["C"]["Rank-10"] == "**96.0 ± 1.0**"
    assert rows["A"]["Rank-10"] == rows["B"]["Rank-10"] == "<u>95.0 ± 1.0</u>"
    assert rows["A"]["mINP"] == "**30.0 ± 1.0**" and rows["C"]["mINP"] == "<u>25.0 ± 1.0</u>"
    assert text.count("**") == 2 * 6 and text.count("<u>") == 7


def test_md_output_parses_back() -> None:
    records = [
        rec("bot", "person", seed=0, mAP=0.50),
        rec("bot", "person", seed=1, mAP=0.52),
        rec("agw", "person", seed=0, mAP=0.61),
        rec("dmcl-no-text", "person", mAP=0.55),
        rec("bot", "car", mAP=0.30),
        rec("agw", "car", mAP=0.20),
    ]
    text = render(summarize(records), fmt="md")
    assert re.findall(r"^## (.+)$", text, flags=re.M) == ["car", "person"]
    tables = parse_md(text)
    person = tables["person"]
    assert [r["Method"] for r in person] == ["agw · quick", "dmcl-no-text · quick", "bot · quick"]
    assert list(person[0]) == ["Method", *TITLES, "n"]
    assert [r["n"] for r in person] == ["1", "1", "2"]
    assert person[0]["mAP"] == "**61.0**"  # one run: the mean alone, no ±
    assert person[2]["mAP"] == "51.0 ± 1.4"
    assert [r["Method"] for r in tables["car"]] == ["bot · quick", "agw · quick"]
    assert tables["car"][0]["mAP"] == "**30.0**" and tables["car"][1]["mAP"] == "<u>20.0</u>"
    no_counts = parse_md(render(summarize(records), fmt="md", with_counts=False))
    assert "n" not in no_counts["person"][0]


def test_single_method_column_bold_only() -> None:
    text = render(summarize([rec("bot", seed=0), rec("bot", seed=1)]), fmt="md")
    (row,) = parse_md(text)["ds"]
    assert all(row[t].startswith("**") for t in TITLES)
    assert "<u>" not in text


def test_csv_plain_numbers() -> None:
    df = summarize([*marks_records(), rec("E", dataset="other", mAP=0.123456)])
    text = render(df, fmt="csv")
    for markup in ["**", "<u>", "±", "\\textbf", "\\underline"]:
        assert markup not in text
    back = pd.read_csv(io.StringIO(text))
    assert len(back) == 5
    for m, _ in RANK_COLUMNS:  # the tracklet protocol's columns only when a row has them
        assert f"{m}_mean" in back.columns and f"{m}_std" in back.columns
    assert "HR@1_mean" not in back.columns
    assert {"dataset", "method", "runs", "seeds", "folds"} <= set(back.columns)
    a = back[back["method"] == "A"].iloc[0]
    assert a["mAP_mean"] == pytest.approx(60.0) and a["mAP_std"] == pytest.approx(1.0)
    e = back[back["method"] == "E"].iloc[0]
    assert e["mAP_mean"] == pytest.approx(12.3456) and math.isnan(e["mAP_std"])
    assert "runs" not in pd.read_csv(io.StringIO(render(df, fmt="csv", with_counts=False)))


def test_latex_marks_and_escapes() -> None:
    records = [*marks_records(), rec("my_method", mAP=0.1)]
    text = render(summarize(records), fmt="latex")
    assert "\\begin{tabular}" in text and "\\end{tabular}" in text
    assert "\\textbf{60.0 $\\pm$ 1.0}" in text
    assert text.count("\\underline{58.0 $\\pm$ 1.0}") == 2
    assert "my\\_method" in text and "my_method" not in text
    assert "±" not in text and "**" not in text and "<u>" not in text
    a_line = next(line for line in text.splitlines() if line.strip().startswith("A "))
    assert a_line.count("\\textbf{") == 3 and a_line.count("\\underline{") == 1


def test_reported_rows() -> None:
    records = [rec("bot", mAP=0.5), rec("bot", mAP=0.7, reported=True, source="Luo et al. 2019")]
    df = summarize(records)
    assert len(df) == 2 and df.iloc[1]["source"] == "Luo et al. 2019"
    text = render(df)
    table = parse_md(text)["ds"]
    rows = {r["Method"].replace(" · quick", ""): r for r in table}
    # reported rows come last, unmarked; the ranking is among measured rows only
    assert [r["Method"].replace(" · quick", "") for r in table] == ["bot", "bot (reported)"]
    assert rows["bot (reported)"]["mAP"] == "70.0"
    assert rows["bot"]["mAP"] == "**50.0**"
    assert "- Luo et al. 2019" in text and "not ranked" in text


def test_render_unknown_format() -> None:
    with pytest.raises(BenchError, match="md, csv, latex"):
        render(summarize([rec("bot")]), fmt="html")


@pytest.mark.parametrize(("fmt", "ext"), [("md", "md"), ("csv", "csv"), ("latex", "tex")])
def test_write_leaderboard_default_path(tmp_path: Path, fmt: str, ext: str) -> None:
    for r in marks_records():
        write_record(tmp_path, r)
    path, text = write_leaderboard(tmp_path, fmt=fmt)
    assert path == tmp_path / f"leaderboard.{ext}"
    assert path.read_text(encoding="utf-8") == text
    assert text == render(summarize(marks_records()), fmt=fmt)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_write_leaderboard_dataset_filter_and_out(tmp_path: Path) -> None:
    write_record(tmp_path, rec("bot", "person"))
    write_record(tmp_path, rec("agw", "car"))
    out = tmp_path / "elsewhere" / "lb.md"
    path, text = write_leaderboard(tmp_path, dataset="car", out=out)
    assert path == out and out.read_text(encoding="utf-8") == text
    assert list(parse_md(text)) == ["car"]


def test_write_leaderboard_errors(tmp_path: Path) -> None:
    with pytest.raises(BenchError) as info:
        write_leaderboard(tmp_path)
    assert str(tmp_path / "runs") in str(info.value) and "bench run" in str(info.value)
    write_record(tmp_path, rec("bot", "person"))
    write_record(tmp_path, rec("bot", "car"))
    with pytest.raises(BenchError, match="car, person") as info:
        write_leaderboard(tmp_path, dataset="bike")
    assert "'bike'" in str(info.value)
    with pytest.raises(BenchError, match="md, csv, latex"):
        write_leaderboard(tmp_path, fmt="xlsx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]  # nothing written on error


# --- bench leaderboard --dg --------------------------------------------------------------------


def _dg(method: str, target: str, seed: int, mAP: float, *, fp: str = "t", **extra: Any):
    """A cross-domain record: trained on ``train_dataset`` (default ``src``), tested on
    ``target``, whose data has fingerprint ``fp``."""
    extra.setdefault("train_dataset", "src")
    return rec(
        method,
        dataset=target,
        seed=seed,
        mAP=mAP,
        rank1=mAP + 0.1,
        data={"dataset": {"fingerprint": fp}, "train_dataset": {"fingerprint": "s"}},
        **extra,
    )


def _dg_tables(tmp_path: Path, records: list[dict[str, Any]], **kw: Any) -> str:
    for r in records:
        write_record(tmp_path, r)
    from bench.results.dg import write_dg_leaderboard

    path, text = write_dg_leaderboard(tmp_path, **kw)
    assert path.read_text() == text
    return text


def test_dg_table_has_one_row_per_configuration_and_targets_as_columns(tmp_path):
    text = _dg_tables(
        tmp_path,
        [
            _dg("bot", "tA", 0, 0.30),
            _dg("bot", "tA", 1, 0.40),
            _dg("bot", "tB", 0, 0.20, dataset_options={"k": 1}),
            _dg("agw", "tA", 0, 0.50),
            _dg("bot", "tA", 0, 0.60, train_dataset="src2"),
            rec("bot", dataset="tA", mAP=0.9),  # in-domain: not in the DG tables
        ],
    )
    tables = parse_md(text)
    assert list(tables) == ["src -> tA, tB:k=1", "src2 -> tA"]
    agw, bot = tables["src -> tA, tB:k=1"]
    assert list(bot) == ["Method", "tA mAP", "tA R1", "tB:k=1 mAP", "tB:k=1 R1", "n"]
    assert bot["Method"] == "bot · quick" and agw["Method"] == "agw · quick"
    assert (bot["tA mAP"], bot["tA R1"]) == ("<u>35.0 ± 7.1</u>", "<u>45.0 ± 7.1</u>")
    assert bot["tB:k=1 mAP"] == "**20.0**"
    assert bot["n"] == "2/1" and agw["n"] == "1/-"
    assert agw["tA mAP"] == "**50.0**" and agw["tB:k=1 mAP"] == "-"  # missing cell
    assert tables["src2 -> tA"][0]["tA mAP"] == "**60.0**"
    assert "90.0" not in text  # the in-domain run stays out


def test_dg_never_mixes_two_fingerprints_of_one_target(tmp_path):
    text = _dg_tables(
        tmp_path,
        [_dg("bot", "tA", 0, 0.30, fp="aaaaaaaaaa"), _dg("bot", "tA", 1, 0.40, fp="bbbbbbbbbb")],
    )
    (row,) = parse_md(text)["src -> tA · data aaaaaaaa, tA · data bbbbbbbb"]
    assert (
        row["tA · data aaaaaaaa mAP"] == "**30.0**" and row["tA · data bbbbbbbb mAP"] == "**40.0**"
    )


def test_dg_source_sets_and_options_title_the_tables_and_csv_is_flat(tmp_path):
    merged = _dg(
        "bot",
        "tA",
        0,
        0.30,
        train_dataset="a,b",
        train_dataset_options=[{"x.seed": 1}, {}],
    )
    same_name = _dg("bot", "a", 0, 0.25, train_dataset="a", train_dataset_options=[{"x.seed": 1}])
    text = _dg_tables(tmp_path, [merged, same_name])
    assert list(parse_md(text)) == ["a:x.seed=1 -> a", "a:x.seed=1,b -> tA"]
    from bench.results.dg import render_dg, summarize_dg

    csv = pd.read_csv(io.StringIO(render_dg(summarize_dg([merged, same_name]), fmt="csv")))
    assert list(csv["source"]) == ["a:x.seed=1", "a:x.seed=1,b"]
    assert list(csv["mAP_mean"]) == [25.0, 30.0] and list(csv["runs"]) == [1, 1]


def test_dg_with_only_in_domain_runs_says_so(tmp_path):
    write_record(tmp_path, rec("bot", dataset="tA"))
    from bench.results.dg import write_dg_leaderboard

    with pytest.raises(BenchError, match="no cross-domain records"):
        write_dg_leaderboard(tmp_path)


def test_dg_cli_with_reported_rows(tmp_path, capsys):
    from bench.cli import main

    write_record(tmp_path, _dg("bot", "market1501", 0, 0.30, train_dataset="finegpr"))
    reported = tmp_path / "reported"
    reported.mkdir()
    (reported / "p.yaml").write_text(
        "citation: Paper\ntables:\n"
        "  - {table: T1, dataset: market1501, source: finegpr, metrics: [mAP, rank1],"
        " rows: [[M, 50.0, 60.0]]}\n"
        "  - {table: T2, dataset: market1501, metrics: [mAP, rank1], rows: [[M, 90.0, 95.0]]}\n"
    )
    code = main(
        ["leaderboard", "--dg", "--results-dir", str(tmp_path), "--with-reported", str(reported)]
    )
    assert code == 0
    out = capsys.readouterr().out
    rows = parse_md(out)["finegpr -> market1501"]
    assert [r["Method"] for r in rows] == ["bot · quick", "M · T1 (reported)"]
    assert rows[0]["market1501 mAP"] == "**30.0**" and rows[1]["market1501 mAP"] == "50.0"
    assert "90.0" not in out and "- Paper, T1" in out  # in-domain reported left out; footnote
    assert (tmp_path / "leaderboard-dg.md").exists()
