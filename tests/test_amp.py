"""CUDA-only speed-ups are no-ops on the CPU; their CUDA branches checked without a GPU."""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from bench.engine.amp import amp_active, autocast, channels_last, grad_scaler, to_device_images

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def test_amp_only_on_cuda_when_enabled():
    assert amp_active(CUDA, True) and not amp_active(CUDA, False) and not amp_active(CPU, True)
    assert isinstance(autocast(CPU, True), contextlib.nullcontext)
    assert isinstance(autocast(CUDA, False), contextlib.nullcontext)
    assert not grad_scaler(CPU, True).is_enabled()
    with autocast(CPU, True):
        y = nn.Linear(4, 4)(torch.randn(2, 4))
    assert y.dtype == torch.float32  # nothing changed on the CPU


def test_channels_last_only_on_cuda():
    conv = nn.Conv2d(3, 8, 3)
    channels_last(conv, CPU)
    assert not conv.weight.is_contiguous(memory_format=torch.channels_last)
    channels_last(conv, CUDA)  # the conversion itself runs on CPU tensors too
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    x = to_device_images(torch.randn(2, 3, 8, 8), CPU)
    assert x.is_contiguous() and x.device.type == "cpu"
