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
  As in torchreid, ``max_rank`` is capped by the gallery size (with a warning), so the CMC has
  length ``min(max_rank, G)``; when fewer entries than that are kept (removed or junk), it stays
  at its last value (1, since a valid query has a match) beyond them. The hit rate HR@K of
  retrieval papers is ``cmc[K-1]``.
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

import dataclasses
import math
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from bench.errors import BenchError
from bench.evaluation.inputs import (
    METRICS,
    ArrayLike,
    as_distmat,
    check_features,
    check_labels,
    check_max_rank,
    check_ranking,
    work_device,
)
from bench.evaluation.kernels import (
    map_on,
    normalize_rows,
    sparse_nonzero,
    torch_threads,
    worker_pool,
)
from bench.evaluation.keys import KeyBlocks, distmat_keys, feature_keys
from bench.evaluation.rules import Groups, gallery_groups, is_removed, pseudo_cameras

__all__ = [
    "METRICS",
    "NoValidQueryError",
    "RankMetrics",
    "compute_distance",
    "evaluate_features",
    "evaluate_rank",
    "retrieval_metrics",
]


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

    def summary(self) -> str:
        """One line for the console: ``mAP 41.2  Rank-1 63.0``."""
        return f"mAP {100 * self.mAP:.1f}  Rank-1 {100 * self.rank(1):.1f}"

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
    check_features(query, gallery, metric)
    q = query.detach().float()
    g = gallery.detach().float()
    if metric == "cosine":
        return 1.0 - normalize_rows(q) @ normalize_rows(g).T
    sq = q.pow(2).sum(1, keepdim=True) + g.pow(2).sum(1).unsqueeze(0)
    sq = torch.addmm(sq, q, g.T, beta=1.0, alpha=-2.0)
    return sq.clamp_(min=0).sqrt_()


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
    kept = ~is_removed(same_pid, block.q_cam[s_row], g_cam[s_col])
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
    s_row, s_col = sparse_nonzero(torch.le(block.keys, hi[:, None], out=mask))
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
    s_row, s_col = sparse_nonzero(
        torch.index_select(marked, 0, flat, out=in_marked).view(num_b, num_g)
    )
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

    results = map_on(pool, part, starts)
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
    groups: Groups,
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
    _, g_pid, g_cam = groups.tensors(device)
    first_all, ap_all, inp_all, rr_all = [], [], [], []
    # CPU: the per-element passes run one torch thread each, on parts of a block handed to the
    # worker threads; the matrix products use every thread.
    work = _Work()
    with worker_pool(device) as pool:
        for block in _row_blocks(valid_rows, num_g):
            cols, is_pos, is_rem = groups.entries(block, q_camids, device)
            q_pid = torch.from_numpy(q_pids[block]).to(device)
            q_cam = torch.from_numpy(q_camids[block]).to(device)
            keys = key_blocks(block)
            with torch_threads(1 if device.type == "cpu" else None):
                rows, positions = _block_positions(
                    _Block(keys, cols, is_pos, is_rem, q_pid, q_cam),
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


def _market_labels(
    q_pids: ArrayLike,
    g_pids: ArrayLike,
    q_camids: ArrayLike,
    g_camids: ArrayLike,
    shape: tuple[int, int],
    gallery_axis: str,
    of: tuple[str, str],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The four label arrays checked against ``shape = (Q, G)``: the query labels count rows of
    ``of[0]``, the gallery labels ``gallery_axis`` of ``of[1]``."""
    (num_q, num_g), (q_of, g_of) = shape, of
    q_pids = check_labels("q_pids", q_pids, num_q, "rows", q_of)
    q_camids = check_labels("q_camids", q_camids, num_q, "rows", q_of)
    g_pids = check_labels("g_pids", g_pids, num_g, gallery_axis, g_of)
    g_camids = check_labels("g_camids", g_camids, num_g, gallery_axis, g_of)
    return q_pids, g_pids, q_camids, g_camids


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
    distmat = as_distmat(distmat)
    q_pids, g_pids, q_camids, g_camids = _market_labels(
        q_pids, g_pids, q_camids, g_camids, distmat.shape, "columns", ("distmat", "distmat")
    )
    max_rank, device = check_ranking(distmat, max_rank, device)
    groups = gallery_groups(q_pids, g_pids, q_camids, g_camids)
    keys, dtype = distmat_keys(distmat, groups.kept, device)
    return _evaluate_blocks(keys, groups, q_pids, q_camids, max_rank, device, dtype)


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

    Ranks by the squared Euclidean distance or the cosine distance (see
    :func:`~bench.evaluation.keys.feature_keys`), the rankings of :func:`compute_distance` then
    :func:`evaluate_rank` up to float rounding.
    """
    check_features(query, gallery, metric)
    shape = (query.shape[0], gallery.shape[0])
    q_pids, g_pids, q_camids, g_camids = _market_labels(
        q_pids, g_pids, q_camids, g_camids, shape, "rows", ("query", "gallery")
    )
    max_rank = check_max_rank(max_rank, gallery.shape[0])
    if query.shape[0] == 0:
        raise ValueError("no queries: query has 0 rows")
    device = work_device(device, query.device)
    groups = gallery_groups(q_pids, g_pids, q_camids, g_camids)
    keys = feature_keys(query, gallery, metric, groups.kept, device)
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
    distmat = as_distmat(distmat)
    num_q, num_g = distmat.shape
    q_labels = check_labels("q_labels", q_labels, num_q, "rows")
    g_labels = check_labels("g_labels", g_labels, num_g, "columns")
    q_cams, g_cams = pseudo_cameras(num_q, num_g, exclude_self)
    max_rank, device = check_ranking(distmat, max_rank, device)
    groups = gallery_groups(q_labels, g_labels, q_cams, g_cams, junk_pid=None)
    keys, dtype = distmat_keys(distmat, groups.kept, device)
    return _evaluate_blocks(keys, groups, q_labels, q_cams, max_rank, device, dtype)
