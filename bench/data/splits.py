"""Splitting and relabelling identities: training pids as ``0..N-1``, k folds by identity."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from bench.api.samples import JUNK_PID, Sample
from bench.errors import DatasetError


def relabel(samples: Sequence[Sample]) -> list[Sample]:
    """Training identities -> ``0..N-1`` in sorted order of the original pid.

    Junk samples (pid ``-1``) are dropped, as torchreid does for Market's training folder.
    """
    pids = sorted({s.pid for s in samples if s.pid != JUNK_PID})
    index = {pid: i for i, pid in enumerate(pids)}
    return [replace(s, pid=index[s.pid]) for s in samples if s.pid != JUNK_PID]


def kfold_by_identity(ids: Sequence, k: int) -> list[list]:
    """Split the sorted distinct ``ids`` into ``k`` contiguous blocks (sizes differ by at most 1,
    larger blocks first), numbered as DMCL's released code numbers its folds: fold 0 is the LAST
    block (31 ids, k=4: fold0 = ids[24:31], fold1 = [16:24], fold2 = [8:16], fold3 = [0:8]).
    Every identity is in exactly one fold."""
    unique = sorted(set(ids))
    n = len(unique)
    if isinstance(k, bool) or not isinstance(k, int) or k < 2 or k > n:
        raise DatasetError(
            f"protocol.folds must be an integer from 2 to the number of identities ({n}); got {k!r}"
        )
    size, extra = divmod(n, k)
    blocks, start = [], 0
    for i in range(k):
        stop = start + size + (1 if i < extra else 0)
        blocks.append(unique[start:stop])
        start = stop
    return blocks[::-1]


def fold_names(k: int) -> list[str]:
    """``["fold0", ..., f"fold{k-1}"]``; ``k`` below 2 is an error naming ``protocol.folds``."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise DatasetError(f"protocol.folds must be an integer of at least 2; got {k!r}")
    return [f"fold{i}" for i in range(k)]


def fold_index(fold: str | int | None, k: int) -> int:
    """``None`` -> 0, ``"fold2"`` or ``2`` -> 2; anything else is an error listing the folds."""
    if fold is None:
        return 0
    text = str(fold)
    m = re.fullmatch(r"(?:fold)?(\d+)", text)
    if m is None or int(m[1]) >= k:
        raise DatasetError(f"no fold {fold!r}; folds: {', '.join(fold_names(k))}")
    return int(m[1])
