"""The ``bench`` command line: ``run``, ``leaderboard``, ``report``, ``list``.

Every user error (unknown name, bad ``--set``, missing data) ends as one line on stderr and a
non-zero exit code, never a traceback; ``BENCH_DEBUG=1`` shows the traceback anyway.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.errors import BenchError

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + message
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_results_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--results-dir",
        type=Path,
        default=Path("results"),
        metavar="DIR",
        help="folder of run records (DIR/runs/*.json) and leaderboards (default: results)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="bench", description="Train, evaluate and rank ReID methods under one protocol."
    )
    from bench import __version__

    parser.add_argument("--version", action="version", version=f"reid-bench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="train and evaluate a method on a dataset")
    run.add_argument("--method", required=True, help="method or variant name (bench list methods)")
    run.add_argument(
        "--dataset", required=True, help="dataset to evaluate on (bench list datasets)"
    )
    run.add_argument(
        "--train-dataset", default=None, help="train on this dataset instead (cross-domain)"
    )
    run.add_argument(
        "--preset", default=None, help="named config preset of the method (e.g. paper, quick)"
    )
    run.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    run.add_argument("--fold", default=None, help="run one fold only (default: every fold)")
    run.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set train.epochs=5 (repeatable)",
    )
    run.add_argument("--root", type=Path, default=None, help="dataset root folder")
    run.add_argument("--train-root", type=Path, default=None, help="root of --train-dataset")
    run.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    run.add_argument(
        "--resume",
        action="store_true",
        help="continue from the last epoch checkpoint of the same method, dataset, seed, fold"
        " and config",
    )
    run.add_argument("--no-progress", action="store_true", help="hide progress bars")
    run.add_argument(
        "--print-config", action="store_true", help="print the resolved config and exit"
    )
    _add_results_dir(run)

    lb = sub.add_parser(
        "leaderboard", help="tables of mean ± std over seeds/folds from run records"
    )
    _add_results_dir(lb)
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
        "--plot",
        action="store_true",
        help="also write PNGs next to the table: grouped bars of mAP and Rank-1 per method and "
        "dataset (<out>_bars.png) and the rows' mean CMC curves (<out>_cmc.png)",
    )

    _add_report_parser(sub)

    ls = sub.add_parser("list", help="list registered methods or datasets")
    ls.add_argument(
        "what",
        choices=["methods", "datasets"],
        help="methods: name, description, variants, presets, modalities needed; "
        "datasets: name, description, modalities provided, protocol",
    )
    return parser


def _add_report_parser(sub) -> None:
    rp = sub.add_parser(
        "report",
        help="pictures and an HTML page for one run: CMC, ranked lists, t-SNE, attention maps",
    )
    rp.add_argument("run_id", metavar="RUN_ID", help="a run id (file name in DIR/runs, no .json)")
    _add_results_dir(rp)
    rp.add_argument(
        "--out", type=Path, default=None, help="output folder (default DIR/reports/RUN_ID)"
    )
    rp.add_argument(
        "--queries",
        dest="num_queries",
        type=int,
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
    rp.add_argument("--seed", type=int, default=0, help="seed of the query draw and t-SNE")
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
    rp.add_argument("--device", default="cpu", help="device for attention maps (default cpu)")
    rp.add_argument(
        "--recompute",
        action="store_true",
        help="re-create the saved query/gallery features from the run's checkpoint first",
    )
    rp.add_argument(
        "--root", type=Path, default=None, help="dataset root for --recompute (if not default)"
    )
    rp.add_argument("--no-progress", action="store_true", help="hide progress bars")


def cmd_run(args: argparse.Namespace) -> int:
    from bench.runner import RunRequest, prepare_run, run

    request = RunRequest(
        method=args.method,
        dataset=args.dataset,
        train_dataset=args.train_dataset,
        preset=args.preset,
        seed=args.seed,
        fold=args.fold,
        sets=args.sets,
        root=args.root,
        train_root=args.train_root,
        device=args.device,
        results_dir=args.results_dir,
        resume=args.resume,
        progress=not args.no_progress,
    )
    if args.print_config:
        import yaml

        resolved = prepare_run(request)
        print(yaml.safe_dump(resolved.config, sort_keys=True), end="")
        return 0
    run(request)
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from bench.leaderboard import write_leaderboard

    path, text = write_leaderboard(
        args.results_dir, dataset=args.dataset, fmt=args.fmt, out=args.out
    )
    print(text)
    print(f"written to {path}", file=sys.stderr)
    if args.plot:
        from bench.report import plot_leaderboard

        for png in plot_leaderboard(args.results_dir, path, dataset=args.dataset):
            print(f"written to {png}", file=sys.stderr)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from bench.report import ReportOptions, make_report

    options = ReportOptions(
        out=args.out,
        num_queries=args.num_queries,
        queries=args.queries,
        seed=args.seed,
        tsne_max_points=args.tsne_max_points,
        cam=args.cam,
        device=args.device,
        recompute=args.recompute,
        root=args.root,
        progress=not args.no_progress,
    )
    report = make_report(args.results_dir, args.run_id, options)
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    for path in report.images.values():
        print(f"written to {path}", file=sys.stderr)
    print(report.html)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from bench.registry import get_dataset, method_families

    if args.what == "methods":
        rows = []
        for cls in method_families():
            presets = ", ".join(cls.presets) or "-"
            needs = ", ".join(sorted(cls.modalities))
            rows.append([cls.name, cls.description, ", ".join(cls.variants) or "-", presets, needs])
            for name, variant in cls.variants.items():
                mods = variant.modalities if variant.modalities is not None else cls.modalities
                rows.append(
                    [
                        name,
                        variant.description,
                        f"variant of {cls.name}",
                        presets,
                        ", ".join(sorted(mods)),
                    ]
                )
        headers = ["method", "description", "variants", "presets", "needs"]
    else:
        from bench.registry import dataset_names

        rows = []
        for name in dataset_names():
            cls = get_dataset(name)
            rows.append([name, cls.description, ", ".join(sorted(cls.modalities)), cls.protocol])
        headers = ["dataset", "description", "provides", "protocol"]
    print(tabulate(rows, headers=headers, tablefmt="github"))
    return 0


COMMANDS = {
    "run": cmd_run,
    "leaderboard": cmd_leaderboard,
    "report": cmd_report,
    "list": cmd_list,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except BenchError as exc:
        if os.environ.get("BENCH_DEBUG"):
            raise
        print(f"bench: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
