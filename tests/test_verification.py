"""Verification AUROC/AUPR and retrieval Recall@K/MRR against brute-force definitions."""

from __future__ import annotations

import numpy as np
import pytest

from bench.evaluation import retrieval_metrics, verification
from bench.evaluation.verification import verification_metrics


def brute_pairs(distmat, q_pids, g_pids, q_cams, g_cams, same_cam_rule=True, self_rule=False):
    pos, neg = [], []
    for i in range(distmat.shape[0]):
        for j in range(distmat.shape[1]):
            if g_pids[j] == -1:
                continue
            if self_rule and i == j:
                continue
            if same_cam_rule and q_pids[i] == g_pids[j] and q_cams[i] == g_cams[j]:
                continue
            (pos if q_pids[i] == g_pids[j] else neg).append(float(distmat[i, j]))
    return pos, neg


def brute_auroc(pos, neg):
    # Mann-Whitney over every (positive, negative) pair: smaller distance = higher score.
    wins = sum((p < n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def brute_aupr(pos, neg):
    # sum over distinct thresholds t (distances, ascending) of (R_t - R_prev) * P_t.
    ap, prev_recall = 0.0, 0.0
    for t in sorted(set(pos) | set(neg)):
        tp = sum(p <= t for p in pos)
        fp = sum(n <= t for n in neg)
        recall = tp / len(pos)
        if recall > prev_recall:
            ap += (recall - prev_recall) * tp / (tp + fp)
        prev_recall = recall
    return ap


def case(rng, num_q, num_g, ties):
    q_pids = rng.integers(1, 6, size=num_q)
    g_pids = rng.integers(-1, 6, size=num_g)
    q_cams = rng.integers(0, 3, size=num_q)
    g_cams = rng.integers(0, 3, size=num_g)
    d = (
        rng.integers(0, 5, size=(num_q, num_g)).astype(float)
        if ties
        else rng.random((num_q, num_g))
    )
    return d, q_pids, g_pids, q_cams, g_cams


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("rule", ["market", "all", "self"])
def test_verification_matches_brute_force(monkeypatch, ties, rule) -> None:
    monkeypatch.setattr(verification, "_BLOCK_ELEMENTS", 3 * 40)  # several query blocks
    rng = np.random.default_rng(5 + ties)
    n = 30 if rule == "self" else 17
    d, qp, gp, qc, gc = case(rng, n, 30 if rule == "self" else 40, ties)
    if rule == "self":  # all-vs-all: the gallery is the query set
        gp = qp
    kwargs = {"ignore_same_camera": rule == "market", "exclude_self": rule == "self"}
    got = verification_metrics(d, qp, gp, qc, gc, **kwargs)
    pos, neg = brute_pairs(d, qp, gp, qc, gc, rule == "market", rule == "self")
    assert (got.num_positive_pairs, got.num_negative_pairs) == (len(pos), len(neg))
    assert got.auroc == pytest.approx(brute_auroc(pos, neg), abs=1e-12)
    assert got.aupr == pytest.approx(brute_aupr(pos, neg), abs=1e-12)
    assert set(got.as_dict()) == {"AUROC", "AUPR", "num_positive_pairs", "num_negative_pairs"}


def test_verification_extremes() -> None:
    # Perfect separation: AUROC = AUPR = 1; reversed: AUROC = 0.
    q, g = [1, 2], [1, 2, 1, 2]
    d = np.array([[0.1, 0.9, 0.2, 0.8], [0.9, 0.1, 0.8, 0.2]])
    m = verification_metrics(d, q, g, ignore_same_camera=False)
    assert m.auroc == 1.0 and m.aupr == 1.0
    assert verification_metrics(-d, q, g, ignore_same_camera=False).auroc == 0.0
    with pytest.raises(ValueError, match="negative pairs"):
        verification_metrics(d, [1, 1], [1, 1, 1, 1], ignore_same_camera=False)


def brute_retrieval(d, q_labels, g_labels, max_rank, exclude_self):
    hits, rr, ap = np.zeros(max_rank), [], []
    for i in range(d.shape[0]):
        order = sorted(range(d.shape[1]), key=lambda j: (d[i, j], j))
        order = [j for j in order if not (exclude_self and j == i)]
        rel = [g_labels[j] == q_labels[i] for j in order]
        if not any(rel):
            continue
        first = rel.index(True) + 1
        rr.append(1 / first)
        hits += np.arange(1, max_rank + 1) >= first
        found = [sum(rel[: p + 1]) / (p + 1) for p, r in enumerate(rel) if r]
        ap.append(np.mean(found))
    return hits / len(rr), float(np.mean(rr)), float(np.mean(ap)), len(rr)


@pytest.mark.parametrize("exclude_self", [False, True])
def test_retrieval_recall_at_k_and_mrr(exclude_self) -> None:
    rng = np.random.default_rng(9)
    # Text queries: class labels, no cameras; or all-vs-all tracklets without the diagonal.
    num_q, num_g = (25, 25) if exclude_self else (6, 40)
    d = rng.integers(0, 6, size=(num_q, num_g)).astype(float)
    q_labels = rng.integers(0, 4, size=num_q)
    g_labels = q_labels if exclude_self else rng.integers(0, 4, size=num_g)
    got = retrieval_metrics(d, q_labels, g_labels, max_rank=10, exclude_self=exclude_self)
    recall, mrr, m_ap, valid = brute_retrieval(d, q_labels, g_labels, 10, exclude_self)
    np.testing.assert_allclose(got.cmc, recall, atol=1e-12)
    assert got.mrr == pytest.approx(mrr, abs=1e-12)
    assert got.mAP == pytest.approx(m_ap, abs=1e-12)
    assert got.num_valid_queries == valid
