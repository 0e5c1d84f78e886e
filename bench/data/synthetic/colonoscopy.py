"""``synthetic-colonoscopy``: procedural colonoscopy videos in the ``polyp-tracklets`` COCO layout.

What it imitates: the data NTSSL learns from (Parolari et al., "Contrastive Learning under Noisy
Temporal Self-Supervision for Colonoscopy Videos", on REAL-Colon): whole colonoscopy videos in
which a few polyps leave and re-enter the view, so one polyp makes several tracklets and
temporally adjacent tracklets are usually, not always, the same polyp.

Output (:func:`generate_colonoscopy`), for ``videos`` = V training videos (default 8), plus
``ceil(V / 2)`` (at least 2) test and ``ceil(V / 4)`` validation videos, all distinct:

- ``<root>/images/<video>_<frame>.jpg``: every frame of every video (96x96 JPEG), video ids
  ``sc01``, ``sc02``, ... (no ``_``: the reader cuts identities at the first one);
- ``<root>/annotations/instances_{train,val,test}.json``: COCO images (``id``, ``file_name``,
  ``frame_id``, ``sequence_id`` = the video, ``dataset_id`` 0) and one annotation per visible
  polyp and frame (``bbox`` x, y, w, h in pixels, ``identity_id`` ``<video>_<n>``,
  ``histology``, ``size`` in mm).

A video (:func:`make_schedule`) shows 2-4 polyps, each a :func:`bench.data.synthetic.polyp`
identity (outline, colour, texture, morphology) with its own size and histology (adenomas
redder, more textured and larger on average). The endoscope visits the polyps in turn, usually
2-3 times each before moving on (a short gap without the polyp between two visits of one polyp),
sometimes going back to an earlier polyp; the next polyp comes into view while the previous one
is still visible one time in four; one visit in eight is cut by a fast camera move (the box
jumps: IoU 0). During a visit the box moves and grows or shrinks smoothly (consecutive boxes
overlap with IoU well above 0.1), and every visit or piece of one lasts 32-56 frames, so each
makes exactly one tracklet of at least 30 frames for the reader (:mod:`bench.data.tracklets`).
Each split holds both size classes (<= 5 mm and larger) and both histology classes (adenoma and
not) whenever it has two polyps or more.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from bench.data.synthetic.polyp import Polyp, make_polyps
from bench.data.synthetic.render import (
    rng_for,
    save_jpeg,
    smooth_field,
    to_uint8,
    write_json,
)
from bench.progress import progress as progress_bar

NAME = "synthetic-colonoscopy"
IMAGE_SIZE = 96
DEFAULT_VIDEOS = 8
MIN_VISIT, MAX_VISIT = 32, 56  # frames of one visit (or of one piece of a cut visit)
ADENOMAS = ("low-grade adenoma", "high-grade adenoma")
NON_ADENOMAS = ("hyperplastic polyp", "sessile serrated lesion")
DIMINUTIVE_MM = 5.0

_Y, _X = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE].astype(np.float32) + 0.5
_YN, _XN = _Y / IMAGE_SIZE * 2 - 1, _X / IMAGE_SIZE * 2 - 1
_CORNER = (np.abs(_XN) + np.abs(_YN) > 1.6) | (np.abs(_XN) > 0.985) | (np.abs(_YN) > 0.985)


# --------------------------------------------------------------------------- parameters, cache


def split_videos(videos: int) -> dict[str, int]:
    """Videos per split for ``videos`` training videos."""
    return {"train": videos, "val": max(1, math.ceil(videos / 4)), "test": max(2, -(-videos // 2))}


# --------------------------------------------------------------------------- what is shown


@dataclass(frozen=True)
class Lesion:
    """One polyp of one video: its look, and the labels NTSSL's probes predict."""

    identity: str
    look: Polyp
    size_mm: float
    histology: str

    @property
    def adenoma(self) -> bool:
        return self.histology in ADENOMAS


@dataclass
class Visit:
    """Frames ``start`` to ``end`` (exclusive) in which ``polyp`` (its index) is in view; a
    ``cut`` frame, if any, is where a fast camera move makes its box jump."""

    polyp: int
    start: int
    end: int
    cut: int | None = None
    path: dict[str, Any] = field(default_factory=dict)


@dataclass
class Video:
    name: str
    index: int
    frames: int
    lesions: list[Lesion]
    visits: list[Visit]


def _labels(rng: np.random.Generator, look: Polyp) -> tuple[float, str]:
    """Size (mm) and histology, related to the look as in clinical practice, loosely."""
    p_adenoma = (
        0.5 + 0.2 * (look.colour in ("reddish", "dark red")) - 0.25 * (look.colour == "pale")
    )
    p_adenoma += 0.15 * (look.surface != "smooth") - 0.1 * (look.morphology == "flat")
    adenoma = bool(rng.random() < p_adenoma)
    size = float(np.exp(rng.normal(np.log(7.0 if adenoma else 4.5), 0.45)))
    names = ADENOMAS if adenoma else NON_ADENOMAS
    weights = (0.85, 0.15) if adenoma else (0.7, 0.3)
    return round(min(max(size, 2.0), 30.0), 1), names[int(rng.choice(2, p=weights))]


def _balance(lesions: list[Lesion], rng: np.random.Generator) -> list[Lesion]:
    """Give a split of two polyps or more both size classes and both histology classes."""
    out = list(lesions)
    if len(out) < 2:
        return out
    small = [le.size_mm <= DIMINUTIVE_MM for le in out]
    if all(small) or not any(small):
        k = int(rng.integers(len(out)))
        size = round(float(rng.uniform(7, 12) if small[k] else rng.uniform(3, 5)), 1)
        out[k] = Lesion(out[k].identity, out[k].look, size, out[k].histology)
    adenoma = [le.adenoma for le in out]
    if all(adenoma) or not any(adenoma):
        k = int(rng.integers(len(out)))
        names = NON_ADENOMAS if adenoma[k] else ADENOMAS
        out[k] = Lesion(out[k].identity, out[k].look, out[k].size_mm, names[0])
    return out


def make_schedule(seed: int, index: int, name: str, looks: list[Polyp]) -> Video:
    """The visits of one video (module docstring); ``looks`` are its polyps' appearances."""
    rng = rng_for(seed, 30, index)
    lesions = []
    for k, look in enumerate(looks):
        size, histology = _labels(rng_for(seed, 31, index, k), look)
        lesions.append(Lesion(f"{name}_{k + 1}", look, size, histology))
    order: list[int] = []
    for k in range(len(looks)):
        order += [k] * int(rng.choice((1, 2, 3), p=(0.15, 0.6, 0.25)))
        if k > 0 and rng.random() < 0.25:  # back to an earlier polyp before the next one
            order.append(int(rng.integers(k)))
    visits: list[Visit] = []
    t = int(rng.integers(4, 16))
    for i, k in enumerate(order):
        cut = rng.random() < 0.125
        pieces = [int(rng.integers(MIN_VISIT, MAX_VISIT + 1)) for _ in range(2 if cut else 1)]
        visit = Visit(k, t, t + sum(pieces), t + pieces[0] if cut else None)
        visits.append(visit)
        nxt = order[i + 1] if i + 1 < len(order) else None
        if nxt is not None and nxt != k and rng.random() < 0.25:
            # the next polyp appears beside this one (never beside an earlier visit, so at most
            # two polyps are in view and a polyp never twice)
            earlier = max((v.end for v in visits[:-1]), default=0)
            t = max(visit.end - int(rng.integers(8, 24)), earlier + 3)
        elif nxt == k:
            t = visit.end + int(rng.integers(3, 12))
        else:
            t = visit.end + int(rng.integers(6, 30))
    frames = max(v.end for v in visits) + int(rng.integers(4, 12))
    video = Video(name, index, frames, lesions, visits)
    _plan_paths(rng, video)
    return video


def _plan_paths(rng: np.random.Generator, video: Video) -> None:
    """Per visit (and piece) a smooth on-screen path: centre, radius and roll over time; two
    visits that overlap in time sit on opposite sides of the view."""
    previous: Visit | None = None
    for visit in video.visits:
        overlaps = previous is not None and visit.start < previous.end
        pieces = []
        bounds = (
            [(visit.start, visit.cut), (visit.cut, visit.end)]
            if visit.cut is not None
            else [(visit.start, visit.end)]
        )
        size = video.lesions[visit.polyp].size_mm
        for j, (a, b) in enumerate(bounds):
            r0 = float(np.clip(9.0 * (size / 6.0) ** 0.35 * np.exp(rng.normal(0, 0.15)), 6, 16))
            r1 = float(np.clip(r0 * np.exp(rng.normal(0, 0.3)), 6, 18))
            if visit.cut is not None:  # small enough that the boxes either side of it are apart
                r0, r1 = min(r0, 11.0), min(r1, 11.0)
            angle = float(rng.uniform(0, 2 * np.pi))
            if overlaps and previous is not None and j == 0:
                pc = previous.path["pieces"][-1]["c0"]
                angle = math.atan2(pc[1] - IMAGE_SIZE / 2, pc[0] - IMAGE_SIZE / 2) + np.pi
            elif j == 1:  # after the cut: the other side of the view, so the boxes do not meet
                c = pieces[0]["c1"]
                angle = math.atan2(c[1] - IMAGE_SIZE / 2, c[0] - IMAGE_SIZE / 2) + np.pi
            dist = float(rng.uniform(14, 22))
            c0 = (IMAGE_SIZE / 2 + dist * math.cos(angle), IMAGE_SIZE / 2 + dist * math.sin(angle))
            drift = rng.normal(0, 9, 2)
            c1 = tuple(float(np.clip(c0[i] + drift[i], 22, IMAGE_SIZE - 22)) for i in range(2))
            if visit.cut is not None:  # both pieces at least 18 px off the centre
                c0, c1 = _off_centre(c0), _off_centre(c1)
            pieces.append(
                dict(
                    start=a,
                    end=b,
                    c0=c0,
                    c1=c1,
                    r=(r0, r1),
                    wobble=(float(rng.uniform(0.5, 2.0)), float(rng.uniform(0, 2 * np.pi))),
                    roll=(float(rng.uniform(0, 2 * np.pi)), float(rng.normal(0, 0.6))),
                )
            )
        visit.path = {"pieces": pieces}
        previous = visit


def _off_centre(c: tuple[float, float], at_least: float = 18.0) -> tuple[float, float]:
    dx, dy = c[0] - IMAGE_SIZE / 2, c[1] - IMAGE_SIZE / 2
    dist = math.hypot(dx, dy)
    if dist >= at_least:
        return c
    if dist < 1e-6:
        dx, dy, dist = 1.0, 0.0, 1.0
    scale = at_least / dist
    return (IMAGE_SIZE / 2 + dx * scale, IMAGE_SIZE / 2 + dy * scale)


def pose(visit: Visit, frame: int) -> tuple[float, float, float, float]:
    """Centre x, y, radius (pixels) and roll of the visit's polyp at ``frame``."""
    piece = next(p for p in visit.path["pieces"] if p["start"] <= frame < p["end"])
    tau = (frame - piece["start"]) / max(1, piece["end"] - piece["start"] - 1)
    ease = tau * tau * (3 - 2 * tau)
    amp, phase = piece["wobble"]
    wob = amp * math.sin(2 * math.pi * 1.5 * tau + phase)
    cx = piece["c0"][0] + (piece["c1"][0] - piece["c0"][0]) * ease + wob
    cy = piece["c0"][1] + (piece["c1"][1] - piece["c0"][1]) * ease - 0.7 * wob
    r = piece["r"][0] ** (1 - ease) * piece["r"][1] ** ease
    return cx, cy, r, piece["roll"][0] + piece["roll"][1] * tau


# --------------------------------------------------------------------------- drawing


@dataclass(frozen=True)
class Scene:
    """A video's look: mucosa, light, the lumen's and the camera's drift."""

    mucosa: np.ndarray
    gains: np.ndarray
    fold_freq: float
    lumen: tuple[float, float, float, float]  # x, y amplitude, period (frames), phase
    drift: tuple[float, float, float, float]
    field_seed: tuple[int, ...]


def make_scene(seed: int, index: int) -> Scene:
    rng = rng_for(seed, 32, index)
    return Scene(
        mucosa=np.clip(np.array([205, 100, 98]) + rng.normal(0, 12, 3), 0, 255).astype(np.float32),
        gains=np.clip(1 + rng.normal(0, 0.06, 3), 0.85, 1.15).astype(np.float32),
        fold_freq=float(rng.uniform(5, 9)),
        lumen=(
            float(rng.uniform(0.3, 0.7)),
            float(rng.uniform(0.3, 0.7)),
            float(rng.uniform(120, 260)),
            float(rng.uniform(0, 2 * np.pi)),
        ),
        drift=(
            float(rng.uniform(0.2, 0.5)),
            float(rng.uniform(0.2, 0.5)),
            float(rng.uniform(150, 300)),
            float(rng.uniform(0, 2 * np.pi)),
        ),
        field_seed=(seed, 33, index),
    )


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.tanh(0.5 * x))


_PAD = 26  # pixels of mucosa beyond each side of the view: the camera's drift


def mucosa_texture(scene: Scene) -> np.ndarray:
    """The video's mucosa (mottling and vessels), fixed in the scene, with :data:`_PAD` pixels
    beyond each side of the view; each frame crops it where the camera has drifted to."""
    n = IMAGE_SIZE + 2 * _PAD
    y, x = (np.mgrid[0:n, 0:n].astype(np.float32) + 0.5 - _PAD) / IMAGE_SIZE * 2 - 1
    fields = np.random.default_rng(np.random.SeedSequence(scene.field_seed))
    mottle = smooth_field(fields, x, y, 3, 3, 9)
    vessel = np.exp(-((smooth_field(fields, x, y, 4, 2, 7) / 0.07) ** 2))
    img = scene.mucosa * (1 + 0.06 * mottle)[..., None]
    tint = np.array([0.3, 0.45, 0.25], np.float32)
    return (img * (1 - tint * np.clip(vessel, 0, 1)[..., None])).astype(np.float32)


def _background(scene: Scene, texture: np.ndarray, frame: int) -> np.ndarray:
    ax, ay, period, phase = scene.drift
    w = 2 * np.pi * frame / period + phase
    ox = round(_PAD * ax / 0.5 * math.sin(w)) + _PAD
    oy = round(_PAD * ay / 0.5 * math.cos(0.7 * w)) + _PAD
    img = texture[oy : oy + IMAGE_SIZE, ox : ox + IMAGE_SIZE]
    lx_amp, ly_amp, lperiod, lphase = scene.lumen
    lw = 2 * np.pi * frame / lperiod + lphase
    dl = np.hypot(_XN - lx_amp * math.cos(lw), _YN - ly_amp * math.sin(lw))
    folds = (0.5 + 0.5 * np.cos(scene.fold_freq * dl - 0.02 * frame)) ** 3
    shade = (1 - 0.28 * folds) * (1 - 0.85 * np.exp(-((dl / 0.4) ** 2)))
    return img * shade[..., None]


def _window(cx: float, cy: float, half: float) -> tuple[slice, slice]:
    x0, x1 = max(0, int(cx - half)), min(IMAGE_SIZE, math.ceil(cx + half) + 1)
    y0, y1 = max(0, int(cy - half)), min(IMAGE_SIZE, math.ceil(cy + half) + 1)
    return slice(y0, max(y0, y1)), slice(x0, max(x0, x1))


def _draw_polyp(
    img: np.ndarray, p: Polyp, cx: float, cy: float, radius: float, roll: float
) -> tuple[float, float, float, float] | None:
    """Draw ``p`` into ``img`` centred at (cx, cy) with ``radius`` pixels; return its box
    (None when it falls outside the view)."""
    reach = radius * (1.15 + sum(abs(a) for a, _ in p.lobes))
    rows, cols = _window(cx, cy, reach)
    if rows.start >= rows.stop or cols.start >= cols.stop:
        return None
    x, y = (_X[rows, cols] - cx) / radius, (_Y[rows, cols] - cy) / radius
    cr, sr = math.cos(roll), math.sin(roll)
    qx, qy = cr * x + sr * y, -sr * x + cr * y
    d, phi = np.hypot(qx, qy), np.arctan2(qy, qx)
    r = 1 + sum(a * np.cos(k * phi + ph) for k, (a, ph) in enumerate(p.lobes, start=2))
    mask = _sigmoid((r - d) / (0.9 / radius))
    height = np.sqrt(np.clip(1 - (d / r) ** 2, 0, 1)) * (0.35 if p.morphology == "flat" else 1.0)
    ca, sa = math.cos(p.texture_angle), math.sin(p.texture_angle)
    u, v = ca * qx + sa * qy, -sa * qx + ca * qy
    f = p.texture_freq * 0.2
    if p.surface == "granular":
        tex = np.clip((np.cos(f * u) * np.cos(f * v) - 0.3) / 0.6, 0, 1)
    elif p.surface == "villous":
        tex = 0.8 * np.clip(np.sin(0.8 * f * u + 1.2 * np.sin(0.4 * f * v)), 0, 1)
    else:
        tex = np.zeros_like(d)
    colour = np.asarray(p.rgb, np.float32) * ((0.66 + 0.3 * height) * (1 - 0.3 * tex))[..., None]
    # the highlight on the dome, towards the light
    hx, hy = -0.3 * cr + 0.3 * sr, -0.3 * sr - 0.3 * cr
    colour = colour + 230 * np.exp(-((qx - hx) ** 2 + (qy - hy) ** 2) / 0.04)[..., None]
    rim = _sigmoid((r * 1.08 - d) / (2.0 / radius)) * (1 - mask)
    patch = img[rows, cols] * (1 - 0.35 * rim)[..., None]
    img[rows, cols] = patch * (1 - mask[..., None]) + colour * mask[..., None]
    inside = mask > 0.5
    ys, xs = np.flatnonzero(inside.any(axis=1)), np.flatnonzero(inside.any(axis=0))
    if not len(ys):
        return None
    x0, y0 = cols.start + int(xs[0]), rows.start + int(ys[0])
    return (float(x0), float(y0), float(xs[-1] - xs[0] + 1), float(ys[-1] - ys[0] + 1))


def render_frame(
    scene: Scene, texture: np.ndarray, video: Video, frame: int, rng: np.random.Generator
) -> tuple[Image.Image, list[tuple[int, tuple[float, float, float, float]]]]:
    """One frame and the boxes of the polyps in view: ``[(polyp index, (x, y, w, h)), ...]``;
    ``texture`` is :func:`mucosa_texture` of ``scene``."""
    img = _background(scene, texture, frame)
    boxes = []
    for visit in video.visits:
        if visit.start <= frame < visit.end:
            cx, cy, radius, roll = pose(visit, frame)
            box = _draw_polyp(img, video.lesions[visit.polyp].look, cx, cy, radius, roll)
            if box is not None:
                boxes.append((visit.polyp, box))
    lx, ly = (float(v) for v in rng.normal(0, 0.15, 2))
    vign = np.clip(1 - 0.35 * ((_XN - lx) ** 2 + (_YN - ly) ** 2), 0.15, 1)
    img = img * (scene.gains * np.float32(rng.uniform(0.92, 1.08))) * vign[..., None]
    for _ in range(int(rng.integers(1, 5))):  # speculars on the wet mucosa
        sx, sy = (float(v) for v in rng.uniform(5, IMAGE_SIZE - 5, 2))
        w = float(rng.uniform(0.8, 2.0))
        rows, cols = _window(sx, sy, 3 * w)
        spot = np.exp(-((_X[rows, cols] - sx) ** 2 + (_Y[rows, cols] - sy) ** 2) / (w * w))
        img[rows, cols] += 230 * spot[..., None]
    img += 3 * rng.standard_normal(img.shape, dtype=np.float32)
    img[_CORNER] = 0
    return Image.fromarray(to_uint8(img)), boxes


# --------------------------------------------------------------------------- writing


def make_videos(seed: int, videos: int) -> dict[str, list[Video]]:
    """Per split its videos, each with its polyps' looks and labels and its visits."""
    counts = split_videos(videos)
    layout = []  # (split, video index, number of polyps)
    for split in ("train", "val", "test"):
        for _ in range(counts[split]):
            n = int(rng_for(seed, 34, len(layout)).choice((2, 3, 4), p=(0.4, 0.4, 0.2)))
            layout.append((split, len(layout), n))
    looks = make_polyps(seed, sum(n for *_, n in layout))
    out: dict[str, list[Video]] = {"train": [], "val": [], "test": []}
    used = 0
    for split, index, n in layout:
        video = make_schedule(seed, index, f"sc{index + 1:02d}", looks[used : used + n])
        out[split].append(video)
        used += n
    for split, vids in out.items():
        lesions = _balance(
            [le for v in vids for le in v.lesions], rng_for(seed, 35, len(split), videos)
        )
        by_id = {le.identity: le for le in lesions}
        for v in vids:
            v.lesions = [by_id[le.identity] for le in v.lesions]
    return out


def generate_colonoscopy(
    root: Path, seed: int, videos: int = DEFAULT_VIDEOS, *, progress: bool = True
) -> dict[str, Any]:
    """Write the dataset into the existing folder ``root``; return its statistics."""
    plan = make_videos(seed, videos)
    (root / "images").mkdir()
    (root / "annotations").mkdir()
    total = sum(v.frames for vids in plan.values() for v in vids)
    bar = progress_bar(
        total=total, desc=f"{NAME}: generating", unit="img", leave=False, enabled=progress
    )
    stats: dict[str, Any] = {"image_size": [IMAGE_SIZE, IMAGE_SIZE]}
    image_id = ann_id = 0
    with bar:
        for split, vids in plan.items():
            images, annotations = [], []
            for video in vids:
                scene = make_scene(seed, video.index)
                texture = mucosa_texture(scene)
                for frame in range(video.frames):
                    img, boxes = render_frame(
                        scene, texture, video, frame, rng_for(seed, 36, video.index, frame)
                    )
                    name = f"{video.name}_{frame:05d}.jpg"
                    save_jpeg(img, root / "images" / name)
                    image_id += 1
                    images.append(
                        {
                            "id": image_id,
                            "file_name": name,
                            "frame_id": frame,
                            "sequence_id": video.name,
                            "dataset_id": 0,
                            "width": IMAGE_SIZE,
                            "height": IMAGE_SIZE,
                        }
                    )
                    for k, box in boxes:
                        lesion = video.lesions[k]
                        ann_id += 1
                        annotations.append(
                            {
                                "id": ann_id,
                                "image_id": image_id,
                                "category_id": 1,
                                "bbox": list(box),
                                "area": box[2] * box[3],
                                "iscrowd": 0,
                                "identity_id": lesion.identity,
                                "histology": lesion.histology,
                                "size": lesion.size_mm,
                            }
                        )
                    bar.update()
            coco = {
                "images": images,
                "annotations": annotations,
                "categories": [{"id": 1, "name": "polyp"}],
            }
            write_json(root / "annotations" / f"instances_{split}.json", coco)
            stats[split] = {
                "videos": len(vids),
                "polyps": sum(len(v.lesions) for v in vids),
                "frames": len(images),
                "annotations": len(annotations),
            }
    return stats
