"""``bench data check`` and ``bench data info``: what a dataset root holds, where to get one."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bench.cli.options import Parser, add_no_progress, add_root, add_sets


def add_parser(sub: Any) -> None:
    data = sub.add_parser("data", help="check a dataset root, or say where to get a dataset")
    data_sub = data.add_subparsers(dest="data_command", required=True, parser_class=Parser)
    check = data_sub.add_parser(
        "check",
        help="statistics per split, or every problem with its path (exit 1)",
        description="Read a dataset root as a run would and list every problem found: missing "
        "folders, file names that do not parse, images that do not decode, identities in both "
        "train and test, text rows with no images, polyps with no text. Exit 0 with a "
        "statistics table when there is none, else 1.",
    )
    check.set_defaults(handler=main)
    check.add_argument("name", help="dataset name (bench list datasets)")
    add_root(check)
    check.add_argument(
        "--test-root",
        type=Path,
        default=None,
        help="folder of the test split, for datasets released as two roots (polyp-tracklets)",
    )
    add_sets(check, "dataset config, e.g. --set text.source=attributes (repeatable)")
    check.add_argument(
        "--no-images", action="store_true", help="skip decoding every image (faster)"
    )
    add_no_progress(check)
    info = data_sub.add_parser(
        "info", help="where to download a dataset, its licence and the tree --root must hold"
    )
    info.set_defaults(handler=main)
    info.add_argument("name", help="dataset name (bench list datasets)")


def main(args: argparse.Namespace) -> int:
    from bench.config import dataset_config
    from bench.data.check import check_dataset, format_info, format_report
    from bench.plugins import get_dataset

    cls = get_dataset(args.name)
    if args.data_command == "info":
        print(format_info(cls))
        return 0
    adapter = cls(args.root, dataset_config(cls, args.sets), show_progress=not args.no_progress)
    adapter.use_test_root(args.test_root)
    report = check_dataset(adapter, verify_images=not args.no_images)
    print(format_report(report))
    return 0 if report.ok else 1
