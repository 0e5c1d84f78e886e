"""The ViT block (bench.backbones.vit) and the vit-baseline method."""

from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import save_file

from bench.backbones.vit import build_vit, patch_grid, vit_tokens
from bench.engine.training import warmup_cosine_factor
from bench.errors import BenchError, WeightsNotFoundError


def small_vit(size=(64, 32), stride=8, **kw):
    return build_vit(size, patch=8, stride=stride, embed_dim=32, depth=2, heads=4, **kw)


def test_patch_grid_is_transreid_overlap_formula():
    assert patch_grid((256, 128), 16, 16) == (16, 8)
    assert patch_grid((256, 128), 16, 12) == (21, 10)  # TransReID's overlapping patches
    with pytest.raises(BenchError, match="stride"):
        patch_grid((256, 128), 16, 17)


def test_any_input_size_and_overlapping_patches():
    vit = small_vit(stride=6)
    assert vit.patch_embed.grid_size == (10, 5)
    assert vit.pos_embed.shape == (1, 1 + 50, 32)
    out = vit_tokens(vit.eval(), torch.randn(2, 3, 64, 32))
    assert out.shape == (2, 51, 32)


def test_tokens_equal_timm_forward_features_and_mask_changes_only_via_mask_token():
    torch.manual_seed(0)
    vit = small_vit().eval()
    x = torch.randn(2, 3, 64, 32)
    assert torch.allclose(vit_tokens(vit, x), vit.forward_features(x))
    mask = torch.zeros(2, 32, dtype=torch.bool)
    mask[0, 5] = True
    token = torch.randn(32)
    masked = vit_tokens(vit, x, mask, token)
    assert torch.allclose(masked[1], vit.forward_features(x)[1], atol=1e-6)
    assert not torch.allclose(masked[0], vit.forward_features(x)[0], atol=1e-4)
    # masking = the patch embedding replaced by the token before the position embedding
    emb = vit.patch_embed(x)
    emb[0, 5] = token
    ref = vit.norm(vit.blocks(vit.norm_pre(vit._pos_embed(emb))))
    assert torch.allclose(masked, ref, atol=1e-6)


def test_local_weights_load_with_resampled_positions(tmp_path):
    torch.manual_seed(0)
    src = small_vit(size=(32, 32))  # a 4x4 grid, as a square ImageNet checkpoint has
    path = tmp_path / "vit.safetensors"
    save_file({**src.state_dict(), "head.weight": torch.zeros(3, 32)}, str(path))
    dst = small_vit(size=(64, 32), pretrained=str(path))  # an 8x4 grid
    assert torch.equal(dst.blocks[1].mlp.fc1.weight, src.blocks[1].mlp.fc1.weight)
    assert torch.equal(dst.pos_embed[:, 0], src.pos_embed[:, 0])  # the [CLS] position is kept
    assert dst.pos_embed.shape == (1, 33, 32)


def test_weights_that_do_not_fit_or_do_not_exist_are_one_clear_error(tmp_path):
    path = tmp_path / "wide.safetensors"
    save_file(
        build_vit((32, 32), patch=8, stride=8, embed_dim=64, depth=2, heads=4).state_dict(),
        str(path),
    )
    with pytest.raises(BenchError, match=r"does not fit this ViT: .*shape"):
        small_vit(pretrained=str(path))
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        small_vit(pretrained=str(tmp_path / "nothing.pth"))
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(BenchError, match="cannot read weights file"):
        small_vit(pretrained=str(bad))


def test_warmup_cosine_factor():
    assert warmup_cosine_factor(0, 5, 120, 0.01, 0.002) == pytest.approx(0.01)
    assert warmup_cosine_factor(5, 5, 120, 0.01, 0.002) == pytest.approx(1.0)
    mid = 5 + (120 - 5) / 2
    assert warmup_cosine_factor(mid, 5, 120, 0.01, 0.002) == pytest.approx((1 + 0.002) / 2)
    assert warmup_cosine_factor(120, 5, 120, 0.01, 0.002) == pytest.approx(0.002)
    assert warmup_cosine_factor(3, 0, 10, 0.01, 0.0) == pytest.approx(
        0.5 * (1 + math.cos(math.pi * 0.3))
    )


def test_vit_baseline_trains_and_ranks_end_to_end(tmp_path, monkeypatch):
    from bench.engine.runner import RunRequest, run

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    sets = [
        "synthetic.identities=6",
        "train.epochs=2",
        "model.embed_dim=32",
        "model.depth=1",
        "sampler.p=4",
        "sampler.k=2",
    ]
    request = RunRequest(
        method="vit-baseline",
        dataset="synthetic-person",
        preset="quick",
        sets=sets,
        results_dir=tmp_path / "results",
        progress=False,
    )
    (record,) = run(request)
    assert 0.0 <= record["metrics"]["mAP"] <= 1.0
    assert record["config"]["model.stride"] == 8
    assert record["config"]["input.mean"] == [0.5, 0.5, 0.5]
