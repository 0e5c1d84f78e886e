"""``bench sweep``: run a grid of methods x presets x datasets x seeds x folds (resumable)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bench.cli.options import (
    add_device,
    add_no_progress,
    add_results_dir,
    add_sets,
    positive_int,
)
from bench.errors import BenchError


def add_parser(sub: Any) -> None:
    sw = sub.add_parser(
        "sweep",
        help="run a grid of methods x presets x datasets x seeds x folds (resumable)",
        description="Run every combination, skipping runs whose record (same config hash) "
        "exists; failed runs go to DIR/failed/ and are retried by the next sweep. Ends with a "
        "summary table and the leaderboard. Flags override the keys of a sweep FILE.",
    )
    sw.set_defaults(handler=main)
    sw.add_argument(
        "file", nargs="?", type=Path, default=None, help="YAML sweep file with the flags' keys"
    )
    sw.add_argument("--methods", metavar="A,B", help="methods or variants, comma-separated")
    sw.add_argument("--datasets", metavar="X,Y", help="datasets, comma-separated")
    sw.add_argument("--seeds", metavar="0,1,2", help="seeds, comma-separated (default 0)")
    sw.add_argument(
        "--folds", metavar="all|F,G", help="folds of datasets that have them (default all)"
    )
    sw.add_argument(
        "--presets", metavar="P,Q", help="presets, comma-separated (default: each method's own)"
    )
    add_sets(
        sw,
        "config override for every run (repeatable); resources.num_cpus and "
        "resources.num_gpus are what each Ray task asks for",
    )
    sw.add_argument(  # one root per dataset of the grid, unlike the --root of one dataset
        "--root",
        dest="roots",
        action="append",
        default=None,
        metavar="DATASET=PATH",
        help="root folder of a dataset (repeatable)",
    )
    add_device(sw, "cpu or cuda for every run (default cpu)", default=None)
    sw.add_argument(
        "--executor",
        choices=["local", "ray"],
        default=None,
        help="local: this machine (default); ray: one Ray task per run (pip install -e '.[ray]')",
    )
    sw.add_argument(
        "--max-parallel",
        type=positive_int,
        default=None,
        metavar="N",
        help="runs at once (local default 1: in this process; N > 1: N processes; "
        "ray default: as the cluster's resources allow)",
    )
    sw.add_argument(
        "--ray-address",
        default=None,
        metavar="ADDR",
        help="Ray cluster to join (e.g. auto or ray://head:10001); default: a local Ray",
    )
    sw.add_argument(
        "--no-resume",
        dest="resume",
        action="store_const",
        const=False,
        default=None,
        help="start unfinished runs from epoch 0 instead of their last checkpoint",
    )
    add_no_progress(sw)
    add_results_dir(
        sw,
        "folder of run records (DIR/runs), failures (DIR/failed), logs and the "
        "leaderboard (default: results)",
        default=None,
    )


def main(args: argparse.Namespace) -> int:
    from bench.results.leaderboard import write_leaderboard
    from bench.sweep.run import run_sweep
    from bench.sweep.spec import load_sweep_file, make_spec, normalize
    from bench.sweep.summary import summary_table

    settings = load_sweep_file(args.file) if args.file is not None else {}
    flags = {key: getattr(args, key) for key in ("methods", "datasets", "seeds", "folds")}
    flags.update(
        presets=args.presets,
        set=args.sets or None,
        roots=args.roots,
        device=args.device,
        executor=args.executor,
        max_parallel=args.max_parallel,
        ray_address=args.ray_address,
        results_dir=args.results_dir,
        resume=args.resume,
    )
    from_flags = normalize({k: v for k, v in flags.items() if v is not None}, "the command line")
    for key in ("sets", "roots"):  # --set and --root add to the file's, key by key
        if key in settings and key in from_flags:
            from_flags[key] = {**settings[key], **from_flags[key]}
    spec = make_spec({**settings, **from_flags}, progress=not args.no_progress)
    report = run_sweep(spec)
    print(summary_table(report))
    try:
        path, text = write_leaderboard(spec.results_dir)
    except BenchError as exc:
        print(f"no leaderboard: {exc}", file=sys.stderr)
    else:
        print(f"\n{text}")
        print(f"leaderboard written to {path}", file=sys.stderr)
    failed = report.count("failed")
    if failed:
        print(
            f"bench: {failed} of {len(report.results)} runs failed; their errors are in "
            f"{Path(spec.results_dir) / 'failed'} (run the sweep again to retry them)",
            file=sys.stderr,
        )
        return 1
    return 0
