"""The ``bench`` command line: ``run``, ``eval``, ``sweep``, ``leaderboard``, ``report``, ``data``,
``list``, ``convert-checkpoint``, one module per subcommand (each with ``add_parser`` and
``main``); the options they share are declared once in :mod:`bench.cli.options`.

Every failure ends as one line on stderr and a non-zero exit code, never a traceback
(:mod:`bench.cli.failures`: 1 an error, 2 a usage error, 130 interrupted); ``--debug`` (anywhere
on the command line) or ``BENCH_DEBUG=1`` shows the traceback. A subcommand imports its
machinery when it runs, so ``bench --help`` starts at once.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from bench import __version__
from bench.cli import convert, data, evaluate, leaderboard, listing, report, run, sweep
from bench.cli.failures import report_failure
from bench.cli.options import Parser

#: The subcommands in the order ``bench --help`` lists them.
SUBCOMMANDS = (run, sweep, evaluate, leaderboard, data, report, listing, convert)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="bench", description="Train, evaluate and rank ReID methods under one protocol."
    )
    parser.add_argument("--version", action="version", version=f"reid-bench {__version__}")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show the traceback of an error (also BENCH_DEBUG=1; allowed anywhere)",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for command in SUBCOMMANDS:
        command.add_parser(sub)
    return parser


def _one_line_warning(
    message: Warning | str, category: type[Warning], filename: str, lineno: int, *_: Any
) -> None:
    """Warnings as ``bench: warning: ...``, one line (not Python's file:line and source)."""
    text = " ".join(str(message).split())
    print(f"bench: warning: {text}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or bool(os.environ.get("BENCH_DEBUG"))
    args = build_parser().parse_args([a for a in argv if a != "--debug"])
    with warnings.catch_warnings():
        if not debug:
            warnings.showwarning = _one_line_warning
        try:
            return args.handler(args)
        except (Exception, KeyboardInterrupt) as exc:
            return report_failure(exc, debug)
