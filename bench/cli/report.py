"""``bench report RUN_ID``: pictures and an HTML page for one run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bench.cli.options import (
    add_device,
    add_no_progress,
    add_results_dir,
    add_root,
    from_args,
    positive_int,
    seed_int,
)


def add_parser(sub: Any) -> None:
    rp = sub.add_parser(
        "report",
        help="pictures and an HTML page for one run: CMC, ranked lists, t-SNE, attention maps",
    )
    rp.set_defaults(handler=main)
    rp.add_argument("run_id", metavar="RUN_ID", help="a run id (file name in DIR/runs, no .json)")
    add_results_dir(rp)
    rp.add_argument(
        "--out", type=Path, default=None, help="output folder (default DIR/reports/RUN_ID)"
    )
    rp.add_argument(
        "--queries",
        dest="num_queries",
        type=positive_int,
        default=6,
        metavar="N",
        help="queries drawn at random (among those with a true match) for the ranked lists "
        "and attention maps (default 6)",
    )
    rp.add_argument(
        "--query",
        dest="queries",
        action="append",
        default=[],
        metavar="Q",
        help="show this query instead: an index into the query list or an image file name "
        "(repeatable)",
    )
    rp.add_argument("--seed", type=seed_int, default=0, help="seed of the query draw and t-SNE")
    rp.add_argument(
        "--tsne-max-points",
        type=int,
        default=2000,
        metavar="N",
        help="t-SNE on at most N query+gallery points, whole identities drawn at random "
        "(default 2000)",
    )
    rp.add_argument(
        "--cam",
        default="eigengradcam",
        choices=["eigencam", "eigengradcam", "gradcam", "none"],
        help="attention map kind over the last CNN stage: eigengradcam (default; target: the "
        "cosine similarity of query and gallery embeddings), eigencam (no target), gradcam, "
        "none (skip)",
    )
    add_device(rp, "device for attention maps (default cpu)")
    rp.add_argument(
        "--recompute",
        action="store_true",
        help="re-create the saved query/gallery features from the run's checkpoint first",
    )
    add_root(rp, "dataset root for --recompute (if not default)")
    add_no_progress(rp)


def main(args: argparse.Namespace) -> int:
    from bench.report.run_report import ReportOptions, make_report

    options = from_args(ReportOptions, args, progress=not args.no_progress)
    report = make_report(args.results_dir, args.run_id, options)
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    for path in report.images.values():
        print(f"written to {path}", file=sys.stderr)
    print(report.html)
    return 0
