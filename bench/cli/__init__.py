"""The ``bench`` command line: ``run``, ``eval``, ``sweep``, ``leaderboard``, ``report``, ``data``,
``list``, one module per subcommand (each with ``add_parser`` and ``main``); the options they
share are declared once in :mod:`bench.cli.options`.

Every user error (unknown name, bad ``--set``, missing data) ends as one line on stderr and a
non-zero exit code, never a traceback; ``BENCH_DEBUG=1`` shows the traceback anyway. A
subcommand imports its machinery when it runs, so ``bench --help`` starts at once.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from bench import __version__
from bench.cli import data, evaluate, leaderboard, listing, report, run, sweep
from bench.cli.options import Parser
from bench.errors import BenchError

#: The subcommands in the order ``bench --help`` lists them.
SUBCOMMANDS = (run, sweep, evaluate, leaderboard, data, report, listing)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="bench", description="Train, evaluate and rank ReID methods under one protocol."
    )
    parser.add_argument("--version", action="version", version=f"reid-bench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for command in SUBCOMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except BenchError as exc:
        if os.environ.get("BENCH_DEBUG"):
            raise
        print(f"bench: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
