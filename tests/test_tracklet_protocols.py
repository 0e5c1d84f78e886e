"""NTSSL's tracklet protocols (bench.evaluation.tracklets, bench.evaluation.probes) against
brute-force loops, scikit-learn and, where installed, torchmetrics itself."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

from bench.errors import BenchError
from bench.evaluation.probes import (
    ProbeConfig,
    histology_classes,
    histology_probe,
    identity_weighted_macro_f1,
    majority_vote_accuracy,
    size_classes,
    size_probe,
    split_by_polyp,
)
from bench.evaluation.tracklets import tracklet_reidentification, tracklet_retrieval


def _cos(e: torch.Tensor) -> torch.Tensor:
    en = F.normalize(e.float(), dim=-1)
    return en @ en.t()


def _brute_retrieval(e: torch.Tensor, pids: list[int], action: str) -> dict[str, float]:
    """Loops over queries; gallery in index order, stable descending sort (ties keep order)."""
    s = _cos(e).tolist()
    n = len(pids)
    aps, hr1, hr5 = [], [], []
    for i in range(n):
        gallery = [j for j in range(n) if j != i]
        ranked = sorted(gallery, key=lambda j: -s[i][j])  # Python's sort is stable
        rel = [pids[j] == pids[i] for j in ranked]
        if not any(rel):
            if action == "skip":
                continue
            v = 1.0 if action == "pos" else 0.0
            aps.append(v)
            hr1.append(v)
            hr5.append(v)
            continue
        hits, precisions = 0, []
        for r, j in enumerate(ranked, 1):
            if pids[j] == pids[i] and s[i][j] > 0:  # torchmetrics: a score <= 0 is no hit
                hits += 1
                precisions.append(hits / r)
        aps.append(sum(precisions) / len(precisions) if precisions else 0.0)
        hr1.append(float(any(rel[:1])))
        hr5.append(float(any(rel[:5])))

    def mean(v: list[float]) -> float:
        return sum(v) / len(v) if v else 0.0

    return {"mAP": mean(aps), "HR@1": mean(hr1), "HR@5": mean(hr5), "num_queries": len(aps)}


def _brute_pairs(e: torch.Tensor, pids: list[int]) -> tuple[list[float], list[int]]:
    s = torch.sigmoid(_cos(e))
    scores, target = [], []
    for i in range(len(pids)):
        for j in range(i):
            scores.append(float(s[i, j]))
            target.append(int(pids[i] == pids[j]))
    return scores, target


def _brute_auroc(scores: list[float], target: list[int]) -> float:
    pos = [s for s, t in zip(scores, target) if t]
    neg = [s for s, t in zip(scores, target) if not t]
    wins = sum((p > q) + 0.5 * (p == q) for p in pos for q in neg)
    return wins / (len(pos) * len(neg))


def _brute_ap(scores: list[float], target: list[int]) -> float:
    """Step-wise AP over the distinct thresholds: sum_k (R_k - R_{k-1}) P_k."""
    n_pos = sum(target)
    ap, prev_recall = 0.0, 0.0
    for t in sorted(set(scores), reverse=True):
        tp = sum(1 for s, y in zip(scores, target) if s >= t and y)
        fp = sum(1 for s, y in zip(scores, target) if s >= t and not y)
        recall = tp / n_pos
        ap += (recall - prev_recall) * tp / (tp + fp)
        prev_recall = recall
    return ap


def _data(seed: int, n: int, ties: bool) -> tuple[torch.Tensor, list[int]]:
    g = torch.Generator().manual_seed(seed)
    if ties:  # few distinct directions: many equal cosines, some exactly 0 or negative
        e = torch.randint(-1, 2, (n, 3), generator=g).float()
        e[e.abs().sum(1) == 0] = 1.0
    else:
        e = torch.randn(n, 8, generator=g)
    pids = torch.randint(0, max(2, n // 3), (n,), generator=g).tolist()
    pids[-1] = 10_000  # one polyp with a single tracklet: a query without positives
    return e, pids


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("action", ["skip", "neg", "pos"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_retrieval_matches_brute_force(seed, action, ties):
    e, pids = _data(seed, 40, ties)
    assert any(pids.count(p) == 1 for p in pids)  # queries without positives are exercised
    got = tracklet_retrieval(e, pids, empty_target_action=action)
    ref = _brute_retrieval(e, pids, action)
    assert got["num_queries"] == ref["num_queries"]
    for k in ("mAP", "HR@1", "HR@5"):
        assert got[k] == pytest.approx(ref[k], abs=1e-9)


def test_retrieval_errors_on_a_query_without_positive_by_default():
    e = torch.randn(5, 4)
    with pytest.raises(BenchError, match="1 of 5 query tracklets"):
        tracklet_retrieval(e, [0, 0, 1, 1, 2])
    assert tracklet_retrieval(e, [0, 0, 1, 1, 1])["num_queries"] == 5


def test_retrieval_negative_cosine_positive_is_no_hit_for_ap_but_a_hit_for_hr():
    e = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    got = tracklet_retrieval(e, [0, 0])
    assert got == {"mAP": 0.0, "HR@1": 1.0, "HR@5": 1.0, "num_queries": 2}


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reidentification_matches_brute_force_and_sklearn(seed, ties):
    e, pids = _data(seed, 30, ties)
    got = tracklet_reidentification(e, pids)
    scores, target = _brute_pairs(e, pids)
    assert got["num_positive_pairs"] == sum(target)
    assert got["num_positive_pairs"] + got["num_negative_pairs"] == 30 * 29 // 2
    assert got["AUROC"] == pytest.approx(_brute_auroc(scores, target), abs=1e-9)
    assert got["AUROC"] == pytest.approx(roc_auc_score(target, scores), abs=1e-9)
    assert got["AP"] == pytest.approx(_brute_ap(scores, target), abs=1e-9)
    assert got["AP"] == pytest.approx(average_precision_score(target, scores), abs=1e-9)


def test_reidentification_needs_positive_and_negative_pairs():
    with pytest.raises(BenchError, match="no positive pair"):
        tracklet_reidentification(torch.randn(3, 4), [0, 1, 2])
    with pytest.raises(BenchError, match="no negative pair"):
        tracklet_reidentification(torch.randn(3, 4), [7, 7, 7])


@pytest.mark.parametrize(
    ("emb", "pids", "match"),
    [
        (torch.randn(4), [0, 0, 1, 1], "must be"),
        (torch.randn(1, 4), [0], "at least 2"),
        (torch.tensor([[0.0, float("nan")], [1.0, 0.0]]), [0, 0], "NaN"),
        (torch.randn(3, 4), [0, 0], "pids has 2 entries but embeddings has 3 rows"),
        (torch.randn(2, 4), [0.5, 0.0], "integers"),
        (torch.zeros(2, 4, dtype=torch.long), [0, 0], "floating point"),
    ],
)
def test_tracklet_inputs_are_checked(emb, pids, match):
    for fn in (tracklet_retrieval, tracklet_reidentification):
        with pytest.raises(BenchError, match=match):
            fn(emb, pids)


def test_matches_torchmetrics_without_ties():
    tm = pytest.importorskip("torchmetrics")
    from torchmetrics.classification import BinaryAUROC, BinaryAveragePrecision
    from torchmetrics.retrieval import RetrievalHitRate, RetrievalMAP

    for seed in range(3):
        e, with_single = _data(seed, 120, ties=False)
        n = len(with_single)
        paired = (torch.randperm(n, generator=torch.Generator().manual_seed(seed)) // 2).tolist()
        s = _cos(e)
        # "error" (the released setting) needs a positive for every query
        for action, pids in [("error", paired)] + [
            (a, with_single) for a in ("skip", "neg", "pos")
        ]:
            labels = torch.tensor(pids)
            target = (labels[:, None] == labels[None, :]).long()
            target.fill_diagonal_(-1)  # the released RetrievalEvaluator's masking
            indexes = torch.arange(n)[:, None].expand(-1, n)
            cfg = {"empty_target_action": action, "ignore_index": -1}
            ref = {
                "mAP": RetrievalMAP(**cfg)(s, target, indexes),
                "HR@1": RetrievalHitRate(**cfg, top_k=1)(s, target, indexes),
                "HR@5": RetrievalHitRate(**cfg, top_k=5)(s, target, indexes),
            }
            got = tracklet_retrieval(e, pids, empty_target_action=action)
            for k, v in ref.items():
                assert got[k] == pytest.approx(float(v), abs=1e-6), (tm.__version__, action, k)
        mask = torch.tril(torch.ones(n, n), diagonal=-1).bool()
        preds = torch.sigmoid(s)[mask]
        pair_target = (labels[:, None] == labels[None, :]).long()[mask]
        got = tracklet_reidentification(e, pids)
        assert got["AUROC"] == pytest.approx(float(BinaryAUROC()(preds, pair_target)), abs=1e-6)
        ap = float(BinaryAveragePrecision()(preds, pair_target))
        assert got["AP"] == pytest.approx(ap, abs=1e-6)


# ---- probes ------------------------------------------------------------------------------------


def _polyps(n_polyps: int, seed: int, per: tuple[int, int] = (1, 5)):
    rng = np.random.default_rng(seed)
    counts = rng.integers(per[0], per[1] + 1, n_polyps)
    pids = np.repeat(np.arange(n_polyps) * 7 + 3, counts)  # sparse, non-contiguous ids
    cls_of = rng.permutation(np.arange(n_polyps) % 2)
    labels = np.repeat(cls_of, counts)
    return pids, labels


def test_size_and_histology_classes():
    assert size_classes([0.0, 5.0, 5.01, 12]).tolist() == [0, 0, 1, 1]
    names = ["AD", "Hyperplastic Polyp", "sessile serrated lesion", "NO POLYP", "adenomatous"]
    assert histology_classes(names).tolist() == [1, 0, 0, -1, 1]
    with pytest.raises(BenchError):
        size_classes([float("nan")])


@pytest.mark.parametrize("seed", [0, 1, 5])
def test_split_keeps_each_polyp_on_one_side_and_stratifies(seed):
    pids, labels = _polyps(30, seed)
    train, test = split_by_polyp(pids, labels, seed=seed)
    assert (train ^ test).all()
    assert not set(pids[train]) & set(pids[test])
    for c in (0, 1):
        n_c = len(set(pids[labels == c]))
        n_train = len(set(pids[train & (labels == c)]))
        assert n_train == round(0.7 * n_c)
        assert 0 < n_train < n_c
    again = split_by_polyp(pids, labels, seed=seed)
    assert (again[0] == train).all()
    assert not (split_by_polyp(pids, labels, seed=seed + 100)[0] == train).all()


def test_split_keeps_a_rare_class_on_both_sides():
    pids = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    labels = np.array([0, 0, 0, 0, 0, 0, 0, 0, 1, 1])
    train, test = split_by_polyp(pids, labels, seed=0)
    assert labels[train].tolist().count(1) == 1 and labels[test].tolist().count(1) == 1


def test_identity_weighted_macro_f1_matches_sklearn_with_weights():
    rng = np.random.default_rng(0)
    pids, y = _polyps(20, 0)
    pred = rng.integers(0, 2, len(y))
    _, inv, counts = np.unique(pids, return_inverse=True, return_counts=True)
    w = 1.0 / counts[inv]
    ref = f1_score(y, pred, labels=[0, 1], average="macro", sample_weight=w, zero_division=0)
    assert identity_weighted_macro_f1(pred, y, pids) == pytest.approx(ref, abs=1e-12)
    # every polyp counts once: one polyp of 100 wrong tracklets weighs as one of 1 tracklet
    p = np.array([0] * 100 + [1, 2, 3])
    t = np.array([0] * 100 + [0, 1, 1])
    yhat = np.array([1] * 100 + [0, 1, 1])
    assert identity_weighted_macro_f1(yhat, t, p) == pytest.approx(
        f1_score([0, 0, 1, 1], [1, 0, 1, 1], average="macro")
    )


def test_majority_vote_accuracy_ties_go_to_class_zero():
    pids = [0, 0, 1, 1, 1]
    assert majority_vote_accuracy([0, 1, 1, 1, 0], [0, 0, 1, 1, 1], pids) == 1.0
    assert majority_vote_accuracy([0, 1, 1, 1, 0], [1, 1, 1, 1, 1], pids) == 0.5


def _separable(pids, labels, seed, dim=32):
    g = torch.Generator().manual_seed(seed)
    x = 0.1 * torch.randn(len(pids), dim, generator=g)  # class = sign of x[:, 0], margin 4
    x[:, 0] += torch.as_tensor(np.where(labels == 1, 4.0, -4.0), dtype=torch.float32)
    return x


def test_size_probe_separable_gives_f1_one():
    pids, labels = _polyps(40, 1)
    sizes = np.where(labels == 1, 9.0, 3.0)
    x = _separable(pids, labels, 1)
    out = size_probe(x, pids.tolist(), sizes.tolist(), seed=3)
    assert out["macro_F1"] == 1.0 and out["accuracy"] == 1.0
    assert out["num_train"] + out["num_test"] == len(pids)


def test_histology_probe_separable_gives_accuracy_one_and_drops_unclassed():
    pids, labels = _polyps(40, 2)
    names = np.where(labels == 1, "AD", "HP").astype(object)
    names[pids == pids[0]] = "NO POLYP"
    x = _separable(pids, labels, 2)
    out = histology_probe(x, pids.tolist(), names.tolist(), seed=0)
    assert out["accuracy"] == 1.0 and out["accuracy_identity"] == 1.0
    assert out["num_train"] + out["num_test"] == int((pids != pids[0]).sum())


def test_random_labels_give_about_chance():
    scores = []
    for seed in range(4):
        pids, labels = _polyps(80, 10 + seed)
        x = torch.randn(len(pids), 32, generator=torch.Generator().manual_seed(seed))
        cfg = ProbeConfig(epochs=30)
        out = size_probe(x, pids, np.where(labels == 1, 8.0, 2.0), seed=seed, config=cfg)
        scores.append(out["macro_F1"])
        scores.append(histology_probe(x, pids, labels.tolist(), seed=seed)["accuracy"])
    assert abs(np.mean(scores) - 0.5) < 0.12


def test_probe_is_deterministic_per_seed_and_leaves_global_rng():
    pids, labels = _polyps(30, 4)
    x = torch.randn(len(pids), 16, generator=torch.Generator().manual_seed(4))
    sizes = np.where(labels == 1, 7.0, 4.0)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = size_probe(x, pids, sizes, seed=7)
    assert torch.rand(1) == before
    b = size_probe(x, pids, sizes, seed=7)
    assert a == b
    assert all(math.isfinite(v) for v in a.values())


def test_probe_inputs_are_checked():
    pids, labels = _polyps(10, 0)
    x = torch.randn(len(pids), 8)
    with pytest.raises(BenchError, match="one entry per tracklet"):
        size_probe(x, pids[:-1], np.ones(len(pids)))
    mixed = labels.copy()
    mixed[0], mixed[1] = 0, 1
    pids2 = pids.copy()
    pids2[1] = pids2[0]
    with pytest.raises(BenchError, match="both classes"):
        histology_probe(x, pids2, mixed.tolist())
    with pytest.raises(BenchError, match="finite"):
        size_probe(x * float("nan"), pids, np.ones(len(pids)))
