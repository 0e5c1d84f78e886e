"""Allowed ranges of numeric config keys, declared beside their defaults.

A method or dataset plugin declares ``config_ranges = {"optim.lr": POSITIVE, ...}``; the
harness checks every value against it when the config is resolved (:mod:`bench.config`), before
any data is read, so a bad ``--set`` costs no training time. Every number must also be finite.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench.errors import ConfigError


@dataclass(frozen=True)
class Range:
    """Numbers from ``low`` to ``high`` (``None``: unbounded); ``*_open`` excludes the bound."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value: object) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return not (
            self.high is not None and (value >= self.high if self.high_open else value > self.high)
        )

    def describe(self) -> str:
        """``> 0``, ``>= 1``, ``in [0, 1]``, ``<= 10``."""
        if self.low is not None and self.high is not None:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            return f"in {left}{_num(self.low)}, {_num(self.high)}{right}"
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {_num(self.low)}"
        if self.high is not None:
            return f"{'<' if self.high_open else '<='} {_num(self.high)}"
        return "finite"

    def check(self, key: str, value: object) -> None:
        """Raise a ConfigError naming ``key`` when ``value`` is outside the range (or not a
        finite number)."""
        if value not in self:
            raise ConfigError(f"config key {key!r} must be {self.describe()}; got {value!r}")


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


FINITE = Range()
POSITIVE = Range(0, low_open=True)
NON_NEGATIVE = Range(0)
AT_LEAST_ONE = Range(1)
AT_LEAST_TWO = Range(2)
PROBABILITY = Range(0, 1)
#: Seeds Python, NumPy (32 bits) and torch all accept.
SEED = Range(0, 2**32 - 1)

#: The keys the image-training methods share (BoT, DMCL): input size and augmentation, the P x K
#: identity sampler, optimiser and epochs.
IMAGE_TRAINING_RANGES: dict[str, Range] = {
    "input.height": AT_LEAST_ONE,
    "input.width": AT_LEAST_ONE,
    "input.flip": PROBABILITY,
    "input.pad": NON_NEGATIVE,
    "sampler.p": AT_LEAST_ONE,
    "sampler.k": AT_LEAST_ONE,
    "optim.lr": POSITIVE,
    "optim.weight_decay": NON_NEGATIVE,
    "train.epochs": AT_LEAST_ONE,
}
