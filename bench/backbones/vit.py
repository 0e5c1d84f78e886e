"""Vision Transformers (Dosovitskiy et al. 2021) built on timm's ``VisionTransformer``, for ReID.

* any input size (e.g. 256x128): the patch grid follows the size given, and weights trained at
  another size get their position embeddings resampled (bicubic, as timm and TransReID do);
* overlapping patches: ``stride < patch`` slides the patch projection, TransReID's
  "overlapping patch embedding" (He et al. 2021, Sec. 3.2), grid ``(H - p) // s + 1``;
* ``pretrained``: ``"none"`` (random init, timm's), ``"imagenet"`` (timm's ViT-B/16 ImageNet
  weights, looked up in the local Hugging Face cache only) or a local ``.safetensors`` /
  ``.pth`` file of a timm-layout state dict. Nothing here downloads.

:func:`vit_tokens` runs the encoder with some patches replaced by a mask token before the
position embeddings (BEiT's masked image modelling input, Bao et al. 2022, Sec. 2.3).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from timm.layers import PatchEmbed, resample_abs_pos_embed
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from bench.errors import BenchError, WeightsNotFoundError

#: The Hugging Face repositories whose ``model.safetensors`` ``pretrained="imagenet"`` looks for,
#: in order: the original ImageNet-21k -> 1k ViT-B/16 (TransReID's ``jx_vit_base_p16_224``), then
#: timm's default ViT-B/16 weights.
IMAGENET_REPOS = (
    "timm/vit_base_patch16_224.orig_in21k_ft_in1k",
    "timm/vit_base_patch16_224.augreg2_in21k_ft_in1k",
)
_HINT = (
    "pass --set model.pretrained=/path/to/weights.safetensors (a timm ViT state dict) to use a "
    "local file, or --set model.pretrained=none for random init"
)


def patch_grid(size: tuple[int, int], patch: int, stride: int) -> tuple[int, int]:
    """Rows and columns of patches of an ``(H, W)`` image: ``(H - patch) // stride + 1`` each."""
    h, w = size
    if patch < 1 or stride < 1 or stride > patch:
        raise BenchError(f"ViT patch {patch} and stride {stride}: need 1 <= stride <= patch")
    if h < patch or w < patch:
        raise BenchError(f"ViT input {h}x{w} is smaller than one {patch}x{patch} patch")
    return (h - patch) // stride + 1, (w - patch) // stride + 1


class OverlapPatchEmbed(PatchEmbed):
    """timm's ``PatchEmbed`` with a convolution of kernel ``patch`` and stride ``stride``."""

    def __init__(self, *, stride: int, **kwargs) -> None:
        super().__init__(**kwargs)
        patch = self.patch_size[0]
        assert self.img_size is not None
        self.grid_size = patch_grid(tuple(self.img_size), patch, stride)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        conv = self.proj
        self.proj = nn.Conv2d(
            conv.in_channels, conv.out_channels, patch, stride=stride, bias=conv.bias is not None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != tuple(self.img_size):
            raise ValueError(f"expected {tuple(self.img_size)} images, got {tuple(x.shape[-2:])}")
        x = self.proj(x).flatten(2).transpose(1, 2)  # (N, L, D)
        return self.norm(x)


def build_vit(
    img_size: tuple[int, int],
    *,
    patch: int = 16,
    stride: int = 16,
    embed_dim: int = 768,
    depth: int = 12,
    heads: int = 12,
    mlp_ratio: float = 4.0,
    drop_path: float = 0.0,
    pretrained: str = "none",
) -> VisionTransformer:
    """A timm ``VisionTransformer`` (pre-norm blocks, [CLS] token, learned positions, no head)
    for ``img_size = (H, W)`` images, weights from :func:`resolve_vit_weights` if any."""
    if embed_dim % heads:
        raise BenchError(f"ViT embed_dim {embed_dim} is not divisible by heads {heads}")
    patch_grid(img_size, patch, stride)
    vit = VisionTransformer(
        img_size=img_size,
        patch_size=patch,
        num_classes=0,
        embed_dim=embed_dim,
        depth=depth,
        num_heads=heads,
        mlp_ratio=mlp_ratio,
        drop_path_rate=drop_path,
        embed_layer=lambda **kw: OverlapPatchEmbed(stride=stride, **kw),
    )
    path = resolve_vit_weights(pretrained)
    if path is not None:
        load_vit_weights(vit, path)
    return vit


def resolve_vit_weights(pretrained: str) -> Path | None:
    """``model.pretrained`` -> a local file: ``"none"`` -> None, ``"imagenet"`` -> the first of
    :data:`IMAGENET_REPOS` in the Hugging Face cache, else the path given. Never downloads."""
    key = str(pretrained).strip()
    if key.lower() == "none":
        return None
    if key.lower() == "imagenet":
        from huggingface_hub import try_to_load_from_cache

        for repo in IMAGENET_REPOS:
            found = try_to_load_from_cache(repo, "model.safetensors")
            if isinstance(found, str):
                return Path(found)
        raise WeightsNotFoundError(
            f"ImageNet ViT weights not found in the Hugging Face cache (looked for "
            f"{', '.join(IMAGENET_REPOS)}; nothing is downloaded); {_HINT}"
        )
    path = Path(key).expanduser()
    if not path.is_file():
        raise WeightsNotFoundError(f"pretrained weights file {path} does not exist; {_HINT}")
    return path


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from ``.safetensors`` or a torch file (``weights_only``: no code runs)."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt, truncated, not a checkpoint
        raise BenchError(f"cannot read weights file {path}: {e}") from e
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise BenchError(f"weights file {path} does not hold a state dict of tensors")
    return state


def load_vit_weights(vit: VisionTransformer, path: Path) -> None:
    """Load a timm-layout ViT state dict (``head.*`` dropped), resampling the position embeddings
    from the checkpoint's square grid to ``vit``'s; every other tensor must fit exactly."""
    state = {k: v for k, v in read_state_dict(path).items() if not k.startswith("head.")}
    own = vit.state_dict()
    if "pos_embed" in state and state["pos_embed"].shape != own["pos_embed"].shape:
        old = state["pos_embed"].shape[1] - vit.num_prefix_tokens
        side = math.isqrt(old)
        if side * side != old:
            raise BenchError(
                f"weights file {path}: pos_embed of {old} patches is not a square grid"
            )
        state["pos_embed"] = resample_abs_pos_embed(
            state["pos_embed"],
            new_size=list(vit.patch_embed.grid_size),
            old_size=[side, side],
            num_prefix_tokens=vit.num_prefix_tokens,
        )
    missing = [k for k in own if k not in state]
    extra = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and state[k].shape != own[k].shape]
    if missing or extra or wrong:
        what = (
            f"missing {missing[0]}"
            if missing
            else f"unexpected key {extra[0]}"
            if extra
            else f"{wrong[0]} has shape {tuple(state[wrong[0]].shape)}, "
            f"expected {tuple(own[wrong[0]].shape)}"
        )
        raise BenchError(f"weights file {path} does not fit this ViT: {what}")
    vit.load_state_dict(state, strict=True)


def vit_tokens(
    vit: VisionTransformer,
    images: torch.Tensor,
    mask: torch.Tensor | None = None,
    mask_token: torch.Tensor | None = None,
) -> torch.Tensor:
    """``(N, 3, H, W)`` -> ``(N, 1 + L, D)`` tokens after the final norm, [CLS] first.

    ``mask`` ``(N, L)`` bool: those patch embeddings are replaced by ``mask_token`` ``(D,)``
    before the position embeddings are added (BEiT, Sec. 2.3). Without a mask this equals
    ``vit.forward_features(images)``.
    """
    x = vit.patch_embed(images)
    if mask is not None:
        if mask_token is None:
            raise ValueError("a patch mask needs a mask_token")
        x = torch.where(mask.unsqueeze(-1), mask_token.to(x.dtype), x)
    x = vit.norm_pre(vit.patch_drop(vit._pos_embed(x)))
    return vit.norm(vit.blocks(x))
