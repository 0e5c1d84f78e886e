"""Positional encodings of token sequences."""

from __future__ import annotations

import math

import torch


def sinusoidal_positions(length: int, width: int) -> torch.Tensor:
    """(length, width) fixed positional encodings (Vaswani et al. 2017, Sec. 3.5):
    PE[p, 2i] = sin(p / 10000^(2i/width)), PE[p, 2i+1] = cos(p / 10000^(2i/width))."""
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    div = torch.exp(torch.arange(0, width, 2, dtype=torch.float32) * (-math.log(10000.0) / width))
    pe = torch.zeros(length, width)
    pe[:, 0::2] = torch.sin(position * div)
    pe[:, 1::2] = torch.cos(position * div)[:, : width // 2]
    return pe
