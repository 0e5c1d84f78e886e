"""Market-1501 ranking evaluation against a brute-force reference and hand-worked cases."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import torch

from bench.errors import BenchError
from bench.evaluation import (
    RankMetrics,
    compute_distance,
    evaluate_features,
    evaluate_rank,
)
from bench.evaluation import rank as evaluation
from bench.evaluation.kernels import sparse_nonzero

# --------------------------------------------------------------------------------------------
# Brute-force reference, straight from the definitions (pure python, one query at a time).
# --------------------------------------------------------------------------------------------


def reference(
    distmat: np.ndarray,
    q_pids: list[int],
    g_pids: list[int],
    q_camids: list[int],
    g_camids: list[int],
    max_rank: int,
) -> tuple[list[float], float, float, int, float]:
    """(cmc, mAP, mINP, num_valid, MRR) by loops: rank, drop ignored entries, score the rest."""
    num_g = len(g_pids)
    cmc_sum = [0.0] * max_rank
    ap_sum = inp_sum = rr_sum = 0.0
    num_valid = 0
    for i in range(len(q_pids)):
        row = [float(x) for x in distmat[i]]
        # Ascending distance, ties by gallery order.
        ranked = sorted(range(num_g), key=lambda j: (row[j], j))
        kept = [
            j
            for j in ranked
            if g_pids[j] != -1 and not (g_pids[j] == q_pids[i] and g_camids[j] == q_camids[i])
        ]
        hits = [g_pids[j] == q_pids[i] for j in kept]
        num_rel = sum(hits)
        if num_rel == 0:
            continue
        num_valid += 1
        precisions = []
        found = 0
        for pos, hit in enumerate(hits, start=1):
            if hit:
                found += 1
                precisions.append(found / pos)
        ap_sum += sum(precisions) / num_rel
        last = max(pos for pos, hit in enumerate(hits, start=1) if hit)
        inp_sum += num_rel / last
        first = min(pos for pos, hit in enumerate(hits, start=1) if hit)
        rr_sum += 1 / first
        for k in range(1, max_rank + 1):
            if first <= k:
                cmc_sum[k - 1] += 1
    if num_valid == 0:
        raise AssertionError("reference called without a valid query")
    return (
        [c / num_valid for c in cmc_sum],
        ap_sum / num_valid,
        inp_sum / num_valid,
        num_valid,
        rr_sum / num_valid,
    )


def random_case(
    rng: np.random.Generator, num_q: int, num_g: int, *, ties: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Distances (integer-valued when ``ties``), few ids and cameras, junk -1 and distractor 0."""
    num_ids, num_cams = 6, 3
    q_pids = rng.integers(1, num_ids + 3, size=num_q)  # ids > num_ids have no gallery entry
    q_camids = rng.integers(0, num_cams, size=num_q)
    g_pids = rng.integers(-1, num_ids + 1, size=num_g)  # includes -1 junk and 0 distractors
    g_camids = rng.integers(0, num_cams, size=num_g)
    if ties:
        distmat = rng.integers(0, 4, size=(num_q, num_g)).astype(np.float64)
    else:
        distmat = rng.random((num_q, num_g))
    return distmat, q_pids, g_pids, q_camids, g_camids


def assert_matches_reference(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    max_rank: int,
) -> RankMetrics:
    cmc, m_ap, m_inp, num_valid, mrr = reference(
        distmat, q_pids.tolist(), g_pids.tolist(), q_camids.tolist(), g_camids.tolist(), max_rank
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore" if max_rank > distmat.shape[1] else "error")
        got = evaluate_rank(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=max_rank)
    assert got.cmc.dtype == np.float64
    length = min(max_rank, distmat.shape[1])  # capped by the gallery size
    assert got.cmc.shape == (length,)
    np.testing.assert_allclose(got.cmc, cmc[:length], rtol=0, atol=1e-9)
    assert np.all(np.asarray(cmc[length:]) == cmc[length - 1])  # nothing changes beyond G
    assert got.mAP == pytest.approx(m_ap, abs=1e-9)
    assert got.mINP == pytest.approx(m_inp, abs=1e-9)
    assert got.mrr == pytest.approx(mrr, abs=1e-9)
    assert got.num_valid_queries == num_valid
    assert got.num_queries == len(q_pids)
    return got


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize(
    ("num_q", "num_g", "max_rank"),
    [(1, 7, 50), (5, 3, 10), (12, 40, 50), (30, 60, 20), (25, 120, 50), (40, 200, 5)],
)
def test_matches_brute_force_reference(num_q: int, num_g: int, max_rank: int, ties: bool) -> None:
    rng = np.random.default_rng(1000 * num_q + num_g + ties)
    checked = 0
    for _ in range(8):
        case = random_case(rng, num_q, num_g, ties=ties)
        try:
            reference(*case, max_rank)
        except AssertionError:
            with pytest.raises(ValueError):
                evaluate_rank(*case, max_rank=max_rank)
            continue
        assert_matches_reference(*case, max_rank)
        checked += 1
    assert checked > 0


def test_random_cases_include_skipped_queries_and_ties() -> None:
    # The random generator really produces what the reference comparison claims to cover.
    rng = np.random.default_rng(7)
    distmat, q_pids, g_pids, q_camids, g_camids = random_case(rng, 40, 200, ties=True)
    got = assert_matches_reference(distmat, q_pids, g_pids, q_camids, g_camids, 50)
    assert 0 < got.num_valid_queries < got.num_queries
    assert (g_pids == -1).any() and (g_pids == 0).any()
    assert any(len(np.unique(row)) < len(row) for row in distmat)


def test_blocked_evaluation_equals_one_block(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    case = random_case(rng, 37, 50, ties=True)
    whole = evaluate_rank(*case, max_rank=20)
    monkeypatch.setattr(evaluation, "_BLOCK_ELEMENTS", 3 * 50)  # blocks of 3 queries
    blocked = evaluate_rank(*case, max_rank=20)
    np.testing.assert_array_equal(blocked.cmc, whole.cmc)
    assert blocked.mAP == whole.mAP and blocked.mINP == whole.mINP
    assert_matches_reference(*case, 20)


# _SHALLOW_FRACTION: -1 sends every row through the histogram path, 2 every row through the
# threshold path, 0.3 splits the rows of a part between them.
PATHS = {"histogram": -1.0, "threshold": 2.0, "mixed": 0.3}


@pytest.mark.parametrize("path", sorted(PATHS))
@pytest.mark.parametrize("ties", [False, True])
def test_histogram_and_threshold_paths_match_reference(
    monkeypatch: pytest.MonkeyPatch, path: str, ties: bool
) -> None:
    # Few buckets put many entries in the exact set, many ties put true matches in shared
    # buckets; parts of 2 rows, blocks of 7.
    monkeypatch.setattr(evaluation, "_SHALLOW_FRACTION", PATHS[path])
    monkeypatch.setattr(evaluation, "_MIN_BUCKETS", 4)
    monkeypatch.setattr(evaluation, "_BLOCK_ELEMENTS", 7 * 300)
    monkeypatch.setattr(evaluation, "_SUB_ELEMENTS", 2 * 300)
    rng = np.random.default_rng(17 + len(path) + ties)
    for _ in range(4):
        case = random_case(rng, 30, 300, ties=ties)
        assert_matches_reference(*case, 50)


@pytest.mark.parametrize("threads", [1, 2])
def test_both_paths_are_taken_in_one_part(monkeypatch: pytest.MonkeyPatch, threads: int) -> None:
    # A trained-like case (matches early for half the queries, random for the rest) sends rows
    # of one part down both paths; with 2 torch threads the parts run on 2 worker threads.
    calls: dict[str, list[int]] = {"threshold": [], "histogram": []}
    for name in calls:
        original = getattr(evaluation, f"_positions_{name}")

        def spy(block, *args, _name=name, _original=original):
            calls[_name].append(block.keys.shape[0])
            return _original(block, *args)

        monkeypatch.setattr(evaluation, f"_positions_{name}", spy)
    monkeypatch.setattr(evaluation, "_SHALLOW_FRACTION", 0.2)  # 6 ids: a tenth share a pid
    rng = np.random.default_rng(2)
    distmat, q_pids, g_pids, q_camids, g_camids = random_case(rng, 40, 400, ties=False)
    early = (g_pids[None, :] == q_pids[::2, None]) & (g_camids[None, :] != q_camids[::2, None])
    distmat[::2] += np.where(early, 0.0, 1.0)  # even queries: true matches rank first
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        assert_matches_reference(distmat, q_pids, g_pids, q_camids, g_camids, 10)
    finally:
        torch.set_num_threads(before)
    assert sum(calls["threshold"]) > 0 and sum(calls["histogram"]) > 0


def test_nonzero_by_words_equals_nonzero() -> None:
    gen = torch.Generator().manual_seed(0)
    for shape, p in (((3, 5), 0.5), ((7, 64), 0.01), ((13, 101), 0.2), ((4, 8), 1.0), ((9, 33), 0)):
        mask = torch.rand(shape, generator=gen) < p
        for want, got in zip(mask.nonzero(as_tuple=True), sparse_nonzero(mask)):
            assert torch.equal(want, got)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.float16])
def test_distmat_dtypes(dtype: type) -> None:
    rng = np.random.default_rng(4)
    distmat, *labels = random_case(rng, 15, 90, ties=True)  # small integers: exact in any dtype
    assert_matches_reference(distmat.astype(dtype), *labels, 20)


@pytest.mark.parametrize("path", ["histogram", "threshold"])
def test_scaled_and_shifted_distances_rank_the_same(
    monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    # Huge, tiny and negative distances (similarities negated): the bucket map must stay exact.
    monkeypatch.setattr(evaluation, "_SHALLOW_FRACTION", PATHS[path])
    rng = np.random.default_rng(8)
    distmat, *labels = random_case(rng, 20, 150, ties=True)
    want = evaluate_rank(distmat, *labels)
    for scale, shift in ((1e30, 0.0), (1e-30, 0.0), (1.0, -1e6), (-1.0, 0.0)):
        d = distmat * scale + shift if scale > 0 else -(distmat.max() - distmat)
        got = evaluate_rank(d, *labels)
        assert got.mAP == want.mAP and got.mINP == want.mINP
        np.testing.assert_array_equal(got.cmc, want.cmc)


@pytest.mark.parametrize("path", ["histogram", "threshold"])
def test_signed_zero_and_infinity(monkeypatch: pytest.MonkeyPatch, path: str) -> None:
    # -0.0 ties +0.0 (gallery order decides); +-inf are ordinary extreme distances.
    monkeypatch.setattr(evaluation, "_SHALLOW_FRACTION", PATHS[path])
    g_pids, g_cams = [2, 1, 3, 1, 1], [1, 1, 1, 1, 1]
    m = one_query([0.0, -0.0, -np.inf, np.inf, 5.0], g_pids, g_cams)
    # Ranked: g2 (-inf, pid 3), g0 (0, pid 2), g1 (-0, hit at 3), g4 (5, hit at 4), g3 (inf, 5).
    assert m.mAP == pytest.approx((1 / 3 + 2 / 4 + 3 / 5) / 3)
    assert m.mINP == pytest.approx(3 / 5)
    assert m.mrr == pytest.approx(1 / 3)


# --------------------------------------------------------------------------------------------
# Hand-worked cases: one query, pid 1, camera 0, unless said otherwise.
# --------------------------------------------------------------------------------------------


def one_query(
    dist: list[float], g_pids: list[int], g_camids: list[int], max_rank: int = 7
) -> RankMetrics:
    return evaluate_rank(np.array([dist]), [1], g_pids, [0], g_camids, max_rank=max_rank)


def test_hand_two_matches() -> None:
    # Ranked: pid 2, pid 1 (hit at 2), pid 3, pid 1 (hit at 4), pid 4.
    # AP = (1/2 + 2/4) / 2 = 0.5; INP = 2 hits / last hit at 4 = 0.5.
    # CMC: rank 1 miss, rank >= 2 hit; max_rank = 7 is capped at G = 5, with a warning.
    with pytest.warns(UserWarning, match="max_rank 7 is more than the gallery's 5 entries"):
        m = one_query([0.1, 0.2, 0.3, 0.4, 0.5], [2, 1, 3, 1, 4], [1, 1, 1, 1, 1])
    assert m.mAP == pytest.approx(0.5)
    assert m.mINP == pytest.approx(0.5)
    np.testing.assert_array_equal(m.cmc, [0, 1, 1, 1, 1])
    assert (m.num_valid_queries, m.num_queries) == (1, 1)


def test_hand_same_pid_same_camera_is_ignored() -> None:
    # Gallery 0 (pid 1, cam 0) ranks first and gallery 4 (pid 1, cam 0) last: both removed.
    # Kept: g1 pid 2 (pos 1), g2 pid 1 cam 1 (hit, pos 2), g3 pid 3 (pos 3).
    # AP = 1/2; INP = 1/2; CMC = [0, 1, 1, ...]. Without removal AP would be (1 + 2/3 + 3/5)/3.
    m = one_query([0.1, 0.2, 0.3, 0.4, 0.5], [1, 2, 1, 3, 1], [0, 1, 1, 1, 0])
    assert m.mAP == pytest.approx(0.5)
    assert m.mINP == pytest.approx(0.5)
    np.testing.assert_array_equal(m.cmc, [0, 1, 1, 1, 1])


def test_hand_junk_ignored_distractor_is_negative() -> None:
    # g0, g2 are junk (-1): removed. Kept: g1 pid 1 (hit, pos 1), g3 pid 0 distractor (pos 2),
    # g4 pid 1 (hit, pos 3). AP = (1/1 + 2/3) / 2 = 5/6; INP = 2/3; CMC = 1 from rank 1.
    # Were junk kept as negatives: AP = (1/2 + 2/5) / 2 = 0.45.
    m = one_query([0.1, 0.2, 0.3, 0.4, 0.5], [-1, 1, -1, 0, 1], [1, 1, 1, 1, 2])
    assert m.mAP == pytest.approx(5 / 6)
    assert m.mINP == pytest.approx(2 / 3)
    np.testing.assert_array_equal(m.cmc, [1, 1, 1, 1, 1])


def test_hand_tie_broken_by_gallery_order() -> None:
    # Distances [1, 1, 1, 0, 2]: order g3 (0), then g0, g1, g2 (tied at 1, gallery order), g4.
    # pids in that order: 4, 1 (hit, pos 2), 3, 0, 1 (hit, pos 5).
    # AP = (1/2 + 2/5) / 2 = 0.45; INP = 2/5; CMC = [0, 1, ...].
    # Reversed tie order (g2, g1, g0) would put the first hit at 4: AP = (1/4 + 2/5) / 2.
    m = one_query([1.0, 1.0, 1.0, 0.0, 2.0], [1, 3, 0, 4, 1], [1, 1, 1, 1, 1])
    assert m.mAP == pytest.approx(0.45)
    assert m.mINP == pytest.approx(0.4)
    np.testing.assert_array_equal(m.cmc, [0, 1, 1, 1, 1])


def test_hand_hardest_match_last_and_max_rank_cut() -> None:
    # 12 gallery items at increasing distance; hits at positions 3 and 12 only.
    # AP = (1/3 + 2/12) / 2 = 0.25; INP = 2/12; CMC with max_rank 2 = [0, 0] (cut before hit).
    g_pids = [5] * 12
    g_pids[2] = g_pids[11] = 1
    m = one_query([float(i) for i in range(12)], g_pids, [1] * 12, max_rank=2)
    assert m.mAP == pytest.approx(0.25)
    assert m.mINP == pytest.approx(2 / 12)
    np.testing.assert_array_equal(m.cmc, [0, 0])


def test_hand_two_queries_averaged() -> None:
    # Gallery: g0 pid 1 cam 1, g1 pid 2 cam 1, g2 pid 2 cam 0.
    # q0 (pid 1, cam 0), row [0.1, 0.2, 0.3]: g0 hit at 1 -> AP 1, INP 1.
    # q1 (pid 2, cam 0), row [0.1, 0.5, 0.9]: g2 same camera removed; g0 (pos 1), g1 hit at 2
    #   -> AP 1/2, INP 1/2.
    # mAP = (1 + 0.5) / 2 = 0.75; mINP = 0.75; CMC = [1/2, 1, 1].
    distmat = np.array([[0.1, 0.2, 0.3], [0.1, 0.5, 0.9]])
    m = evaluate_rank(distmat, [1, 2], [1, 2, 2], [0, 0], [1, 1, 0], max_rank=3)
    assert m.mAP == pytest.approx(0.75)
    assert m.mINP == pytest.approx(0.75)
    np.testing.assert_allclose(m.cmc, [0.5, 1.0, 1.0])
    assert m.rank(1) == pytest.approx(0.5)


# --------------------------------------------------------------------------------------------
# Skipped queries, errors, input types.
# --------------------------------------------------------------------------------------------


def test_skipped_queries_are_counted_and_not_averaged() -> None:
    # q0 pid 1 cam 0: hit at pos 2 (AP 1/2). q1 pid 9: no gallery entry. q2 pid 3 cam 0: its only
    # gallery entry is on camera 0 (removed). q3 pid -1: junk is ignored, so no match either.
    distmat = np.array([[0.2, 0.1, 0.3], [0.1, 0.2, 0.3], [0.3, 0.2, 0.1], [0.1, 0.2, 0.3]])
    g_pids, g_camids = [1, 2, 3], [1, 1, 0]
    m = evaluate_rank(distmat, [1, 9, 3, -1], g_pids, [0, 0, 0, 0], g_camids, max_rank=3)
    assert (m.num_valid_queries, m.num_queries) == (1, 4)
    assert m.mAP == pytest.approx(0.5)
    assert m.mINP == pytest.approx(0.5)
    np.testing.assert_allclose(m.cmc, [0, 1, 1])


def test_all_queries_invalid_raises() -> None:
    distmat = np.zeros((2, 3))
    with pytest.raises(ValueError, match="none of the 2 queries"):
        # q0's matches share its camera; q1's pid is absent; g2 is junk.
        evaluate_rank(distmat, [1, 4], [1, 1, -1], [0, 0], [0, 0, 1])
    with pytest.raises(BenchError):  # reported by the CLI as one line, not a traceback
        evaluate_rank(distmat, [1, 4], [1, 1, -1], [0, 0], [0, 0, 1])


@pytest.mark.parametrize(
    ("args", "name"),
    [
        ((np.zeros((2, 3)), [1], [1, 2, 3], [0, 0], [1, 1, 1]), "q_pids"),
        ((np.zeros((2, 3)), [1, 2], [1, 2], [0, 0], [1, 1, 1]), "g_pids"),
        ((np.zeros((2, 3)), [1, 2], [1, 2, 3], [0, 0, 0], [1, 1, 1]), "q_camids"),
        ((np.zeros((2, 3)), [1, 2], [1, 2, 3], [0, 0], [1, 1]), "g_camids"),
        ((np.zeros(3), [1, 2], [1, 2, 3], [0, 0], [1, 1, 1]), "distmat"),
    ],
)
def test_shape_mismatch_names_argument(args: tuple, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        evaluate_rank(*args)


def test_bad_max_rank_and_nan_raise() -> None:
    args = (np.zeros((1, 2)), [1], [1, 2], [0], [1, 1])
    for bad in (0, -3):
        with pytest.raises(ValueError, match="max_rank"):
            evaluate_rank(*args, max_rank=bad)
    with pytest.raises(ValueError, match="NaN"):
        evaluate_rank(np.array([[0.0, np.nan]]), *args[1:])


def test_torch_inputs_equal_numpy_inputs() -> None:
    rng = np.random.default_rng(11)
    case = random_case(rng, 10, 30, ties=False)
    as_np = evaluate_rank(*case, max_rank=10)
    as_torch = evaluate_rank(*(torch.from_numpy(a) for a in case), max_rank=10)
    np.testing.assert_array_equal(as_np.cmc, as_torch.cmc)
    assert as_np.mAP == as_torch.mAP and as_np.mINP == as_torch.mINP


def test_rank_metrics_accessors_and_json() -> None:
    m = RankMetrics(
        cmc=np.linspace(0.5, 1.0, 12),
        mAP=0.4,
        mINP=0.2,
        num_valid_queries=3,
        num_queries=4,
        mrr=0.6,
    )
    assert m.rank(1) == 0.5 and m.rank(12) == 1.0
    with pytest.raises(ValueError):
        m.rank(0)
    with pytest.raises(ValueError):
        m.rank(13)
    d = m.as_dict()
    assert set(d) == {
        "mAP",
        "mINP",
        "MRR",
        "rank1",
        "rank5",
        "rank10",
        "cmc",
        "num_valid_queries",
        "num_queries",
    }
    assert d["rank5"] == m.cmc[4] and d["rank10"] == m.cmc[9] and d["MRR"] == 0.6
    assert all(type(v) is float for v in (d["mAP"], d["mINP"], d["rank1"], *d["cmc"]))
    assert type(d["num_valid_queries"]) is int and type(d["num_queries"]) is int
    assert json.loads(json.dumps(d)) == d
    short = RankMetrics(np.ones(3), 1.0, 1.0, 1, 1).as_dict()
    assert short["rank1"] == 1.0 and math.isnan(short["rank5"]) and math.isnan(short["rank10"])


# --------------------------------------------------------------------------------------------
# Distances and evaluate_features.
# --------------------------------------------------------------------------------------------


def test_euclidean_distance_is_cdist() -> None:
    torch.manual_seed(0)
    q, g = torch.randn(9, 16), torch.randn(13, 16)
    got = compute_distance(q, g, "euclidean")
    assert got.dtype == torch.float32 and got.shape == (9, 13)
    torch.testing.assert_close(got, torch.cdist(q, g), rtol=1e-5, atol=1e-5)
    # Identical rows: the clamp keeps the expansion's rounding from going negative (no NaN).
    same = compute_distance(q, q, "euclidean")
    assert not torch.isnan(same).any()
    assert same.diagonal().abs().max() < 1e-2


def test_cosine_distance_formula() -> None:
    torch.manual_seed(1)
    q, g = torch.randn(6, 8, dtype=torch.float64), torch.randn(4, 8, dtype=torch.float64)
    expected = torch.empty(6, 4, dtype=torch.float64)
    for i in range(6):
        for j in range(4):
            expected[i, j] = 1 - (q[i] @ g[j]) / (q[i].norm() * g[j].norm())
    got = compute_distance(q, g, "cosine")
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, expected.float(), rtol=1e-5, atol=1e-6)
    # Scale-invariant, unlike euclidean.
    torch.testing.assert_close(compute_distance(3 * q, g, "cosine"), got)


def test_unknown_metric_raises_naming_it_and_choices() -> None:
    with pytest.raises(ValueError, match=r"'manhattan'.*euclidean, cosine"):
        compute_distance(torch.zeros(1, 2), torch.zeros(1, 2), "manhattan")


def test_feature_size_mismatch_raises() -> None:
    with pytest.raises(ValueError, match="feature sizes"):
        compute_distance(torch.zeros(1, 2), torch.zeros(1, 3))


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_evaluate_features_equals_evaluate_rank(metric: str) -> None:
    rng = np.random.default_rng(5)
    torch.manual_seed(5)
    q, g = torch.randn(20, 12), torch.randn(80, 12)
    _, q_pids, g_pids, q_camids, g_camids = random_case(rng, 20, 80, ties=False)
    if metric == "cosine":
        qn, gn = q / q.norm(dim=1, keepdim=True), g / g.norm(dim=1, keepdim=True)
        manual = (1 - qn @ gn.T).numpy()
    else:
        manual = torch.cdist(q, g).numpy()
    got = evaluate_features(q, g, q_pids, g_pids, q_camids, g_camids, metric=metric, max_rank=15)
    want = evaluate_rank(manual, q_pids, g_pids, q_camids, g_camids, max_rank=15)
    np.testing.assert_allclose(got.cmc, want.cmc, atol=1e-12)
    assert got.mAP == pytest.approx(want.mAP, abs=1e-12)
    assert got.mINP == pytest.approx(want.mINP, abs=1e-12)
    assert_matches_reference(manual, q_pids, g_pids, q_camids, g_camids, 15)
