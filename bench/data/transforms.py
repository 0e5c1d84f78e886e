"""Image transforms of BoT (Luo et al. 2019, Sec. 3): resize, flip, pad-crop, random erasing."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torchvision.transforms as T
from PIL import Image

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


def _check_size(height: int, width: int) -> None:
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, got {height}x{width}")


def build_train_transform(
    height: int,
    width: int,
    *,
    flip: float = 0.5,
    pad: int = 10,
    random_erasing: float = 0.5,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> Callable[[Image.Image], torch.Tensor]:
    """BoT's train augmentation: Resize((h, w)), RandomHorizontalFlip(flip), Pad(pad) then
    RandomCrop((h, w)) when pad > 0, ToTensor, Normalize, RandomErasing(random_erasing).

    Random erasing (Zhong et al. 2020) as BoT's implementation: area 2%..40%, aspect 0.3..3.33,
    filled with the mean values on the *normalized* tensor. ``mean``/``std`` normalise (ImageNet's
    by default; TransReID's ViT uses 0.5). Steps with probability 0
    are left out. Randomness comes from torch's RNG (deterministic under torch.manual_seed).
    """
    _check_size(height, width)
    steps: list[Callable] = [T.Resize((height, width))]
    if flip > 0:
        steps.append(T.RandomHorizontalFlip(p=flip))
    if pad > 0:
        steps += [T.Pad(pad), T.RandomCrop((height, width))]
    steps += [T.ToTensor(), T.Normalize(list(mean), list(std))]
    if random_erasing > 0:
        steps.append(
            T.RandomErasing(
                p=random_erasing, scale=(0.02, 0.4), ratio=(0.3, 1 / 0.3), value=list(mean)
            )
        )
    return T.Compose(steps)


def build_test_transform(
    height: int,
    width: int,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> Callable[[Image.Image], torch.Tensor]:
    """Resize((h, w)), ToTensor, Normalize (the ImageNet statistics unless given)."""
    _check_size(height, width)
    return T.Compose([T.Resize((height, width)), T.ToTensor(), T.Normalize(list(mean), list(std))])
