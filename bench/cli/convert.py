"""``bench convert-checkpoint FILE``: rewrite a checkpoint of an older reid-bench (NumPy arrays in
its RNG state) as one the harness reads; NumPy arrays are admitted and nothing else, so no code
in the file can run (:func:`bench.engine.checkpoints.convert_legacy_checkpoint`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_parser(sub: Any) -> None:
    cv = sub.add_parser(
        "convert-checkpoint",
        help="rewrite a checkpoint of an older reid-bench so --resume and bench report read it",
        description=__doc__.split("\n\n")[0].replace("``", ""),
    )
    cv.set_defaults(handler=main)
    cv.add_argument("file", type=Path, help="the checkpoint (last.pt, final.pt or best.pt)")
    cv.add_argument(
        "--out", type=Path, default=None, help="write here instead of replacing FILE (atomically)"
    )


def main(args: argparse.Namespace) -> int:
    from bench.engine.checkpoints import convert_legacy_checkpoint

    out = convert_legacy_checkpoint(args.file, args.out)
    print(f"converted {args.file} -> {out}")
    return 0
