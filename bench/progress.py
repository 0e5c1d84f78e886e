"""Progress that reads well where it goes: bars in a terminal, plain lines anywhere else.

Off a terminal (CI, Ray workers, ``nohup``, a log file), a bar's cursor-control sequences are
noise, so :func:`progress` gives a :class:`LineProgress` instead: one line per ``interval``
seconds at most (and one at the end). Training logs one line per epoch (``interval=0``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

from tqdm.auto import tqdm

#: The most often a long job off a terminal says how far it is (seconds).
LINE_INTERVAL = 60.0


def interactive(stream: TextIO | None = None) -> bool:
    """Whether ``stream`` (default stderr) is a terminal."""
    stream = stream if stream is not None else sys.stderr
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class LineProgress:
    """A bar's interface (iterate, ``update``, ``set_postfix``, ``close``, ``with``) that writes
    plain lines to stderr: ``desc: n/total unit [postfix] (elapsed)``, at most one per
    ``interval`` seconds and (``final``) one at the end; nothing when disabled."""

    def __init__(
        self,
        iterable: Iterable[Any] | None = None,
        *,
        desc: str = "",
        total: int | None = None,
        unit: str = "it",
        interval: float = LINE_INTERVAL,
        initial: int = 0,
        disable: bool = False,
        final: bool = True,
    ) -> None:
        self.iterable, self.desc, self.unit, self.interval = iterable, desc, unit, interval
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.total, self.n, self.disable, self.final = total, initial, disable, final
        self.postfix: dict[str, Any] = {}
        self.start = self.last = time.monotonic()
        self.shown = initial
        self.closed = False

    def __iter__(self) -> Iterator[Any]:
        assert self.iterable is not None
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def set_postfix(self, values: dict[str, Any] | None = None, **more: Any) -> None:
        self.postfix = {**(values or {}), **more}

    def set_postfix_str(self, text: str = "") -> None:
        self.postfix = {"": text} if text else {}

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self.last >= self.interval:
            self._line(now)

    def _line(self, now: float) -> None:
        self.last, self.shown = now, self.n
        if self.disable:
            return
        count = f"{self.n}/{self.total}" if self.total is not None else str(self.n)
        extra = "".join(f" {k} {v}" if k else f" {v}" for k, v in self.postfix.items())
        print(
            f"{self.desc}: {count} {self.unit}{extra} ({now - self.start:.0f} s)", file=sys.stderr
        )

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.final and self.n != self.shown:
                self._line(time.monotonic())

    @staticmethod
    def write(text: str) -> None:
        print(text, file=sys.stderr)


def progress(
    iterable: Iterable[Any] | None = None,
    *,
    desc: str,
    total: int | None = None,
    unit: str = "it",
    enabled: bool = True,
    interval: float = LINE_INTERVAL,
    final: bool = True,
    **bar: Any,
) -> Any:
    """A tqdm bar in a terminal (``bar`` are tqdm's options), else a :class:`LineProgress`
    (``final=False``: no closing line, e.g. for batches, whose epoch has its own line)."""
    if interactive():
        return tqdm(iterable, desc=desc, total=total, unit=unit, disable=not enabled, **bar)
    return LineProgress(
        iterable,
        desc=desc,
        total=total,
        unit=unit,
        interval=interval,
        initial=int(bar.get("initial", 0)),
        disable=not enabled,
        final=final,
    )
