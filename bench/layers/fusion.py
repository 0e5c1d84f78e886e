"""Self-attention fusion of token sequences (Vaswani et al. 2017), as multimodal ReID methods use
it: DMCL fuses ``[I, T_1..T_n]`` (image token, text tokens) and reads the output at position 0.

:class:`FusionEncoder` adds fixed sinusoidal positions, then runs ``depth`` encoder layers
(post-norm as the original Transformer and DMCL's released code, or pre-norm), with optional
key-padding masks, bias-free projections and weight-free LayerNorms. ``first_only=True`` makes
the last layer compute position 0 only: the same output at that position, with less work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

import torch
import torch.nn.functional as F
from torch import nn

from bench.errors import BenchError
from bench.layers.positions import sinusoidal_positions

if TYPE_CHECKING:
    from typing_extensions import Unpack

ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}


class FusionLayerOptions(TypedDict, total=False):
    """The keyword options of :class:`FusionLayer`, passed by :class:`FusionEncoder` to each."""

    dropout: float
    norm_first: bool
    bias: bool
    norm_affine: bool
    activation: str


class FusionLayer(nn.Module):
    """One Transformer encoder layer: multi-head self-attention and a 2-layer FFN, each with a
    residual connection and LayerNorm (after it: post-norm; before it: pre-norm)."""

    def __init__(
        self,
        width: int,
        heads: int,
        ffn: int,
        dropout: float = 0.1,
        norm_first: bool = False,
        bias: bool = True,
        norm_affine: bool = True,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        if width % heads:
            raise BenchError(f"fusion width {width} is not divisible by its {heads} heads")
        if activation not in ACTIVATIONS:
            raise BenchError(
                f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}"
            )
        self.heads, self.norm_first, self.dropout_p = heads, norm_first, dropout
        self.qkv = nn.Linear(width, 3 * width, bias=bias)  # the paper's "three linear layers"
        self.proj = nn.Linear(width, width, bias=bias)
        self.fc1 = nn.Linear(width, ffn, bias=bias)
        self.fc2 = nn.Linear(ffn, width, bias=bias)
        self.norm1 = nn.LayerNorm(width, elementwise_affine=norm_affine, bias=norm_affine and bias)
        self.norm2 = nn.LayerNorm(width, elementwise_affine=norm_affine, bias=norm_affine and bias)
        self.drop = nn.Dropout(dropout)
        self.act = ACTIVATIONS[activation]

    def _attend(self, x: torch.Tensor, mask: torch.Tensor | None, first_only: bool) -> torch.Tensor:
        b, n, d = x.shape
        h = self.heads
        q, k, v = self.qkv(x).split(d, dim=-1)
        if first_only:
            q = q[:, :1]
        q = q.reshape(b, q.size(1), h, d // h).transpose(1, 2)
        k = k.reshape(b, n, h, d // h).transpose(1, 2)
        v = v.reshape(b, n, h, d // h).transpose(1, 2)
        attn_mask = None if mask is None else mask[:, None, None, :]  # True = attend
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, dropout_p=self.dropout_p if self.training else 0.0
        )
        return self.proj(out.transpose(1, 2).reshape(b, q.size(2), d))

    def _ffn(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.drop(self.act(self.fc1(x))))

    def final_norm(self) -> nn.Module:
        """What a stack of these layers ends with: a LayerNorm like theirs when pre-norm (the
        residual stream is not normalised otherwise), nothing when post-norm."""
        if not self.norm_first:
            return nn.Identity()
        norm = self.norm1
        return nn.LayerNorm(
            norm.normalized_shape,
            elementwise_affine=norm.elementwise_affine,
            bias=norm.bias is not None,
        )

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None, first_only: bool = False
    ) -> torch.Tensor:
        """(B, n, width) -> (B, n, width), or (B, 1, width) for position 0 with ``first_only``.
        ``mask`` (B, n) is True on tokens that may be attended to."""
        residual = x[:, :1] if first_only else x
        if self.norm_first:
            x = residual + self.drop(self._attend(self.norm1(x), mask, first_only))
            return x + self.drop(self._ffn(self.norm2(x)))
        x = self.norm1(residual + self.drop(self._attend(x, mask, first_only)))
        return self.norm2(x + self.drop(self._ffn(x)))


class FusionEncoder(nn.Module):
    """Sinusoidal positions + ``depth`` :class:`FusionLayer` s (+ a final LayerNorm when
    pre-norm), each built with ``layer_options``. ``forward(tokens, mask)`` returns every
    position, or position 0 only."""

    def __init__(
        self,
        width: int,
        depth: int,
        heads: int,
        ffn: int,
        max_length: int = 512,
        **layer_options: Unpack[FusionLayerOptions],
    ) -> None:
        super().__init__()
        if depth < 1:
            raise BenchError(f"the fusion encoder needs at least one layer, got {depth}")
        self.width, self.max_length = width, max_length
        self.register_buffer("positions", sinusoidal_positions(max_length, width), persistent=False)
        self.layers = nn.ModuleList(
            FusionLayer(width, heads, ffn, **layer_options) for _ in range(depth)
        )
        self.norm = self.layers[0].final_norm()

    def forward(
        self, tokens: torch.Tensor, mask: torch.Tensor | None = None, first_only: bool = False
    ) -> torch.Tensor:
        """``tokens`` (B, n, width), ``mask`` (B, n) True on real tokens (None: all) ->
        (B, n, width), or (B, width) at position 0 when ``first_only``."""
        n = tokens.size(1)
        if n > self.max_length:
            raise BenchError(f"sequence of {n} tokens exceeds the fusion's {self.max_length}")
        x = tokens + self.positions[:n].to(tokens.dtype)
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x, mask, first_only=first_only and i == last)
        x = self.norm(x)
        return x[:, 0] if first_only else x
