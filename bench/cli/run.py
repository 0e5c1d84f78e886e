"""``bench run``: train and evaluate a method on a dataset."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bench.cli.options import (
    add_device,
    add_no_progress,
    add_results_dir,
    add_root,
    add_sets,
    from_args,
    seed_int,
)


def add_parser(sub: Any) -> None:
    run = sub.add_parser("run", help="train and evaluate a method on a dataset")
    run.set_defaults(handler=main)
    run.add_argument("--method", required=True, help="method or variant name (bench list methods)")
    run.add_argument(
        "--dataset",
        required=True,
        help="dataset to evaluate on (bench list datasets), optionally with its own config keys:"
        " NAME:key=value:key=value (they override --set for this dataset only)",
    )
    run.add_argument(
        "--train-dataset",
        default=None,
        help="train on these datasets instead (cross-domain): NAME[:key=value...], several "
        "separated by ',' (their identities merged, relabelled apart)",
    )
    run.add_argument(
        "--preset", default=None, help="named config preset of the method (e.g. paper, quick)"
    )
    run.add_argument(
        "--seed", type=seed_int, default=0, help="random seed, 0 .. 2**32-1 (default 0)"
    )
    run.add_argument("--fold", default=None, help="run one fold only (default: every fold)")
    add_sets(run, "override a config key, e.g. --set train.epochs=5 (repeatable)")
    add_root(run)
    run.add_argument(
        "--train-root",
        default=None,
        help="root of --train-dataset; several sources: one per source, separated by ',' (an "
        "empty entry: that dataset's default root)",
    )
    run.add_argument(
        "--test-root",
        type=Path,
        default=None,
        help="folder of the test split, for datasets released as separate training and test "
        "roots (polyp-tracklets; default: --root)",
    )
    add_device(run)
    run.add_argument(
        "--resume",
        action="store_true",
        help="continue from the last epoch checkpoint of the same method, dataset, seed, fold"
        " and config",
    )
    run.add_argument(
        "--rerank",
        action="store_true",
        help="k-reciprocal re-ranking before evaluation (same as --set eval.rerank=true)",
    )
    add_no_progress(run)
    run.add_argument(
        "--print-config", action="store_true", help="print the resolved config and exit"
    )
    add_results_dir(run)


def main(args: argparse.Namespace) -> int:
    from bench.engine.runner import RunRequest, prepare_run, run

    if args.rerank:
        args.sets = [*args.sets, "eval.rerank=true"]
    request = from_args(RunRequest, args, progress=not args.no_progress)
    if args.print_config:
        import yaml

        resolved = prepare_run(request)
        print(yaml.safe_dump(resolved.config, sort_keys=True), end="")
        return 0
    run(request)
    return 0
