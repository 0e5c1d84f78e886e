"""The table a sweep ends with: one row per run, then the totals."""

from __future__ import annotations

from bench.sweep.executors import SweepReport


def summary_table(report: SweepReport) -> str:
    """One row per run (status, mAP, Rank-1, time, error), then the totals. A skipped run
    shows the metrics and time of its existing record."""
    from tabulate import tabulate

    rows = []
    for r in report.results:
        m = r.metrics
        error = (r.error or "").splitlines()[0] if r.error else ""
        rows.append(
            [
                r.job.method,
                r.job.preset or "-",
                r.job.dataset,
                r.job.fold or "-",
                r.job.seed,
                r.status,
                f"{100 * m['mAP']:.1f}" if "mAP" in m else "-",
                f"{100 * m['rank1']:.1f}" if "rank1" in m else "-",
                f"{r.seconds:.1f}" if r.seconds is not None else "-",
                error if len(error) <= 80 else error[:77] + "...",
            ]
        )
    headers = ["method", "preset", "dataset", "fold", "seed", "status", "mAP", "Rank-1", "time (s)"]
    table = tabulate(rows, headers=[*headers, "error"], tablefmt="github", disable_numparse=True)
    totals = (
        f"{len(report.results)} runs: {report.count('done')} done, "
        f"{report.count('skipped')} skipped, {report.count('failed')} failed "
        f"in {report.seconds:.1f} s"
    )
    return f"{table}\n\n{totals}"
