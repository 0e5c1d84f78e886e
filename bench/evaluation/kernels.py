"""Low-level tensor helpers the evaluator and re-ranking share: torch's thread count inside a
block, a pool of worker threads (torch releases the GIL in its ops), a fast ``nonzero`` for
sparse masks, and row norms without a temporary the size of the input.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import torch

_T = TypeVar("_T")


def sparse_nonzero(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``mask.nonzero(as_tuple=True)`` of a contiguous 2-D bool mask, for sparse masks.

    The mask is read as 64-bit words first: only the non-zero words (8 entries each) are looked
    at entry by entry, several times faster than ``nonzero`` when few entries are set.
    """
    num_g = mask.shape[1]
    flat = mask.reshape(-1)
    n = flat.numel() - flat.numel() % 8
    if n < 64 or flat.storage_offset() % 8:
        return mask.nonzero(as_tuple=True)
    words = flat[:n].view(torch.int64)
    hit = words.nonzero().squeeze(1)
    byte_rows, byte_cols = flat[:n].view(-1, 8).index_select(0, hit).nonzero(as_tuple=True)
    index = hit[byte_rows] * 8 + byte_cols
    if n < flat.numel():
        index = torch.cat([index, n + flat[n:].nonzero().squeeze(1)])
    return index // num_g, index % num_g


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run torch CPU ops on ``n`` threads inside the block (``None``: leave as is)."""
    if n is None or n == torch.get_num_threads():
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def worker_pool(device: torch.device) -> Iterator[ThreadPoolExecutor | None]:
    """On the CPU, one worker thread per torch thread (torch releases the GIL in its ops);
    ``None`` (work inline) on an accelerator or with one thread."""
    workers = torch.get_num_threads() if device.type == "cpu" else 1
    if workers <= 1:
        yield None
        return
    with ThreadPoolExecutor(workers) as pool:
        yield pool


def map_on(
    pool: ThreadPoolExecutor | None, fn: Callable[[Any], _T], items: Iterable[Any]
) -> list[_T]:
    """``[fn(x) for x in items]``, on ``pool``'s threads when given."""
    return list(pool.map(fn, items)) if pool is not None else [fn(x) for x in items]


def squared_norms(x: torch.Tensor, rows: int = 4096) -> torch.Tensor:
    """Row-wise ``sum(x**2)``, a chunk of rows at a time (no temporary the size of ``x``)."""
    out = torch.empty(x.shape[0], dtype=x.dtype, device=x.device)
    for s in range(0, x.shape[0], rows):
        out[s : s + rows] = x[s : s + rows].pow(2).sum(1)
    return out


def normalize_rows(x: torch.Tensor, sq: torch.Tensor | None = None) -> torch.Tensor:
    """``x`` with L2-normalised rows, ``x / max(||x||, 1e-12)`` (``F.normalize``'s formula),
    from the rows' :func:`squared_norms` ``sq`` when they are known. Every cosine distance of
    the evaluators normalises here, so they agree to the bit on the order of near-ties."""
    sq = squared_norms(x) if sq is None else sq
    return x / sq.sqrt().clamp_min(1e-12)[:, None]
