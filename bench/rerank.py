"""k-reciprocal re-ranking (Zhong et al. 2017, "Re-ranking Person Re-identification with
k-reciprocal Encoding", CVPR), the computation of the authors' released code as torchreid's
``re_ranking`` carries it (Eq. 7-13 of the paper, with the code's choices below), sparse.

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

V has at most a few hundred non-zeros a row, so it is kept sparse: no dense ``N x N`` array is
built besides the input distances, and the Jaccard step touches only pairs that share a
non-zero. Equal to the reference within float32 rounding where neighbour lists agree (nearest
neighbours are taken with ``topk``; the reference's ``argsort`` may order exact ties otherwise).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from bench.evaluation import _threads, compute_distance

__all__ = ["re_ranking", "rerank_features"]

# Rows of the N x N matrix handled at once (each row N float32 values).
_ROW_ELEMENTS = 1 << 24
# Query-gallery pairs expanded at once in the Jaccard step.
_PAIR_ELEMENTS = 1 << 23


def _square(x: torch.Tensor) -> torch.Tensor:
    """``np.power(x, 2).astype(np.float32)``: square in the input's precision, then float32."""
    return x.pow(2).to(torch.float32)


class _Distances:
    """The ``N x N`` matrix ``[[qq, qg], [qg.T, gg]]`` without concatenating it.

    The reference reads it by columns; transposed copies made once make those rows.
    """

    def __init__(self, qg: torch.Tensor, qq: torch.Tensor, gg: torch.Tensor) -> None:
        self.qg, self.qq, self.gg = qg, qq, gg
        self.num_q, self.num_g = qg.shape
        self.n = self.num_q + self.num_g
        self.qq_t = qq.T.contiguous()
        self.qg_t = qg.T.contiguous()
        self.gg_t = gg.T.contiguous()

    def columns(self, start: int, stop: int) -> torch.Tensor:
        """Columns ``start:stop`` of the matrix, as rows ``(stop - start, N)``."""
        q = self.num_q
        parts = []
        if start < q:
            a, b = start, min(stop, q)
            parts.append(torch.cat([self.qq_t[a:b], self.qg[a:b]], dim=1))
        if stop > q:
            a, b = max(start, q) - q, stop - q
            parts.append(torch.cat([self.qg_t[a:b], self.gg_t[a:b]], dim=1))
        return torch.cat(parts, dim=0) if len(parts) > 1 else parts[0]

    def at(self, r: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Entries ``[r, c]`` for index tensors of equal shape."""
        q = self.num_q
        out = torch.empty(r.shape, dtype=self.qg.dtype, device=self.qg.device)
        rq, cq = r < q, c < q
        for mask, src, rr, cc in (
            (rq & cq, self.qq, r, c),
            (rq & ~cq, self.qg, r, c - q),
            (~rq & cq, self.qg, c, r - q),  # the qg.T block
            (~rq & ~cq, self.gg, r - q, c - q),
        ):
            if bool(mask.any()):
                out[mask] = src[rr[mask], cc[mask]]
        return out


def _reciprocal(nbr: torch.Tensor) -> torch.Tensor:
    """``recip[i, t]``: ``i`` is among the neighbours of its ``t``-th neighbour ``nbr[i, t]``."""
    n = nbr.shape[0]
    out = torch.empty(nbr.shape, dtype=torch.bool, device=nbr.device)
    step = max(1, _ROW_ELEMENTS // (nbr.shape[1] ** 2))
    for s in range(0, n, step):
        rows = torch.arange(s, min(s + step, n), device=nbr.device)
        out[s : s + len(rows)] = (nbr[nbr[rows]] == rows[:, None, None]).any(-1)
    return out


def _expansion_sets(nbr: torch.Tensor, k1: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``R*(i)`` for every ``i`` as (row, column) pairs, unique and sorted per row."""
    n = nbr.shape[0]
    kh = int(np.around(k1 / 2.0))
    big = nbr[:, : k1 + 1]
    half = nbr[:, : kh + 1]
    r_big = _reciprocal(big)  # (n, k1+1)
    r_half = _reciprocal(half)  # (n, kh+1)
    size_half = r_half.sum(1)
    rows_out, cols_out = [], []
    width = (k1 + 1) * (kh + 2)
    step = max(1, _ROW_ELEMENTS // ((k1 + 1) * (kh + 1) * (k1 + 1)))
    for s in range(0, n, step):
        rows = torch.arange(s, min(s + step, n), device=nbr.device)
        cand = big[rows]  # (b, k1+1) the candidates c, valid where r_big
        cand_ok = r_big[rows]
        members = half[cand]  # (b, k1+1, kh+1) R(c, kh) before its mask
        member_ok = r_half[cand]
        in_r = (members[..., None] == cand[:, None, None, :]) & cand_ok[:, None, None, :]
        shared = (in_r.any(-1) & member_ok).sum(-1)  # |R(c, kh) & R(i, k1)|
        accept = cand_ok & (shared.double() > 2.0 / 3 * size_half[cand].double())
        pool = torch.cat(
            [
                torch.where(cand_ok, cand, n),
                torch.where(accept[..., None] & member_ok, members, n).flatten(1),
            ],
            dim=1,
        )
        assert pool.shape[1] == width
        pool = torch.sort(pool, dim=1).values
        keep = pool < n
        keep[:, 1:] &= pool[:, 1:] != pool[:, :-1]
        r, t = keep.nonzero(as_tuple=True)
        rows_out.append(rows[r])
        cols_out.append(pool[r, t])
    return torch.cat(rows_out), torch.cat(cols_out)


def _sparse(rows: torch.Tensor, cols: torch.Tensor, vals: torch.Tensor, n: int) -> torch.Tensor:
    coo = torch.sparse_coo_tensor(torch.stack([rows, cols]), vals, (n, n), check_invariants=False)
    return coo.coalesce()


@torch.no_grad()
def _re_ranking(
    dist: _Distances, k1: int, k2: int, lambda_value: float, device: torch.device
) -> torch.Tensor:
    n = dist.n
    # 1. Column maxima of A = D**2 and the k1 + 1 nearest neighbours of every row of d.
    # max(x**2) is the larger square of min(x) and max(x) (squaring is monotone in |x|); the
    # neighbours of d(i, .) = A[:, i] / max are those of A[:, i] (a positive scale), ties aside.
    col_max = torch.empty(n, dtype=torch.float32, device=device)
    k = min(n, max(k1 + 1, k2))
    nbr = torch.empty((n, k), dtype=torch.long, device=device)
    step = max(1, _ROW_ELEMENTS // n)
    for s in range(0, n, step):
        a = dist.columns(s, min(s + step, n))
        lo, hi = torch.aminmax(a, dim=1)
        col_max[s : s + step] = torch.maximum(_square(lo), _square(hi))
        nbr[s : s + step] = torch.topk(_square(a), k, dim=1, largest=False, sorted=True).indices
    return _sparse_steps(dist, nbr, col_max, k1, k2, lambda_value, device)


def _sparse_steps(
    dist: _Distances,
    nbr: torch.Tensor,
    col_max: torch.Tensor,
    k1: int,
    k2: int,
    lambda_value: float,
    device: torch.device,
) -> torch.Tensor:
    """Steps 2-6 on the neighbour lists: many small sparse operations."""
    n, num_q = dist.n, dist.num_q
    # 2-4. Expanded k-reciprocal sets, Gaussian weights, then local query expansion.
    rows, cols = _expansion_sets(nbr, k1)
    d_rc = _square(dist.at(cols, rows)) / col_max[rows]  # d(i, j) = A[j, i] / max_col(i)
    w = torch.exp(-d_rc)
    total = torch.zeros(n, dtype=torch.float32, device=device).index_add_(0, rows, w)
    v = _sparse(rows, cols, w / total[rows], n)
    if k2 != 1:
        qe_rows = torch.arange(n, device=device).repeat_interleave(k2)
        qe = _sparse(qe_rows, nbr[:, :k2].reshape(-1), torch.ones(n * k2, device=device), n)
        with warnings.catch_warnings():  # "sparse CSR support is in beta", said inside mm
            warnings.simplefilter("ignore", UserWarning)
            v = torch.sparse.mm(qe, v).coalesce()
        v = _sparse(v.indices()[0], v.indices()[1], v.values() / k2, n)
    # 5-6. Jaccard distance over pairs that share a non-zero, for query rows, gallery columns.
    idx, val = v.indices(), v.values()
    q_entries = idx[0] < num_q
    q_row, q_col, q_val = idx[0][q_entries], idx[1][q_entries], val[q_entries]
    g_entries = idx[0] >= num_q
    by_col = torch.sort(idx[1][g_entries], stable=True).indices
    g_row = idx[0][g_entries][by_col] - num_q
    g_col = idx[1][g_entries][by_col]
    g_val = val[g_entries][by_col]
    col_count = torch.bincount(g_col, minlength=n)
    col_start = col_count.cumsum(0) - col_count
    pairs_per_entry = col_count[q_col]
    num_g = dist.num_g
    out = torch.empty((num_q, num_g), dtype=torch.float32, device=device)
    entry_start = torch.searchsorted(q_row, torch.arange(num_q + 1, device=device))
    pair_cum = torch.cat([pairs_per_entry.new_zeros(1), pairs_per_entry.cumsum(0)])
    q0 = 0
    while q0 < num_q:
        # As many query rows as fit in the pair budget (at least one).
        e0 = int(entry_start[q0])
        limit = int(pair_cum[e0]) + _PAIR_ELEMENTS
        q1 = int(torch.searchsorted(pair_cum[entry_start], limit, right=True)) - 1
        q1 = min(max(q1, q0 + 1), num_q)
        e1 = int(entry_start[q1])
        m = torch.zeros((q1 - q0) * num_g, dtype=torch.float32, device=device)
        counts = pairs_per_entry[e0:e1]
        entry = torch.arange(e0, e1, device=device).repeat_interleave(counts)
        offset = torch.arange(len(entry), device=device) - (pair_cum[entry] - pair_cum[e0])
        at = col_start[q_col[entry]] + offset
        contrib = torch.minimum(q_val[entry], g_val[at])
        m.index_add_(0, (q_row[entry] - q0) * num_g + g_row[at], contrib)
        m = m.view(q1 - q0, num_g)
        jaccard = 1 - m / (2.0 - m)
        original = _square(dist.qg[q0:q1]) / col_max[q0:q1, None]
        out[q0:q1] = jaccard * (1 - lambda_value) + original * lambda_value
        q0 = q1
    return out


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

    Returns float32, numpy when ``q_g_dist`` is numpy, else a tensor on ``device``.
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
    for name, m in (("q_g_dist", qg), ("q_q_dist", qq), ("g_g_dist", gg)):
        if not bool(torch.isfinite(m).all()):
            raise ValueError(f"{name} contains NaN or infinite values")
    # One CPU thread: measured faster than two on the shared machine (see bench.evaluation).
    with _threads(1 if dev.type == "cpu" else None):
        out = _re_ranking(_Distances(qg, qq, gg), k1, k2, float(lambda_value), dev)
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
    """Re-ranked ``(Q, G)`` distance from features: :func:`compute_distance` gives the three
    matrices (``(Q + G)**2`` float32 values in memory: 1.5 GB at Market-1501 scale, beyond this
    tool's memory bound at MSMT17 scale), then :func:`re_ranking`.
    """
    dev = torch.device(device) if device is not None else query.device
    q = query.detach().to(dev)
    g = gallery.detach().to(dev)
    qg = compute_distance(q, g, metric)
    qq = compute_distance(q, q, metric)
    gg = compute_distance(g, g, metric)
    return re_ranking(qg, qq, gg, k1, k2, lambda_value, device=dev)
