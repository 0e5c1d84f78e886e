"""ResNet trunk shapes, torchvision key compatibility, local-only weight resolution, BNNeck."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from bench.backbones.resnet import (
    ResNetBackbone,
    build_resnet,
    load_backbone_weights,
    resolve_imagenet_weights,
)
from bench.errors import BenchError, WeightsNotFoundError
from bench.layers.bnneck import BNNeck


@pytest.fixture
def empty_torch_home(tmp_path, monkeypatch):
    """An empty TORCH_HOME, with no hub dir pinned by torch.hub.set_dir."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("TORCH_HUB", raising=False)
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    return tmp_path / "torch"


def _torchvision_trunk(depth: int) -> nn.Module:
    net = getattr(torchvision.models, f"resnet{depth}")(weights=None)
    return nn.Sequential(*list(net.children())[:-2])  # drop avgpool, fc


@pytest.mark.parametrize(("last_stride", "fmap"), [(1, (4, 2)), (2, (2, 1))])
def test_feature_map_shape_and_last_stride(last_stride, fmap):
    model = ResNetBackbone(depth=18, base_width=16, last_stride=last_stride)
    out = model(torch.randn(2, 3, 64, 32))
    assert model.out_channels == 128
    assert out.shape == (2, 128, *fmap)


def test_bottleneck_out_channels():
    assert ResNetBackbone(50, base_width=16).out_channels == 512
    assert ResNetBackbone(50, base_width=8)(torch.randn(1, 3, 64, 32)).shape == (1, 256, 4, 2)


@pytest.mark.parametrize("depth", [18, 50])
def test_state_dict_matches_torchvision(depth):
    ours = ResNetBackbone(depth, base_width=64).state_dict()
    ref = getattr(torchvision.models, f"resnet{depth}")(weights=None).state_dict()
    ref = {k: v for k, v in ref.items() if not k.startswith("fc.")}
    assert list(ours) == list(ref)
    assert all(ours[k].shape == ref[k].shape for k in ref)
    if depth == 50:
        assert ResNetBackbone(50).out_channels == 2048


def test_init_is_deterministic_and_kaiming():
    torch.manual_seed(0)
    a = ResNetBackbone(18, base_width=16).state_dict()
    torch.manual_seed(0)
    b = ResNetBackbone(18, base_width=16).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    w = a["layer3.0.conv1.weight"]  # fan_out = 64 * 3 * 3 -> std sqrt(2 / 576)
    assert w.std().item() == pytest.approx((2 / 576) ** 0.5, rel=0.1)
    assert torch.equal(a["bn1.weight"], torch.ones(16))


def test_bad_arguments():
    with pytest.raises(BenchError, match="depth"):
        ResNetBackbone(depth=152)
    with pytest.raises(BenchError, match="last_stride"):
        ResNetBackbone(depth=18, last_stride=3)


@pytest.mark.parametrize("last_stride", [1, 2])
def test_load_weights_round_trip(tmp_path, last_stride):
    torch.manual_seed(1)
    ref = torchvision.models.resnet18(weights=None)
    for m in ref.modules():  # non-trivial BN statistics, so eval-mode outputs test them too
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    path = tmp_path / "r18.pth"
    torch.save(ref.state_dict(), path)
    model = build_resnet(18, last_stride=last_stride, pretrained=str(path)).eval()
    trunk = nn.Sequential(*list(ref.children())[:-2]).eval()
    if last_stride == 1:  # same weights, different stride: compare with a stride-1 trunk
        trunk[-1][0].conv1.stride = (1, 1)
        trunk[-1][0].downsample[0].stride = (1, 1)
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), trunk(x))


def test_load_weights_mismatch_names_file_and_key(tmp_path):
    path = tmp_path / "r34.pth"
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), path)
    with pytest.raises(BenchError, match=r"r34\.pth.*unexpected key layer1\.2\.conv1\.weight"):
        load_backbone_weights(ResNetBackbone(18), path)
    with pytest.raises(BenchError, match=r"r34\.pth.*layer1\.0\.conv1\.weight has shape"):
        load_backbone_weights(ResNetBackbone(50), path)
    state = torchvision.models.resnet18(weights=None).state_dict()
    del state["layer4.1.bn2.running_var"]
    torch.save(state, path)
    with pytest.raises(BenchError, match=r"missing layer4\.1\.bn2\.running_var"):
        load_backbone_weights(ResNetBackbone(18), path)


def test_load_weights_needs_width_64_and_a_checkpoint(tmp_path):
    path = tmp_path / "r18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    with pytest.raises(BenchError, match="base_width"):
        load_backbone_weights(ResNetBackbone(18, base_width=16), path)
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(BenchError, match=r"bad\.pth"):
        load_backbone_weights(ResNetBackbone(18), bad)


def test_resolve_none_and_path(tmp_path):
    assert resolve_imagenet_weights(50, "none") is None
    path = tmp_path / "w.pth"
    path.write_bytes(b"")
    assert resolve_imagenet_weights(50, str(path)) == path


def test_resolve_imagenet_missing_says_what_and_where(empty_torch_home):
    with pytest.raises(WeightsNotFoundError) as exc:
        resolve_imagenet_weights(50, "imagenet")
    msg = str(exc.value)
    assert "resnet50-0676ba61.pth" in msg and "resnet50-11ad3fa6.pth" in msg
    assert str(empty_torch_home / "hub" / "checkpoints") in msg
    assert "--set model.pretrained=/path/to/<file>.pth" in msg
    assert "model.pretrained=none" in msg
    with pytest.raises(WeightsNotFoundError):
        build_resnet(18, pretrained="imagenet")


def test_resolve_imagenet_finds_cached_file(empty_torch_home):
    cache = empty_torch_home / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    (cache / "resnet50-11ad3fa6.pth").write_bytes(b"")
    assert resolve_imagenet_weights(50, "imagenet") == cache / "resnet50-11ad3fa6.pth"
    (cache / "resnet50-0676ba61.pth").write_bytes(b"")  # V1 preferred when both are there
    assert resolve_imagenet_weights(50, "imagenet") == cache / "resnet50-0676ba61.pth"


def test_resolve_missing_path_names_it(tmp_path):
    missing = tmp_path / "nope" / "weights.pth"
    with pytest.raises(WeightsNotFoundError, match=r"model\.pretrained") as exc:
        resolve_imagenet_weights(18, str(missing))
    assert str(missing) in str(exc.value)


def test_bnneck():
    torch.manual_seed(0)
    neck = BNNeck(256, num_classes=10)
    assert not neck.bn.bias.requires_grad and torch.equal(neck.bn.bias, torch.zeros(256))
    assert torch.equal(neck.bn.weight, torch.ones(256))
    assert neck.classifier.bias is None
    assert neck.classifier.weight.std().item() == pytest.approx(0.001, rel=0.1)
    feat = torch.randn(8, 256, requires_grad=True)
    bn_feat, logits = neck(feat)
    assert bn_feat.shape == (8, 256) and logits.shape == (8, 10)
    torch.testing.assert_close(bn_feat.mean(0), torch.zeros(256), atol=1e-5, rtol=0)
    logits.sum().backward()
    assert neck.bn.bias.grad is None and neck.bn.weight.grad is not None
    assert feat.grad is not None
