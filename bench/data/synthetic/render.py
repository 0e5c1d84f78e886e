"""Shared machinery of the synthetic generators: seeding, atomic generation, byte-stable files."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import time
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from bench.errors import DatasetError
from bench.io import StagedFolder

#: Bump when a generator's output changes, so cached datasets of the old code are not reused.
GENERATOR_VERSION = 2
#: Written last into a generated root; its presence means the dataset is complete.
MARKER = ".complete"
#: A temp folder older than this is left over from an interrupted run and is removed.
STALE_TEMP_S = 3600.0
JPEG_QUALITY = 90


def params_hash(params: Mapping[str, Any]) -> str:
    """A short stable hash of the generation parameters (names the cache folder)."""
    blob = json.dumps({"version": GENERATOR_VERSION, **params}, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:10]


def check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise DatasetError(f"synthetic.seed must be a non-negative integer, got {seed!r}")
    return seed


def rng_for(seed: int, *keys: int) -> np.random.Generator:
    """An independent generator per (seed, keys): one image's randomness never shifts another's."""
    return np.random.default_rng(np.random.SeedSequence([seed, *keys]))


def save_jpeg(arr: np.ndarray | Image.Image, path: Path) -> None:
    img = arr if isinstance(arr, Image.Image) else Image.fromarray(to_uint8(arr))
    img.save(path, "JPEG", quality=JPEG_QUALITY)


def to_uint8(arr: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(arr), 0, 255).astype(np.uint8)


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n")


_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def write_xlsx(path: Path, frame: Any) -> None:
    """Write a pandas DataFrame as ``.xlsx`` (openpyxl via pandas), byte-stable: the archive's
    member times and the document's created/modified stamps are fixed."""
    import pandas as pd

    buf = io.BytesIO()
    with pd.ExcelWriter(buf, engine="openpyxl") as writer:
        frame.to_excel(writer, index=False)
    out = io.BytesIO()
    with zipfile.ZipFile(buf) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                data = re.sub(
                    rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*(</dcterms:)",
                    rb"\g<1>2000-01-01T00:00:00Z\g<2>",
                    data,
                )
            fixed = zipfile.ZipInfo(info.filename, _FIXED_ZIP_TIME)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = info.external_attr
            dst.writestr(fixed, data)
    path.write_bytes(out.getvalue())


def read_marker(root: Path) -> dict[str, Any] | None:
    marker = Path(root) / MARKER
    if not marker.is_file():
        return None
    try:
        return json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # unreadable, not UTF-8 or not JSON: generate it again
        return None


def ensure_generated(
    target: Path, params: Mapping[str, Any], build: Callable[[Path], Mapping[str, Any]]
) -> Path:
    """Generate a dataset into ``target`` once, atomically.

    A complete ``target`` (it holds :data:`MARKER`) is reused when it was made with ``params``.
    Otherwise ``build(tmp)`` writes into a fresh temp folder beside ``target`` and returns
    statistics; the marker is written last and the folder renamed into place, so an interrupted
    run leaves only a temp folder that is never read (and is removed once stale). ``target`` may
    exist as an empty folder. Two processes generating at once: the first rename wins and the
    other discards its copy.
    """
    target = Path(target)
    params = dict(params)
    marker = read_marker(target)
    if marker is not None:
        if marker.get("params") != params:
            raise DatasetError(
                f"{target} holds a synthetic dataset generated with {marker.get('params')}, "
                f"not the requested {params}; pass another --root or delete that folder"
            )
        return target
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise DatasetError(
            f"{target} exists but is not a complete synthetic dataset (no {MARKER} file); "
            "delete it or pass another --root"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(target)
    with StagedFolder(target, complete=lambda done: read_marker(done) is not None) as tmp:
        os.chmod(tmp, 0o755)
        stats = dict(build(tmp))
        write_json(tmp / MARKER, {"params": params, "stats": stats})
        if target.is_dir() and not any(target.iterdir()):
            target.rmdir()
    return target


def _remove_stale_temps(target: Path) -> None:
    now = time.time()
    for old in target.parent.glob(f".{target.name}.tmp-*"):
        try:
            if now - old.stat().st_mtime > STALE_TEMP_S:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            pass


# ---------------------------------------------------------------------------------------------
# small vectorised image helpers


def motion_blur(img: np.ndarray, length: int, angle: float) -> np.ndarray:
    """Average of ``length`` copies shifted along ``angle`` (edge-padded, no wrap-around)."""
    if length < 2:
        return img
    pad = length
    padded = np.pad(img, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    h, w = img.shape[:2]
    acc = np.zeros_like(img)
    for t in np.linspace(-(length - 1) / 2, (length - 1) / 2, length):
        dy, dx = round(t * np.sin(angle)), round(t * np.cos(angle))
        acc += padded[pad + dy : pad + dy + h, pad + dx : pad + dx + w]
    return acc / length


def smooth_field(
    rng: np.random.Generator, x: np.ndarray, y: np.ndarray, n: int, fmin: float, fmax: float
) -> np.ndarray:
    """A smooth random field in about ``[-1, 1]``: a sum of ``n`` random plane waves."""
    out = np.zeros(np.broadcast_shapes(x.shape, y.shape), np.result_type(x, y))
    for _ in range(n):
        f = float(rng.uniform(fmin, fmax))
        a = float(rng.uniform(0, 2 * np.pi))
        out += np.cos(x * (f * np.cos(a)) + y * (f * np.sin(a)) + float(rng.uniform(0, 2 * np.pi)))
    return out / np.sqrt(n / 2)
