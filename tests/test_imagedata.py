"""Image decoding errors, dataset items, deterministic loaders, BoT transforms."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bench.api.samples import Sample
from bench.data.images import ImageDataset, image_loader, open_image
from bench.data.samplers import PKSampler
from bench.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    build_test_transform,
    build_train_transform,
)
from bench.errors import DatasetError

H, W = 32, 16


def _write_image(path, seed: int, size=(24, 48), mode="RGB", fmt="JPEG"):
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).convert(mode).save(path, fmt)
    return str(path)


@pytest.fixture
def samples(tmp_path):
    return [
        Sample(path=_write_image(tmp_path / f"{i:02d}.jpg", i), pid=i // 3, camid=i % 2)
        for i in range(12)
    ]


def test_open_image_converts_to_rgb(tmp_path):
    img = open_image(_write_image(tmp_path / "g.png", 0, mode="L", fmt="PNG"))
    assert img.mode == "RGB" and img.size == (24, 48)


def test_corrupt_file_raises_with_path(tmp_path):
    path = tmp_path / "garbage.jpg"
    path.write_bytes(b"\x00this is not an image" * 20)
    with pytest.raises(DatasetError, match="not an image") as exc:
        open_image(path)
    assert str(path) in str(exc.value)


def test_truncated_jpeg_raises_with_path(tmp_path):
    good = _write_image(tmp_path / "full.jpg", 1, size=(64, 128))
    data = Path(good).read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    Image.open(path)  # the header alone parses: only a full decode finds the damage
    with pytest.raises(DatasetError, match="truncated") as exc:
        open_image(path)
    assert str(path) in str(exc.value)


def test_missing_file_raises_with_path(tmp_path):
    path = tmp_path / "missing.jpg"
    with pytest.raises(DatasetError, match="file not found") as exc:
        open_image(str(path))
    assert str(path) in str(exc.value)


def test_dataset_items(samples):
    ds = ImageDataset(samples, build_test_transform(H, W))
    assert len(ds) == 12
    item = ds[4]
    assert set(item) == {"image", "pid", "camid", "index"}
    assert item["image"].shape == (3, H, W) and item["image"].dtype == torch.float32
    assert (item["pid"], item["camid"], item["index"]) == (1, 0, 4)
    # Normalize with the ImageNet statistics
    small = open_image(samples[4].path).resize((W, H), Image.Resampling.BILINEAR)
    raw = torch.from_numpy(np.array(small)).float()
    mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
    expected = ((raw / 255 - mean) / std).permute(2, 0, 1)
    torch.testing.assert_close(item["image"], expected, atol=1e-5, rtol=0)


def _run(loader):
    return [(b["index"].tolist(), b["pid"].tolist(), b["image"]) for b in loader]


def _same(a, b):
    return len(a) == len(b) and all(
        x[0] == y[0] and x[1] == y[1] and torch.equal(x[2], y[2]) for x, y in zip(a, b)
    )


def test_loader_order_follows_seed_not_global_rng(samples):
    tf = build_test_transform(H, W)
    torch.manual_seed(0)
    a = _run(image_loader(samples, tf, 5, shuffle=True, seed=7))
    torch.manual_seed(99)
    b = _run(image_loader(samples, tf, 5, shuffle=True, seed=7))
    c = _run(image_loader(samples, tf, 5, shuffle=True, seed=8))
    assert _same(a, b) and not _same(a, c)
    assert [len(x[0]) for x in a] == [5, 5, 2]
    assert sorted(i for x in a for i in x[0]) == list(range(12))
    assert [len(x[0]) for x in _run(image_loader(samples, tf, 5, drop_last=True))] == [5, 5]


def test_loader_with_workers_augments_deterministically(samples):
    tf = build_train_transform(H, W, pad=2)
    torch.manual_seed(0)
    a = _run(image_loader(samples, tf, 4, shuffle=True, workers=2, seed=3))
    torch.manual_seed(1)
    b = _run(image_loader(samples, tf, 4, shuffle=True, workers=2, seed=3))
    c = _run(image_loader(samples, tf, 4, shuffle=True, workers=2, seed=4))
    assert _same(a, b) and not _same(a, c)


def test_loader_with_pk_sampler(samples):
    sampler = PKSampler([s.pid for s in samples], p=2, k=3, seed=0)
    batches = _run(image_loader(samples, build_test_transform(H, W), 999, batch_sampler=sampler))
    assert len(batches) == len(sampler) == 2
    for idx, pids, images in batches:
        assert images.shape == (6, 3, H, W) and len(set(pids)) == 2
        assert pids == [samples[i].pid for i in idx]


def test_train_transform_is_seeded_and_random(samples):
    img = open_image(samples[0].path)
    tf = build_train_transform(H, W)
    torch.manual_seed(5)
    a = [tf(img) for _ in range(8)]
    torch.manual_seed(5)
    b = [tf(img) for _ in range(8)]
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert a[0].shape == (3, H, W)
    assert len({x.sum().item() for x in a}) > 1
    plain = build_train_transform(H, W, flip=0, pad=0, random_erasing=0)
    torch.testing.assert_close(plain(img), build_test_transform(H, W)(img))


def test_random_erasing_fills_with_imagenet_mean():
    img = Image.new("RGB", (W, H), (255, 255, 255))  # white: far from the fill value
    tf = build_train_transform(H, W, flip=0, pad=0, random_erasing=1.0)
    torch.manual_seed(0)
    out = tf(img)
    for c, m in enumerate(IMAGENET_MEAN):
        erased = torch.isclose(out[c], torch.tensor(m))
        assert 0.02 * H * W <= erased.sum() <= 0.4 * H * W + 1
