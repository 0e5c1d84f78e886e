"""``synthetic-person``: procedural pedestrians in the Market-1501 layout, with captions.

Output (:func:`generate_person`), for ``identities`` = N (default 100):

- ``bounding_box_train/``: N identities x 8 images, each identity in 2-4 of the 6 cameras;
- ``bounding_box_test/``: N other identities, each in 2-5 cameras with 1-3 images per camera,
  plus N/2 junk images (pid ``-1``: bad crops of test identities) and N/2 distractors
  (pid ``0000``: background or fragments of people who are no identity);
- ``query/``: one image per (test identity, camera) for up to 3 of its cameras, never the same
  image as a gallery one;
- ``captions.json``: one caption per image, keyed by file name.

Images are 128x64 JPEG named exactly as Market's (``PPPP_cCsS_FFFFFF_BB.jpg``).

What makes identity learnable but not trivial: a figure with head/hair, torso (colour shade,
plain/striped/logo pattern, sleeves), legs (trousers/shorts/skirt), shoes and an optional
backpack/handbag/shoulder bag, seen from the front/back/side (a backpack shows from the back and
side, a logo only from the front), under per-camera colour casts, brightness, contrast, blur,
background clutter, scale, shifts, small rotations and occasional occlusion. About 60% of the
identities belong to look-alike families (2-3 people wearing the same clothes who differ in
gender, age, hair and bag), so the image alone confuses them while the text (age and gender
words, the bag) separates them. Captions mention a random subset of the attributes with coarse
colour words (the image has identity-specific shades), in several sentence forms with synonyms;
about 10% of captions get one attribute wrong.

Domains (``synthetic.domain`` = d, default 0) give a built-in source -> target gap for
domain-generalisation experiments. Domain 0 is the look described above, byte-identical to the
datasets made before domains existed. A domain d > 0 (its :class:`Domain`, drawn from
(seed, d) by :func:`make_domain`) changes:

- cameras: one colour cast shared by all its cameras (per-channel gains up to about +-16%), the
  brightness offset (mean +-8..20), the contrast range (lower or higher), stronger blur and
  noise;
- light: a gamma (0.75-0.9 or 1.12-1.3) and a side light, a brightness ramp of +-15-30% across
  the image in a direction of each camera's own;
- backgrounds: the wall colours (another brightness range and a colour tint), the floor's
  darkening, a stronger and finer wall texture and more or less clutter;
- the clothing palette: the RGB shade behind every colour word moves (hue rotated by 3-12
  degrees, saturation scaled by 0.7-0.85 or 1.1-1.25, value by 0.85-1.1; black/white/grey get
  another lightness and a faint tint; shoes, bags and caps too, hair and skin keep theirs), so
  a caption's colour word still names the clothes;
- the people: the identity, stranger and image generators mix in d, so no person of domain d is
  one of another domain's.

Layout, image size, counts, file names, pids and caption forms are the same for every domain
of a seed (the split plan does not depend on d).
"""

from __future__ import annotations

import colorsys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from bench.data.synthetic.render import rng_for, save_jpeg, smooth_field, write_json
from bench.progress import progress as progress_bar

IMAGE_H, IMAGE_W = 128, 64
_SS = 2  # supersampling: draw at 2x, downsample
_H, _W = IMAGE_H * _SS, IMAGE_W * _SS
CAMERAS = 6
DEFAULT_IDENTITIES = 100
TRAIN_IMAGES_PER_ID = 8
MAX_QUERY_CAMERAS = 3
CAPTION_NOISE = 0.1
CAPTIONS_FILE = "captions.json"

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (200, 35, 40),
    "blue": (45, 75, 185),
    "green": (45, 140, 65),
    "yellow": (230, 200, 45),
    "white": (232, 232, 228),
    "black": (32, 32, 36),
    "grey": (128, 128, 130),
    "purple": (115, 55, 150),
    "pink": (238, 135, 170),
    "orange": (238, 130, 35),
    "brown": (115, 78, 45),
}
UPPER_COLOURS = (
    "red",
    "blue",
    "green",
    "yellow",
    "white",
    "black",
    "grey",
    "purple",
    "pink",
    "orange",
)
LOWER_COLOURS = ("blue", "black", "grey", "brown", "white", "green")
LOWER_P = (0.3, 0.25, 0.15, 0.12, 0.08, 0.1)
SHOE_COLOURS = ("black", "white", "brown")
BAG_COLOURS = ("black", "brown", "red", "blue", "grey")
HAIR: dict[str, tuple[int, int, int]] = {
    "black": (28, 22, 22),
    "brown": (98, 62, 36),
    "blond": (212, 182, 108),
    "grey": (168, 166, 160),
}
ACHROMATIC = ("white", "black", "grey")
SKIN = ((238, 200, 170), (212, 162, 122), (162, 112, 78), (104, 68, 48))
VIEWS = ("front", "back", "left", "right")


@dataclass(frozen=True)
class Person:
    """The attributes of one identity (colour words plus the exact shades drawn)."""

    gender: str
    age: str
    skin: tuple[int, int, int]
    hair_colour: str
    hair_long: bool
    hat: str | None
    upper_colour: str
    upper_rgb: tuple[int, int, int]
    pattern: str
    pattern_rgb: tuple[int, int, int]
    sleeves: str
    lower_colour: str
    lower_rgb: tuple[int, int, int]
    lower_type: str
    shoes: str
    bag: str
    bag_colour: str
    width: float
    shoe_rgb: tuple[int, int, int]
    bag_rgb: tuple[int, int, int]
    hat_rgb: tuple[int, int, int] | None


@dataclass(frozen=True)
class Camera:
    """One camera: its scene and its photometric rendering."""

    gains: tuple[float, float, float]
    brightness: float
    contrast: float
    blur: float
    noise: float
    wall: tuple[float, float, float]
    floor: tuple[float, float, float]
    horizon: float
    view_p: tuple[float, float, float, float]
    texture: float = 14
    texture_freq: tuple[float, float] = (3, 12)
    clutter: tuple[int, int] = (1, 6)
    gamma: float = 1.0
    light: float = 0.0
    light_angle: float = 0.0


@dataclass(frozen=True)
class Domain:
    """How one domain renders: its clothing palette (colour word -> base shade), the ranges its
    cameras are drawn from, its light and its background statistics."""

    index: int
    palette: Mapping[str, tuple[int, int, int]]
    cast: tuple[float, float, float] = (1.0, 1.0, 1.0)
    brightness: float = 0
    contrast: tuple[float, float] = (0.85, 1.1)
    blur: tuple[float, float] = (0.0, 0.5)
    noise: tuple[float, float] = (2, 6)
    wall: tuple[float, float] = (60, 200)
    wall_tint: tuple[float, float, float] = (1.0, 1.0, 1.0)
    floor: tuple[float, float] = (0.5, 0.9)
    texture: float = 14
    texture_freq: tuple[float, float] = (3, 12)
    clutter: tuple[int, int] = (1, 6)
    gamma: float = 1.0
    light: float = 0.0


#: The original look; its defaults are the constants the generator used before domains.
DOMAIN_0 = Domain(0, COLOURS)


def _direction(rng: np.random.Generator, size: float) -> tuple[float, float, float]:
    """Per-channel gains ``1 + size * v`` for a random zero-mean unit vector ``v`` (a tint)."""
    v = rng.normal(size=3)
    v -= v.mean()
    return tuple((1 + size * v / np.linalg.norm(v)).tolist())  # type: ignore[return-value]


def _either(rng: np.random.Generator, low: tuple[float, float], high: tuple[float, float]):
    """A uniform draw from ``low`` or from ``high`` (a coin decides): away from domain 0's."""
    return float(rng.uniform(*(low if rng.random() < 0.5 else high)))


def _palette(rng: np.random.Generator) -> dict[str, tuple[int, int, int]]:
    """Domain shades: hues rotated a little, saturation and value rescaled, so every colour word
    still names its shade; black, white and grey get another lightness and a faint tint."""
    rotation = float(rng.choice((-1, 1)) * rng.uniform(5, 10))
    saturation = _either(rng, (0.7, 0.85), (1.1, 1.25))
    out = {}
    for word, rgb in COLOURS.items():
        h, s, v = colorsys.rgb_to_hsv(*(c / 255 for c in rgb))
        if word in ACHROMATIC:
            h, s = float(rng.uniform(0, 1)), float(rng.uniform(0.02, 0.08))
            v = min(1.0, v * float(rng.uniform(0.8, 1.2)) + 0.04 * (word == "black"))
        else:
            h = (h + (rotation + float(rng.uniform(-2, 2))) / 360) % 1
            s = min(1.0, s * saturation)
            v = min(1.0, v * float(rng.uniform(0.85, 1.1)))
        out[word] = tuple(round(255 * c) for c in colorsys.hsv_to_rgb(h, s, v))
    return out  # type: ignore[return-value]


def make_domain(seed: int, domain: int) -> Domain:
    """Domain ``domain``'s rendering, drawn deterministically from (seed, domain); 0 is
    :data:`DOMAIN_0`."""
    if domain == 0:
        return DOMAIN_0
    rng = rng_for(seed, 5, domain)
    blur = float(rng.uniform(0.4, 0.8))
    noise = float(rng.uniform(4, 7))
    wall = float(rng.uniform(20, 120))
    floor = float(rng.uniform(0.35, 0.7))
    fmin = float(rng.uniform(6, 10))
    clutter = int(rng.integers(3, 6))
    return Domain(
        index=domain,
        palette=_palette(rng),
        cast=_direction(rng, float(rng.uniform(0.12, 0.2))),
        brightness=float(rng.choice((-1, 1)) * rng.uniform(8, 20)),
        contrast=(lo := _either(rng, (0.65, 0.75), (1.1, 1.2)), lo + 0.15),
        blur=(blur, blur + 0.6),
        noise=(noise, noise + float(rng.uniform(3, 6))),
        wall=(wall, wall + float(rng.uniform(60, 110))),
        wall_tint=_direction(rng, float(rng.uniform(0.1, 0.25))),
        floor=(floor, floor + 0.3),
        texture=float(rng.uniform(24, 40)),
        texture_freq=(fmin, fmin + float(rng.uniform(10, 16))),
        clutter=(clutter, clutter + 5) if rng.random() < 0.5 else (0, 3),
        gamma=_either(rng, (0.75, 0.9), (1.12, 1.3)),
        light=float(rng.uniform(0.15, 0.3)),
    )


def _shade(
    rng: np.random.Generator,
    name: str,
    jitter: float,
    palette: Mapping[str, tuple[int, int, int]] = COLOURS,
) -> tuple[int, int, int]:
    base = np.asarray(palette[name], float)
    scale = jitter * (0.5 if name in ("black", "white") else 1.0)
    return tuple(int(v) for v in np.clip(base + rng.normal(0, scale, 3), 0, 255))  # type: ignore[return-value]


def _pick(rng: np.random.Generator, options: Sequence[Any], p: Sequence[float] | None = None):
    return options[int(rng.choice(len(options), p=p))]


def make_people(
    rng: np.random.Generator, n: int, palette: Mapping[str, tuple[int, int, int]] = COLOURS
) -> list[Person]:
    """``n`` identities in look-alike families of 1-3 that share their clothes, in the shades
    of ``palette``."""
    people: list[Person] = []
    while len(people) < n:
        upper = _pick(rng, UPPER_COLOURS)
        pattern = _pick(rng, ("plain", "striped", "logo"), (0.45, 0.3, 0.25))
        dark = upper in ("black", "blue", "purple", "green", "red", "grey")
        pattern_colour = _pick(rng, ("white", "yellow")) if dark else _pick(rng, ("black", "blue"))
        clothes = dict(
            upper_colour=upper,
            upper_rgb=_shade(rng, upper, 28, palette),
            pattern=pattern,
            pattern_rgb=_shade(rng, pattern_colour, 10, palette),
            sleeves=_pick(rng, ("short", "long")),
            lower_colour=(lower := _pick(rng, LOWER_COLOURS, LOWER_P)),
            lower_rgb=_shade(rng, lower, 22, palette),
            lower_type=_pick(rng, ("trousers", "shorts"), (0.75, 0.25)),
            shoes=_pick(rng, SHOE_COLOURS),
        )
        for _ in range(min(_pick(rng, (1, 2, 3), (0.6, 0.3, 0.1)), n - len(people))):
            people.append(_member(rng, clothes, palette))
    return people


def _member(
    rng: np.random.Generator, clothes: dict[str, Any], palette: Mapping[str, tuple[int, int, int]]
) -> Person:
    gender = _pick(rng, ("man", "woman"))
    age = _pick(rng, ("young", "middle-aged", "elderly"), (0.45, 0.35, 0.2))
    if age == "elderly" and rng.random() < 0.7:
        hair = "grey"
    else:
        hair = _pick(rng, ("black", "brown", "blond"), (0.55, 0.3, 0.15))
    lower_type = clothes["lower_type"]
    if gender == "woman" and rng.random() < 0.35:
        lower_type = "skirt"
    skin = SKIN[int(rng.integers(len(SKIN)))]
    hair_long = bool(rng.random() < (0.75 if gender == "woman" else 0.1))
    hat = _pick(rng, ("black", "red", "blue", "white")) if rng.random() < 0.12 else None
    bag = _pick(rng, ("none", "backpack", "handbag", "shoulder bag"), (0.4, 0.3, 0.15, 0.15))
    bag_colour = _pick(rng, BAG_COLOURS)
    return Person(
        gender=gender,
        age=age,
        skin=skin,
        hair_colour=hair,
        hair_long=hair_long,
        hat=hat,
        upper_colour=clothes["upper_colour"],
        upper_rgb=clothes["upper_rgb"],
        pattern=clothes["pattern"],
        pattern_rgb=clothes["pattern_rgb"],
        sleeves=clothes["sleeves"],
        lower_colour=clothes["lower_colour"],
        lower_rgb=clothes["lower_rgb"],
        lower_type=lower_type,
        shoes=clothes["shoes"],
        bag=bag,
        bag_colour=bag_colour,
        width=float((1.0 if gender == "man" else 0.86) + rng.normal(0, 0.05)),
        shoe_rgb=palette[clothes["shoes"]],
        bag_rgb=palette[bag_colour],
        hat_rgb=None if hat is None else palette[hat],
    )


def make_cameras(
    rng: np.random.Generator, n: int = CAMERAS, domain: Domain = DOMAIN_0
) -> list[Camera]:
    """``n`` cameras drawn from ``domain``'s ranges (domain 0: exactly the original draws)."""
    cams = []
    for _ in range(n):
        front, back, side = rng.dirichlet((1.5, 1.5, 1.5))
        wall = rng.uniform(*domain.wall, 3) * np.asarray(domain.wall_tint)
        gains = np.clip(1 + rng.normal(0, 0.05, 3), 0.85, 1.15) * np.asarray(domain.cast)
        cams.append(
            Camera(
                gains=tuple(gains.tolist()),  # type: ignore[arg-type]
                brightness=float(rng.normal(domain.brightness, 8)),
                contrast=float(rng.uniform(*domain.contrast)),
                blur=float(rng.uniform(*domain.blur)),
                noise=float(rng.uniform(*domain.noise)),
                wall=tuple(wall.tolist()),  # type: ignore[arg-type]
                floor=tuple((wall * rng.uniform(*domain.floor)).tolist()),  # type: ignore[arg-type]
                horizon=float(rng.uniform(0.45, 0.75)),
                view_p=(front, back, side / 2, side / 2),
                texture=domain.texture,
                texture_freq=domain.texture_freq,
                clutter=domain.clutter,
                gamma=domain.gamma,
                light=domain.light,
                light_angle=float(rng.uniform(0, 2 * np.pi)) if domain.light else 0.0,
            )
        )
    return cams


# ---------------------------------------------------------------------------------------------
# drawing

_YY, _XX = np.mgrid[0 : _H // 8, 0 : _W // 8] / (_H // 8)


def _background(cam: Camera, rng: np.random.Generator) -> Image.Image:
    # Low-resolution field, upsampled: cheap and smooth.
    horizon = cam.horizon + rng.uniform(-0.08, 0.08)
    wall = np.asarray(cam.wall) * (1 + rng.normal(0, 0.08, 3))
    floor = np.asarray(cam.floor) * (1 + rng.normal(0, 0.08, 3))
    t = 1 / (1 + np.exp(-(_YY - horizon) / 0.015))
    bg = wall * (1 - t[..., None]) + floor * t[..., None]
    bg += cam.texture * smooth_field(rng, _XX, _YY, 3, *cam.texture_freq)[..., None]
    img = Image.fromarray(np.clip(bg, 0, 255).astype(np.uint8)).resize((_W, _H), Image.BILINEAR)
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(*cam.clutter))):  # clutter: poles, signs, windows, bins
        x0, y0 = rng.uniform(-0.2, 1.0) * _W, rng.uniform(-0.1, 0.9) * _H
        w, h = rng.uniform(0.05, 0.35) * _W, rng.uniform(0.05, 0.45) * _H
        fill = 0.45 * rng.integers(0, 256, 3) + 0.55 * wall  # muted, like real clutter
        draw.rectangle((x0, y0, x0 + w, y0 + h), fill=tuple(int(v) for v in np.clip(fill, 0, 255)))
    return img


def _dim(rgb: Sequence[int], f: float) -> tuple[int, int, int]:
    return tuple(int(v * f) for v in rgb)  # type: ignore[return-value]


def _limb(d: ImageDraw.ImageDraw, p0, p1, width: float, fill) -> None:
    w = max(1, round(width))
    d.line((p0, p1), fill=fill, width=w)
    r = w / 2
    for x, y in (p0, p1):
        d.ellipse((x - r, y - r, x + r, y + r), fill=fill)


def _draw_person(
    d: ImageDraw.ImageDraw, p: Person, view: str, cx: float, top: float, u: float, stride: float
) -> None:
    """Draw ``p`` facing the camera (front), away (back) or to the right (side views are
    mirrored afterwards for 'left')."""
    side = view in ("left", "right")
    head_y, sh, waist = top + 0.6 * u, top + 1.3 * u, top + 3.9 * u
    ankle, bottom = top + 7.55 * u, top + 8.0 * u
    tw = (0.58 if side else 0.95) * u * p.width
    upper, lower, skin = p.upper_rgb, p.lower_rgb, p.skin
    hair = HAIR[p.hair_colour]
    bag_rgb, shoe_rgb = p.bag_rgb, p.shoe_rgb
    sleeve_end = 0.45 if p.sleeves == "short" else 1.0
    leg_w = 0.55 * u * p.width
    torso = [(cx - tw, sh), (cx + tw, sh), (cx + 0.85 * tw, waist), (cx - 0.85 * tw, waist)]

    def arm(shoulder, hand, shade: float) -> None:
        elbow = (
            shoulder[0] + (hand[0] - shoulder[0]) * sleeve_end,
            shoulder[1] + (hand[1] - shoulder[1]) * sleeve_end,
        )
        _limb(d, shoulder, hand, 0.42 * u, _dim(skin, shade))
        _limb(d, shoulder, elbow, 0.46 * u, _dim(upper, shade))

    def leg(hip, foot, shade: float) -> None:
        _limb(d, hip, foot, leg_w, _dim(skin, shade))
        if p.lower_type == "trousers":
            _limb(d, hip, foot, leg_w * 1.05, _dim(lower, shade))
        elif p.lower_type == "shorts":
            knee = (hip[0] + (foot[0] - hip[0]) * 0.35, hip[1] + (foot[1] - hip[1]) * 0.35)
            _limb(d, hip, knee, leg_w * 1.15, _dim(lower, shade))
        fx = foot[0] + (0.25 * u if side else 0)
        d.ellipse(
            (fx - 0.38 * u, foot[1] - 0.12 * u, fx + 0.38 * u, bottom), fill=_dim(shoe_rgb, shade)
        )

    def skirt() -> None:
        w0, w1 = 0.9 * tw, (1.15 if side else 1.3) * tw
        d.polygon(
            [
                (cx - w0, waist - 0.1 * u),
                (cx + w0, waist - 0.1 * u),
                (cx + w1, waist + 1.7 * u),
                (cx - w1, waist + 1.7 * u),
            ],
            fill=lower,
        )

    def stripes() -> None:
        y = sh + 0.35 * u
        while y < waist - 0.15 * u:
            f = (y - sh) / (waist - sh)
            w = tw * (1 - 0.15 * f)
            d.line(((cx - w, y), (cx + w, y)), fill=p.pattern_rgb, width=max(1, round(0.2 * u)))
            y += 0.5 * u

    def head(back: bool) -> None:
        d.rectangle((cx - 0.17 * u, head_y, cx + 0.17 * u, sh + 0.1 * u), fill=skin)
        box = (cx - 0.42 * u, head_y - 0.55 * u, cx + 0.42 * u, head_y + 0.55 * u)
        d.ellipse(box, fill=hair if back else skin)
        big = (box[0] - 0.05 * u, box[1] - 0.06 * u, box[2] + 0.05 * u, box[3])
        if not back:
            d.chord(big, 110 if side else 180, 330 if side else 360, fill=hair)
        if p.hat_rgb is not None:
            d.chord(big, 180, 360, fill=p.hat_rgb)
            d.line(
                (
                    (cx - 0.5 * u, head_y - 0.05 * u),
                    (cx + (0.8 if side else 0.5) * u, head_y - 0.05 * u),
                ),
                fill=p.hat_rgb,
                width=max(1, round(0.12 * u)),
            )

    def long_hair(x0: float, x1: float) -> None:
        if p.hair_long:
            d.rectangle((x0, head_y - 0.1 * u, x1, sh + 0.9 * u), fill=hair)

    if side:
        s = 0.35 * stride
        hip = (cx, waist + 0.2 * u)
        shoulder = (cx, sh + 0.25 * u)
        arm(shoulder, (cx - np.sin(s) * 2.5 * u, shoulder[1] + np.cos(s) * 2.5 * u), 0.75)
        leg(hip, (cx - np.sin(s) * 3.6 * u, ankle), 0.8)
        long_hair(cx - 0.55 * u, cx + 0.05 * u)
        if p.lower_type == "skirt":
            skirt()
        leg(hip, (cx + np.sin(s) * 3.6 * u, ankle), 1.0)
        d.polygon(torso, fill=upper)
        if p.pattern == "striped":
            stripes()
        if p.bag == "backpack":
            d.rounded_rectangle(
                (cx - tw - 0.55 * u, sh + 0.25 * u, cx - tw + 0.1 * u, waist - 0.4 * u),
                radius=0.2 * u,
                fill=bag_rgb,
            )
        hand = (cx + np.sin(s) * 2.5 * u, shoulder[1] + np.cos(s) * 2.5 * u)
        if p.bag == "shoulder bag":
            d.line((shoulder, (cx, waist)), fill=_dim(bag_rgb, 0.8), width=max(1, round(0.12 * u)))
            d.rectangle(
                (cx - 0.35 * u, waist - 0.5 * u, cx + 0.45 * u, waist + 0.3 * u), fill=bag_rgb
            )
        arm(shoulder, hand, 1.0)
        if p.bag == "handbag":
            d.rectangle(
                (hand[0] - 0.3 * u, hand[1], hand[0] + 0.3 * u, hand[1] + 0.6 * u), fill=bag_rgb
            )
        head(False)
        return

    back = view == "back"
    dx = 0.12 * u * stride
    if not back:
        long_hair(cx - 0.5 * u, cx + 0.5 * u)
    for sgn in (-1, 1):
        hip = (cx + sgn * 0.42 * u * p.width, waist + 0.2 * u)
        leg(hip, (hip[0] + sgn * dx, ankle), 1.0)
    if p.lower_type == "skirt":
        skirt()
    elif p.lower_type in ("trousers", "shorts"):
        d.rectangle((cx - 0.85 * tw, waist - 0.1 * u, cx + 0.85 * tw, waist + 0.5 * u), fill=lower)
    for sgn in (-1, 1):
        shoulder = (cx + sgn * (tw - 0.05 * u), sh + 0.2 * u)
        arm(shoulder, (shoulder[0] + sgn * 0.2 * u - sgn * dx, sh + 2.6 * u), 1.0)
    d.polygon(torso, fill=upper)
    if p.pattern == "striped":
        stripes()
    elif p.pattern == "logo" and not back:
        d.ellipse((cx - 0.32 * u, sh + 0.6 * u, cx + 0.32 * u, sh + 1.25 * u), fill=p.pattern_rgb)
    strap_w = max(1, round(0.14 * u))
    if p.bag == "shoulder bag":
        d.line(((cx - 0.7 * tw, sh), (cx + 0.8 * tw, waist - 0.2 * u)), fill=bag_rgb, width=strap_w)
        d.rectangle((cx + 0.7 * tw, waist - 0.6 * u, cx + 1.3 * tw, waist + 0.3 * u), fill=bag_rgb)
    if p.bag == "backpack":
        if back:
            d.rounded_rectangle(
                (cx - 0.75 * tw, sh + 0.2 * u, cx + 0.75 * tw, waist - 0.3 * u),
                radius=0.25 * u,
                fill=bag_rgb,
            )
        else:
            for sgn in (-1, 1):
                d.line(
                    ((cx + sgn * 0.55 * tw, sh), (cx + sgn * 0.6 * tw, sh + 1.4 * u)),
                    fill=bag_rgb,
                    width=strap_w,
                )
    head(back)
    if back:
        long_hair(cx - 0.5 * u, cx + 0.5 * u)
    if p.bag == "handbag":
        hx = cx + tw + 0.2 * u
        d.rectangle((hx - 0.3 * u, sh + 2.5 * u, hx + 0.35 * u, sh + 3.1 * u), fill=bag_rgb)


def render_person(
    person: Person | None, cam: Camera, rng: np.random.Generator, crop: bool = False
) -> Image.Image:
    """One 128x64 image of ``person`` (``None``: background only) through ``cam``; ``crop``
    makes a bad detection (a box around a part of the figure), as Market's junk images are."""
    img = _background(cam, rng).convert("RGBA")
    if person is not None:
        layer = Image.new("RGBA", (_W, _H), (0, 0, 0, 0))
        height = rng.uniform(0.8, 0.96) * _H
        u = height / 8
        cx = _W / 2 + rng.uniform(-0.08, 0.08) * _W
        top = rng.uniform(0.02, 0.98) * (_H - height)
        view = VIEWS[int(rng.choice(4, p=cam.view_p))]
        _draw_person(ImageDraw.Draw(layer), person, view, cx, top, u, float(rng.uniform(-1, 1)))
        if view == "left":
            layer = layer.transpose(Image.FLIP_LEFT_RIGHT)
        layer = layer.rotate(float(rng.normal(0, 2.5)), Image.BILINEAR, center=(cx, top + height))
        img = Image.alpha_composite(img, layer)
    if rng.random() < 0.1:  # occlusion by a passer-by's bag, a pole, a bin
        draw = ImageDraw.Draw(img)
        x0 = rng.uniform(-0.3, 0.8) * _W
        y0 = rng.uniform(0.3, 0.8) * _H
        fill = (*(int(v) for v in rng.integers(0, 256, 3)), 255)
        draw.rectangle((x0, y0, x0 + rng.uniform(0.2, 0.5) * _W, _H), fill=fill)
    img = img.convert("RGB")
    if crop:
        w, h = rng.uniform(0.35, 0.7) * _W, rng.uniform(0.3, 0.6) * _H
        x0, y0 = rng.uniform(-0.1, 1.0) * (_W - w), rng.uniform(0, 1.0) * (_H - h)
        img = img.crop((round(x0), round(y0), round(x0 + w), round(y0 + h))).resize((_W, _H))
    img = img.resize((IMAGE_W, IMAGE_H), Image.LANCZOS)
    arr = np.asarray(img, dtype=np.float32)
    contrast = cam.contrast * rng.uniform(0.92, 1.08)
    gains = np.asarray(cam.gains) * rng.uniform(0.97, 1.03, 3)
    arr = ((arr - 128) * contrast + 128 + cam.brightness + rng.normal(0, 8)) * gains
    if cam.light or cam.gamma != 1.0:  # never for domain 0
        arr = _relight(arr, cam)
    arr += rng.normal(0, cam.noise, arr.shape)
    out = Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8))
    radius = cam.blur + rng.uniform(0, 0.5)
    return out.filter(ImageFilter.GaussianBlur(radius)) if radius > 0.3 else out


_RAMP_Y, _RAMP_X = np.mgrid[-1 : 1 : IMAGE_H * 1j, -1 : 1 : IMAGE_W * 1j]


def _relight(arr: np.ndarray, cam: Camera) -> np.ndarray:
    """A side light (a brightness ramp towards ``cam.light_angle``) and ``cam.gamma``."""
    a = cam.light_angle
    ramp = 1 + cam.light * (np.cos(a) * _RAMP_X + np.sin(a) * _RAMP_Y) / np.sqrt(2)
    lit = np.clip(arr * ramp[..., None].astype(np.float32), 0, 255)
    return 255 * (lit / 255) ** cam.gamma


# ---------------------------------------------------------------------------------------------
# captions


def _a(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def _verb(clause: str) -> str:
    """``with a backpack`` -> ``has a backpack``, ``carrying ...`` -> ``is carrying ...``."""
    return "has " + clause[5:] if clause.startswith("with ") else "is " + clause


def caption(p: Person, rng: np.random.Generator, noise: float = CAPTION_NOISE) -> str:
    """One paraphrased description of ``p`` mentioning a random subset of its attributes;
    with probability ``noise`` one attribute is wrong."""
    a = {
        "gender": p.gender,
        "age": p.age,
        "hair_colour": p.hair_colour,
        "upper_colour": p.upper_colour,
        "lower_colour": p.lower_colour,
        "bag": p.bag,
    }
    if rng.random() < noise:
        key = _pick(rng, sorted(a))
        pool = {
            "gender": ("man", "woman"),
            "age": ("young", "middle-aged", "elderly"),
            "hair_colour": tuple(HAIR),
            "upper_colour": UPPER_COLOURS,
            "lower_colour": LOWER_COLOURS,
            "bag": ("none", "backpack", "handbag", "shoulder bag"),
        }[key]
        a[key] = _pick(rng, [v for v in pool if v != a[key]])
    man = a["gender"] == "man"
    nouns = ["man", "male pedestrian", "guy"] if man else ["woman", "female pedestrian", "lady"]
    if a["age"] == "elderly":
        nouns += ["gentleman" if man else "older lady"]
    noun = _pick(rng, nouns)
    age_word = {
        "young": ["young"],
        "middle-aged": ["middle-aged"],
        "elderly": ["elderly", "old", "older"],
    }[a["age"]]
    subject = noun if "old" in noun or rng.random() > 0.6 else f"{_pick(rng, age_word)} {noun}"

    hair = f"{'long' if p.hair_long else 'short'} {a['hair_colour']} hair"
    if p.hat is not None and rng.random() < 0.7:
        hair += f" and {_a(p.hat)} cap"
    tops = (
        ["jacket", "sweater", "long-sleeved shirt", "coat"]
        if p.sleeves == "long"
        else ["t-shirt", "short-sleeved shirt", "top", "tee"]
    )
    top = _pick(rng, tops)
    uc, lc = _a(a["upper_colour"]), a["lower_colour"]
    uppers = {
        "striped": [f"{uc} striped {top}", f"{uc} {top} with stripes"],
        "logo": [f"{uc} {top} with a logo", f"{uc} {top} with a print"],
    }
    upper = _pick(rng, uppers.get(p.pattern, [f"{uc} {top}", f"{uc} plain {top}"]))
    lowers = {
        "skirt": [f"{_a(lc)} skirt", f"{_a(lc)} knee-length skirt"],
        "shorts": [f"{lc} shorts", f"a pair of {lc} shorts"],
    }
    trousers = [f"{lc} trousers", f"{lc} pants"] + (["blue jeans"] if lc == "blue" else [])
    lower = _pick(rng, lowers.get(p.lower_type, trousers))
    shoes = _pick(rng, [f"{p.shoes} shoes", f"{p.shoes} sneakers"])
    bag = {
        "backpack": [
            "carrying a backpack",
            f"with {_a(p.bag_colour)} backpack",
            "wearing a backpack",
        ],
        "handbag": ["holding a handbag", f"carrying {_a(p.bag_colour)} handbag"],
        "shoulder bag": [
            "with a bag over the shoulder",
            f"carrying {_a(p.bag_colour)} shoulder bag",
        ],
        "none": ["carrying nothing", "with empty hands"],
    }[a["bag"]]
    bag_clause = _pick(rng, bag) if rng.random() < (0.8 if a["bag"] != "none" else 0.15) else None

    clothes = [
        c
        for c, keep in (
            (upper, rng.random() < 0.9),
            (lower, rng.random() < 0.75),
            (shoes, rng.random() < 0.25),
        )
        if keep
    ]
    hair_clause = f"with {hair}" if rng.random() < 0.5 else None
    if not (clothes or hair_clause or bag_clause):
        clothes = [upper]
    worn = (
        (", ".join(clothes[:-1]) + " and " + clothes[-1]) if len(clothes) > 1 else "".join(clothes)
    )
    form = int(rng.integers(3))
    if form == 0:
        clauses = [
            c
            for c in (
                hair_clause,
                f"{_pick(rng, ['wearing', 'dressed in', 'in'])} {worn}" if worn else None,
                bag_clause,
            )
            if c
        ]
        opening = _pick(rng, [_a(subject).capitalize(), f"The {subject}", f"This {subject}"])
        text = f"{opening} {', '.join(clauses)}."
    elif form == 1:
        pron = "He" if man else "She"
        text = f"{_a(subject).capitalize()}."
        if worn:
            text += f" {pron} is wearing {worn}"
            text += f" and {_verb(bag_clause)}." if bag_clause else "."
        elif bag_clause:
            text += f" {pron} {_verb(bag_clause)}."
        if hair_clause:
            text += f" {pron} has {hair}."
    else:
        items = [subject, *([hair] if hair_clause else []), *clothes]
        if bag_clause and a["bag"] != "none":
            items.append(a["bag"])
        text = "Pedestrian: " + ", ".join(items) + "."
    return text.replace("  ", " ")


# ---------------------------------------------------------------------------------------------
# the dataset


def _market_name(pid: int, cam: int, seq: int, frame: int, bbox: int) -> str:
    p = "-1" if pid == -1 else f"{pid:04d}"
    return f"{p}_c{cam}s{seq}_{frame:06d}_{bbox:02d}.jpg"


def generate_person(
    root: Path,
    seed: int,
    identities: int = DEFAULT_IDENTITIES,
    *,
    domain: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Write domain ``domain`` of the dataset into the existing folder ``root``; return its
    statistics."""
    style = make_domain(seed, domain)
    mix = (domain,) if domain else ()  # domain 0 keeps the original generators
    plan_rng = rng_for(seed, 0)  # the same plan (names, pids, cameras) in every domain
    people = make_people(rng_for(seed, 1, *mix), 2 * identities, style.palette)
    cameras = make_cameras(rng_for(seed, 2, *mix), domain=style)
    pids = plan_rng.permutation(np.arange(1, 2 * identities + 1))
    train_pids = sorted(int(p) for p in pids[:identities])
    test_pids = sorted(int(p) for p in pids[identities:])
    who = dict(zip(train_pids + test_pids, people))

    counters: dict[tuple[int, int], int] = {}

    def name(pid: int, cam: int) -> str:
        seq = int(plan_rng.integers(1, 7))
        frame = counters.get((cam, seq), int(plan_rng.integers(1, 200))) + int(
            plan_rng.integers(5, 80)
        )
        counters[(cam, seq)] = frame
        return _market_name(pid, cam + 1, seq, frame, int(plan_rng.integers(1, 4)))

    # (folder, pid in the file name, camera index, person drawn, bad crop)
    plan: list[tuple[str, int, int, Person | None, bool]] = []
    for pid in train_pids:
        cams = plan_rng.choice(CAMERAS, size=int(plan_rng.integers(2, 5)), replace=False)
        for i in range(TRAIN_IMAGES_PER_ID):
            plan.append(("bounding_box_train", pid, int(cams[i % len(cams)]), who[pid], False))
    for pid in test_pids:
        n_cams = int(plan_rng.choice([2, 3, 4, 5], p=[0.3, 0.35, 0.25, 0.1]))
        cams = sorted(int(c) for c in plan_rng.choice(CAMERAS, size=n_cams, replace=False))
        for cam in cams:
            for _ in range(int(plan_rng.integers(1, 4))):
                plan.append(("bounding_box_test", pid, cam, who[pid], False))
        for cam in sorted(
            plan_rng.choice(cams, size=min(n_cams, MAX_QUERY_CAMERAS), replace=False)
        ):
            plan.append(("query", pid, int(cam), who[pid], False))
    strangers = make_people(rng_for(seed, 3, *mix), max(1, identities // 2), style.palette)
    for i in range(max(1, identities // 2)):
        pid = test_pids[int(plan_rng.integers(len(test_pids)))]
        plan.append(("bounding_box_test", -1, int(plan_rng.integers(CAMERAS)), who[pid], True))
        stranger = strangers[i] if plan_rng.random() < 0.6 else None
        plan.append(("bounding_box_test", 0, int(plan_rng.integers(CAMERAS)), stranger, True))

    for folder in ("bounding_box_train", "bounding_box_test", "query"):
        (root / folder).mkdir()
    captions: dict[str, str] = {}
    for index, (folder, pid, cam, person, crop) in enumerate(
        progress_bar(
            plan,
            desc="synthetic-person: generating",
            unit="img",
            leave=False,
            mininterval=0.5,
            enabled=progress,
        )
    ):
        file_name = name(pid, cam)
        while file_name in captions:
            file_name = name(pid, cam)
        rng = rng_for(seed, 4, index, *mix)
        save_jpeg(render_person(person, cameras[cam], rng, crop), root / folder / file_name)
        if person is None:  # an empty detection: describe a stranger, as a noisy caption would
            person = strangers[int(rng.integers(len(strangers)))]
        captions[file_name] = caption(person, rng)
    write_json(root / CAPTIONS_FILE, captions)
    count = {f: sum(1 for p in plan if p[0] == f) for f in ("bounding_box_train", "query")}
    gallery = [p for p in plan if p[0] == "bounding_box_test"]
    return {
        "train_images": count["bounding_box_train"],
        "train_ids": len(train_pids),
        "query_images": count["query"],
        "gallery_images": len(gallery),
        "test_ids": len(test_pids),
        "junk_images": sum(1 for p in gallery if p[1] == -1),
        "distractor_images": sum(1 for p in gallery if p[1] == 0),
        "cameras": CAMERAS,
        "image_size": [IMAGE_H, IMAGE_W],
    }
