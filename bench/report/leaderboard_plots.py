"""``bench leaderboard --plot``: bars and mean CMC curves of the leaderboard's rows. Like the
table it reads only run records."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.report.extras import import_figures
from bench.results.leaderboard import configuration, summarize
from bench.results.records import read_records


def plot_leaderboard(results_dir: Path, table_path: Path, dataset: str | None = None) -> list[Path]:
    """``bench leaderboard --plot``: next to ``table_path`` write ``<stem>_bars.png`` (mAP and
    Rank-1 per leaderboard row, mean ± std, one panel per dataset) and ``<stem>_cmc.png`` (each
    row's mean CMC over its runs, one axis per dataset). Rows and their labels are the table's
    (:func:`bench.results.leaderboard.summarize`: one row per configuration)."""
    plots = import_figures()
    # the table, written first, has already warned about each skipped record
    records = read_records(Path(results_dir), dataset=dataset, on_skip=lambda path, why: None)
    summary = summarize(records)
    bars = []
    for ds, group in summary.groupby("dataset", sort=True):
        metrics = {
            title: [(float(r[f"{m}_mean"]), float(r[f"{m}_std"])) for _, r in group.iterrows()]
            for title, m in (("mAP", "mAP"), ("Rank-1", "rank1"))
        }
        bars.append((str(ds), [str(label) for label in group["label"]], metrics))
    labels = {
        (r["dataset"], r["protocol"], r["configuration"]): str(r["label"])
        for _, r in summary.iterrows()
    }
    curves: dict[str, dict[str, list[list[float]]]] = {}
    for r in records:
        cmc = (r.get("metrics") or {}).get("cmc")
        if not isinstance(cmc, list) or not cmc:
            continue
        label = labels[(str(r["dataset"]), str(r.get("protocol") or "-"), configuration(r))]
        curves.setdefault(str(r["dataset"]), {}).setdefault(label, []).append(cmc)
    panels = []
    for ds in sorted(curves):
        means = {}
        for label, lists in curves[ds].items():
            n = min(len(c) for c in lists)  # runs with different max_rank: the common ranks
            means[label] = np.mean([np.asarray(c[:n], dtype=float) for c in lists], axis=0)
        panels.append((ds, means))
    table_path = Path(table_path)
    written = [
        plots.save_png(plots.bars_figure(bars), table_path.with_name(f"{table_path.stem}_bars.png"))
    ]
    if panels:
        written.append(
            plots.save_png(
                plots.leaderboard_cmc_figure(panels),
                table_path.with_name(f"{table_path.stem}_cmc.png"),
            )
        )
    return written
