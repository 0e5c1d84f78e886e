"""``bench leaderboard``: tables of mean ± std over seeds and folds from run records."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bench.cli.options import add_results_dir


def add_parser(sub: Any) -> None:
    lb = sub.add_parser(
        "leaderboard", help="tables of mean ± std over seeds/folds from run records"
    )
    lb.set_defaults(handler=main)
    add_results_dir(lb)
    lb.add_argument("--dataset", default=None, help="only this dataset")
    lb.add_argument(
        "--format",
        dest="fmt",
        default="md",
        choices=["md", "csv", "latex"],
        help="markdown (default), CSV (mean/std columns) or LaTeX",
    )
    lb.add_argument(
        "--out", type=Path, default=None, help="output file (default DIR/leaderboard.EXT)"
    )
    lb.add_argument(
        "--with-reported",
        nargs="?",
        const=Path("results/reported"),
        default=None,
        type=Path,
        metavar="RDIR",
        help="add the numbers papers report (YAML in RDIR, default results/reported) as "
        "'(reported)' rows: not averaged with measured runs, not ranked",
    )
    lb.add_argument(
        "--dg",
        action="store_true",
        help="domain generalisation: cross-domain runs only, one table per source with the "
        "target datasets as columns (mAP and Rank-1 each); default out DIR/leaderboard-dg.EXT",
    )
    lb.add_argument(
        "--plot",
        action="store_true",
        help="also write PNGs next to the table: grouped bars of mAP and Rank-1 per method and "
        "dataset (<out>_bars.png) and the rows' mean CMC curves (<out>_cmc.png)",
    )


def main(args: argparse.Namespace) -> int:
    from bench.results.dg import write_dg_leaderboard
    from bench.results.leaderboard import write_leaderboard

    write = write_dg_leaderboard if args.dg else write_leaderboard
    path, text = write(
        args.results_dir,
        dataset=args.dataset,
        fmt=args.fmt,
        out=args.out,
        reported_dir=args.with_reported,
    )
    print(text)
    print(f"written to {path}", file=sys.stderr)
    if args.plot:
        from bench.report.leaderboard_plots import plot_leaderboard

        for png in plot_leaderboard(args.results_dir, path, dataset=args.dataset):
            print(f"written to {png}", file=sys.stderr)
    return 0
