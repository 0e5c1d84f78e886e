"""Label-smoothed cross entropy and batch-hard triplet loss against hand-written references."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from bench.losses import CrossEntropyLabelSmooth, MultiSimilarityTripletLoss, TripletLoss
from bench.losses.triplet import (
    batch_hard_triplet,
    batch_hard_triplet_loss,
    mined_triplet_loss,
    multi_similarity_pairs,
    pairwise_distance,
)


def test_label_smoothing_hand_formula():
    torch.manual_seed(0)
    logits, targets = torch.randn(5, 4), torch.tensor([0, 3, 1, 1, 2])
    eps, n = 0.2, 4
    expected = 0.0
    for row, t in zip(logits.tolist(), targets.tolist()):
        lse = math.log(sum(math.exp(v) for v in row))
        for c, v in enumerate(row):
            q = (1 - eps) * (c == t) + eps / n
            expected -= q * (v - lse)
    expected /= 5
    got = CrossEntropyLabelSmooth(num_classes=n, epsilon=eps)(logits, targets)
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_label_smoothing_eps0_is_cross_entropy():
    torch.manual_seed(1)
    logits, targets = torch.randn(7, 6), torch.randint(0, 6, (7,))
    got = CrossEntropyLabelSmooth(6, epsilon=0.0)(logits, targets)
    torch.testing.assert_close(got, F.cross_entropy(logits, targets))
    smoothed = CrossEntropyLabelSmooth(6, epsilon=0.1)(logits, targets)
    torch.testing.assert_close(smoothed, F.cross_entropy(logits, targets, label_smoothing=0.1))


def test_label_smoothing_rejects_wrong_width():
    with pytest.raises(ValueError, match="shape"):
        CrossEntropyLabelSmooth(5)(torch.randn(2, 4), torch.tensor([0, 1]))


def test_pairwise_distance():
    torch.manual_seed(2)
    x, y = torch.randn(4, 3), torch.randn(5, 3)
    torch.testing.assert_close(pairwise_distance(x, y), torch.cdist(x, y), atol=1e-5, rtol=0)
    torch.testing.assert_close(
        pairwise_distance(x, y, squared=True), torch.cdist(x, y) ** 2, atol=1e-5, rtol=0
    )
    x = torch.cat([x, x[:1]]).requires_grad_(True)  # a duplicate row: zero off the diagonal
    d = pairwise_distance(x)  # zero distances are clamped: no NaN in value or gradient
    assert torch.all(d.diagonal() < 1e-5) and d[0, 4] < 1e-5
    d.sum().backward()
    assert torch.isfinite(x.grad).all()


def _brute_force(features, pids, margin):
    feats, pids = features.tolist(), pids.tolist()
    losses = []
    for a, fa in enumerate(feats):
        d = [math.dist(fa, fb) for fb in feats]
        pos = [d[j] for j in range(len(feats)) if pids[j] == pids[a] and j != a]
        neg = [d[j] for j in range(len(feats)) if pids[j] != pids[a]]
        if not pos or not neg:
            continue
        x = max(pos) - min(neg)
        losses.append(math.log1p(math.exp(x)) if margin is None else max(0.0, x + margin))
    return sum(losses) / len(losses)


@pytest.mark.parametrize("margin", [0.3, 2.0, None])
@pytest.mark.parametrize("normalize", [False, True])
def test_batch_hard_matches_brute_force(margin, normalize):
    torch.manual_seed(3)
    feats = torch.randn(12, 8)
    # pid 9 has a single sample: no positive, so it is no anchor (but still a negative)
    pids = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 3, 9])
    got = batch_hard_triplet_loss(feats, pids, margin=margin, normalize=normalize)
    ref_feats = F.normalize(feats, dim=1) if normalize else feats
    assert got.item() == pytest.approx(_brute_force(ref_feats, pids, margin), rel=1e-4)
    assert TripletLoss(margin, normalize)(feats, pids).item() == pytest.approx(got.item())


def test_mined_distances():
    feats = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 1.0], [0.0, 5.0]])
    pids = torch.tensor([0, 0, 1, 1])
    res = batch_hard_triplet(feats, pids, margin=0.3)
    torch.testing.assert_close(res.d_ap, torch.tensor([3.0, 3.0, 4.0, 4.0]), atol=1e-4, rtol=0)
    d_an = torch.tensor([1.0, math.sqrt(10), 1.0, 5.0])
    torch.testing.assert_close(res.d_an, d_an, atol=1e-4, rtol=0)
    expected = torch.relu(res.d_ap - d_an + 0.3).mean()
    torch.testing.assert_close(res.loss, expected, atol=1e-4, rtol=0)


def test_gradient_flows_only_through_mined_pairs():
    feats = torch.tensor(
        [[0.0, 0.0], [3.0, 0.0], [0.0, 1.0], [0.0, 5.0], [9.0, 9.0]], requires_grad=True
    )
    pids = torch.tensor([0, 0, 1, 1, 1])
    loss = batch_hard_triplet_loss(feats, pids, margin=10.0)
    loss.backward()
    assert torch.isfinite(feats.grad).all()
    assert feats.grad.abs().sum() > 0


@pytest.mark.parametrize("margin", [0.3, None])
def test_single_identity_gives_zero_with_grad(margin):
    feats = torch.randn(4, 8, requires_grad=True)
    loss = batch_hard_triplet_loss(feats, torch.tensor([5, 5, 5, 5]), margin=margin)
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.equal(feats.grad, torch.zeros(4, 8))
    res = batch_hard_triplet(feats.detach(), torch.tensor([5, 5, 5, 5]))
    assert res.d_ap.numel() == 0 and res.d_an.numel() == 0


# --- DMCL: squared soft-margin triplet (Eq. 6) and multi-similarity-mined margin triplet --------


def _brute_soft_margin_squared(x: torch.Tensor, pids: list[int]) -> float:
    """Eq. 6 of DMCL on the hardest positive/negative per anchor, squared distances, loops."""
    total, count = 0.0, 0
    for a in range(len(pids)):
        d = [float(((x[a] - x[j]) ** 2).sum()) for j in range(len(pids))]
        pos = [d[j] for j in range(len(pids)) if j != a and pids[j] == pids[a]]
        neg = [d[j] for j in range(len(pids)) if pids[j] != pids[a]]
        if pos and neg:
            total += math.log1p(math.exp(max(pos) - min(neg)))
            count += 1
    return total / count


def test_soft_margin_squared_matches_eq6_brute_force():
    torch.manual_seed(3)
    x, pids = torch.randn(8, 5) * 0.5, [0, 0, 1, 1, 2, 2, 2, 3]
    got = batch_hard_triplet_loss(x, torch.tensor(pids), margin=None, squared=True)
    assert got.item() == pytest.approx(_brute_soft_margin_squared(x, pids), rel=1e-5)
    plain = batch_hard_triplet_loss(x, torch.tensor(pids), margin=None, squared=False)
    assert plain.item() != pytest.approx(got.item(), rel=1e-3)  # the option changes the loss


def _brute_ms_triplet(x: torch.Tensor, pids: list[int], margin: float, eps: float) -> float:
    """pytorch-metric-learning's MultiSimilarityMiner + TripletMarginLoss, written as loops."""
    n = len(pids)
    xn = F.normalize(x, dim=1)
    s = [[float(xn[i] @ xn[j]) for j in range(n)] for i in range(n)]
    d = [[float((xn[i] - xn[j]).norm()) for j in range(n)] for i in range(n)]
    losses = []
    for a in range(n):
        pos = [j for j in range(n) if j != a and pids[j] == pids[a]]
        neg = [j for j in range(n) if pids[j] != pids[a]]
        if not pos or not neg:
            continue
        hard_neg = [j for j in neg if s[a][j] > min(s[a][p] for p in pos) - eps]
        hard_pos = [j for j in pos if s[a][j] < max(s[a][q] for q in neg) + eps]
        for p in hard_pos:
            for q in hard_neg:
                losses.append(max(0.0, d[a][p] - d[a][q] + margin))
    nonzero = [v for v in losses if v > 0]
    return sum(nonzero) / len(nonzero) if nonzero else 0.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_multi_similarity_triplet_matches_brute_force(seed):
    torch.manual_seed(seed)
    pids = [0, 0, 0, 1, 1, 2, 2, 2, 3, 3]
    x = torch.randn(len(pids), 6)
    got = mined_triplet_loss(x, torch.tensor(pids), margin=0.3, epsilon=0.1)
    assert got.item() == pytest.approx(_brute_ms_triplet(x, pids, 0.3, 0.1), rel=1e-5, abs=1e-7)
    assert MultiSimilarityTripletLoss(0.3, 0.1)(x, torch.tensor(pids)).item() == pytest.approx(
        got.item()
    )


def test_multi_similarity_mining_keeps_only_hard_pairs():
    # anchor 0: positive 1 is close, positive 2 far; negative 3 near the far positive, 4 far away
    x = torch.tensor([[1.0, 0.0], [0.99, 0.14], [0.0, 1.0], [0.1, 1.0], [-1.0, 0.0]])
    pids = torch.tensor([0, 0, 0, 1, 2])
    mined = multi_similarity_pairs(x, pids, epsilon=0.1)
    assert mined.negative[0].tolist() == [False, False, False, True, False]
    assert mined.positive[0].tolist() == [False, False, True, False, False]


def test_mined_triplet_zero_when_well_separated_and_keeps_graph():
    x = torch.tensor([[1.0, 0.0], [1.0, 0.01], [-1.0, 0.0], [-1.0, 0.01]], requires_grad=True)
    loss = mined_triplet_loss(x, torch.tensor([0, 0, 1, 1]))
    assert loss.item() == 0.0
    loss.backward()
    assert x.grad is not None
