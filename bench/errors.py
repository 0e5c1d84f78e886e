"""Errors the CLI turns into one line on stderr and a non-zero exit, never a traceback, and the
"did you mean" hint their messages carry."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class BenchError(Exception):
    """A user-facing error: bad input, missing data, unknown name. The message says what to fix."""


class ConfigError(BenchError):
    """A config key or value is unknown or of the wrong type."""


class DatasetError(BenchError):
    """A dataset root is missing or malformed; the message names the folder or file."""


class PluginError(BenchError):
    """A plugin failed to load or register; the message names the file or entry point."""


class WeightsNotFoundError(BenchError):
    """Pretrained weights were asked for but no local file has them (nothing is downloaded)."""


def close_matches(word: str, known: Iterable[str], n: int = 1, cutoff: float = 0.5) -> list[str]:
    """The (at most ``n``) names of ``known`` closest to a mistyped ``word``, best first."""
    return difflib.get_close_matches(word, list(known), n=n, cutoff=cutoff)


def did_you_mean(word: str, known: Iterable[str], cutoff: float = 0.5) -> str:
    """`` Did you mean 'x'?`` for the name of ``known`` closest to ``word``, else ``""``."""
    close = close_matches(word, known, 1, cutoff)
    return f" Did you mean {close[0]!r}?" if close else ""


class Problems:
    """Where readers send what is wrong with a dataset root.

    Without a collector (``collect=False``, what a run uses) the first problem raises
    :class:`DatasetError`; ``bench data check`` collects them all (``collect=True``) and lists
    each ``(path, message)`` pair. The message is a whole sentence that names the path.
    """

    def __init__(self, collect: bool = True) -> None:
        self.collect = collect
        self.items: list[tuple[str, str]] = []

    def report(self, path: object, message: str) -> None:
        if not self.collect:
            raise DatasetError(message)
        self.items.append((str(path), message))

    def __len__(self) -> int:
        return len(self.items)


#: Readers' default: raise on the first problem.
RAISE = Problems(collect=False)
