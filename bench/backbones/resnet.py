"""ResNet trunks (He et al. 2016) and their ImageNet weights, found offline.

:class:`ResNetBackbone` is torchvision's ResNet without ``avgpool``/``fc``; at ``base_width=64``
its state-dict keys equal torchvision's so ImageNet checkpoints load. Nothing here downloads:
``"imagenet"`` weights are looked up in the torch hub cache only.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision.models as tvm
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck

from bench.errors import BenchError, WeightsNotFoundError

RESNET_SPECS: dict[int, tuple[type[BasicBlock | Bottleneck], tuple[int, int, int, int]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
}

_WEIGHT_ENUMS = {
    18: tvm.ResNet18_Weights,
    34: tvm.ResNet34_Weights,
    50: tvm.ResNet50_Weights,
    101: tvm.ResNet101_Weights,
}

# File names of the pre-0.13 torchvision model zoo (the same IMAGENET1K_V1 weights), still found
# in older hub caches.
_LEGACY_FILES = {
    18: "resnet18-5c106cde.pth",
    34: "resnet34-333f7ec4.pth",
    50: "resnet50-19c8e357.pth",
    101: "resnet101-5d3b4d8f.pth",
}

_PRETRAINED_HINT = (
    "pass --set model.pretrained=/path/to/<file>.pth to use a local file, "
    "or --set model.pretrained=none for random init"
)


def _check_depth(depth: int) -> None:
    if depth not in RESNET_SPECS:
        choices = ", ".join(map(str, RESNET_SPECS))
        raise BenchError(f"ResNet depth must be one of {choices}, got {depth!r}")


class ResNetBackbone(nn.Module):
    """ResNet trunk (He et al. 2016): conv1, bn1, relu, maxpool, layer1..layer4; no pooling/fc.

    ``base_width`` scales the stage widths (64 -> 64/128/256/512 planes as torchvision, 16 ->
    16/32/64/128 for a small CPU model). ``last_stride=1`` keeps layer4 at stride 1, BoT's
    "last stride" trick, doubling the final feature map's height and width.
    """

    def __init__(self, depth: int = 50, base_width: int = 64, last_stride: int = 1) -> None:
        super().__init__()
        _check_depth(depth)
        if base_width < 1:
            raise BenchError(f"ResNet base_width must be a positive integer, got {base_width!r}")
        if last_stride not in (1, 2):
            raise BenchError(f"ResNet last_stride must be 1 or 2, got {last_stride!r}")
        block, layers = RESNET_SPECS[depth]
        self.depth, self.base_width, self.last_stride = depth, base_width, last_stride
        self.inplanes = base_width
        self.conv1 = nn.Conv2d(3, base_width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(base_width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, base_width, layers[0], stride=1)
        self.layer2 = self._make_layer(block, base_width * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(block, base_width * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(block, base_width * 8, layers[3], stride=last_stride)
        self.out_channels = base_width * 8 * block.expansion
        for m in self.modules():  # torchvision's init
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _make_layer(
        self, block: type[BasicBlock | Bottleneck], planes: int, blocks: int, stride: int
    ) -> nn.Sequential:
        """torchvision's ``ResNet._make_layer`` (groups 1, no dilation), same module names."""
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) images -> (N, out_channels, H/16 or H/32, W/16 or W/32) feature map."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def imagenet_checkpoint_names(depth: int) -> list[str]:
    """torchvision's ImageNet checkpoint file names for a depth, V1 first (BoT used V1)."""
    _check_depth(depth)
    names = [w.url.rsplit("/", 1)[-1] for w in _WEIGHT_ENUMS[depth]]
    return [*names, _LEGACY_FILES[depth]]


def resolve_imagenet_weights(depth: int, weights: str) -> Path | None:
    """Map ``model.pretrained`` to a local checkpoint: ``"none"`` -> None, ``"imagenet"`` -> the
    torchvision file in ``torch.hub.get_dir()/checkpoints``, else a path to a ``.pth`` file.

    Raises :class:`WeightsNotFoundError` when the file is not there; never downloads.
    """
    key = str(weights).strip()
    if key.lower() == "none":
        return None
    if key.lower() == "imagenet":
        cache = Path(torch.hub.get_dir()) / "checkpoints"
        names = imagenet_checkpoint_names(depth)
        for name in names:
            if (cache / name).is_file():
                return cache / name
        raise WeightsNotFoundError(
            f"ImageNet weights for resnet{depth} not found: looked for {', '.join(names)} "
            f"in {cache} (nothing is downloaded); {_PRETRAINED_HINT}"
        )
    path = Path(key).expanduser()
    if not path.is_file():
        raise WeightsNotFoundError(
            f"pretrained weights file {path} does not exist; {_PRETRAINED_HINT}"
        )
    return path


def load_backbone_weights(model: ResNetBackbone, path: Path) -> None:
    """Load a torchvision classification state dict into ``model`` (``fc.*`` dropped, the rest
    strict); only for ``base_width=64``, the width torchvision's checkpoints have."""
    if model.base_width != 64:
        raise BenchError(
            f"cannot load {path} into a ResNet of base_width {model.base_width}: "
            "ImageNet checkpoints need base_width 64 (or use model.pretrained=none)"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt file, not a torch checkpoint, unreadable
        raise BenchError(f"cannot read weights file {path}: {e}") from e
    if not isinstance(state, dict):
        raise BenchError(f"weights file {path} does not hold a state dict")
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    own = model.state_dict()
    for k, v in own.items():
        if k not in state:
            raise BenchError(f"weights file {path} does not fit resnet{model.depth}: missing {k}")
        if tuple(state[k].shape) != tuple(v.shape):
            raise BenchError(
                f"weights file {path} does not fit resnet{model.depth}: {k} has shape "
                f"{tuple(state[k].shape)}, expected {tuple(v.shape)}"
            )
    extra = [k for k in state if k not in own]
    if extra:
        raise BenchError(
            f"weights file {path} does not fit resnet{model.depth}: unexpected key {extra[0]}"
        )
    model.load_state_dict(state, strict=True)


def build_resnet(
    depth: int = 50, base_width: int = 64, last_stride: int = 1, pretrained: str = "none"
) -> ResNetBackbone:
    """A :class:`ResNetBackbone`, with weights from :func:`resolve_imagenet_weights` if any."""
    model = ResNetBackbone(depth, base_width, last_stride)
    path = resolve_imagenet_weights(depth, pretrained)
    if path is not None:
        load_backbone_weights(model, path)
    return model
