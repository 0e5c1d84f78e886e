"""``bench leaderboard --dg``: domain-generalisation tables, one per source, targets as columns.

The way DG papers print them (``Market-1501 mAP R1 | Duke mAP R1 | ...``). Conventions (tests
pin them):

* Only cross-domain records (:func:`bench.results.leaderboard.cross_domain`: trained on other
  data than tested on, e.g. ``--train-dataset``, or a reported table with a ``source``) take
  part; in-domain runs are left out (the ordinary leaderboard shows them).
* One table per source: the training dataset(s) with their options, as ``--train-dataset``
  names them (``a,b`` for a merged source set; a reported row's free-text ``source``).
* A row is a method configuration as the ordinary leaderboard forms it (method, preset and the
  keys that differ from it, ``(oracle)``, ``(reported)``), the target aside: method, preset,
  sources and their fingerprints, text policy and the resolved config without the keys only
  the target dataset owns. Its cells are mean ± std over seeds and folds; ``n`` counts the runs
  per target (one number when every target has as many, else ``3/1/-``).
* A column is one target: its name with its options (``synthetic-person:synthetic.seed=3``),
  its protocol when the target has several, and one fingerprint of its data. Runs on two
  fingerprints of one target are never averaged: each fingerprint gets its own column,
  titled ``<target> · data <fingerprint>``; reported numbers (no fingerprint) join the target's
  column when it has one fingerprint, else a column ``<target> (reported)``.
* Missing cells read ``-``. Bold/underline mark the best/second measured mean per column;
  reported and oracle rows are never ranked, and are listed after the measured rows.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from tabulate import tabulate

from bench.config import NON_EXPERIMENT_PREFIXES, config_hash, flatten
from bench.errors import BenchError
from bench.io import atomic_write_text
from bench.plugins import get_dataset
from bench.results.leaderboard import (
    FORMATS,
    check_format,
    cross_domain,
    dataset_label_of,
    diff_text,
    footnotes,
    latex_escape,
    leaderboard_records,
    md_escape,
    metric_percent,
    rank_marks,
    train_label,
)
from bench.results.records import runs_dir

#: The metrics of each target column, as DG papers print them.
DG_METRICS = (("mAP", "mAP"), ("rank1", "R1"))
MISSING = "-"


@functools.cache
def _own_keys(name: str) -> frozenset[str]:
    """A registered dataset's own config keys; none for a name the registry lacks."""
    try:
        return frozenset(flatten(get_dataset(name).default_config))
    except BenchError:
        return frozenset()


def _target_only(record: Mapping[str, Any]) -> frozenset[str]:
    """The config keys only the target dataset owns (not a source): they follow the target,
    not the method configuration."""
    sources = str(record.get("train_dataset") or "").split(",")
    return _own_keys(str(record["dataset"])) - {k for n in sources for k in _own_keys(n)}


def _row_of(record: Mapping[str, Any]) -> tuple[str, str]:
    """``(row key, row label)``: the record's configuration without its target."""
    drop = _target_only(record)
    config = {
        k: v
        for k, v in sorted((record.get("config") or {}).items())
        if not k.startswith(NON_EXPERIMENT_PREFIXES) and k not in drop
    }
    diff = {k: v for k, v in (record.get("config_diff") or {}).items() if k not in drop}
    data = record.get("data") or {}
    reported = bool(record.get("reported", False))
    key = config_hash(
        {
            "method": record.get("method"),
            "preset": record.get("preset"),
            "train": train_label(record),
            "train_data": {
                k: v.get("fingerprint") for k, v in sorted(data.items()) if k != "dataset"
            },
            "text_policy": record.get("text_policy"),
            "oracle": bool(record.get("oracle", False)),
            "reported": reported,
            "citation": record.get("citation") if reported else None,
            "config": config,
        }
    )[:12]
    parts = [str(record["method"])]
    if record.get("preset"):
        parts.append(str(record["preset"]))
    if diff:
        parts.append(diff_text(diff))
    label = " · ".join(parts)
    if record.get("oracle"):
        label += " (oracle)"
    if reported:
        label += " (reported)"
    return key, label


def summarize_dg(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per (source, method configuration, target column) of the cross-domain
    ``records``: run count and mean/std of mAP and Rank-1 in percent."""
    rows = []
    for r in records:
        if not cross_domain(r):
            continue
        key, label = _row_of(r)
        metrics = r.get("metrics") or {}
        data = r.get("data") or {}
        train_fps = [
            str(v.get("fingerprint", "")) for k, v in sorted(data.items()) if k != "dataset"
        ]
        rows.append(
            {
                "source": train_label(r),
                "row": key,
                "label": label,
                "reported": bool(r.get("reported", False)),
                "oracle": bool(r.get("oracle", False)),
                "citation": r.get("source") if r.get("reported") else None,
                "train_data": ",".join(f[:8] for f in train_fps),
                "target": dataset_label_of(r),
                "protocol": str(r.get("protocol") or "-"),
                "data": str((data.get("dataset") or {}).get("fingerprint", "")),
                "seed": r.get("seed"),
                **{m: metric_percent(metrics, m) for m, _ in DG_METRICS},
            }
        )
    if not rows:
        return pd.DataFrame()
    frame = pd.DataFrame(rows)
    # A reported table that names no protocol takes its target's, when the target has one.
    known = frame[frame["protocol"] != "-"].groupby("target")["protocol"].unique()
    for i in frame.index[frame["protocol"] == "-"]:
        found = list(known.get(frame.at[i, "target"], []))
        if len(found) == 1:
            frame.at[i, "protocol"] = found[0]
    frame["column"] = _column_titles(frame)
    out = []
    keys = ["source", "row", "column"]
    for key, group in frame.groupby(keys, sort=True):
        first = group.iloc[0]
        row = dict(zip(keys, key))
        for c in ("label", "reported", "oracle", "citation", "train_data", "target", "data"):
            row[c] = first[c]
        row["runs"] = len(group)
        for m, _ in DG_METRICS:
            row[f"{m}_mean"] = group[m].astype(float).mean()
            row[f"{m}_std"] = group[m].astype(float).std(ddof=1)
        out.append(row)
    return _disambiguate(pd.DataFrame(out))


def _column_titles(frame: pd.DataFrame) -> list[str]:
    """Each record's target column title (module docstring)."""
    titles = []
    protocols = frame.groupby("target")["protocol"].nunique()
    measured = frame[frame["data"] != ""].groupby(["target", "protocol"])["data"].unique()
    for _, r in frame.iterrows():
        title = str(r["target"])
        if protocols[r["target"]] > 1:
            title += f" ({r['protocol']})"
        fps = list(measured.get((r["target"], r["protocol"]), []))
        if len(fps) > 1:
            title += f" · data {r['data'][:8]}" if r["data"] else " (reported)"
        titles.append(title)
    return titles


def _disambiguate(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of one source table that read alike add ``· source data <fps>`` (their training
    data differ) or ``· config <key>``."""
    df = df.copy()
    for _, table in df.groupby("source"):
        labels = table.drop_duplicates("row").groupby("label")
        for label, same in labels:
            if len(same) < 2:
                continue
            by_data = same["train_data"].nunique() == len(same)
            for _, r in same.iterrows():
                tag = f"source data {r['train_data']}" if by_data else f"config {r['row'][:8]}"
                df.loc[(df["source"] == r["source"]) & (df["row"] == r["row"]), "label"] = (
                    f"{label} · {tag}"
                )
    return df


def _cell(mean: float, std: float, pm: str) -> str:
    if pd.isna(mean):
        return MISSING
    return f"{mean:.1f}" if pd.isna(std) else f"{mean:.1f}{pm}{std:.1f}"


def _source_table(table: pd.DataFrame, fmt: str) -> tuple[str, list[str]]:
    """One source's rows as a Markdown or LaTeX table; also its target column titles."""
    if fmt == "md":
        esc, pm, tablefmt = md_escape, " ± ", "github"
        marks = {"best": "**{}**", "second": "<u>{}</u>", "": "{}"}
    else:
        esc, pm, tablefmt = latex_escape, r" $\pm$ ", "latex_raw"
        marks = {"best": r"\textbf{{{}}}", "second": r"\underline{{{}}}", "": "{}"}
    columns = sorted(table["column"].unique())
    rows = table.drop_duplicates("row").sort_values(["reported", "oracle", "label"], kind="stable")
    order = list(rows[["row", "label"]].itertuples(index=False))
    cells = {(r["row"], r["column"]): r for _, r in table.iterrows()}
    fair = {r["row"] for _, r in table.iterrows() if not (r["reported"] or r["oracle"])}
    ranks = {}
    for c in columns:
        for m, _ in DG_METRICS:
            means = [
                cells[(row, c)][f"{m}_mean"] if (row, c) in cells and row in fair else math.nan
                for row, _ in order
            ]
            ranks[(c, m)] = rank_marks(pd.Series(means, dtype=float))
    headers = ["Method"] + [f"{esc(c)} {title}" for c in columns for _, title in DG_METRICS]
    headers.append("n")
    body = []
    for i, (row, label) in enumerate(order):
        line = [esc(str(label))]
        counts = []
        for c in columns:
            cell = cells.get((row, c))
            counts.append(str(int(cell["runs"])) if cell is not None else MISSING)
            for m, _ in DG_METRICS:
                text = MISSING if cell is None else _cell(cell[f"{m}_mean"], cell[f"{m}_std"], pm)
                line.append(marks[ranks[(c, m)][i] if text != MISSING else ""].format(text))
        known = {n for n in counts if n != MISSING}
        line.append(counts[0] if len(known) == 1 and MISSING not in counts else "/".join(counts))
        body.append(line)
    colalign = ["left"] + ["right"] * (len(headers) - 1)
    text = tabulate(
        body, headers=headers, tablefmt=tablefmt, colalign=colalign, disable_numparse=True
    )
    return text, columns


def render_dg(df: pd.DataFrame, fmt: str = "md") -> str:
    """:func:`summarize_dg`'s frame as text: per source a ``## source -> targets`` heading and
    table (``md``), a ``table`` with that caption (``latex``), or one flat ``csv`` (a line per
    source, configuration and target: plain numbers)."""
    check_format(fmt)
    if df.empty:
        return ""
    if fmt == "csv":
        out = df[
            ["source", "label", "column", "target", "data", "reported", "oracle", "runs"]
            + [f"{m}_{s}" for m, _ in DG_METRICS for s in ("mean", "std")]
        ].rename(columns={"label": "configuration"})
        out = out.sort_values(["source", "reported", "oracle", "configuration", "column"])
        metric_cols = [c for c in out.columns if c.endswith(("_mean", "_std"))]
        out[metric_cols] = out[metric_cols].astype(float).round(4)
        return out.to_csv(index=False, lineterminator="\n")
    parts = []
    for source, table in df.groupby("source", sort=True):
        text, columns = _source_table(table, fmt)
        title = f"{source} -> {', '.join(columns)}"
        if fmt == "md":
            notes = table.drop(columns="source").rename(columns={"citation": "source"})
            parts.append(f"## {md_escape(title)}\n\n{text}\n{footnotes(notes)}")
        else:
            parts.append(
                f"% {title}\n\\begin{{table}}[t]\n\\centering\n"
                f"\\caption{{{latex_escape(title)}: mean $\\pm$ std (\\%) over seeds "
                f"and folds}}\n{text}\n\\end{{table}}\n"
            )
    return "\n".join(parts)


def write_dg_leaderboard(
    results_dir: Path,
    dataset: str | None = None,
    fmt: str = "md",
    out: Path | None = None,
    reported_dir: Path | None = None,
) -> tuple[Path, str]:
    """Like :func:`bench.results.leaderboard.write_leaderboard`, the DG tables (``dataset``:
    that target only); the default ``out`` is ``results_dir / "leaderboard-dg.<ext>"``.
    BenchError when no record is cross-domain."""
    check_format(fmt)
    results_dir = Path(results_dir)
    records = leaderboard_records(results_dir, dataset, reported_dir)
    df = summarize_dg(records)
    if df.empty:
        raise BenchError(
            f"no cross-domain records under {runs_dir(results_dir)} (trained on other data than "
            "tested on); make one with `bench run --train-dataset SOURCE --dataset TARGET`"
        )
    text = render_dg(df, fmt=fmt)
    path = Path(out) if out is not None else results_dir / f"leaderboard-dg.{FORMATS[fmt]}"
    atomic_write_text(path, text)
    return path, text
