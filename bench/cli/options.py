"""The parser class and the options several subcommands share, each declared once here."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any, TypeVar

from bench.api.ranges import AT_LEAST_ONE, SEED, Range

T = TypeVar("T")

EXIT_USAGE = 2


class Parser(argparse.ArgumentParser):
    """An argparse parser whose usage errors are one line, not usage + message."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def ranged_int(allowed: Range) -> Any:
    """An argparse ``type``: an integer within ``allowed`` (a usage error otherwise)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value not in allowed:
            raise argparse.ArgumentTypeError(f"must be {allowed.describe()}, got {value}")
        return value

    return parse


#: ``--seed``: what Python, NumPy and torch all accept (0 .. 2**32-1).
seed_int = ranged_int(SEED)
positive_int = ranged_int(AT_LEAST_ONE)


def add_sets(p: argparse.ArgumentParser, help: str) -> None:
    """``--set KEY=VALUE`` (repeatable) into ``args.sets``."""
    p.add_argument(
        "--set", dest="sets", action="append", default=[], metavar="KEY=VALUE", help=help
    )


def add_root(p: argparse.ArgumentParser, help: str = "dataset root folder") -> None:
    """``--root PATH``: the folder of the dataset (``None``: its default place)."""
    p.add_argument("--root", type=Path, default=None, help=help)


def add_device(
    p: argparse.ArgumentParser, help: str = "cpu or cuda (default cpu)", default: str | None = "cpu"
) -> None:
    """``--device cpu|cuda|cuda:N`` (checked by :func:`bench.engine.devices.parse_device`)."""
    p.add_argument("--device", default=default, help=help)


def add_no_progress(p: argparse.ArgumentParser) -> None:
    """``--no-progress``: no progress bars."""
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def add_results_dir(
    p: argparse.ArgumentParser,
    help: str = "folder of run records (DIR/runs/*.json) and leaderboards (default: results)",
    default: Path | None = Path("results"),
) -> None:
    """``--results-dir DIR``: where run records, failures, logs and leaderboards live."""
    p.add_argument("--results-dir", type=Path, default=default, metavar="DIR", help=help)


def from_args(cls: type[T], args: argparse.Namespace, **given: Any) -> T:
    """The dataclass ``cls`` filled from the parsed options of the same names (``given`` fills
    the rest: ``progress=not args.no_progress``)."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in vars(args).items() if k in names}, **given)
