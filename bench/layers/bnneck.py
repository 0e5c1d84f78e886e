"""BoT's BNNeck head and its initialisation (Luo et al. 2019, "Bag of Tricks and a Strong Baseline
for Deep Person Re-identification", Sec. 3.3)."""

from __future__ import annotations

import torch
from torch import nn


def weights_init_kaiming(m: nn.Module) -> None:
    """BoT's init: Linear kaiming fan_out, Conv kaiming fan_in, BatchNorm weight 1 bias 0."""
    if isinstance(m, nn.Linear):
        nn.init.kaiming_normal_(m.weight, a=0, mode="fan_out")
        if m.bias is not None:
            nn.init.constant_(m.bias, 0.0)
    elif isinstance(m, nn.Conv1d | nn.Conv2d | nn.Conv3d):
        nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
        if m.bias is not None:
            nn.init.constant_(m.bias, 0.0)
    elif isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine:
        nn.init.constant_(m.weight, 1.0)
        nn.init.constant_(m.bias, 0.0)


def weights_init_classifier(m: nn.Module) -> None:
    """BoT's classifier init: Linear weights normal(0, 0.001), bias 0."""
    if isinstance(m, nn.Linear):
        nn.init.normal_(m.weight, std=0.001)
        if m.bias is not None:
            nn.init.constant_(m.bias, 0.0)


class BNNeck(nn.Module):
    """BoT's BNNeck (Luo et al. 2019, Sec. 3.3): the triplet loss sees the pooled feature, the
    ID loss the BatchNorm1d'd one; BN bias frozen at 0, classifier a bias-free Linear."""

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(in_features)
        self.bn.bias.requires_grad_(False)
        self.classifier = nn.Linear(in_features, num_classes, bias=False)
        weights_init_kaiming(self.bn)
        weights_init_classifier(self.classifier)

    def forward(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, in_features) pooled feature -> (bn_feat, logits (N, num_classes))."""
        bn_feat = self.bn(feat)
        return bn_feat, self.classifier(bn_feat)
