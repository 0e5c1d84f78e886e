"""Label-smoothed cross entropy and batch-hard triplet loss against hand-written references."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from bench.losses import (
    CrossEntropyLabelSmooth,
    TripletLoss,
    batch_hard_triplet,
    batch_hard_triplet_loss,
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
