"""The ``bench`` command line: ``run``, ``eval``, ``sweep``, ``leaderboard``, ``report``, ``data``,
``list``.

Every user error (unknown name, bad ``--set``, missing data) ends as one line on stderr and a
non-zero exit code, never a traceback; ``BENCH_DEBUG=1`` shows the traceback anyway.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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
    run.add_argument(
        "--rerank",
        action="store_true",
        help="k-reciprocal re-ranking before evaluation (same as --set eval.rerank=true)",
    )
    run.add_argument("--no-progress", action="store_true", help="hide progress bars")
    run.add_argument(
        "--print-config", action="store_true", help="print the resolved config and exit"
    )
    _add_results_dir(run)

    _add_sweep_parser(sub)
    ev = sub.add_parser(
        "eval",
        help="evaluate saved query/gallery features (.npz) without training",
        description="Evaluate saved features under the Market-1501 rules, as bench run does. "
        "FILE is an .npz with query_features (Q x D), gallery_features (G x D), query_pids, "
        "gallery_pids, query_camids, gallery_camids (integers) and optionally metric "
        "(euclidean, the default, or cosine).",
    )
    ev.add_argument("--features", required=True, type=Path, metavar="FILE", help="the .npz file")
    ev.add_argument(
        "--rerank", action="store_true", help="k-reciprocal re-ranking (k1=20, k2=6, lambda=0.3)"
    )
    ev.add_argument("--max-rank", type=int, default=50, help="length of the CMC curve (default 50)")
    ev.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    ev.add_argument(
        "--json", action="store_true", help="print one JSON object (mAP, mINP, cmc, ...)"
    )

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
        "--with-reported",
        nargs="?",
        const=Path("results/reported"),
        default=None,
        type=Path,
        metavar="RDIR",
        help="add the numbers papers report (YAML in RDIR, default results/reported) as "
        "'(reported)' rows: not averaged with measured runs, not ranked",
    )

    data = sub.add_parser("data", help="check a dataset root, or say where to get a dataset")
    data_sub = data.add_subparsers(dest="data_command", required=True, parser_class=_Parser)
    check = data_sub.add_parser(
        "check",
        help="statistics per split, or every problem with its path (exit 1)",
        description="Read a dataset root as a run would and list every problem found: missing "
        "folders, file names that do not parse, images that do not decode, identities in both "
        "train and test, text rows with no images, polyps with no text. Exit 0 with a "
        "statistics table when there is none, else 1.",
    )
    check.add_argument("name", help="dataset name (bench list datasets)")
    check.add_argument("--root", type=Path, default=None, help="dataset root folder")
    check.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="dataset config, e.g. --set text.source=attributes (repeatable)",
    )
    check.add_argument(
        "--no-images", action="store_true", help="skip decoding every image (faster)"
    )
    check.add_argument("--no-progress", action="store_true", help="hide progress bars")
    info = data_sub.add_parser(
        "info", help="where to download a dataset, its licence and the tree --root must hold"
    )
    info.add_argument("name", help="dataset name (bench list datasets)")

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


def _add_sweep_parser(sub: Any) -> None:
    sw = sub.add_parser(
        "sweep",
        help="run a grid of methods x presets x datasets x seeds x folds (resumable)",
        description="Run every combination, skipping runs whose record (same config hash) "
        "exists; failed runs go to DIR/failed/ and are retried by the next sweep. Ends with a "
        "summary table and the leaderboard. Flags override the keys of a sweep FILE.",
    )
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
    sw.add_argument(
        "--set",
        dest="set",
        action="append",
        default=None,
        metavar="KEY=VALUE",
        help="config override for every run (repeatable); resources.num_cpus and "
        "resources.num_gpus are what each Ray task asks for",
    )
    sw.add_argument(
        "--root",
        dest="roots",
        action="append",
        default=None,
        metavar="DATASET=PATH",
        help="root folder of a dataset (repeatable)",
    )
    sw.add_argument("--device", default=None, help="cpu or cuda for every run (default cpu)")
    sw.add_argument(
        "--executor",
        choices=["local", "ray"],
        default=None,
        help="local: this machine (default); ray: one Ray task per run (pip install -e '.[ray]')",
    )
    sw.add_argument(
        "--max-parallel",
        type=int,
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
    sw.add_argument("--no-progress", action="store_true", help="hide progress bars")
    sw.add_argument(
        "--results-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="folder of run records (DIR/runs), failures (DIR/failed), logs and the "
        "leaderboard (default: results)",
    )


def cmd_sweep(args: argparse.Namespace) -> int:
    from bench.leaderboard import write_leaderboard
    from bench.sweep import load_sweep_file, make_spec, normalize, run_sweep, summary_table

    settings = load_sweep_file(args.file) if args.file is not None else {}
    flags = {key: getattr(args, key) for key in ("methods", "datasets", "seeds", "folds")}
    flags.update(
        presets=args.presets,
        set=args.set,
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

    if args.rerank:
        args.sets = [*args.sets, "eval.rerank=true"]
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


def cmd_eval(args: argparse.Namespace) -> int:
    import json
    import time

    from bench.featurefile import load_features
    from bench.protocol import evaluate_labels, get_protocol
    from bench.runner import resolve_device

    if args.max_rank < 1:
        raise BenchError(f"--max-rank must be a positive integer, got {args.max_rank}")
    device = resolve_device(args.device)
    f = load_features(args.features)
    t0 = time.perf_counter()
    metrics = evaluate_labels(
        get_protocol("market"),
        f.query_pids,
        f.query_camids,
        f.gallery_pids,
        f.gallery_camids,
        query_features=f.query_features,
        gallery_features=f.gallery_features,
        metric=f.metric,
        max_rank=args.max_rank,
        rerank=args.rerank,
        device=device,
    )
    seconds = time.perf_counter() - t0
    d = metrics.as_dict()
    if args.json:
        out = {k: d[k] for k in ("mAP", "mINP", "MRR", "cmc", "num_valid_queries", "num_queries")}
        print(json.dumps({**out, "metric": f.metric, "rerank": args.rerank}))
        return 0
    from tabulate import tabulate

    row = [100 * d["mAP"], 100 * d["rank1"], 100 * d["rank5"], 100 * d["rank10"]]
    print(
        tabulate(
            [[*row, 100 * d["mINP"], 100 * d["MRR"]]],
            headers=["mAP", "Rank-1", "Rank-5", "Rank-10", "mINP", "MRR"],
            tablefmt="github",
            floatfmt=".2f",
        )
    )
    print(
        f"{d['num_valid_queries']} of {d['num_queries']} queries valid; {len(f.gallery_pids)} "
        f"gallery; {f.metric}{' + re-ranking' if args.rerank else ''}; {seconds:.2f} s on {device}",
        file=sys.stderr,
    )
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from bench.leaderboard import write_leaderboard

    path, text = write_leaderboard(
        args.results_dir,
        dataset=args.dataset,
        fmt=args.fmt,
        out=args.out,
        reported_dir=args.with_reported,
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


def cmd_data(args: argparse.Namespace) -> int:
    from bench.datacheck import check_dataset, dataset_config, format_info, format_report
    from bench.registry import get_dataset

    cls = get_dataset(args.name)
    if args.data_command == "info":
        print(format_info(cls))
        return 0
    adapter = cls(args.root, dataset_config(cls, args.sets), show_progress=not args.no_progress)
    report = check_dataset(adapter, verify_images=not args.no_images)
    print(format_report(report))
    return 0 if report.ok else 1


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
    "eval": cmd_eval,
    "sweep": cmd_sweep,
    "leaderboard": cmd_leaderboard,
    "data": cmd_data,
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
