"""``synthetic-polyp``: procedural colonoscopy clips in the Colo-Pair layout, with a text sheet.

Output (:func:`generate_polyp`), for ``identities`` = N (default 48):

- ``<root>/<polyp_id>/1/*.jpg`` and ``<root>/<polyp_id>/2/*.jpg``: one clip of 8 frames per
  screening (96x96 JPEG; polyp ids ``P001``..), N x 2 x 8 frames in all;
- ``<root>/text.xlsx``: columns ``id``, ``Eng_text``, one English description per polyp.

Rendering: pink/red mucosa with a dark lumen, haustral folds and vessels; a polyp with an
identity-specific outline (lobes), colour shade, surface texture (pit pattern: smooth, granular,
villous), morphology (sessile dome, flat, or pedunculated with a stalk) and size; along the clip
a smooth camera motion (rotation, scale, translation) with jitter; vignetting, specular
highlights, motion blur, occasional partial occlusion, noise, the endoscope's black corners.
The two screenings are different days: different light colour, mucosa tone, view of the lumen,
and more bowel-prep residue in the second.

Identities come in quartets that share coarse appearance words (colour, surface, outline,
morphology) and split into two look-alike pairs (the same shade and texture: images confuse
them) whose members differ in location and size, and two text pairs (the same location and
size, hence the same text, but a different shade and texture). The text adds what the images
do not show (location in the colon) or show poorly (size in mm: the scale varies from frame to
frame); one text in ten gets one attribute wrong; the sentence form and synonyms vary with the
attributes (identical attributes give an identical text).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from bench.data.synthetic.render import (
    motion_blur,
    rng_for,
    save_jpeg,
    smooth_field,
    to_uint8,
    write_xlsx,
)
from bench.progress import progress as progress_bar

IMAGE_SIZE = 96
_N = 128  # drawn at 4/3 x, downsampled
DEFAULT_IDENTITIES = 48
FRAMES_PER_CLIP = 8
TEXT_NOISE = 0.1
SHEET_FILE = "text.xlsx"

POLYP_COLOURS: dict[str, tuple[int, int, int]] = {
    "reddish": (196, 74, 66),
    "pale": (226, 178, 160),
    "pink": (214, 122, 124),
    "dark red": (142, 44, 48),
}
SURFACES = ("smooth", "granular", "villous")
OUTLINES = ("round", "lobulated")
MORPHOLOGIES = ("sessile", "pedunculated", "flat")
LOCATIONS = (
    "cecum",
    "ascending colon",
    "transverse colon",
    "descending colon",
    "sigmoid colon",
    "rectum",
)
SIZES_MM = tuple(range(3, 21))

_Y, _X = ((np.mgrid[0:_N, 0:_N] + 0.5) / _N * 2 - 1).astype(np.float32)


@dataclass(frozen=True)
class Polyp:
    """One polyp identity: the words its text uses and the parameters it is drawn with."""

    name: str
    colour: str
    surface: str
    outline: str
    morphology: str
    location: str
    size_mm: int
    rgb: tuple[float, float, float]
    lobes: tuple[tuple[float, float], ...]  # (amplitude, phase) for k = 2, 3, ...
    texture_freq: float
    texture_angle: float
    stalk_angle: float
    text: str


def _pick(rng: np.random.Generator, options: tuple) -> Any:
    return options[int(rng.integers(len(options)))]


def make_polyps(seed: int, n: int) -> list[Polyp]:
    """``n`` polyps in quartets (see the module docstring), texts included."""
    rng = rng_for(seed, 10)
    polyps: list[Polyp] = []
    for q in range(0, n, 4):
        style = dict(
            colour=_pick(rng, tuple(POLYP_COLOURS)),
            surface=_pick(rng, SURFACES),
            outline=_pick(rng, OUTLINES),
            morphology=_pick(rng, MORPHOLOGIES),
        )
        # two fine looks (shade, lobes, texture) x two text keys (location, size)
        looks = []
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        for sign in (1, -1):
            base = np.asarray(POLYP_COLOURS[style["colour"]], float)
            rgb = base + sign * 22 * direction + rng.normal(0, 5, 3)
            amp = 0.16 if style["outline"] == "lobulated" else 0.03
            lobes = tuple(
                (float(rng.uniform(0.4, 1.0) * amp * weight), float(rng.uniform(0, 2 * np.pi)))
                for weight in (1.2, 1.0, 0.8, 0.45, 0.25)
            )
            looks.append(
                dict(
                    rgb=rgb,
                    lobes=lobes,
                    texture_freq=float(rng.uniform(30, 48)),
                    texture_angle=float(rng.uniform(0, np.pi)),
                    stalk_angle=float(rng.uniform(0, 2 * np.pi)),
                )
            )
        keys = []
        while len(keys) < 2:
            key = (_pick(rng, LOCATIONS), _pick(rng, SIZES_MM))
            if not keys or (key[0] != keys[0][0] and abs(key[1] - keys[0][1]) >= 3):
                keys.append(key)
        for look_i, key_i in ((0, 0), (1, 0), (0, 1), (1, 1))[: n - q]:
            look = looks[look_i]
            twin_rng = rng_for(seed, 11, len(polyps))
            polyps.append(
                Polyp(
                    name=f"P{len(polyps) + 1:03d}",
                    **style,
                    location=keys[key_i][0],
                    size_mm=keys[key_i][1],
                    rgb=tuple(
                        float(v) for v in np.clip(look["rgb"] + twin_rng.normal(0, 3, 3), 0, 255)
                    ),
                    lobes=tuple((a, p + float(twin_rng.normal(0, 0.15))) for a, p in look["lobes"]),
                    texture_freq=look["texture_freq"],
                    texture_angle=look["texture_angle"],
                    stalk_angle=look["stalk_angle"] + float(twin_rng.normal(0, 0.3)),
                    text="",
                )
            )
    out = []
    for i, p in enumerate(polyps):
        attrs = {
            "colour": p.colour,
            "surface": p.surface,
            "outline": p.outline,
            "morphology": p.morphology,
            "location": p.location,
            "size_mm": p.size_mm,
        }
        noise_rng = rng_for(seed, 12, i)
        if noise_rng.random() < TEXT_NOISE:
            attrs = _corrupt(attrs, noise_rng)
        out.append(Polyp(**{**p.__dict__, "text": describe(seed, **attrs)}))
    return out


def _corrupt(attrs: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    key = _pick(rng, ("colour", "surface", "morphology", "location", "size_mm"))
    pool = {
        "colour": tuple(POLYP_COLOURS),
        "surface": SURFACES,
        "morphology": MORPHOLOGIES,
        "location": LOCATIONS,
        "size_mm": SIZES_MM,
    }[key]
    return {**attrs, key: _pick(rng, tuple(v for v in pool if v != attrs[key]))}


_SYN = {
    "sessile": ("sessile", "broad-based"),
    "pedunculated": ("pedunculated", "stalked"),
    "flat": ("flat", "slightly elevated"),
    "reddish": ("reddish", "red"),
    "pale": ("pale", "whitish"),
    "pink": ("pink", "pinkish"),
    "dark red": ("dark red", "deep red"),
    "smooth": ("smooth",),
    "granular": ("granular", "nodular"),
    "villous": ("villous", "furrowed"),
    "round": ("round", "regular"),
    "lobulated": ("lobulated", "irregular"),
}


def describe(
    seed: int,
    colour: str,
    surface: str,
    outline: str,
    morphology: str,
    location: str,
    size_mm: int,
) -> str:
    """One English description; the form and synonyms are drawn from the attributes themselves,
    so identical attributes give an identical text."""
    key = "|".join(map(str, (colour, surface, outline, morphology, location, size_mm)))
    digest = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")
    rng = rng_for(seed, 13, digest)

    def w(word: str) -> str:
        return _pick(rng, _SYN[word])

    m, c, s, o = w(morphology), w(colour), w(surface), w(outline)
    article = "An" if str(size_mm).startswith(("8", "11", "18")) else "A"
    forms = (
        f"{article} {size_mm} mm {m} polyp in the {location} with {o}, {s}, {c} surface.",
        f"{m.capitalize()} polyp of about {size_mm} mm located in the {location}; "
        f"the surface is {s} and {c}, {o} in outline.",
        f"In the {location} there is a {c} {m} lesion measuring {size_mm} mm, {o} in outline "
        f"with a {s} surface.",
        f"{location.capitalize()}: {m} polyp, {size_mm} mm, {c}, {s} surface, {o}.",
    )
    return forms[int(rng.integers(len(forms)))]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.tanh(0.5 * x))


def _smoothstep(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    t = np.clip((x - lo) / (hi - lo), 0, 1)
    return t * t * (3 - 2 * t)


@dataclass(frozen=True)
class Clip:
    """One screening of one polyp: the day's look and the camera path."""

    mucosa: np.ndarray
    gains: np.ndarray
    lumen: tuple[float, float]
    fold_freq: float
    fold_phase: float
    residue: float
    vignette: float
    theta: tuple[float, float]
    scale: tuple[float, float]
    shift: tuple[tuple[float, float], tuple[float, float]]
    field_seed: tuple[int, ...]


def make_clip(seed: int, index: int, screening: int) -> Clip:
    rng = rng_for(seed, 20, index, screening)
    day = rng_for(seed, 21, index)  # a per-polyp day shift that screening 2 applies
    gains = np.clip(1 + rng.normal(0, 0.05, 3), 0.88, 1.12)
    mucosa = np.array([205, 100, 98]) + rng.normal(0, 10, 3)
    if screening == 2:
        gains = np.clip(gains * (1 + day.normal(0, 0.06, 3)), 0.8, 1.2)
        mucosa = mucosa + day.normal(0, 10, 3)
    angle = rng.uniform(0, 2 * np.pi)
    dist = rng.uniform(0.9, 1.8)
    theta0 = rng.uniform(0, 2 * np.pi)
    return Clip(
        mucosa=np.clip(mucosa, 0, 255).astype(np.float32),
        gains=gains.astype(np.float32),
        lumen=(float(dist * np.cos(angle)), float(dist * np.sin(angle))),
        fold_freq=float(rng.uniform(5, 9)),
        fold_phase=float(rng.uniform(0, 2 * np.pi)),
        residue=float(
            rng.uniform(0.4, 0.8) if rng.random() < (0.6 if screening == 2 else 0.15) else 0.0
        ),
        vignette=float(rng.uniform(0.2, 0.45)),
        theta=(theta0, theta0 + rng.normal(0, 0.5)),
        scale=(
            float(np.exp(rng.uniform(np.log(0.75), np.log(1.45)))),
            float(np.exp(rng.uniform(np.log(0.75), np.log(1.45)))),
        ),
        shift=(tuple(rng.uniform(-0.25, 0.25, 2)), tuple(rng.uniform(-0.25, 0.25, 2))),  # type: ignore[arg-type]
        field_seed=(seed, 22, index, screening),
    )


def render_frame(p: Polyp, clip: Clip, frame: int, rng: np.random.Generator) -> Image.Image:
    """One 96x96 frame of polyp ``p`` at position ``frame`` of ``clip``."""
    tau = frame / max(1, FRAMES_PER_CLIP - 1)
    theta = clip.theta[0] + (clip.theta[1] - clip.theta[0]) * tau + float(rng.normal(0, 0.05))
    scale = float(clip.scale[0] ** (1 - tau) * clip.scale[1] ** tau * np.exp(rng.normal(0, 0.04)))
    tx, ty = (
        float(v)
        for v in np.array(clip.shift[0]) * (1 - tau)
        + np.array(clip.shift[1]) * tau
        + rng.normal(0, 0.02, 2)
    )
    ct, st = float(np.cos(theta)), float(np.sin(theta))
    x, y = (_X - tx) / scale, (_Y - ty) / scale
    qx, qy = ct * x + st * y, -st * x + ct * y  # scene coordinates; the polyp sits at 0

    # mucosa: lumen, folds, mottling, vessels, all fixed in the scene during the clip
    fields = np.random.default_rng(np.random.SeedSequence(clip.field_seed))
    dl = np.hypot(qx - clip.lumen[0], qy - clip.lumen[1])
    folds = (0.5 + 0.5 * np.cos(clip.fold_freq * dl + clip.fold_phase)) ** 3
    mottle = smooth_field(fields, qx, qy, 3, 3, 9)
    vessel = np.exp(-((smooth_field(fields, qx, qy, 4, 2, 7) / 0.07) ** 2))
    vessel += 0.6 * np.exp(-((smooth_field(fields, qx, qy, 3, 5, 12) / 0.05) ** 2))
    img = clip.mucosa * ((1 + 0.06 * mottle) * (1 - 0.28 * folds))[..., None]
    img = img * (1 - np.array([0.3, 0.45, 0.25], np.float32) * np.clip(vessel, 0, 1)[..., None])
    img = img * (1 - 0.85 * np.exp(-((dl / 0.45) ** 2)))[..., None]

    # the polyp
    d = np.hypot(qx, qy)
    phi = np.arctan2(qy, qx)
    radius = 0.34 * (p.size_mm / 8) ** 0.25 * (0.75 if p.morphology == "pedunculated" else 1.0)
    if p.morphology == "flat":
        radius *= 1.2
    r = radius * (1 + sum(a * np.cos(k * phi + ph) for k, (a, ph) in enumerate(p.lobes, start=2)))
    edge = 0.012 / scale
    mask = _sigmoid((r - d) / edge)
    height = np.sqrt(np.clip(1 - (d / r) ** 2, 0, 1)) * (0.35 if p.morphology == "flat" else 1.0)
    ca, sa = float(np.cos(p.texture_angle)), float(np.sin(p.texture_angle))
    u, v = ca * qx + sa * qy, -sa * qx + ca * qy
    f = p.texture_freq
    if p.surface == "granular":
        tex = _smoothstep(np.cos(f * u) * np.cos(f * v), 0.4, 0.9)
    elif p.surface == "villous":
        tex = 0.8 * _smoothstep(np.sin(0.8 * f * u + 1.2 * np.sin(0.4 * f * v)), 0.1, 0.8)
    else:
        tex = 0.3 * _smoothstep(mottle, 0.5, 1.5)
    rgb = np.asarray(p.rgb, np.float32)
    polyp = rgb * ((0.66 + 0.3 * height) * (1 - 0.3 * tex))[..., None]
    if p.morphology == "pedunculated":
        sx, sy = (
            float(np.cos(p.stalk_angle)) * 1.7 * radius,
            float(np.sin(p.stalk_angle)) * 1.7 * radius,
        )
        t = np.clip((qx * sx + qy * sy) / (sx * sx + sy * sy), 0, 1)
        ds = np.hypot(qx - t * sx, qy - t * sy)
        stalk = _sigmoid((0.32 * radius - ds) / edge) * (1 - mask)
        stalk_rgb = 0.5 * rgb + 0.5 * clip.mucosa
        shade = 0.8 + 0.2 * np.sqrt(np.clip(1 - (ds / (0.32 * radius)) ** 2, 0, 1))
        img = img * (1 - stalk[..., None]) + (stalk_rgb * shade[..., None]) * stalk[..., None]
    img = img * (1 - mask[..., None]) + polyp * mask[..., None]
    # the shadow at the lesion's border makes even a flat polyp stand out from the wall
    rim = _sigmoid((r * 1.06 - d) / (2.5 * edge)) * (1 - mask)
    img = img * (1 - 0.35 * rim)[..., None]

    # bowel-prep residue, fixed in the scene
    if clip.residue > 0:
        blob = _sigmoid((smooth_field(fields, qx, qy, 3, 2, 6) - 1.2) / 0.12) * clip.residue
        img = img * (1 - blob[..., None]) + np.array([196, 160, 88], np.float32) * blob[..., None]

    # light: colour, vignetting around a wandering centre, speculars, occlusion, blur
    lx, ly = (float(v) for v in rng.normal(0, 0.15, 2))
    vign = np.clip(1 - clip.vignette * ((_X - lx) ** 2 + (_Y - ly) ** 2), 0.15, 1)
    img = img * (clip.gains * np.float32(rng.uniform(0.9, 1.1))) * vign[..., None]
    # highlight on the dome (towards the light), then a few on the wet mucosa
    cx, cy = tx * 0.75, ty * 0.75
    spots = [(cx, cy, 0.05 * scale * radius / 0.34)]
    spots += [
        (*(float(v) for v in rng.uniform(-0.9, 0.9, 2)), float(rng.uniform(0.01, 0.035)))
        for _ in range(int(rng.integers(2, 7)))
    ]
    spec = sum(np.exp(-((_X - sx) ** 2 + (_Y - sy) ** 2) / (w * w)) for sx, sy, w in spots)
    img = img + 255 * np.clip(spec, 0, 1)[..., None] * 0.9
    if rng.random() < 0.12:  # a fold edge or the instrument covers part of the view
        a = float(rng.uniform(0, 2 * np.pi))
        side = _sigmoid(((_X * np.cos(a) + _Y * np.sin(a)) - float(rng.uniform(0.35, 0.75))) / 0.05)
        img = (
            img * (1 - 0.8 * side[..., None])
            + np.array([60, 20, 20], np.float32) * 0.8 * side[..., None]
        )
    if rng.random() < 0.3:
        img = motion_blur(img, int(rng.integers(3, 12)), float(rng.uniform(0, np.pi)))
    corner = (np.abs(_X) + np.abs(_Y) > 1.6) | (np.abs(_X) > 0.985) | (np.abs(_Y) > 0.985)
    img[corner] = 0
    small = Image.fromarray(to_uint8(img)).resize((IMAGE_SIZE, IMAGE_SIZE), Image.LANCZOS)
    arr = np.asarray(small, np.float32) + rng.normal(0, 3, (IMAGE_SIZE, IMAGE_SIZE, 3))
    return Image.fromarray(to_uint8(arr))


def generate_polyp(
    root: Path, seed: int, identities: int = DEFAULT_IDENTITIES, *, progress: bool = True
) -> dict[str, Any]:
    """Write the dataset into the existing folder ``root``; return its statistics."""
    import pandas as pd

    polyps = make_polyps(seed, identities)
    bar = progress_bar(
        total=identities * 2 * FRAMES_PER_CLIP,
        desc="synthetic-polyp: generating",
        unit="img",
        leave=False,
        mininterval=0.5,
        enabled=progress,
    )
    with bar:
        for i, p in enumerate(polyps):
            for screening in (1, 2):
                clip = make_clip(seed, i, screening)
                folder = root / p.name / str(screening)
                folder.mkdir(parents=True)
                start = int(rng_for(seed, 23, i, screening).integers(100, 9000))
                for f in range(FRAMES_PER_CLIP):
                    img = render_frame(p, clip, f, rng_for(seed, 24, i, screening, f))
                    save_jpeg(img, folder / f"{start + 3 * f:05d}.jpg")
                    bar.update()
    frame = pd.DataFrame({"id": [p.name for p in polyps], "Eng_text": [p.text for p in polyps]})
    write_xlsx(root / SHEET_FILE, frame)
    return {
        "polyps": identities,
        "frames_per_clip": FRAMES_PER_CLIP,
        "images": identities * 2 * FRAMES_PER_CLIP,
        "distinct_texts": len({p.text for p in polyps}),
        "image_size": [IMAGE_SIZE, IMAGE_SIZE],
    }
