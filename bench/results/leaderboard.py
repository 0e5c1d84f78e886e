"""Leaderboard tables from run records: mean ± std over seeds and folds, per dataset.

``summarize`` turns records into one row per configuration with metric means and sample
standard deviations in percent; ``render`` prints them as Markdown, CSV or LaTeX, marking the
best mean of each metric column in bold and the second best underlined, as papers do.

Conventions (tests pin them):

* A row is one configuration (:func:`configuration`): records aggregate only when method and
  variant, preset, test and training dataset and their data fingerprints, protocol, text policy
  and every resolved config key are equal, seed and fold aside, and the keys that change
  neither training nor metrics (``resources.*``, ``report.*``). The label reads
  ``method · preset · key=value, ...``, naming the keys that differ from the preset (the
  record's ``config_diff``; the key's last part when that is unambiguous); keys beyond
  :data:`LABEL_WIDTH` characters read ``+N keys``, and ``--format csv`` gives every differing
  key as a column of its own. Two rows that would read alike add ``data <fingerprint>`` (the test
  dataset's files differ) or ``config <hash>``.
* Oracle runs (``"oracle": true``: the gallery was given its own identity-level text, see
  :mod:`bench.engine.test_side`) are labelled ``(oracle)``, listed after the fair rows and never
  bold, underlined or ranked.
* Std is the sample std (ddof=1). With one run it is NaN: the cell shows the mean alone, the
  CSV leaves the std empty.
* Best/second are ranked on the mean *as displayed* (one decimal), so two cells that read the
  same get the same mark. Ranking is dense: all values tied for best are bold, and the next
  distinct value is underlined. A column with a single distinct value is bold only.
* A run trained on another dataset (``train_dataset`` != ``dataset``, cross-domain) is its own
  row, labelled ``method [train: X]``; it is never averaged with in-domain runs. Datasets with
  their own options (``dataset_options``, ``train_dataset_options``) read as ``--dataset``
  takes them, ``NAME:key=value``: a target with options has its own table, and several
  sources read ``[train: a,b:key=value]``. ``--dg`` (:mod:`bench.results.dg`) lays the
  cross-domain rows out per source with the targets as columns.
* Records with ``"reported": true`` (numbers copied from a paper, ``"source"`` citing it; see
  :mod:`bench.results.reported` and ``--with-reported``) form their own row labelled ``method
  (reported)``, listed after the measured rows of their dataset. They are never averaged with
  measured runs and never ranked: bold/underline mark the best measured means only, since a
  paper's numbers come from its own protocol (e.g. test-fold model selection). A Markdown table
  with reported rows ends with a footnote naming their sources.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from tabulate import tabulate

from bench.config import NON_EXPERIMENT_PREFIXES, config_hash, dataset_label
from bench.errors import BenchError
from bench.evaluation.protocol import RANK_COLUMNS, TRACKLET_COLUMNS, protocol_of_record
from bench.io import atomic_write_text
from bench.results.records import print_skipped, read_records, runs_dir

#: Metric keys of a record's ``metrics``, in table order: the ranking protocols' and then the
#: tracklet protocol's own; a table shows its protocol's (``Protocol.columns``).
METRIC_TITLES = dict(RANK_COLUMNS) | dict(TRACKLET_COLUMNS)
METRIC_COLUMNS = tuple(METRIC_TITLES)
#: Metrics only some protocols have: left out of the CSV when no row has them.
_OPTIONAL_METRICS = tuple(m for m in METRIC_COLUMNS if m not in dict(RANK_COLUMNS))
#: Output format -> file extension.
FORMATS = {"md": "md", "csv": "csv", "latex": "tex"}

# One row per configuration; one table per dataset and protocol (Colo-Pair frame level and clip
# level are different tables).
_KEY_COLUMNS = ["dataset", "protocol", "reported", "oracle", "configuration"]
_ROW_COLUMNS = ["method", "preset", "train_dataset", "text_policy", "data", "label"]
_INFO_COLUMNS = ["source"]
_COUNT_COLUMNS = ["runs", "seeds", "folds"]
SUMMARY_COLUMNS = (
    _KEY_COLUMNS
    + _ROW_COLUMNS
    + _INFO_COLUMNS
    + _COUNT_COLUMNS
    + [f"{m}_{s}" for m in METRIC_COLUMNS for s in ("mean", "std")]
)
#: The longest text of a row's differing keys before the rest read ``+N keys``.
LABEL_WIDTH = 60
#: The prefix of the CSV columns holding the keys that differ from the preset.
DIFF_COLUMN = "set:"


def _fingerprints(record: Mapping[str, Any]) -> dict[str, str]:
    data = record.get("data") or {}
    return {role: str(value["fingerprint"]) for role, value in sorted(data.items())}


def dataset_label_of(record: Mapping[str, Any]) -> str:
    """The test dataset with its own options (``--dataset NAME:key=value``), as a spec reads."""
    return dataset_label(str(record["dataset"]), record.get("dataset_options"))


def train_label(record: Mapping[str, Any]) -> str:
    """The training dataset(s) with their options, comma-separated (``train_dataset`` names them
    joined by ',' and ``train_dataset_options`` lists each one's options); a reported row's
    free-text source as it is; the test dataset's label for an in-domain run."""
    names = record.get("train_dataset")
    if not names:
        return dataset_label_of(record)
    options = record.get("train_dataset_options")
    parts = str(names).split(",")
    if not isinstance(options, list) or len(options) != len(parts):
        return str(names)
    return ",".join(
        dataset_label(n, o if isinstance(o, Mapping) else {}) for n, o in zip(parts, options)
    )


def cross_domain(record: Mapping[str, Any]) -> bool:
    """Trained on other data than it is tested on: another dataset, or the same one with other
    options (``--train-dataset``; a reported row with a ``source``)."""
    return train_label(record) != dataset_label_of(record)


def configuration(record: Mapping[str, Any]) -> str:
    """The hash of everything that defines a record's experiment except seed and fold: method,
    preset, datasets and their fingerprints, protocol, text policy, oracle mark and the resolved
    config without :data:`NON_EXPERIMENT_PREFIXES` (a reported record: its source)."""
    config = record.get("config") or {}
    return config_hash(
        {
            "method": record.get("method"),
            "preset": record.get("preset"),
            "dataset": dataset_label_of(record),  # the name alone when it has no options
            "train_dataset": train_label(record),
            "protocol": record.get("protocol"),
            "text_policy": record.get("text_policy"),
            "oracle": bool(record.get("oracle", False)),
            "reported": bool(record.get("reported", False)),
            "source": record.get("source") if record.get("reported") else None,
            "data": _fingerprints(record),
            "config": {
                k: v for k, v in sorted(config.items()) if not k.startswith(NON_EXPERIMENT_PREFIXES)
            },
        }
    )[:12]


def _value_text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str):
        return value
    return json.dumps(value)


def diff_text(diff: Mapping[str, Any], width: int = LABEL_WIDTH) -> str:
    """``key=value, ...`` of the keys that differ from the preset, each key by its last part
    when no other differing key ends the same; beyond ``width`` characters, ``+N keys``."""
    tails = [k.rsplit(".", 1)[-1] for k in diff]
    names = [t if tails.count(t) == 1 else k for k, t in zip(diff, tails)]
    parts = [f"{n}={_value_text(v)}" for n, v in zip(names, diff.values())]
    shown: list[str] = []
    for i, part in enumerate(parts):
        rest = len(parts) - i - 1
        more = f", +{rest} keys" if rest else ""
        if shown and len(", ".join([*shown, part])) + len(more) > width:
            return ", ".join(shown) + f", +{len(parts) - i} keys"
        shown.append(part)
    return ", ".join(shown)


_RANK_KEYS = {"rank1": 1, "rank5": 5, "rank10": 10}


def metric_percent(metrics: dict[str, Any], key: str) -> float:
    """``metrics[key]`` in percent; Rank-k falls back to ``cmc[k-1]``; NaN if absent."""
    value = metrics.get(key)
    if value is None and key in _RANK_KEYS:
        cmc = metrics.get("cmc") or []
        k = _RANK_KEYS[key]
        if len(cmc) >= k:
            value = cmc[k - 1]
    return math.nan if value is None else 100.0 * float(value)


def _joined(values: Iterable[Any]) -> str:
    return ", ".join(sorted({str(v) for v in values if v is not None and not pd.isna(v)}))


def summarize(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per configuration (:func:`configuration`): run counts and mean/std of each
    metric in percent.

    Columns: :data:`SUMMARY_COLUMNS` (``label`` is the row's name in tables, ``data`` the short
    fingerprint of the test dataset, ``text_policy`` ``fair`` or ``oracle-gallery-text``) and,
    for every key that differs from the preset in some row, a column ``set:<key>`` with its
    value (empty where the row keeps the preset's). ``source`` lists the distinct values;
    ``folds`` counts the distinct non-null folds (0: the dataset has no folds). Sorted by
    dataset, protocol, fair before oracle before reported, then mAP descending.
    """
    rows = []
    diff_keys: list[str] = []
    for r in records:
        metrics = r.get("metrics") or {}
        diff = r.get("config_diff") or {}
        diff_keys += [k for k in diff if k not in diff_keys]
        fps = _fingerprints(r)
        rows.append(
            {
                "dataset": dataset_label_of(r),
                "protocol": str(r.get("protocol") or "-"),
                "reported": bool(r.get("reported", False)),
                "oracle": bool(r.get("oracle", False)),
                "configuration": configuration(r),
                "method": str(r["method"]),
                "preset": r.get("preset") or "-",
                "train_dataset": train_label(r),
                "text_policy": str(r.get("text_policy") or "-"),
                "data": fps.get("dataset", "")[:8],
                "diff": json.dumps(diff, sort_keys=True, default=str),
                "source": r.get("source"),
                "seed": r.get("seed"),
                "fold": r.get("fold"),
                **{m: metric_percent(metrics, m) for m in METRIC_COLUMNS},
            }
        )
    diff_columns = [f"{DIFF_COLUMN}{k}" for k in sorted(diff_keys)]
    if not rows:
        return pd.DataFrame(columns=[*SUMMARY_COLUMNS, *diff_columns])
    frame = pd.DataFrame(rows)
    out = []
    for key, group in frame.groupby(_KEY_COLUMNS, sort=True, dropna=False):
        row: dict[str, Any] = dict(zip(_KEY_COLUMNS, key))
        first = group.iloc[0]
        diff = json.loads(first["diff"])
        row.update({c: first[c] for c in _ROW_COLUMNS if c != "label"})
        row["label"] = _base_label(row, diff)
        row.update({c: _joined(group[c]) for c in _INFO_COLUMNS})
        row["runs"] = len(group)
        row["seeds"] = int(group["seed"].nunique(dropna=True))
        row["folds"] = int(group["fold"].nunique(dropna=True))
        for m in METRIC_COLUMNS:
            values = group[m].astype(float)
            row[f"{m}_mean"] = values.mean()
            row[f"{m}_std"] = values.std(ddof=1)
        for k in diff_keys:
            row[f"{DIFF_COLUMN}{k}"] = _value_text(diff[k]) if k in diff else ""
        out.append(row)
    summary = pd.DataFrame(out, columns=[*SUMMARY_COLUMNS, *diff_columns])
    return _disambiguate(_sorted(summary))


def _base_label(row: Mapping[str, Any], diff: Mapping[str, Any]) -> str:
    parts = [str(row["method"])]
    if row["preset"] not in (None, "-"):
        parts.append(str(row["preset"]))
    if diff:
        parts.append(diff_text(diff))
    label = " · ".join(parts)
    if row["train_dataset"] != row["dataset"]:
        label += f" [train: {row['train_dataset']}]"
    if row["oracle"]:
        label += " (oracle)"
    if row["reported"]:
        label += " (reported)"
    return label


def _disambiguate(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of one table that read alike get ``· data <fp>`` (their data differ) or, failing
    that, ``· config <hash>``."""
    df = df.copy()
    for _, group in df.groupby(["dataset", "protocol"], sort=False):
        for _, same in group.groupby("label", sort=False):
            if len(same) < 2:
                continue
            by_data = same["data"].nunique() == len(same)
            for i in same.index:
                tag = (
                    f"data {df.at[i, 'data']}"
                    if by_data
                    else f"config {df.at[i, 'configuration'][:8]}"
                )
                df.at[i, "label"] = f"{df.at[i, 'label']} · {tag}"
    return df


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(
        ["dataset", "protocol", "reported", "oracle", "mAP_mean", "label"],
        ascending=[True, True, True, True, False, True],
        na_position="last",
        kind="stable",
    ).reset_index(drop=True)


def _shown(value: float) -> float:
    """The mean as the table shows it (one decimal), used for ranking."""
    return float(f"{value:.1f}")


def rank_marks(means: pd.Series) -> list[str]:
    """``"best"``, ``"second"`` or ``""`` per value (dense ranking on one-decimal values)."""
    shown = [None if pd.isna(v) else _shown(float(v)) for v in means]
    distinct = sorted({v for v in shown if v is not None}, reverse=True)
    best = distinct[0] if distinct else None
    second = distinct[1] if len(distinct) > 1 else None
    return [
        "best" if v is not None and v == best else "second" if v is not None and v == second else ""
        for v in shown
    ]


def _cell(mean: float, std: float, pm: str) -> str:
    if pd.isna(mean):
        return "-"
    if pd.isna(std):
        return f"{mean:.1f}"
    return f"{mean:.1f}{pm}{std:.1f}"


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def latex_escape(text: str) -> str:
    """``text`` with LaTeX special characters escaped."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def md_escape(text: str) -> str:
    return text.replace("|", r"\|")


def _dataset_table(
    df: pd.DataFrame, fmt: str, with_counts: bool, columns: tuple[str, ...] = METRIC_COLUMNS
) -> str:
    """One dataset's rows (already sorted) as a Markdown or LaTeX table of the metric
    ``columns`` (its protocol's)."""
    if fmt == "md":
        esc, pm = md_escape, " ± "
        marks = {"best": "**{}**", "second": "<u>{}</u>", "": "{}"}
        tablefmt = "github"
    else:
        esc, pm = latex_escape, r" $\pm$ "
        marks = {"best": r"\textbf{{{}}}", "second": r"\underline{{{}}}", "": "{}"}
        tablefmt = "latex_raw"
    headers = ["Method"] + [METRIC_TITLES[m] for m in columns]
    colalign = ["left"] + ["right"] * len(columns)
    if with_counts:
        headers.append("n")
        colalign.append("right")
    measured = ~(df["reported"].astype(bool) | df["oracle"].astype(bool))
    column_marks = {m: rank_marks(df[f"{m}_mean"].where(measured, math.nan)) for m in columns}
    rows = []
    for i, (_, row) in enumerate(df.iterrows()):
        cells = [esc(str(row["label"]))]
        for m in columns:
            text = _cell(row[f"{m}_mean"], row[f"{m}_std"], pm)
            mark = column_marks[m][i] if text != "-" else ""
            cells.append(marks[mark].format(text))
        if with_counts:
            cells.append(str(int(row["runs"])))
        rows.append(cells)
    return tabulate(
        rows, headers=headers, tablefmt=tablefmt, colalign=colalign, disable_numparse=True
    )


def footnotes(group: pd.DataFrame) -> str:
    """Markdown lines explaining a dataset's oracle rows and naming the sources of its reported
    rows (empty if it has neither)."""
    lines = []
    if group["oracle"].astype(bool).any():
        lines += [
            "",
            "(oracle): the gallery was given its own identity-level text "
            "(`protocol.oracle_gallery_text=true`), which names the identity: an upper bound, "
            "not a fair result, and not ranked.",
        ]
    sources = sorted({str(s) for s in group.loc[group["reported"].astype(bool), "source"] if s})
    if sources:
        lines += ["", "(reported): copied from the paper, not measured here and not ranked."]
        lines += [f"- {md_escape(s)}" for s in sources]
    return "\n".join(lines) + "\n" if lines else ""


def check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise BenchError(f"unknown leaderboard format {fmt!r}; choose one of {', '.join(FORMATS)}")


def render(df: pd.DataFrame, fmt: str = "md", with_counts: bool = True) -> str:
    """``summarize``'s frame as text: ``md`` (a ``## dataset`` heading and table per dataset),
    ``latex`` (a ``table`` with caption per dataset) or ``csv`` (one flat table, plain numbers).

    Cells read ``54.3 ± 1.2`` (mean ± std in percent; the mean alone for one run); rows are
    sorted by mAP descending; per dataset and metric the best mean is bold and the second best
    underlined. ``with_counts`` adds the run count ``n`` (csv: ``runs, seeds, folds``).
    """
    check_format(fmt)
    if df.empty:
        return ""
    df = _sorted(df)
    if fmt == "csv":
        out = df.copy()
        out["reported"] = out["reported"].astype(bool)
        out["oracle"] = out["oracle"].astype(bool)
        if not with_counts:
            out = out.drop(columns=_COUNT_COLUMNS)
        absent = [m for m in _OPTIONAL_METRICS if out[f"{m}_mean"].isna().all()]
        out = out.drop(columns=[f"{m}_{s}" for m in absent for s in ("mean", "std")])
        metric_cols = [c for c in out.columns if c.endswith(("_mean", "_std"))]
        out[metric_cols] = out[metric_cols].astype(float).round(4)
        return out.to_csv(index=False, lineterminator="\n")
    parts = []
    protocols = df.groupby("dataset")["protocol"].nunique()
    for (dataset, protocol), group in df.groupby(["dataset", "protocol"], sort=True):
        columns = tuple(key for key, _ in protocol_of_record(protocol).columns)
        table = _dataset_table(group.reset_index(drop=True), fmt, with_counts, columns)
        title = str(dataset) if protocols[dataset] == 1 else f"{dataset} ({protocol})"
        if fmt == "md":
            parts.append(f"## {title}\n\n{table}\n{footnotes(group)}")
        else:
            parts.append(
                f"% {title}\n\\begin{{table}}[t]\n\\centering\n"
                f"\\caption{{{latex_escape(title)}: mean $\\pm$ std (\\%) over seeds "
                f"and folds}}\n{table}\n\\end{{table}}\n"
            )
    return "\n".join(parts)


def leaderboard_records(
    results_dir: Path, dataset: str | None = None, reported_dir: Path | None = None
) -> list[dict[str, Any]]:
    """The valid records under ``results_dir`` (plus the reported rows of ``reported_dir``),
    only those of ``dataset`` (its name, or its label with options) when given; BenchError
    when there are none."""
    results_dir = Path(results_dir)
    records = read_records(results_dir, on_skip=print_skipped)
    if reported_dir is not None:
        from bench.results.reported import load_reported

        records += load_reported(Path(reported_dir))
    if not records:
        raise BenchError(
            f"no run records found under {runs_dir(results_dir)}; make one with "
            "`bench run --method METHOD --dataset DATASET` (or pass --results-dir)"
        )
    if dataset is not None:
        known = sorted({str(r["dataset"]) for r in records})
        if dataset not in {*known, *map(dataset_label_of, records)}:
            raise BenchError(
                f"no run records for dataset {dataset!r} under {runs_dir(results_dir)}; "
                f"datasets with records: {', '.join(known)}"
            )
        records = [r for r in records if dataset in (r["dataset"], dataset_label_of(r))]
    return records


def write_leaderboard(
    results_dir: Path,
    dataset: str | None = None,
    fmt: str = "md",
    out: Path | None = None,
    reported_dir: Path | None = None,
) -> tuple[Path, str]:
    """Read the records under ``results_dir``, render them, write the table atomically.

    The default ``out`` is ``results_dir / "leaderboard.<ext>"`` (md, csv, tex). With
    ``reported_dir``, the papers' numbers in that folder
    (:func:`bench.results.reported.load_reported`) are added as ``(reported)`` rows. Returns the
    path written and the text. A record that cannot be read or breaks the schema
    (:mod:`bench.results.schema`) is left out with one line on stderr naming the file and the
    field (:func:`bench.results.records.print_skipped`). BenchError for an unknown format, no
    records, or a ``dataset`` that has no records (the message lists those that have).
    """
    check_format(fmt)
    results_dir = Path(results_dir)
    records = leaderboard_records(results_dir, dataset, reported_dir)
    text = render(summarize(records), fmt=fmt)
    path = Path(out) if out is not None else results_dir / f"leaderboard.{FORMATS[fmt]}"
    atomic_write_text(path, text)
    return path, text
