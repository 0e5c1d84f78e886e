"""k-reciprocal re-ranking (Zhong et al. 2017, "Re-ranking Person Re-identification with
k-reciprocal Encoding", CVPR), the computation of the authors' released code as torchreid's
``re_ranking`` carries it (Eq. 7-13 of the paper, with the code's choices below), sparse and in
column strips: no ``N x N`` array beyond the inputs.

With ``N = Q + G`` and ``D`` the ``N x N`` distance matrix of query and gallery together:

1. ``A = D**2`` (float32), each column divided by its maximum; row ``i`` of the transposed result
   is ``d(i, .)``, the "original distance" (the code's normalisation, not in the paper).
2. ``N(i, k)``: the ``k + 1`` nearest neighbours of ``i`` under ``d(i, .)`` (itself included).
   ``R(i, k) = {j in N(i, k) : i in N(j, k)}``, the k-reciprocal neighbours (Eq. 4), kept in
   ``N(i, k)``'s order.
3. Expansion (Eq. 6): ``R*(i) = R(i, k1)`` united with every ``R(c, round(k1 / 2))``,
   ``c in R(i, k1)``, that shares more than 2/3 of its members with ``R(i, k1)``.
4. ``V[i, j] = exp(-d(i, j)) / sum_{j' in R*(i)} exp(-d(i, j'))`` on ``R*(i)``, 0 elsewhere (Eq. 7
   with Gaussian weights), then local query expansion (Eq. 11): ``V[i] <- mean of V[j]`` over the
   ``k2`` nearest ``j`` of ``i`` (no expansion when ``k2 == 1``).
5. Jaccard distance (Eq. 10, 12): ``d_J(i, j) = 1 - m / (2 - m)`` with
   ``m = sum_k min(V[i, k], V[j, k])``.
6. Final distance (Eq. 13): ``(1 - lambda) d_J + lambda d``, for query rows and gallery columns.

How: step 1 reads ``D`` one strip of columns at a time (tiled transposes of the given matrices,
or a matrix product of the features) and keeps only each column's maximum and nearest
neighbours. ``V`` has at most a few hundred non-zeros a row, so steps 2-6 work on sparse
(row, column) lists, and the Jaccard step touches only pairs that share a non-zero. Strips and
query chunks go to worker threads on the CPU.

Neighbour order: the reference ranks with numpy's unstable ``argsort``, which orders equal
distances arbitrarily; here equal distances are ordered by index (a stable sort), so the two
agree wherever no exact tie straddles a neighbour cut-off, and everywhere against the reference
run with a stable ``argsort`` (``benchmarks/eval_bench.py`` shows both).
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from bench.evaluation.inputs import METRICS
from bench.evaluation.kernels import (
    map_on,
    normalize_rows,
    sparse_nonzero,
    squared_norms,
    torch_threads,
    worker_pool,
)

__all__ = ["re_ranking", "rerank_features"]

# Elements of the N x N matrix handled per strip (columns x N float32 values).
_ROW_ELEMENTS = 1 << 21
# Query-gallery pairs expanded at once in the Jaccard step.
_PAIR_ELEMENTS = 1 << 21
# Rows per tile of a transposing copy (a whole-strip strided copy is ~10x slower).
_TILE_ROWS = 1024
# Nearest neighbours (with their distances) kept per column from features: the distances of V's
# non-zeros are read from them, and the few that are not there are computed from features.
_FEATURE_KEEP = 32
# Rows (and columns) of a feature block: one matrix product serves two strips. (Measured at
# Market-1501 scale: 2048 rows and 32 kept, 7.9 s; 1024 and 64, 11.2 s.)
_FEATURE_STRIP = 2048


# --------------------------------------------------------------------------------------------
# Sources of D: given matrices, or features
# --------------------------------------------------------------------------------------------


def _square(x: torch.Tensor) -> torch.Tensor:
    """``np.power(x, 2).astype(np.float32)``: square in the input's precision, then float32."""
    return x.pow(2).to(torch.float32)


def _transposed_into(out: torch.Tensor, src: torch.Tensor) -> None:
    """``out.copy_(src.T)`` in row tiles of ``src`` (cache-friendly on the CPU)."""
    if src.device.type != "cpu":
        out.copy_(src.T)
        return
    for r in range(0, src.shape[0], _TILE_ROWS):
        out[:, r : r + _TILE_ROWS].copy_(src[r : r + _TILE_ROWS].T)


class _Matrices:
    """``D = [[qq, qg], [qg.T, gg]]`` from the three given matrices, never concatenated."""

    def __init__(self, qg: torch.Tensor, qq: torch.Tensor, gg: torch.Tensor) -> None:
        self.qg, self.qq, self.gg = qg, qq, gg
        self.num_q, self.num_g = qg.shape
        self.n = self.num_q + self.num_g
        self.device = qg.device

    def columns(self, start: int, stop: int) -> torch.Tensor:
        """``A[:, start:stop].T``: columns of ``A = D**2`` as float32 rows ``(stop - start, N)``."""
        q = self.num_q
        out = torch.empty((stop - start, self.n), dtype=self.qg.dtype, device=self.device)
        a, b = start, min(stop, q)
        if a < b:  # query columns: [qq[:, i]; qg[i, :]]
            _transposed_into(out[: b - a, :q], self.qq[:, a:b])
            out[: b - a, q:].copy_(self.qg[a:b])
        a, b = max(start, q) - q, stop - q
        if a < b:  # gallery columns: [qg[:, j]; gg[:, j]]
            rows = out[out.shape[0] - (b - a) :]
            _transposed_into(rows[:, :q], self.qg[:, a:b])
            _transposed_into(rows[:, q:], self.gg[:, a:b])
        if out.dtype == torch.float32:
            return out.mul_(out)
        return _square(out)

    def entries(self, r: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """``A[r, c]`` for index tensors of equal shape."""
        q = self.num_q
        out = torch.empty(r.shape, dtype=self.qg.dtype, device=self.device)
        rq, cq = r < q, c < q
        for mask, src, rr, cc in (
            (rq & cq, self.qq, r, c),
            (rq & ~cq, self.qg, r, c - q),
            (~rq & cq, self.qg, c, r - q),  # the qg.T block
            (~rq & ~cq, self.gg, r - q, c - q),
        ):
            if bool(mask.any()):
                out[mask] = src[rr[mask], cc[mask]]
        return _square(out)

    def query_rows(self, start: int, stop: int) -> torch.Tensor:
        """``A[Q:, start:stop].T`` (query columns, gallery rows): ``qg[start:stop]**2``."""
        return _square(self.qg[start:stop])

    def check_finite(self) -> None:
        for name, m in (("q_g_dist", self.qg), ("q_q_dist", self.qq), ("g_g_dist", self.gg)):
            if not bool(torch.isfinite(m).all()):
                raise ValueError(f"{name} contains NaN or infinite values")


class _Features:
    """``D`` from features: Euclidean, or cosine distance ``1 - cos``; symmetric by definition,
    so a column is computed as a row, by one matrix product a strip."""

    def __init__(self, query: torch.Tensor, gallery: torch.Tensor, metric: str) -> None:
        x = torch.cat([query.detach(), gallery.detach()]).to(torch.float32)
        sq = squared_norms(x)
        if metric == "cosine":
            x = normalize_rows(x, sq)
        self.x, self.sq, self.metric = x, sq, metric
        self.num_q, self.num_g = query.shape[0], gallery.shape[0]
        self.n = self.num_q + self.num_g
        self.device = x.device

    def _block(self, rows: slice, cols: slice) -> torch.Tensor:
        xr, xc = self.x[rows], self.x[cols]
        if self.metric == "cosine":
            return torch.mm(xr, xc.T).neg_().add_(1.0).pow_(2)
        out = torch.addmm(self.sq[cols][None, :], xr, xc.T, beta=1.0, alpha=-2.0)
        return out.add_(self.sq[rows][:, None]).clamp_(min=0)

    def columns(self, start: int, stop: int) -> torch.Tensor:
        return self._block(slice(start, stop), slice(0, self.n))

    def entries(self, r: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        out = torch.empty(r.shape, dtype=torch.float32, device=self.device)
        step = max(1, _ROW_ELEMENTS // self.x.shape[1])
        for s in range(0, len(r), step):
            xr, xc = self.x[r[s : s + step]], self.x[c[s : s + step]]
            dot = (xr * xc).sum(1)
            if self.metric == "cosine":
                out[s : s + step] = (1.0 - dot).pow_(2)
            else:
                sq = self.sq[r[s : s + step]] + self.sq[c[s : s + step]]
                out[s : s + step] = sq.sub_(dot, alpha=2.0).clamp_(min=0)
        return out

    def neighbours(self, width: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Column maxima of ``A`` and each column's ``width`` smallest entries (values, rows),
        over blocks ``(I, J)``, ``J >= I``, of the symmetric ``A``: each block's matrix product
        serves the rows of ``I`` and, by its columns, those of ``J``. Keeps ``A`` of query rows x
        gallery columns (:attr:`query_gallery`) for the final step."""
        n, q, dev = self.n, self.num_q, self.device
        col_max = torch.zeros(n, dtype=torch.float32, device=dev)
        top_a = torch.full((n, width), torch.inf, dtype=torch.float32, device=dev)
        top_i = torch.zeros((n, width), dtype=torch.long, device=dev)
        self.query_gallery = torch.empty((q, self.num_g), dtype=torch.float32, device=dev)
        # Strip edges include Q, so a block's columns are all query or all gallery.
        edges = sorted({*range(0, n, _FEATURE_STRIP), q, n})
        strips = list(itertools.pairwise(edges))

        def merge_topk(rows: slice, block: torch.Tensor, first_col: int) -> None:
            k = min(width, block.shape[1])
            vals, idx = torch.topk(block, k, dim=1, largest=False, sorted=False)
            vals = torch.cat([top_a[rows], vals], dim=1)
            idx = torch.cat([top_i[rows], idx + first_col], dim=1)
            best, at = torch.topk(vals, width, dim=1, largest=False, sorted=True)
            top_a[rows], top_i[rows] = best, idx.gather(1, at)

        def merge_candidates(rows: torch.Tensor, idx: torch.Tensor, vals: torch.Tensor) -> None:
            """Merge entries (row, column index, value) into the rows' kept lists."""
            if len(rows) == 0:
                return
            u, inv = torch.unique(rows, return_inverse=True)
            all_row = torch.cat([torch.arange(len(u), device=dev).repeat_interleave(width), inv])
            all_val = torch.cat([top_a[u].reshape(-1), vals])
            all_idx = torch.cat([top_i[u].reshape(-1), idx])
            # One sort by (row, value): the float32 bits of a value >= +0.0 order as integers.
            bits = (all_val + 0.0).view(torch.int32).long()
            order = torch.sort((all_row << 32) | bits, stable=True).indices
            r = all_row[order]
            count = torch.bincount(r, minlength=len(u))
            rank = torch.arange(len(r), device=dev) - (count.cumsum(0) - count)[r]
            keep = rank < width
            new_a = torch.empty((len(u), width), dtype=torch.float32, device=dev)
            new_i = torch.empty((len(u), width), dtype=torch.long, device=dev)
            new_a[r[keep], rank[keep]] = all_val[order[keep]]
            new_i[r[keep], rank[keep]] = all_idx[order[keep]]
            top_a[u], top_i[u] = new_a, new_i

        def merge(rows: slice, block: torch.Tensor, first: int, transposed: bool) -> None:
            """Rows ``rows`` take the block's rows (or, ``transposed``, its columns), whose
            entries are columns ``first, first + 1, ...``. Once a row's list is full, only
            entries at most its largest kept value can enter: a comparison pass finds them."""
            col_max[rows] = torch.maximum(col_max[rows], block.amax(0 if transposed else 1))
            limit = top_a[rows, -1]
            if bool(torch.isinf(limit).any()):
                merge_topk(rows, block.T.contiguous() if transposed else block, first)
                return
            if transposed:
                r, c = sparse_nonzero(block <= limit[None, :])
                merge_candidates(rows.start + c, first + r, block[r, c])
            else:
                r, c = sparse_nonzero(block <= limit[:, None])
                merge_candidates(rows.start + r, first + c, block[r, c])

        for a, (i0, i1) in enumerate(strips):
            for j0, j1 in strips[a:]:
                block = self._block(slice(i0, i1), slice(j0, j1))
                merge(slice(i0, i1), block, j0, transposed=False)
                if j0 != i0:
                    merge(slice(j0, j1), block, i0, transposed=True)
                if i1 <= q and j0 >= q:
                    self.query_gallery[i0:i1, j0 - q : j1 - q] = block
        return col_max, top_a, top_i

    def query_rows(self, start: int, stop: int) -> torch.Tensor:
        return self.query_gallery[start:stop]

    def check_finite(self) -> None:
        if not bool(torch.isfinite(self.sq).all()):
            raise ValueError("query or gallery features contain NaN or infinite values")


_Source = _Matrices | _Features


# --------------------------------------------------------------------------------------------
# Step 1: column maxima and nearest neighbours, one strip of columns at a time
# --------------------------------------------------------------------------------------------


def _order_ties(
    values: torch.Tensor, nbr: torch.Tensor, row_distances: Callable[[int], torch.Tensor]
) -> None:
    """In place: rows whose first ``k + 1`` sorted distances (``values``) hold equal ones get
    their ``k`` neighbours ``nbr`` by (distance, index) from the full row (a stable sort)."""
    k = nbr.shape[1]
    w = min(values.shape[1], k + 1)
    tied = (values[:, 1:w] == values[:, : w - 1]).any(1).nonzero().squeeze(1)
    for r in tied.tolist():
        nbr[r] = torch.sort(row_distances(r), stable=True).indices[:k]


def _strip_neighbours(
    source: _Matrices, start: int, stop: int, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """For columns ``start:stop``: the maximum of ``A`` and the ``k`` nearest neighbours under
    ``d = A / max``, ordered by (distance, index)."""
    d = source.columns(start, stop)
    col_max = d.amax(1)
    d.div_(col_max[:, None])
    values, index = torch.topk(d, min(source.n, k + 1), dim=1, largest=False, sorted=True)
    nbr = index[:, :k]
    _order_ties(values, nbr, lambda r: d[r])
    return col_max, nbr


def _neighbours(
    source: _Matrices, k: int, pool: ThreadPoolExecutor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Column maxima and ``k`` nearest neighbours of every column, a strip per worker task."""
    n = source.n
    step = max(1, _ROW_ELEMENTS // n)
    parts = map_on(
        pool, lambda s: _strip_neighbours(source, s, min(s + step, n), k), range(0, n, step)
    )
    col_max, nbr = (torch.cat(p) for p in zip(*parts))
    if not bool(torch.isfinite(col_max).all()):
        source.check_finite()  # names the input at fault
    return col_max, nbr


def _feature_neighbours(
    source: _Features, k: int, keep: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`_neighbours` for features (from :meth:`_Features.neighbours`), with each column's
    ``keep`` nearest neighbours and their ``d``."""
    col_max, top_a, top_i = source.neighbours(min(source.n, max(k + 1, keep)))
    if not bool(torch.isfinite(col_max).all()):
        source.check_finite()
    d = top_a.div_(col_max[:, None])
    nbr = top_i[:, :k].clone()
    _order_ties(d, nbr, lambda r: source.columns(r, r + 1)[0].div_(col_max[r]))
    return col_max, nbr, top_i[:, :keep], d[:, :keep]


# --------------------------------------------------------------------------------------------
# Steps 2-4: k-reciprocal sets, their expansion, weights and query expansion
# --------------------------------------------------------------------------------------------


def _reciprocal(nbr: torch.Tensor, pool: ThreadPoolExecutor | None) -> torch.Tensor:
    """``recip[i, t]``: ``i`` is among the neighbours of its ``t``-th neighbour ``nbr[i, t]``."""
    n = nbr.shape[0]
    step = max(1, _ROW_ELEMENTS // (nbr.shape[1] ** 2))

    def part(s: int) -> torch.Tensor:
        rows = torch.arange(s, min(s + step, n), device=nbr.device)
        return (nbr[nbr[rows]] == rows[:, None, None]).any(-1)

    return torch.cat(map_on(pool, part, range(0, n, step)))


def _expansion_sets(
    nbr: torch.Tensor, k1: int, pool: ThreadPoolExecutor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``R*(i)`` for every ``i`` as (row, column) pairs, unique and sorted per row."""
    n = nbr.shape[0]
    kh = int(np.around(k1 / 2.0))
    big = nbr[:, : k1 + 1]
    half = nbr[:, : kh + 1]
    r_big = _reciprocal(big, pool)  # (n, k1+1)
    r_half = _reciprocal(half, pool)  # (n, kh+1)
    size_half = r_half.sum(1)
    # Fewer than k1 + 1 items: every item is a neighbour, as in the reference's full argsort.
    wb, wh = big.shape[1], half.shape[1]
    width = wb * (wh + 1)
    step = max(1, _ROW_ELEMENTS // (wb * wh * wb))

    def part(s: int) -> tuple[torch.Tensor, torch.Tensor]:
        rows = torch.arange(s, min(s + step, n), device=nbr.device)
        cand = big[rows]  # (b, wb) the candidates c, valid where r_big
        cand_ok = r_big[rows]
        members = half[cand]  # (b, wb, wh) R(c, kh) before its mask
        member_ok = r_half[cand]
        in_r = (members[..., None] == cand[:, None, None, :]) & cand_ok[:, None, None, :]
        shared = (in_r.any(-1) & member_ok).sum(-1)  # |R(c, kh) & R(i, k1)|
        accept = cand_ok & (shared.double() > 2.0 / 3 * size_half[cand].double())
        pool_ = torch.cat(
            [
                torch.where(cand_ok, cand, n),
                torch.where(accept[..., None] & member_ok, members, n).flatten(1),
            ],
            dim=1,
        )
        assert pool_.shape[1] == width
        pool_ = torch.sort(pool_, dim=1).values
        keep = pool_ < n
        keep[:, 1:] &= pool_[:, 1:] != pool_[:, :-1]
        r, t = keep.nonzero(as_tuple=True)
        return rows[r], pool_[r, t]

    rows_out, cols_out = zip(*map_on(pool, part, range(0, n, step)))
    return torch.cat(rows_out), torch.cat(cols_out)


def _original_distances(
    source: _Source,
    rows: torch.Tensor,
    cols: torch.Tensor,
    col_max: torch.Tensor,
    keep_idx: torch.Tensor | None,
    keep_d: torch.Tensor | None,
) -> torch.Tensor:
    """``d(rows, cols) = A[cols, rows] / max_col(rows)``. Matrices: read. Features: from each
    row's kept nearest neighbours where they hold it (``A`` is symmetric), computed otherwise."""
    if keep_idx is None or keep_d is None:
        return source.entries(cols, rows) / col_max[rows]
    n = keep_idx.shape[0]
    flat_key = (torch.arange(n, device=keep_idx.device)[:, None] * n + keep_idx).reshape(-1)
    order = torch.argsort(flat_key)
    sorted_key = flat_key[order]
    want = rows * n + cols
    at = torch.searchsorted(sorted_key, want).clamp_(max=len(sorted_key) - 1)
    found = sorted_key[at] == want
    out = torch.empty(len(rows), dtype=torch.float32, device=keep_d.device)
    out[found] = keep_d.reshape(-1)[order[at[found]]]
    missing = (~found).nonzero().squeeze(1)
    if len(missing):
        r, c = rows[missing], cols[missing]
        out[missing] = source.entries(r, c) / col_max[r]
    return out


def _sparse(rows: torch.Tensor, cols: torch.Tensor, vals: torch.Tensor, n: int) -> torch.Tensor:
    coo = torch.sparse_coo_tensor(torch.stack([rows, cols]), vals, (n, n), check_invariants=False)
    return coo.coalesce()


def _encoding(
    source: _Source,
    nbr: torch.Tensor,
    col_max: torch.Tensor,
    keep_idx: torch.Tensor | None,
    keep_d: torch.Tensor | None,
    k1: int,
    k2: int,
    pool: ThreadPoolExecutor | None,
) -> torch.Tensor:
    """``V`` after query expansion, a coalesced sparse ``N x N`` tensor (steps 2-4)."""
    n, device = source.n, col_max.device
    rows, cols = _expansion_sets(nbr, k1, pool)
    w = torch.exp(-_original_distances(source, rows, cols, col_max, keep_idx, keep_d))
    total = torch.zeros(n, dtype=torch.float32, device=device).index_add_(0, rows, w)
    v = _sparse(rows, cols, w / total[rows], n)
    k2 = min(k2, n)  # fewer than k2 items: the reference averages over all of them
    if k2 == 1:
        return v
    qe_rows = torch.arange(n, device=device).repeat_interleave(k2)
    qe = _sparse(qe_rows, nbr[:, :k2].reshape(-1), torch.ones(n * k2, device=device), n)
    with warnings.catch_warnings():  # "sparse CSR support is in beta", said inside mm
        warnings.simplefilter("ignore", UserWarning)
        v = torch.sparse.mm(qe, v).coalesce()
    return _sparse(v.indices()[0], v.indices()[1], v.values() / k2, n)


# --------------------------------------------------------------------------------------------
# Steps 5-6: Jaccard distance over pairs sharing a non-zero, final distance
# --------------------------------------------------------------------------------------------


def _final_distances(
    source: _Source,
    v: torch.Tensor,
    col_max: torch.Tensor,
    lambda_value: float,
    pool: ThreadPoolExecutor | None,
) -> torch.Tensor:
    n, num_q, num_g, device = source.n, source.num_q, source.num_g, col_max.device
    idx, val = v.indices(), v.values()
    q_entries = idx[0] < num_q
    q_row, q_col, q_val = idx[0][q_entries], idx[1][q_entries], val[q_entries]
    # Gallery entries grouped by column (CSC): column k's entries are a contiguous range.
    g_entries = idx[0] >= num_q
    by_col = torch.sort(idx[1][g_entries], stable=True).indices
    g_row = idx[0][g_entries][by_col] - num_q
    g_col = idx[1][g_entries][by_col]
    g_val = val[g_entries][by_col]
    col_count = torch.bincount(g_col, minlength=n)
    col_start = col_count.cumsum(0) - col_count
    pairs_per_entry = col_count[q_col]
    entry_start = torch.searchsorted(q_row, torch.arange(num_q + 1, device=device))
    pair_cum = torch.cat([pairs_per_entry.new_zeros(1), pairs_per_entry.cumsum(0)])
    # Chunks of query rows, each within the pair budget (at least one row).
    cuts = [0]
    bounds = pair_cum[entry_start].tolist()
    while cuts[-1] < num_q:
        q0 = cuts[-1]
        limit = bounds[q0] + _PAIR_ELEMENTS
        q1 = int(np.searchsorted(bounds, limit, side="right")) - 1
        cuts.append(min(max(q1, q0 + 1), num_q))
    if isinstance(source, _Features):  # overwrite the kept original distances in place
        out = source.query_gallery
    else:
        out = torch.empty((num_q, num_g), dtype=torch.float32, device=device)

    def chunk(q0: int, q1: int) -> None:
        e0, e1 = int(entry_start[q0]), int(entry_start[q1])
        m = torch.zeros((q1 - q0) * num_g, dtype=torch.float32, device=device)
        counts = pairs_per_entry[e0:e1]
        num_pairs = int(counts.sum())
        if num_pairs:
            # Pair p of entry e reads gallery entry col_start[q_col[e]] + (p - first pair of e).
            shift = col_start[q_col[e0:e1]] - (pair_cum[e0:e1] - pair_cum[e0])
            at = torch.repeat_interleave(shift, counts, output_size=num_pairs)
            at += torch.arange(num_pairs, device=device)
            q_part = torch.repeat_interleave(q_val[e0:e1], counts, output_size=num_pairs)
            contrib = torch.minimum(q_part, g_val[at])
            base = torch.repeat_interleave(
                (q_row[e0:e1] - q0) * num_g, counts, output_size=num_pairs
            )
            m.index_add_(0, base.add_(g_row[at]), contrib)
        m = m.view(q1 - q0, num_g)
        jaccard = m.div(m.neg().add_(2.0)).neg_().add_(1.0)  # 1 - m / (2 - m)
        original = source.query_rows(q0, q1).div_(col_max[q0:q1, None])
        torch.add(jaccard.mul_(1 - lambda_value), original, alpha=lambda_value, out=out[q0:q1])

    map_on(pool, lambda span: chunk(*span), itertools.pairwise(cuts))
    return out


# --------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------


@torch.no_grad()
def _re_ranking(source: _Source, k1: int, k2: int, lambda_value: float) -> torch.Tensor:
    cpu = source.device.type == "cpu"
    k = min(source.n, max(k1 + 1, k2))
    keep_idx = keep_d = None
    if isinstance(source, _Features):  # matrix products on every thread
        col_max, nbr, keep_idx, keep_d = _feature_neighbours(source, k, _FEATURE_KEEP)
    # Worker threads run one torch thread each.
    with worker_pool(source.device) as pool, torch_threads(1 if cpu else None):
        if isinstance(source, _Matrices):
            col_max, nbr = _neighbours(source, k, pool)
        v = _encoding(source, nbr, col_max, keep_idx, keep_d, k1, k2, pool)
        return _final_distances(source, v, col_max, lambda_value, pool)


def _check(k1: int, k2: int, lambda_value: float) -> None:
    if not (isinstance(k1, int) and k1 >= 1):
        raise ValueError(f"k1 must be a positive int, got {k1!r}")
    if not (isinstance(k2, int) and k2 >= 1):
        raise ValueError(f"k2 must be a positive int, got {k2!r}")
    if not 0.0 <= lambda_value <= 1.0:
        raise ValueError(f"lambda_value must be in [0, 1], got {lambda_value!r}")


def re_ranking(
    q_g_dist: np.ndarray | torch.Tensor,
    q_q_dist: np.ndarray | torch.Tensor,
    g_g_dist: np.ndarray | torch.Tensor,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
    *,
    device: torch.device | str | None = None,
) -> np.ndarray | torch.Tensor:
    """Re-ranked ``(Q, G)`` distance from the three distance matrices (torchreid's signature).

    Returns float32, numpy when ``q_g_dist`` is numpy, else a tensor on ``device``. Memory
    beyond the inputs: the ``(Q, G)`` result, ``V`` (a few hundred non-zeros a row) and a strip
    of columns per worker thread.
    """
    _check(k1, k2, lambda_value)
    as_numpy = not isinstance(q_g_dist, torch.Tensor)
    mats = [
        torch.as_tensor(np.asarray(m) if as_numpy else m) for m in (q_g_dist, q_q_dist, g_g_dist)
    ]
    dev = torch.device(device) if device is not None else mats[0].device
    qg, qq, gg = (m.to(dev) for m in mats)
    num_q, num_g = qg.shape
    if qq.shape != (num_q, num_q) or gg.shape != (num_g, num_g):
        raise ValueError(
            f"shapes do not fit: q_g {tuple(qg.shape)}, q_q {tuple(qq.shape)} (want "
            f"{(num_q,) * 2}), g_g {tuple(gg.shape)} (want {(num_g,) * 2})"
        )
    out = _re_ranking(_Matrices(qg, qq, gg), k1, k2, float(lambda_value))
    return out.cpu().numpy() if as_numpy else out


def rerank_features(
    query: torch.Tensor,
    gallery: torch.Tensor,
    metric: str = "euclidean",
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
    *,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Re-ranked ``(Q, G)`` distance from features, without the ``(Q + G)**2`` distance matrix:
    its columns are computed a strip at a time by a matrix product. Memory beyond the features:
    the ``(Q, G)`` float32 result, ``V`` and a strip per worker thread.

    The distances are :func:`bench.evaluation.compute_distance`'s (Euclidean or ``1 - cos``),
    squared straight from the expansion ``||a||^2 + ||b||^2 - 2 a.b`` rather than square-rooted
    and squared again: equal to :func:`re_ranking` of those matrices up to float rounding.
    """
    _check(k1, k2, lambda_value)
    if metric not in METRICS:
        raise ValueError(f"unknown distance metric {metric!r}; allowed: {', '.join(METRICS)}")
    dev = torch.device(device) if device is not None else query.device
    source = _Features(query.to(dev), gallery.to(dev), metric)
    return _re_ranking(source, k1, k2, float(lambda_value))
