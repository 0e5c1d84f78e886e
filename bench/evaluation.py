"""Exact Market-1501-style ranking evaluation: CMC, mAP, mINP and MRR, blocked and sort-free.

The rules are those of the Market-1501 protocol (Zheng et al. 2015, "Scalable Person
Re-identification: A Benchmark") as torchreid's and fast-reid's ``eval_market1501`` compute them:

* For each query, gallery entries with the query's pid *and* camera are removed from its ranking.
* Gallery entries with pid ``-1`` (junk) are removed from every ranking.
* pid ``0`` (distractors) and every other pid are ordinary entries (negatives unless they match).
* A query with no true match left after removal is skipped: it counts in ``num_queries`` but not
  in ``num_valid_queries``, and not in any average. No valid query at all is an error.

Ranking sorts each distance row ascending with a *stable* sort (as ``np.argsort(kind="stable")``),
so equal distances are broken by gallery order: the earlier gallery entry ranks first. This makes
the metrics a deterministic function of the inputs, also with ties.

Per valid query, with ``raw`` the boolean true-match vector over the kept entries in ranked order,
``num_rel = raw.sum()`` and ``r_1 < ... < r_m`` the 1-based positions of its ``m = num_rel`` true
matches:

* CMC: ``cmc[k-1] = 1`` when a true match is among the first ``k`` kept entries (``r_1 <= k``).
  Unlike torchreid (which shrinks ``max_rank`` to the gallery size) the CMC always has length
  ``max_rank``; when fewer than ``max_rank`` entries are kept, it stays at its last value (1, since
  a valid query has a match) beyond them. The hit rate HR@K of retrieval papers is ``cmc[K-1]``.
* AP: the mean, over the true matches, of the precision at their positions, ``(1/m) sum_t t / r_t``.
* INP (Ye et al. 2021, "Deep Learning for Person Re-identification: A Survey and Outlook"):
  ``m / r_m``, with ``r_m`` the position of the last (hardest) true match.
* RR: the reciprocal rank ``1 / r_1`` of the first true match; MRR is its mean.

``mAP``, ``mINP``, ``MRR`` and the CMC are means over valid queries.

How it is computed (no sort of a gallery row, no dense ``Q x G`` index array). Every metric above
needs only the positions ``r_t`` of the true matches, and ``r_t - 1`` is the number of kept entries
that precede match ``t``: entries with a smaller distance, or an equal distance and a smaller
gallery index. Queries are processed in blocks of rows (for features: one matrix product a
block), a block in parts of rows that worker threads take in turn on the CPU. A row's entries up
to its last true match are the entries whose key is at most that match's key; where few entries
are (the usual case for a trained model, estimated from a sample of columns), one comparison
pass finds them and an exact ``(distance, gallery index)`` sort of them orders them. Every other
row goes through a histogram: a monotone map sends each distance to one of ``NB`` buckets
spanning the row's true-match distances (below the first and above the last match collapse into
two end buckets) and one histogram per row counts the entries per bucket. An entry in a bucket
that holds no true match is ordered against every match by its bucket alone (the map is
monotone); the few entries that share a bucket with a true match are ordered exactly, by
``(distance, gallery index)`` with a stable sort. Removed entries (same pid and camera) are
subtracted from the counts and left out of the exact set; junk columns are dropped up front. The
result equals the stable-argsort definition exactly, ties included (the tests check it against a
brute-force implementation of the definitions, on inputs with many ties, through both paths).

All of it is torch tensor code: the same functions run on a CUDA device (``device=``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch
import torch.nn.functional as F

from bench.errors import BenchError

__all__ = [
    "METRICS",
    "NoValidQueryError",
    "RankMetrics",
    "compute_distance",
    "evaluate_features",
    "evaluate_rank",
    "retrieval_metrics",
]

METRICS: tuple[str, ...] = ("euclidean", "cosine")

# Elements (query rows x gallery columns) handled per block: about 13 bytes each in flight
# (float32 distances, float32 and int32 work buffers, a bool mask), ~220 MB at the default.
_BLOCK_ELEMENTS = 1 << 24
# Histogram buckets per row: about one per 4 gallery entries, within these bounds.
_MIN_BUCKETS, _MAX_BUCKETS = 64, 16384
# Bucket indices are formed in float32 above 2**23; rows x buckets per block stays below 2**22.
_MAX_BLOCK_BINS = 1 << 22
# Bit pattern of the float32 2**23: x + 2**23 holds round(x) in its low bits for 0 <= x < 2**23.
_MAGIC_BITS = 0x4B000000
# Elements per part of a block (rows handled by one worker thread at a time): large enough that
# the per-op overhead is small, small enough that two parts' work buffers stay in L3 (measured
# best at Market-1501 scale among 2**17 .. 2**23).
_SUB_ELEMENTS = 1 << 21
# A row whose estimated number of entries up to its last true match is at most this fraction of
# the gallery takes the threshold path; deeper rows take the histogram path.
_SHALLOW_FRACTION = 1 / 16
# Columns sampled per row for that estimate.
_SAMPLE_COLUMNS = 256

ArrayLike = np.ndarray | torch.Tensor | Sequence[Any]
_T = TypeVar("_T")
KeyBlocks = Callable[[np.ndarray], torch.Tensor]  # query rows (ascending) -> (B, G) keys


class NoValidQueryError(BenchError, ValueError):
    """No query has a true match in the gallery; a ``ValueError`` the CLI reports as one line."""


@dataclass
class RankMetrics:
    """Ranking metrics of one query/gallery evaluation (see the module docstring)."""

    cmc: np.ndarray  # float64, shape (max_rank,); cmc[k-1] = Rank-k accuracy in [0, 1]
    mAP: float
    mINP: float
    num_valid_queries: int
    num_queries: int
    mrr: float = float("nan")  # mean reciprocal rank of the first true match

    def rank(self, k: int) -> float:
        """Rank-``k`` accuracy (= hit rate HR@k), ``cmc[k-1]``; ``1 <= k <= max_rank``."""
        if not 1 <= k <= len(self.cmc):
            raise ValueError(f"rank k must be in [1, {len(self.cmc)}] (max_rank), got {k}")
        return float(self.cmc[k - 1])

    def as_dict(self) -> dict[str, Any]:
        """Plain python floats and ints (JSON-able).

        ``rank5``/``rank10`` are ``nan`` when ``max_rank`` is below 5/10: they were not computed.
        """

        def at(k: int) -> float:
            return self.rank(k) if k <= len(self.cmc) else float("nan")

        return {
            "mAP": float(self.mAP),
            "mINP": float(self.mINP),
            "MRR": float(self.mrr),
            "rank1": at(1),
            "rank5": at(5),
            "rank10": at(10),
            "cmc": [float(x) for x in self.cmc],
            "num_valid_queries": int(self.num_valid_queries),
            "num_queries": int(self.num_queries),
        }


def compute_distance(
    query: torch.Tensor, gallery: torch.Tensor, metric: str = "euclidean"
) -> torch.Tensor:
    """Distance matrix ``(Q, G)``, float32 on the inputs' device, between ``(Q, D)`` and ``(G, D)``.

    ``"euclidean"``: the true (not squared) Euclidean distance, from the expansion
    ``||q||^2 + ||g||^2 - 2 q.g`` clamped at 0, then square-rooted. torchreid ranks by the squared
    distance; the ranking, hence every metric, is the same.
    ``"cosine"``: ``1 - cos(q, g)`` on L2-normalised rows, in ``[0, 2]`` (an all-zero row has
    distance 1 to everything).
    """
    _check_features(query, gallery, metric)
    q = query.detach().float()
    g = gallery.detach().float()
    if metric == "cosine":
        return 1.0 - F.normalize(q, dim=1) @ F.normalize(g, dim=1).T
    sq = q.pow(2).sum(1, keepdim=True) + g.pow(2).sum(1).unsqueeze(0)
    sq = torch.addmm(sq, q, g.T, beta=1.0, alpha=-2.0)
    return sq.clamp_(min=0).sqrt_()


def _check_features(query: torch.Tensor, gallery: torch.Tensor, metric: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"unknown distance metric {metric!r}; allowed: {', '.join(METRICS)}")
    for name, x in (("query", query), ("gallery", gallery)):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if x.ndim != 2:
            raise ValueError(f"{name} must be 2-D (N, D), got shape {tuple(x.shape)}")
    if query.shape[1] != gallery.shape[1]:
        raise ValueError(
            f"query and gallery feature sizes differ: {query.shape[1]} vs {gallery.shape[1]}"
        )


# --------------------------------------------------------------------------------------------
# Labels and the gallery's identity groups
# --------------------------------------------------------------------------------------------


def _as_numpy(x: ArrayLike) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _labels(name: str, x: ArrayLike, n: int, axis_name: str, of: str = "distmat") -> np.ndarray:
    a = _as_numpy(x)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    if len(a) != n:
        raise ValueError(f"{name} has {len(a)} entries but {of} has {n} {axis_name}")
    if a.dtype.kind == "f":
        if not (np.isfinite(a).all() and np.array_equal(a, np.round(a))):
            raise ValueError(f"{name} must hold integers, got non-integer values")
    elif a.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integers, got dtype {a.dtype}")
    return a.astype(np.int64, copy=False)


def _check_max_rank(max_rank: int) -> int:
    if isinstance(max_rank, bool) or not isinstance(max_rank, (int, np.integer)) or max_rank < 1:
        raise ValueError(f"max_rank must be a positive int, got {max_rank!r}")
    return int(max_rank)


@dataclass
class _Groups:
    """The kept gallery columns grouped by pid, and each query's group and true-match count.

    ``order`` lists kept-column positions sorted by (pid, column); query ``i``'s pid occupies
    ``order[start[i] : start[i] + length[i]]`` (``length`` 0 when the pid is not in the gallery).
    """

    kept: np.ndarray  # gallery column of each kept position (junk dropped)
    g_pid: np.ndarray  # pid / camera per kept position
    g_cam: np.ndarray
    order: np.ndarray
    start: np.ndarray  # per query
    length: np.ndarray  # per query: gallery entries with its pid (true matches + removed)
    num_pos: np.ndarray  # per query: true matches (same pid, other camera)


def _lookup(
    keys: np.ndarray, a: np.ndarray, b: np.ndarray, queries: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(a[i], b[i])`` where ``keys[i] == query`` (``keys`` sorted, unique), else ``(0, 0)``."""
    if len(keys) == 0:
        zero = np.zeros(len(queries), dtype=np.int64)
        return zero, zero
    at = np.minimum(np.searchsorted(keys, queries), len(keys) - 1)
    found = keys[at] == queries
    return np.where(found, a[at], 0), np.where(found, b[at], 0)


def _groups(
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    junk_pid: int | None,
) -> _Groups:
    kept = np.flatnonzero(g_pids != junk_pid) if junk_pid is not None else np.arange(len(g_pids))
    g_pid, g_cam = g_pids[kept], g_camids[kept]
    order = np.lexsort((np.arange(len(g_pid)), g_pid))
    uniq, first, counts = np.unique(g_pid[order], return_index=True, return_counts=True)
    start, length = _lookup(uniq, first, counts, q_pids)
    # Entries sharing the query's pid *and* camera: counted over (pid, camera) pairs.
    # Entries sharing the query's pid *and* camera, counted per (pid, camera) pair code.
    _, pid_code = np.unique(np.concatenate([g_pid, q_pids]), return_inverse=True)
    cams, cam_code = np.unique(np.concatenate([g_cam, q_camids]), return_inverse=True)
    pair_code = pid_code.astype(np.int64) * len(cams) + cam_code
    g_code, q_code = pair_code[: len(g_pid)], pair_code[len(g_pid) :]
    u_pairs, pair_counts = np.unique(g_code, return_counts=True)
    _, same = _lookup(u_pairs, pair_counts, pair_counts, q_code)
    return _Groups(kept, g_pid, g_cam, order, start, length, length - same)


# --------------------------------------------------------------------------------------------
# The per-block core: positions of every true match among the kept entries
# --------------------------------------------------------------------------------------------


def _num_buckets(num_g: int) -> int:
    nb = 1 << max(0, int(num_g // 4 - 1).bit_length())
    return int(min(max(nb, _MIN_BUCKETS), _MAX_BUCKETS))


@dataclass
class _Block:
    """One block of query rows: ranking keys and each row's same-pid gallery columns."""

    keys: torch.Tensor  # (B, G) smaller ranks first
    cols: torch.Tensor  # (B, L) the row's same-pid columns, padded
    is_pos: torch.Tensor  # (B, L) true match (other camera)
    is_rem: torch.Tensor  # (B, L) removed (same camera)
    q_pid: torch.Tensor  # (B,)
    q_cam: torch.Tensor  # (B,)

    def _fields(self) -> list[torch.Tensor]:
        # (not dataclasses.astuple: it deep-copies, and keys may view a whole distmat)
        return [getattr(self, f.name) for f in dataclasses.fields(self)]

    def rows(self, index: torch.Tensor) -> _Block:
        return _Block(*(t.index_select(0, index) for t in self._fields()))

    def slice(self, start: int, stop: int) -> _Block:
        return _Block(*(t[start:stop] for t in self._fields()))


class _Work(threading.local):
    """Work buffers of one evaluation, one set per thread: reused from part to part, so the
    per-element passes write to memory already mapped (a fresh multi-MB tensor each time costs
    page faults, measured several times a pass's own time)."""

    def __init__(self) -> None:
        self.buffers: dict[tuple[str, torch.dtype, torch.device], torch.Tensor] = {}

    def get(
        self, name: str, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device
    ) -> torch.Tensor:
        key = (name, dtype, device)
        n = math.prod(shape)
        buf = self.buffers.get(key)
        if buf is None or buf.numel() < n:
            buf = self.buffers[key] = torch.empty(n, dtype=dtype, device=device)
        return buf[:n].view(shape)


def _nonzero(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
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


def _exact_positions(
    block: _Block,
    s_row: torch.Tensor,
    s_col: torch.Tensor,
    g_pid: torch.Tensor,
    g_cam: torch.Tensor,
    below: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Order a candidate set exactly and read off its true matches' 1-based positions.

    ``(s_row, s_col)`` in (row, column) order hold, per row, every true match and every kept
    entry that shares a ranking range with one; ``below[i]`` (or 0) counts the kept entries
    strictly before candidate ``i``'s range. Removed entries (same pid and camera) are dropped;
    the rest are sorted by ``(row, key, column)`` (stable sorts), so a match's position is
    ``1 + below + its index among its row's candidates``.
    """
    same_pid = g_pid[s_col] == block.q_pid[s_row]
    kept = ~(same_pid & (g_cam[s_col] == block.q_cam[s_row]))
    s_row, s_col, same_pid = s_row[kept], s_col[kept], same_pid[kept]
    if below is not None:
        below = below[kept]
    s_key = block.keys[s_row, s_col] + 0.0  # -0.0 -> +0.0: equal distances tie
    by_key = torch.sort(s_key, stable=True).indices  # (row, column) order within equal keys
    perm = by_key[torch.sort(s_row[by_key], stable=True).indices]
    s_row, same_pid = s_row[perm], same_pid[perm]
    per_row = torch.bincount(s_row, minlength=block.keys.shape[0])
    row_start = per_row.cumsum(0) - per_row
    position = 1 + torch.arange(len(s_row), device=s_row.device) - row_start[s_row]
    if below is not None:
        position += below[perm]
    return s_row[same_pid], position[same_pid]


def _positions_threshold(
    block: _Block, hi: torch.Tensor, g_pid: torch.Tensor, g_cam: torch.Tensor, work: _Work
) -> tuple[torch.Tensor, torch.Tensor]:
    """Match positions of rows whose true matches rank early (few entries before the last one).

    Every entry that precedes a true match has a key at most the row's largest true-match key
    ``hi``, so the entries with ``key <= hi`` are the whole candidate set: one comparison pass,
    then an exact sort of the candidates. Returns ``(rows, positions)``: every true match's row
    (ascending) and 1-based position (ascending within a row).
    """
    mask = work.get("mask", tuple(block.keys.shape), torch.bool, block.keys.device)
    s_row, s_col = _nonzero(torch.le(block.keys, hi[:, None], out=mask))
    return _exact_positions(block, s_row, s_col, g_pid, g_cam, None)


def _positions_histogram(
    block: _Block,
    g_pid: torch.Tensor,
    g_cam: torch.Tensor,
    num_buckets: int,
    work: _Work,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Match positions of every row (any depth), by a per-row bucket histogram.

    Buckets span the row's true-match keys; entries in buckets without a true match are placed
    by their bucket's count alone, entries sharing a bucket with a true match by an exact
    ``(key, column)`` sort. Returns ``(rows, positions)`` as :func:`_positions_threshold`.
    """
    keys = block.keys
    num_b, num_g = keys.shape
    device, dtype = keys.device, keys.dtype
    nbins = num_buckets + 2
    rows = torch.arange(num_b, device=device)

    group_keys = keys.gather(1, block.cols)
    # lo/hi over finite true-match keys (an infinite one only makes its end bucket marked).
    finite_pos = block.is_pos & torch.isfinite(group_keys)
    lo = torch.where(finite_pos, group_keys, torch.inf).amin(1)
    hi = torch.where(finite_pos, group_keys, -torch.inf).amax(1)
    none = ~finite_pos.any(1)
    lo, hi = lo.masked_fill(none, 0.0), hi.masked_fill(none, 0.0)
    # x = (key - lo) * scale maps [lo, hi] onto [0, NB - 1]. A floor on the span keeps the scale
    # finite for a single match (or tied ones); the map is monotone whatever the scale.
    lo64, hi64 = lo.double(), hi.double()
    floor = torch.maximum(lo64.abs(), hi64.abs()) * 2.0**-20 + 1e-30
    scale = ((num_buckets - 1) / torch.maximum(hi64 - lo64, floor)).to(dtype)
    # bucket = round(clamp(x, -1, NB) + row * nbins + 1) via the float32 magic number 2**23:
    # adding it rounds to an integer held in the low mantissa bits. Every step is correctly
    # rounded and monotone, so a smaller bucket means a strictly smaller key.
    magic = 2.0**23
    x = work.get("x", (num_b, num_g), torch.float32, device)
    if dtype == torch.float32:
        torch.sub(keys, lo[:, None], out=x).mul_(scale[:, None])
    else:
        x.copy_((keys - lo[:, None]).mul_(scale[:, None]).clamp_(-1.0, float(num_buckets)))
    x.clamp_(-1.0, float(num_buckets)).add_((rows * nbins + 1).float()[:, None] + magic)
    bucket = x.view(torch.int32).sub_(_MAGIC_BITS)
    flat = bucket.view(-1)

    counts = torch.bincount(flat, minlength=num_b * nbins)
    group_bucket = bucket.gather(1, block.cols).long()
    removed = group_bucket[block.is_rem]
    counts.index_add_(0, removed, torch.full_like(removed, -1))
    marked = torch.zeros(num_b * nbins, dtype=torch.bool, device=device)
    marked[group_bucket[block.is_pos]] = True
    # Kept entries in unmarked buckets up to each bucket, per row (the exact set's entries are
    # all in marked buckets, which count 0 here: "up to" is "strictly below" for them).
    below = counts.masked_fill_(marked, 0).view(num_b, nbins).cumsum(1).view(-1)

    # The exact set: entries in marked buckets.
    in_marked = work.get("mask", (num_b * num_g,), torch.bool, device)
    s_row, s_col = _nonzero(torch.index_select(marked, 0, flat, out=in_marked).view(num_b, num_g))
    return _exact_positions(block, s_row, s_col, g_pid, g_cam, below[bucket[s_row, s_col].long()])


def _part_positions(
    block: _Block, g_pid: torch.Tensor, g_cam: torch.Tensor, num_buckets: int, work: _Work
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every true match's (row, position) for a few rows: shallow rows by threshold, deep rows
    by histogram, as the estimated number of candidates (``key <= hi``) of each row decides."""
    keys = block.keys
    num_b, num_g = keys.shape
    group_keys = keys.gather(1, block.cols)
    hi = torch.where(block.is_pos, group_keys, -torch.inf).amax(1)
    # Estimate each row's candidates from every ``stride``-th column.
    stride = max(1, num_g // _SAMPLE_COLUMNS)
    sample = keys[:, ::stride]
    estimate = (sample <= hi[:, None]).sum(1) * (num_g / sample.shape[1])
    shallow = estimate <= _SHALLOW_FRACTION * num_g
    num_shallow = int(shallow.sum())
    if num_shallow == num_b:
        return _positions_threshold(block, hi, g_pid, g_cam, work)
    if num_shallow == 0:
        return _positions_histogram(block, g_pid, g_cam, num_buckets, work)
    s_idx = shallow.nonzero().squeeze(1)
    d_idx = (~shallow).nonzero().squeeze(1)
    s_rows, s_pos = _positions_threshold(block.rows(s_idx), hi[s_idx], g_pid, g_cam, work)
    d_rows, d_pos = _positions_histogram(block.rows(d_idx), g_pid, g_cam, num_buckets, work)
    rows = torch.cat([s_idx[s_rows], d_idx[d_rows]])
    order = torch.sort(rows, stable=True).indices
    return rows[order], torch.cat([s_pos, d_pos])[order]


def _block_positions(
    block: _Block,
    g_pid: torch.Tensor,
    g_cam: torch.Tensor,
    num_buckets: int,
    pool: ThreadPoolExecutor | None,
    work: _Work,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every true match's (row, 1-based position) in a block, in parts of about
    ``_SUB_ELEMENTS`` entries, on ``pool``'s threads when given."""
    num_b, num_g = block.keys.shape
    step = max(1, _SUB_ELEMENTS // max(num_g, 1))
    starts = range(0, num_b, step)

    def part(a: int) -> tuple[torch.Tensor, torch.Tensor]:
        r, p = _part_positions(block.slice(a, a + step), g_pid, g_cam, num_buckets, work)
        return r + a, p

    results = _map(pool, part, starts)
    if len(results) == 1:
        return results[0]
    return torch.cat([r for r, _ in results]), torch.cat([p for _, p in results])


def _row_metrics(
    rows: torch.Tensor, positions: torch.Tensor, num_rows: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """First position, AP, INP and reciprocal rank per row from the matches' positions."""
    m = torch.bincount(rows, minlength=num_rows)
    if bool((m == 0).any()):
        raise AssertionError("a row with a true match lost it in the exact set")
    start = m.cumsum(0) - m
    t = (torch.arange(len(rows), device=rows.device) - start[rows] + 1).double()
    pos = positions.double()
    ap = torch.zeros(num_rows, dtype=torch.float64, device=rows.device)
    ap.index_add_(0, rows, t / pos)
    ap /= m
    first = positions[start]
    inp = m.double() / pos[start + m - 1]
    return first, ap, inp, 1.0 / first.double()


# --------------------------------------------------------------------------------------------
# Driving the blocks
# --------------------------------------------------------------------------------------------


def _row_blocks(valid_rows: np.ndarray, num_g: int) -> Iterator[np.ndarray]:
    nb = _num_buckets(num_g)
    per_block = max(1, min(_BLOCK_ELEMENTS // max(num_g, 1), _MAX_BLOCK_BINS // (nb + 2)))
    for i in range(0, len(valid_rows), per_block):
        yield valid_rows[i : i + per_block]


def _evaluate_blocks(
    key_blocks: KeyBlocks,
    groups: _Groups,
    q_pids: np.ndarray,
    q_camids: np.ndarray,
    max_rank: int,
    device: torch.device,
    key_dtype: torch.dtype,
) -> RankMetrics:
    num_q = len(q_pids)
    num_g = len(groups.kept)
    valid_rows = np.flatnonzero(groups.num_pos > 0)
    if len(valid_rows) == 0:
        raise NoValidQueryError(
            f"none of the {num_q} queries has a true match in the gallery (same pid, other "
            "camera, pid != -1); check the query/gallery split"
        )
    nb = _num_buckets(num_g)
    order = torch.from_numpy(groups.order).to(device)
    g_pid = torch.from_numpy(groups.g_pid).to(device)
    g_cam = torch.from_numpy(groups.g_cam).to(device)
    first_all, ap_all, inp_all, rr_all = [], [], [], []
    # CPU: the per-element passes run one torch thread each, on parts of a block handed to the
    # worker threads; the matrix products use every thread.
    work = _Work()
    with _worker_pool(device) as pool:
        for block in _row_blocks(valid_rows, num_g):
            length = groups.length[block]
            slot = np.arange(int(length.max()))
            in_group = torch.from_numpy(slot[None, :] < length[:, None]).to(device)
            index = np.minimum(groups.start[block][:, None] + slot[None, :], len(order) - 1)
            cols = order[torch.from_numpy(index).to(device)]
            q_pid = torch.from_numpy(q_pids[block]).to(device)
            q_cam = torch.from_numpy(q_camids[block]).to(device)
            same_cam = g_cam[cols] == q_cam[:, None]
            keys = key_blocks(block)
            with _threads(1 if device.type == "cpu" else None):
                rows, positions = _block_positions(
                    _Block(keys, cols, in_group & ~same_cam, in_group & same_cam, q_pid, q_cam),
                    g_pid,
                    g_cam,
                    nb,
                    pool,
                    work,
                )
                first, ap, inp, rr = _row_metrics(rows, positions, len(block))
            first_all.append(first.cpu())
            ap_all.append(ap.cpu())
            inp_all.append(inp.cpu())
            rr_all.append(rr.cpu())
    first_hit = torch.cat(first_all).numpy()
    ranks = np.arange(1, max_rank + 1)
    cmc = (first_hit[:, None] <= ranks[None, :]).mean(axis=0, dtype=np.float64)
    return RankMetrics(
        cmc=cmc,
        mAP=float(torch.cat(ap_all).mean()),
        mINP=float(torch.cat(inp_all).mean()),
        num_valid_queries=len(valid_rows),
        num_queries=num_q,
        mrr=float(torch.cat(rr_all).mean()),
    )


@contextlib.contextmanager
def _threads(n: int | None) -> Iterator[None]:
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
def _worker_pool(device: torch.device) -> Iterator[ThreadPoolExecutor | None]:
    """On the CPU, one worker thread per torch thread (torch releases the GIL in its ops);
    ``None`` (work inline) on an accelerator or with one thread."""
    workers = torch.get_num_threads() if device.type == "cpu" else 1
    if workers <= 1:
        yield None
        return
    with ThreadPoolExecutor(workers) as pool:
        yield pool


def _map(
    pool: ThreadPoolExecutor | None, fn: Callable[[Any], _T], items: Iterable[Any]
) -> list[_T]:
    """``[fn(x) for x in items]``, on ``pool``'s threads when given."""
    return list(pool.map(fn, items)) if pool is not None else [fn(x) for x in items]


def _resolve_device(device: torch.device | str | None, default: torch.device) -> torch.device:
    return torch.device(device) if device is not None else default


def _as_distmat(distmat: ArrayLike) -> np.ndarray | torch.Tensor:
    if not isinstance(distmat, torch.Tensor):
        distmat = np.asarray(distmat)
    if distmat.ndim != 2:
        raise ValueError(f"distmat must be 2-D (Q, G), got shape {tuple(distmat.shape)}")
    return distmat


def _check_no_nan(distmat: np.ndarray | torch.Tensor) -> None:
    if isinstance(distmat, np.ndarray):
        has_nan = distmat.dtype.kind in "fc" and bool(np.isnan(distmat).any())
    else:
        has_nan = distmat.is_floating_point() and bool(torch.isnan(distmat).any())
    if has_nan:
        raise ValueError("distmat contains NaN; rankings would be undefined")


def _distmat_keys(
    distmat: np.ndarray | torch.Tensor, kept: np.ndarray, device: torch.device
) -> tuple[KeyBlocks, torch.dtype]:
    dist = distmat.detach() if isinstance(distmat, torch.Tensor) else torch.from_numpy(distmat)
    if dist.dtype in (torch.float16, torch.bfloat16):
        dtype = torch.float32
    elif dist.dtype in (torch.float32, torch.float64):
        dtype = dist.dtype
    elif dist.dtype == torch.bool or dist.is_complex():
        raise ValueError(f"distmat must hold real numbers, got dtype {dist.dtype}")
    else:
        dtype = torch.float64
    all_cols = len(kept) == dist.shape[1]
    kept_t = torch.from_numpy(kept).to(dist.device)

    def keys(rows: np.ndarray) -> torch.Tensor:
        if rows[-1] - rows[0] + 1 == len(rows):  # contiguous rows: a view, no copy
            block = dist[int(rows[0]) : int(rows[-1]) + 1]
        else:
            block = dist.index_select(0, torch.from_numpy(rows).to(dist.device))
        if not all_cols:
            block = block.index_select(1, kept_t)
        return block.to(device=device, dtype=dtype).contiguous()

    return keys, dtype


def evaluate_rank(
    distmat: np.ndarray | torch.Tensor,
    q_pids: ArrayLike,
    g_pids: ArrayLike,
    q_camids: ArrayLike,
    g_camids: ArrayLike,
    max_rank: int = 50,
    *,
    device: torch.device | str | None = None,
) -> RankMetrics:
    """CMC, mAP, mINP and MRR under the Market-1501 rules (module docstring) from distances.

    ``distmat`` is ``(Q, G)``, smaller = more similar, finite; labels are 1-D integer arrays or
    tensors. ``device`` (default: the tensor's, or the CPU) is where the work runs.
    """
    distmat = _as_distmat(distmat)
    num_q, num_g = distmat.shape
    q_pids = _labels("q_pids", q_pids, num_q, "rows")
    q_camids = _labels("q_camids", q_camids, num_q, "rows")
    g_pids = _labels("g_pids", g_pids, num_g, "columns")
    g_camids = _labels("g_camids", g_camids, num_g, "columns")
    max_rank = _check_max_rank(max_rank)
    if num_q == 0:
        raise ValueError("no queries: distmat has 0 rows")
    _check_no_nan(distmat)
    default = distmat.device if isinstance(distmat, torch.Tensor) else torch.device("cpu")
    device = _resolve_device(device, default)
    groups = _groups(q_pids, g_pids, q_camids, g_camids, junk_pid=-1)
    keys, dtype = _distmat_keys(distmat, groups.kept, device)
    return _evaluate_blocks(keys, groups, q_pids, q_camids, max_rank, device, dtype)


def _squared_norms(x: torch.Tensor, rows: int = 4096) -> torch.Tensor:
    """Row-wise ``sum(x**2)``, a chunk of rows at a time (no temporary the size of ``x``)."""
    out = torch.empty(x.shape[0], dtype=x.dtype, device=x.device)
    for s in range(0, x.shape[0], rows):
        out[s : s + rows] = x[s : s + rows].pow(2).sum(1)
    return out


def _feature_keys(
    query: torch.Tensor, gallery: torch.Tensor, metric: str, kept: np.ndarray, device: torch.device
) -> KeyBlocks:
    """Ranking keys from features, one block of queries at a time.

    Euclidean: ``||g||^2 - 2 q.g``, the squared distance less the query's own constant ``||q||^2``
    (the order torchreid and fast-reid rank by, without one addition per entry). Cosine:
    ``-q.g`` on L2-normalised rows, the order of ``1 - cos``. float32, one matrix product a block.
    """
    q = query.detach().to(device=device, dtype=torch.float32)
    g = gallery.detach().to(device=device, dtype=torch.float32)
    if len(kept) != g.shape[0]:
        g = g.index_select(0, torch.from_numpy(kept).to(device))
    # A NaN or infinite feature makes its row's squared norm NaN or inf; finite norms also bound
    # every key: |key| <= ||g||^2 + 2 ||q|| ||g|| <= 2 (||q||^2 + ||g||^2).
    q_sq, g_sq = _squared_norms(q), _squared_norms(g)
    for name, sq in (("query", q_sq), ("gallery", g_sq)):
        if len(sq) and not float(sq.max()) * 4 < torch.finfo(torch.float32).max:
            raise ValueError(
                f"{name} features contain NaN or infinite values, or are too large for float32"
            )
    if metric == "cosine":
        q = q / q_sq.sqrt().clamp_min(1e-12)[:, None]  # F.normalize, reusing the norms
        g = g / g_sq.sqrt().clamp_min(1e-12)[:, None]
        extra = None
    else:
        extra = g_sq
    gt = g.T
    buffer = torch.empty(0, dtype=torch.float32, device=device)

    def keys(rows: np.ndarray) -> torch.Tensor:
        nonlocal buffer
        n = len(rows) * gt.shape[1]
        if buffer.numel() < n:
            buffer = torch.empty(n, dtype=torch.float32, device=device)
        out = buffer[:n].view(len(rows), gt.shape[1])
        qb = q.index_select(0, torch.from_numpy(rows).to(device))
        if extra is None:
            return torch.mm(qb.neg_(), gt, out=out)
        return torch.addmm(extra, qb, gt, beta=1.0, alpha=-2.0, out=out)

    return keys


def evaluate_features(
    query: torch.Tensor,
    gallery: torch.Tensor,
    q_pids: ArrayLike,
    g_pids: ArrayLike,
    q_camids: ArrayLike,
    g_camids: ArrayLike,
    metric: str = "euclidean",
    max_rank: int = 50,
    *,
    device: torch.device | str | None = None,
) -> RankMetrics:
    """Metrics straight from features, blocked: never a ``Q x G`` matrix in memory.

    Ranks by the squared Euclidean distance or the cosine distance (see :func:`_feature_keys`),
    the rankings of :func:`compute_distance` then :func:`evaluate_rank` up to float rounding.
    """
    _check_features(query, gallery, metric)
    num_q, num_g = query.shape[0], gallery.shape[0]
    q_pids = _labels("q_pids", q_pids, num_q, "rows", of="query")
    q_camids = _labels("q_camids", q_camids, num_q, "rows", of="query")
    g_pids = _labels("g_pids", g_pids, num_g, "rows", of="gallery")
    g_camids = _labels("g_camids", g_camids, num_g, "rows", of="gallery")
    max_rank = _check_max_rank(max_rank)
    if num_q == 0:
        raise ValueError("no queries: query has 0 rows")
    device = _resolve_device(device, query.device)
    groups = _groups(q_pids, g_pids, q_camids, g_camids, junk_pid=-1)
    keys = _feature_keys(query, gallery, metric, groups.kept, device)
    return _evaluate_blocks(keys, groups, q_pids, q_camids, max_rank, device, torch.float32)


def retrieval_metrics(
    distmat: np.ndarray | torch.Tensor,
    q_labels: ArrayLike,
    g_labels: ArrayLike,
    max_rank: int = 10,
    *,
    exclude_self: bool = False,
    device: torch.device | str | None = None,
) -> RankMetrics:
    """Retrieval without cameras or junk: Recall@K (= HR@K, ``cmc[K-1]``), MRR, mAP, mINP.

    A gallery entry is relevant to a query when their labels are equal (a text query's class or
    identity and an image's). Recall@K is the fraction of queries with a relevant entry in the
    top ``K`` (the "Recall@1" of text-to-image retrieval challenges, the hit rate HR@K of NTSSL's
    tracklet retrieval); MRR is the mean of ``1 / r_1``; AP and INP as in the module docstring.
    ``exclude_self`` is for all-vs-all retrieval (query set = gallery set, ``Q == G``): entry
    ``i`` is left out of query ``i``'s ranking. Queries with no relevant entry are skipped.
    """
    distmat = _as_distmat(distmat)
    num_q, num_g = distmat.shape
    q_labels = _labels("q_labels", q_labels, num_q, "rows")
    g_labels = _labels("g_labels", g_labels, num_g, "columns")
    if exclude_self:
        if num_q != num_g:
            raise ValueError(f"exclude_self needs a square distmat, got {num_q} x {num_g}")
        q_cams = np.arange(num_q, dtype=np.int64)  # same "camera" only for the entry itself
        g_cams = q_cams
    else:
        q_cams = np.zeros(num_q, dtype=np.int64)
        g_cams = np.ones(num_g, dtype=np.int64)
    max_rank = _check_max_rank(max_rank)
    if num_q == 0:
        raise ValueError("no queries: distmat has 0 rows")
    _check_no_nan(distmat)
    default = distmat.device if isinstance(distmat, torch.Tensor) else torch.device("cpu")
    device = _resolve_device(device, default)
    groups = _groups(q_labels, g_labels, q_cams, g_cams, junk_pid=None)
    keys, dtype = _distmat_keys(distmat, groups.kept, device)
    return _evaluate_blocks(keys, groups, q_labels, q_cams, max_rank, device, dtype)
