"""Ranking keys, a block of query rows at a time: smaller ranks first.

The evaluators never hold a ``Q x G`` matrix of their own: they ask a :data:`KeyBlocks` function
for the keys of a few query rows over the kept gallery columns, read from a given distance
matrix (:func:`distmat_keys`) or computed from features by one matrix product
(:func:`feature_keys`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from bench.evaluation.kernels import normalize_rows, squared_norms

KeyBlocks = Callable[[np.ndarray], torch.Tensor]  # query rows (ascending) -> (B, G) keys


def distmat_keys(
    distmat: np.ndarray | torch.Tensor, kept: np.ndarray, device: torch.device
) -> tuple[KeyBlocks, torch.dtype]:
    """Ranking keys read from a distance matrix (its ``kept`` columns), a block of rows at a
    time, in float32 or float64 (half precision is widened; integers become float64)."""
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


def feature_keys(
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
    q_sq, g_sq = squared_norms(q), squared_norms(g)
    for name, sq in (("query", q_sq), ("gallery", g_sq)):
        if len(sq) and not float(sq.max()) * 4 < torch.finfo(torch.float32).max:
            raise ValueError(
                f"{name} features contain NaN or infinite values, or are too large for float32"
            )
    if metric == "cosine":
        q, g = normalize_rows(q, q_sq), normalize_rows(g, g_sq)
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
