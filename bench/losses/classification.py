"""Identity-classification losses."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CrossEntropyLabelSmooth(nn.Module):
    """Cross entropy against smoothed targets q = (1 - eps) * onehot + eps / num_classes
    (Szegedy et al. 2016, Sec. 7; BoT Sec. 3.2, Eq. 2). ``epsilon=0`` is plain cross entropy."""

    def __init__(self, num_classes: int, epsilon: float = 0.1) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
        self.num_classes = num_classes
        self.epsilon = epsilon

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """(N, num_classes) logits, (N,) class indices -> mean loss over the batch."""
        if logits.dim() != 2 or logits.size(1) != self.num_classes:
            raise ValueError(
                f"expected logits of shape (N, {self.num_classes}), got {tuple(logits.shape)}"
            )
        log_probs = F.log_softmax(logits, dim=1)
        onehot = torch.zeros_like(log_probs).scatter_(1, targets.long().unsqueeze(1), 1.0)
        q = (1.0 - self.epsilon) * onehot + self.epsilon / self.num_classes
        return (-q * log_probs).sum(dim=1).mean()
