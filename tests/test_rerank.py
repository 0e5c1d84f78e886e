"""k-reciprocal re-ranking against the reference implementation (torchreid's ``re_ranking``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.evaluation import compute_distance, rerank
from bench.evaluation.rerank import re_ranking, rerank_features


def reference_re_ranking(
    q_g_dist, q_q_dist, g_g_dist, k1=20, k2=6, lambda_value=0.3, kind="quicksort"
):
    """torchreid 0.2.5 ``torchreid/reid/utils/rerank.py`` (from the authors' code, MIT), as is
    but for formatting and ``kind`` (numpy's argsort; the reference's is the default, quicksort):
    the oracle the sparse implementation must reproduce."""
    original_dist = np.concatenate(
        [
            np.concatenate([q_q_dist, q_g_dist], axis=1),
            np.concatenate([q_g_dist.T, g_g_dist], axis=1),
        ],
        axis=0,
    )
    original_dist = np.power(original_dist, 2).astype(np.float32)
    original_dist = np.transpose(1.0 * original_dist / np.max(original_dist, axis=0))
    V = np.zeros_like(original_dist).astype(np.float32)
    initial_rank = np.argsort(original_dist, kind=kind).astype(np.int32)
    query_num = q_g_dist.shape[0]
    gallery_num = q_g_dist.shape[0] + q_g_dist.shape[1]
    all_num = gallery_num
    for i in range(all_num):
        forward_k_neigh_index = initial_rank[i, : k1 + 1]
        backward_k_neigh_index = initial_rank[forward_k_neigh_index, : k1 + 1]
        fi = np.where(backward_k_neigh_index == i)[0]
        k_reciprocal_index = forward_k_neigh_index[fi]
        k_reciprocal_expansion_index = k_reciprocal_index
        for j in range(len(k_reciprocal_index)):
            candidate = k_reciprocal_index[j]
            candidate_forward_k_neigh_index = initial_rank[
                candidate, : int(np.around(k1 / 2.0)) + 1
            ]
            candidate_backward_k_neigh_index = initial_rank[
                candidate_forward_k_neigh_index, : int(np.around(k1 / 2.0)) + 1
            ]
            fi_candidate = np.where(candidate_backward_k_neigh_index == candidate)[0]
            candidate_k_reciprocal_index = candidate_forward_k_neigh_index[fi_candidate]
            if len(
                np.intersect1d(candidate_k_reciprocal_index, k_reciprocal_index)
            ) > 2.0 / 3 * len(candidate_k_reciprocal_index):
                k_reciprocal_expansion_index = np.append(
                    k_reciprocal_expansion_index, candidate_k_reciprocal_index
                )
        k_reciprocal_expansion_index = np.unique(k_reciprocal_expansion_index)
        weight = np.exp(-original_dist[i, k_reciprocal_expansion_index])
        V[i, k_reciprocal_expansion_index] = 1.0 * weight / np.sum(weight)
    original_dist = original_dist[:query_num,]
    if k2 != 1:
        V_qe = np.zeros_like(V, dtype=np.float32)
        for i in range(all_num):
            V_qe[i, :] = np.mean(V[initial_rank[i, :k2], :], axis=0)
        V = V_qe
    invIndex = []
    for i in range(gallery_num):
        invIndex.append(np.where(V[:, i] != 0)[0])
    jaccard_dist = np.zeros_like(original_dist, dtype=np.float32)
    for i in range(query_num):
        temp_min = np.zeros(shape=[1, gallery_num], dtype=np.float32)
        indNonZero = np.where(V[i, :] != 0)[0]
        indImages = [invIndex[ind] for ind in indNonZero]
        for j in range(len(indNonZero)):
            temp_min[0, indImages[j]] = temp_min[0, indImages[j]] + np.minimum(
                V[i, indNonZero[j]], V[indImages[j], indNonZero[j]]
            )
        jaccard_dist[i] = 1 - temp_min / (2.0 - temp_min)
    final_dist = jaccard_dist * (1 - lambda_value) + original_dist * lambda_value
    return final_dist[:query_num, query_num:]


def clustered(num_q: int, num_g: int, dim: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Features around a few identity centres, so k-reciprocal sets are non-trivial."""
    gen = torch.Generator().manual_seed(seed)
    centres = torch.randn(8, dim, generator=gen)
    q = centres[torch.randint(0, 8, (num_q,), generator=gen)] + 0.6 * torch.randn(
        num_q, dim, generator=gen
    )
    g = centres[torch.randint(0, 8, (num_g,), generator=gen)] + 0.6 * torch.randn(
        num_g, dim, generator=gen
    )
    return q, g


def matrices(q: torch.Tensor, g: torch.Tensor, metric: str) -> tuple[np.ndarray, ...]:
    return tuple(compute_distance(a, b, metric).numpy() for a, b in ((q, g), (q, q), (g, g)))


@pytest.mark.parametrize(
    ("num_q", "num_g", "k1", "k2", "lam", "metric"),
    [
        (12, 60, 20, 6, 0.3, "euclidean"),
        (20, 90, 20, 6, 0.3, "cosine"),
        (15, 50, 6, 3, 0.5, "euclidean"),
        (10, 40, 8, 1, 0.1, "euclidean"),  # k2 = 1: no query expansion
        (5, 30, 4, 2, 0.0, "cosine"),  # pure Jaccard
    ],
)
def test_equals_reference(
    num_q: int, num_g: int, k1: int, k2: int, lam: float, metric: str
) -> None:
    q, g = clustered(num_q, num_g, 16, seed=num_q + num_g + k1)
    qg, qq, gg = matrices(q, g, metric)
    want = reference_re_ranking(qg, qq, gg, k1, k2, lam)
    got = re_ranking(qg, qq, gg, k1, k2, lam)
    assert isinstance(got, np.ndarray) and got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    # Re-ranking changed something: not just lambda times the original distance.
    assert np.abs(want - lam * (qg**2 / (qg**2).max())).max() > 1e-3


def test_exact_ties_are_ordered_by_index() -> None:
    # Integer distances: many exact ties at the neighbour cut-offs. With a stable argsort the
    # reference orders them by index, as re_ranking does.
    rng = np.random.default_rng(5)
    pts = rng.integers(0, 4, size=(70, 3)).astype(np.float64)
    full = np.abs(pts[:, None, :] - pts[None, :, :]).sum(-1)  # L1 distances: integers
    qg, qq, gg = full[:15, 15:], full[:15, :15], full[15:, 15:]
    want = reference_re_ranking(qg, qq, gg, 6, 3, 0.3, kind="stable")
    got = re_ranking(qg, qq, gg, 6, 3, 0.3)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    # The ties matter: numpy's default order gives another answer somewhere.
    assert np.abs(reference_re_ranking(qg, qq, gg, 6, 3, 0.3) - want).max() > 1e-3


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_features_in_blocks_equal_matrices(monkeypatch: pytest.MonkeyPatch, metric: str) -> None:
    # Feature blocks of 13 rows (the query count, 20, is not a multiple), 4 kept neighbours
    # per column: most distances of V's non-zeros are computed from features.
    monkeypatch.setattr(rerank, "_FEATURE_STRIP", 13)
    monkeypatch.setattr(rerank, "_FEATURE_KEEP", 4)
    q, g = clustered(20, 75, 16, seed=21)
    want = reference_re_ranking(*matrices(q, g, metric), 8, 3, 0.3)
    got = rerank_features(q, g, metric, 8, 3, 0.3)
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-5)


def test_small_blocks_equal_one_block(monkeypatch: pytest.MonkeyPatch) -> None:
    q, g = clustered(14, 70, 12, seed=3)
    qg, qq, gg = matrices(q, g, "euclidean")
    whole = re_ranking(qg, qq, gg)
    monkeypatch.setattr(rerank, "_ROW_ELEMENTS", 97)
    monkeypatch.setattr(rerank, "_PAIR_ELEMENTS", 50)
    np.testing.assert_allclose(re_ranking(qg, qq, gg), whole, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("num_q", "num_g", "k1", "k2"),
    [(2, 3, 20, 6), (1, 1, 20, 6), (3, 4, 6, 3), (4, 9, 20, 20), (2, 5, 9, 1)],
)
def test_sets_smaller_than_the_neighbourhoods_equal_reference(
    num_q: int, num_g: int, k1: int, k2: int
) -> None:
    """Fewer than k1 + 1 (or k2) items in all: every item is a neighbour, as in the reference."""
    q, g = clustered(num_q, num_g, 8, seed=num_q * 10 + num_g)
    qg, qq, gg = matrices(q, g, "euclidean")
    want = reference_re_ranking(qg, qq, gg, k1, k2, 0.3)
    np.testing.assert_allclose(re_ranking(qg, qq, gg, k1, k2, 0.3), want, rtol=0, atol=1e-5)
    got = rerank_features(q, g, "euclidean", k1, k2, 0.3).numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


def test_tensor_inputs_and_features() -> None:
    q, g = clustered(10, 45, 8, seed=9)
    qg, qq, gg = matrices(q, g, "cosine")
    from_np = re_ranking(qg, qq, gg, 10, 4, 0.3)
    from_torch = re_ranking(*(torch.from_numpy(m) for m in (qg, qq, gg)), 10, 4, 0.3)
    assert isinstance(from_torch, torch.Tensor)
    np.testing.assert_allclose(from_torch.numpy(), from_np, atol=1e-6)
    from_features = rerank_features(q, g, "cosine", 10, 4, 0.3)
    np.testing.assert_allclose(from_features.numpy(), from_np, atol=1e-6)


def test_bad_arguments() -> None:
    qg, qq, gg = np.zeros((2, 3)), np.zeros((2, 2)), np.zeros((3, 3))
    with pytest.raises(ValueError, match="g_g"):
        re_ranking(qg, qq, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="k1"):
        re_ranking(qg, qq, gg, k1=0)
    with pytest.raises(ValueError, match="lambda"):
        re_ranking(qg, qq, gg, lambda_value=2.0)
    with pytest.raises(ValueError, match="q_q_dist"):
        re_ranking(qg, np.full((2, 2), np.nan), gg)
