"""Numbers that papers report, as plain data beside the measured run records.

A ``*.yaml`` file under ``results/reported/`` holds one paper::

    citation: "Xiang et al., Learning Collaborative Knowledge ... (DMCL)"
    names: {DMCL: dmcl}          # printed method name -> registry name, where one exists
    tables:
      - table: Table 1
        dataset: colo-pair       # the registry's dataset name (free text for another)
        source: finegpr          # optional: the training dataset of cross-domain numbers
        note: "..."              # caveats, shown in the leaderboard's footnote
        metrics: [mAP, rank1, rank5, rank10]
        rows:
          - [DMCL, 46.4, 54.3, 57.9, 60.4]   # name, then values in percent as printed

:func:`load_reported` turns every row into a record like a run record with ``"reported": true``,
``"preset"`` the table, ``"citation"`` the paper and ``"source"`` the citation with the table and
its note; ``bench leaderboard --with-reported`` shows them as ``method (reported)`` rows, never
averaged with measured runs and never ranked. A table with ``source:`` (free text: the paper's
training data need not be a registered dataset) holds cross-domain numbers: its rows' record has
``"train_dataset"`` the source, so they show in ``bench leaderboard --dg --with-reported``
under that source; without it the numbers are in-domain (trained on ``dataset``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from bench.errors import BenchError
from bench.io import read_text

#: Metric keys a reported table may list (as in run records' ``metrics``).
REPORTED_METRICS = ("mAP", "rank1", "rank5", "rank10", "mINP")


class ReportedError(BenchError):
    """A reported-results file is malformed (the message names the file and the entry)."""


def _require(cond: bool, path: Path, where: str, what: str) -> None:
    if not cond:
        raise ReportedError(f"{path}: {where}: {what}")


def load_reported_file(path: Path) -> list[dict[str, Any]]:
    """The rows of one reported-results YAML file as leaderboard records."""
    path = Path(path)
    try:
        data = yaml.safe_load(read_text(path, what="reported results", error=ReportedError))
    except (OSError, yaml.YAMLError) as e:
        raise ReportedError(f"cannot read reported results {path}: {e}") from e
    _require(isinstance(data, dict), path, "top level", "expected a mapping")
    citation = data.get("citation")
    _require(isinstance(citation, str) and bool(citation.strip()), path, "citation", "missing")
    names = data.get("names") or {}
    _require(isinstance(names, dict), path, "names", "expected a mapping")
    tables = data.get("tables")
    _require(isinstance(tables, list) and bool(tables), path, "tables", "expected a list")
    records = []
    for t_i, table in enumerate(tables):
        where = f"tables[{t_i}]"
        _require(isinstance(table, dict), path, where, "expected a mapping")
        for key in ("table", "dataset", "metrics", "rows"):
            _require(key in table, path, where, f"missing key {key!r}")
        metrics = table["metrics"]
        _require(
            isinstance(metrics, list) and all(m in REPORTED_METRICS for m in metrics),
            path,
            f"{where}.metrics",
            f"expected a list of {', '.join(REPORTED_METRICS)}; got {metrics!r}",
        )
        label = str(table["table"])
        trained_on = table.get("source", table["dataset"])
        _require(
            isinstance(trained_on, str) and bool(trained_on.strip()) and "\n" not in trained_on,
            path,
            f"{where}.source",
            f"expected the training dataset's name (one line of text); got {trained_on!r}",
        )
        _require(
            "source" not in table or trained_on.strip() != str(table["dataset"]),
            path,
            f"{where}.source",
            f"{trained_on!r} is the table's dataset; leave source out for in-domain numbers",
        )
        note = str(table.get("note") or "").strip()
        source = f"{citation.strip()}, {label}" + (f": {note}" if note else "")
        for r_i, row in enumerate(table["rows"]):
            rw = f"{where}.rows[{r_i}]"
            _require(
                isinstance(row, list) and len(row) == len(metrics) + 1,
                path,
                rw,
                f"expected [name, {', '.join(metrics)}]; got {row!r}",
            )
            printed, values = str(row[0]), row[1:]
            for m, v in zip(metrics, values):
                ok = isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 100
                _require(ok and not math.isnan(v), path, rw, f"{m} must be a percentage, got {v!r}")
            records.append(
                {
                    "run_id": f"reported-{path.stem}-{label}-{printed}",
                    "method": str(names.get(printed, printed)),
                    "family": str(names.get(printed, printed)),
                    "dataset": str(table["dataset"]),
                    "train_dataset": trained_on.strip(),
                    "protocol": table.get("protocol"),
                    "preset": label,
                    "seed": None,
                    "fold": None,
                    "reported": True,
                    "source": source,
                    "citation": citation.strip(),
                    "metrics": {m: float(v) / 100.0 for m, v in zip(metrics, values)},
                }
            )
    return records


def load_reported(folder: Path) -> list[dict[str, Any]]:
    """Every ``*.yaml`` / ``*.yml`` file of ``folder`` (sorted), as leaderboard records."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ReportedError(
            f"reported-results folder {folder} does not exist (it holds the papers' numbers "
            "as YAML; see results/reported/ in the repository)"
        )
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".yaml", ".yml"))
    if not files:
        raise ReportedError(f"no *.yaml files in reported-results folder {folder}")
    return [rec for f in files for rec in load_reported_file(f)]
