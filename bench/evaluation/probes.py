"""NTSSL's probing protocols on frozen tracklet embeddings: polyp size and histology (README,
"Size Estimation" and "Histology Classification"; "Splits").

Both are binary tasks solved by the same small MLP on one frozen embedding per tracklet:

* size: diminutive (``<= 5`` mm, class 0) vs larger (class 1), the released ``SizeDataModule``
  mapping ``1 if size > 5.0 else 0``; reported as identity-weighted macro F1;
* histology: adenoma (1) vs not (0), the released ``rspp_ad_vs_nonad_mapping`` (``ad_vs_hp``);
  reported as accuracy.

Split: 70/30 by polyp (every tracklet of a polyp on one side), stratified on the label: for each
class the polyps of that class, in ascending pid order, are permuted by
``numpy.random.default_rng(seed)`` and the first ``round(0.7 n_c)`` go to training, clamped to
``[1, n_c - 1]`` when ``n_c >= 2`` so both sides see the class (a class with one polyp trains).
The released code ships its split as files; this is the harness's seeded equivalent.

Probe: the released ``MLPClassifier`` with ``cls_hidden_dim=256``: ``LayerNorm(D) -> Linear(D,
256) -> GELU -> Dropout(0.1) -> Linear(256, 1)``, ``BCEWithLogitsLoss`` (no ``pos_weight``),
AdamW (weight decay 0), OneCycle (``pct_start=0.1``, cosine), shuffled batches of 64, as the README
commands; the model after the last epoch is evaluated, a logit ``> 0`` predicting class 1. The
released code trains 20 epochs at ``1e-4`` (size) / ``1e-5`` (histology) over many 8-frame
fragments per tracklet; the harness has one frozen embedding per tracklet (a few hundred rows),
where those settings take some 40 steps and underfit (macro F1 0.67 on a nearly separable
40-polyp set), so the harness's
choice is 100 epochs at ``1e-3`` for both tasks (:class:`ProbeConfig` overrides any of these; the
same probe for every method). Seeded (``seed`` drives the split, the initialisation, the shuffling
and dropout; the global torch RNG is left as it was), CPU, deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from bench.errors import BenchError

__all__ = [
    "HISTOLOGY_CLASSES",
    "PROBE_CONFIG",
    "ProbeConfig",
    "histology_classes",
    "histology_probe",
    "identity_weighted_macro_f1",
    "majority_vote_accuracy",
    "probe_mlp",
    "size_classes",
    "size_probe",
    "split_by_polyp",
    "train_probe",
]

#: adenoma (1) vs not (0), lower-cased; the released ``rspp_ad_vs_nonad_mapping`` (SUN, REAL-Colon,
#: PolypSize, PolypsSet names). Names it marks ``-1`` (cancer, no polyp, other, unknown) are
#: absent here: such tracklets are left out of the histology task.
HISTOLOGY_CLASSES: dict[str, int] = {
    "low-grade adenoma": 1,
    "high-grade adenoma": 1,
    "traditional serrated adenoma": 0,
    "sessile serrated lesion": 0,
    "hyperplastic polyp": 0,
    "ad": 1,
    "ssl": 0,
    "tsa": 0,
    "hp": 0,
    "tubular adenoma": 1,
    "tubular adenoma with high-grade dysplasia (hgd)": 1,
    "tubulovillous adenoma": 1,
    "sessile serrated lesion (ssl)": 0,
    "inflammatory polyp": 0,
    "adenomatous": 1,
    "hyperplastic": 0,
}

DIMINUTIVE_MM = 5.0


@dataclass(frozen=True)
class ProbeConfig:
    """The probe's architecture and optimisation (the harness's defaults, see the module doc)."""

    hidden_dim: int = 256
    dropout: float = 0.1
    epochs: int = 100
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    pct_start: float = 0.1
    train_fraction: float = 0.7


PROBE_CONFIG = ProbeConfig()


def size_classes(sizes_mm: Sequence[float]) -> np.ndarray:
    """0 for diminutive (``<= 5`` mm), 1 for larger, per tracklet."""
    s = np.asarray(sizes_mm, dtype=np.float64)
    if s.ndim != 1 or not np.isfinite(s).all() or (s < 0).any():
        raise BenchError("sizes must be a 1-D sequence of finite, non-negative millimetres")
    return (s > DIMINUTIVE_MM).astype(np.int64)


def histology_classes(histology: Sequence[str]) -> np.ndarray:
    """1 adenoma, 0 not, -1 (left out) for a name :data:`HISTOLOGY_CLASSES` does not class."""
    return np.array(
        [HISTOLOGY_CLASSES.get(str(h).strip().lower(), -1) for h in histology], np.int64
    )


def _check(embeddings: torch.Tensor, pids: Sequence[int], labels: Sequence[int]):
    if not isinstance(embeddings, torch.Tensor) or embeddings.ndim != 2:
        raise BenchError("embeddings must be a 2-D (N, D) torch.Tensor")
    if not embeddings.is_floating_point() or not bool(torch.isfinite(embeddings).all()):
        raise BenchError("embeddings must be finite floating point values")
    p, y = np.asarray(pids), np.asarray(labels)
    n = embeddings.shape[0]
    if p.shape != (n,) or y.shape != (n,):
        raise BenchError(
            f"pids and labels need one entry per tracklet ({n}), got {p.shape}, {y.shape}"
        )
    if p.dtype.kind not in "iu" or y.dtype.kind not in "iu" or not np.isin(y, (0, 1)).all():
        raise BenchError("pids must be integers and labels binary classes 0/1")
    for pid in np.unique(p):
        if len(np.unique(y[p == pid])) > 1:
            raise BenchError(f"polyp {pid} has tracklets of both classes; a polyp has one label")
    return p.astype(np.int64), y.astype(np.int64)


def split_by_polyp(
    pids: Sequence[int], labels: Sequence[int], *, seed: int, train_fraction: float = 0.7
) -> tuple[np.ndarray, np.ndarray]:
    """Boolean (train, test) masks over tracklets: the seeded polyp-level stratified split above."""
    p, y = np.asarray(pids, dtype=np.int64), np.asarray(labels, dtype=np.int64)
    rng = np.random.default_rng(seed)
    train_polyps: list[int] = []
    for c in np.unique(y):
        polyps = np.unique(p[y == c])
        polyps = polyps[rng.permutation(len(polyps))]
        k = round(train_fraction * len(polyps))
        k = min(max(k, 1), len(polyps) - 1) if len(polyps) >= 2 else len(polyps)
        train_polyps.extend(polyps[:k].tolist())
    train = np.isin(p, train_polyps)
    if train.all() or not train.any():
        raise BenchError("too few polyps to split into training and test sides")
    return train, ~train


def probe_mlp(in_dim: int, config: ProbeConfig) -> nn.Module:
    """The released ``MLPClassifier``: LayerNorm, Linear, GELU, Dropout, Linear to one logit."""
    return nn.Sequential(
        nn.LayerNorm(in_dim),
        nn.Linear(in_dim, config.hidden_dim),
        nn.GELU(),
        nn.Dropout(config.dropout),
        nn.Linear(config.hidden_dim, 1),
    )


def train_probe(x: torch.Tensor, y: torch.Tensor, config: ProbeConfig, *, seed: int) -> nn.Module:
    """The probe trained on ``x`` (frozen, ``(n, D)``) and ``y`` (0/1); returned in eval mode."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = probe_mlp(x.shape[1], config)
        steps = math.ceil(len(x) / config.batch_size)
        opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt,
            max_lr=config.lr,
            total_steps=config.epochs * steps,
            pct_start=config.pct_start,
            anneal_strategy="cos",
        )
        loss_fn = nn.BCEWithLogitsLoss()
        model.train()
        for _ in range(config.epochs):
            for idx in torch.randperm(len(x)).split(config.batch_size):
                opt.zero_grad()
                loss_fn(model(x[idx]).squeeze(-1), y[idx].float()).backward()
                opt.step()
                sched.step()
    return model.eval()


def identity_weighted_macro_f1(
    pred: Sequence[int], target: Sequence[int], pids: Sequence[int]
) -> float:
    """Macro F1 over classes {0, 1}, each tracklet of polyp ``p`` weighted ``1 / n_p``.

    ``n_p`` is the number of evaluated tracklets of ``p``, so every polyp weighs 1 in total.
    With ``TP_c = sum_t w_t [y_t = c][yhat_t = c]``, ``FP_c = sum_t w_t [y_t != c][yhat_t = c]``,
    ``FN_c = sum_t w_t [y_t = c][yhat_t != c]``: ``F1_c = 2 TP_c / (2 TP_c + FP_c + FN_c)`` (0 when
    the denominator is 0), result ``(F1_0 + F1_1) / 2``; scikit-learn's ``f1_score(labels=[0, 1],
    average="macro", sample_weight=w, zero_division=0)``.
    """
    yhat, y, p = (np.asarray(a, dtype=np.int64) for a in (pred, target, pids))
    _, inverse, counts = np.unique(p, return_inverse=True, return_counts=True)
    w = 1.0 / counts[inverse]
    f1 = []
    for c in (0, 1):
        tp = w[(y == c) & (yhat == c)].sum()
        fp = w[(y != c) & (yhat == c)].sum()
        fn = w[(y == c) & (yhat != c)].sum()
        den = 2 * tp + fp + fn
        f1.append(2 * tp / den if den > 0 else 0.0)
    return float(np.mean(f1))


def majority_vote_accuracy(
    pred: Sequence[int], target: Sequence[int], pids: Sequence[int]
) -> float:
    """Accuracy over polyps, each predicted by the majority of its tracklets' predictions (a tie
    goes to class 0, as ``torch.mode``): the released ``accuracy_identity``."""
    yhat, y, p = (np.asarray(a, dtype=np.int64) for a in (pred, target, pids))
    correct = [int(yhat[p == pid].mean() > 0.5) == y[p == pid][0] for pid in np.unique(p)]
    return float(np.mean(correct))


def _probe(
    embeddings: torch.Tensor,
    pids: Sequence[int],
    labels: Sequence[int],
    config: ProbeConfig,
    seed: int,
) -> dict[str, float | int]:
    p, y = _check(embeddings, pids, labels)
    train, test = split_by_polyp(p, y, seed=seed, train_fraction=config.train_fraction)
    x = embeddings.detach().cpu().float()
    model = train_probe(x[train], torch.as_tensor(y[train]), config, seed=seed)
    with torch.no_grad():
        pred = (model(x[test]).squeeze(-1) > 0).long().numpy()
    return {
        "macro_F1": identity_weighted_macro_f1(pred, y[test], p[test]),
        "accuracy": float(np.mean(pred == y[test])),
        "accuracy_identity": majority_vote_accuracy(pred, y[test], p[test]),
        "num_train": int(train.sum()),
        "num_test": int(test.sum()),
        "num_train_polyps": len(np.unique(p[train])),
        "num_test_polyps": len(np.unique(p[test])),
    }


def size_probe(
    embeddings: torch.Tensor,
    pids: Sequence[int],
    sizes_mm: Sequence[float],
    *,
    seed: int = 42,
    config: ProbeConfig = PROBE_CONFIG,
) -> dict[str, float | int]:
    """Size probe (diminutive vs larger); the paper's metric is ``"macro_F1"`` (identity-weighted).

    Also returns tracklet ``"accuracy"``, polyp majority-vote ``"accuracy_identity"`` and counts.
    """
    return _probe(embeddings, pids, size_classes(sizes_mm), config, seed)


def histology_probe(
    embeddings: torch.Tensor,
    pids: Sequence[int],
    histology: Sequence[str | int],
    *,
    seed: int = 42,
    config: ProbeConfig = PROBE_CONFIG,
) -> dict[str, float | int]:
    """Histology probe (adenoma vs not); the paper's metric is ``"accuracy"`` over test tracklets.

    ``histology`` holds names (classed by :data:`HISTOLOGY_CLASSES`; unclassed ones are left out)
    or ints 0/1. Also returns ``"macro_F1"``, ``"accuracy_identity"`` and counts.
    """
    h = list(histology)
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in h):
        y = np.asarray(h, dtype=np.int64)
    else:
        y = histology_classes([str(v) for v in h])
    keep = y >= 0
    if not keep.any():
        raise BenchError("no tracklet has a histology classed as adenoma or non-adenoma")
    p = np.asarray(pids)
    if p.shape != y.shape or not isinstance(embeddings, torch.Tensor) or len(embeddings) != len(y):
        raise BenchError(
            f"pids and histology need one entry per tracklet, got {p.shape}, {y.shape}"
        )
    return _probe(embeddings[torch.as_tensor(keep)], p[keep], y[keep], config, seed)
