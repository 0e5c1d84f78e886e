"""Mixed precision and channels-last on CUDA; no-ops on the CPU (so CPU runs stay exact).

with autocast(device, enabled=config["train.amp"]):
    loss = ...
scaler.scale(loss).backward(); scaler.step(optimizer); scaler.update()
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn


def amp_active(device: torch.device, enabled: bool = True) -> bool:
    """Mixed precision runs only where asked for and on CUDA."""
    return bool(enabled) and device.type == "cuda"


def autocast(device: torch.device, enabled: bool = True) -> contextlib.AbstractContextManager:
    """float16 autocast on CUDA when ``enabled``; a null context otherwise."""
    if not amp_active(device, enabled):
        return contextlib.nullcontext()
    return torch.autocast(device_type="cuda", dtype=torch.float16)


def grad_scaler(device: torch.device, enabled: bool = True) -> torch.amp.GradScaler:
    """A loss scaler for float16 training; disabled (a pass-through) off CUDA."""
    return torch.amp.GradScaler("cuda", enabled=amp_active(device, enabled))


def channels_last(module: nn.Module, device: torch.device) -> nn.Module:
    """Convert a CNN to channels-last memory format on CUDA (faster convolutions with AMP)."""
    if device.type == "cuda":
        module.to(memory_format=torch.channels_last)
    return module


def to_device_images(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Move an image batch to ``device``, channels-last on CUDA."""
    if device.type == "cuda":
        return images.to(device, non_blocking=True, memory_format=torch.channels_last)
    return images.to(device)
