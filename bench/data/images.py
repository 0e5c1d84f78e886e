"""Images of :class:`~bench.api.samples.Sample` lists: decoding, a Dataset, a seeded DataLoader."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import DataLoader, Dataset, Sampler

from bench.api.samples import Sample
from bench.errors import DatasetError


def open_image(path: str | Path) -> Image.Image:
    """Decode ``path`` fully as RGB; a missing, unreadable, truncated or corrupt file raises
    :class:`DatasetError` naming the path and the reason."""
    try:
        with Image.open(path) as img:
            img.load()  # full decode: Image.open alone reads only the header
            return img.convert("RGB")
    except FileNotFoundError as e:
        raise DatasetError(f"cannot read image {path}: file not found") from e
    except IsADirectoryError as e:
        raise DatasetError(f"cannot read image {path}: is a directory") from e
    except PermissionError as e:
        raise DatasetError(f"cannot read image {path}: permission denied") from e
    except UnidentifiedImageError as e:
        raise DatasetError(f"cannot read image {path}: not an image") from e
    except Exception as e:  # PIL raises OSError, SyntaxError, ValueError... on bad data
        raise DatasetError(f"cannot read image {path}: truncated or corrupt ({e})") from e


class ImageDataset(Dataset):
    """Samples -> ``dict(image=Tensor, pid=int, camid=int, index=int)`` items."""

    def __init__(
        self, samples: Sequence[Sample], transform: Callable[[Image.Image], torch.Tensor]
    ) -> None:
        self.samples = list(samples)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict[str, Any]:
        s = self.samples[i]
        return {
            "image": self.transform(open_image(s.path)),
            "pid": s.pid,
            "camid": s.camid,
            "index": i,
        }


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: seed numpy and ``random`` from the worker's torch seed
    (itself derived from the loader's generator), so worker-side randomness is reproducible."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def image_loader(
    samples: Sequence[Sample],
    transform: Callable[[Image.Image], torch.Tensor],
    batch_size: int,
    *,
    shuffle: bool = False,
    batch_sampler: Sampler[list[int]] | None = None,
    workers: int = 0,
    seed: int = 0,
    drop_last: bool = False,
) -> DataLoader:
    """A DataLoader over :class:`ImageDataset` whose order and worker seeds follow ``seed``.

    With ``batch_sampler`` (e.g. :class:`~bench.data.samplers.PKSampler`) ``batch_size``,
    ``shuffle`` and ``drop_last`` are ignored. With ``workers > 0`` each worker's torch, numpy
    and ``random`` seeds derive from ``seed``; with ``workers=0`` transforms run in the main
    process and draw from the global torch RNG, so seed that (``torch.manual_seed``) too.
    """
    generator = torch.Generator()
    generator.manual_seed(seed)
    dataset = ImageDataset(samples, transform)
    common: dict[str, Any] = {
        "num_workers": workers,
        "generator": generator,
        "worker_init_fn": seed_worker if workers > 0 else None,
    }
    if batch_sampler is not None:
        return DataLoader(dataset, batch_sampler=batch_sampler, **common)
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, **common
    )
