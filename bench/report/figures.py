"""Figures for ``bench report`` and ``bench leaderboard --plot`` (matplotlib, no display needed).

Figures are built with matplotlib's object API on the Agg canvas (no ``pyplot``, no global
backend switch), have fixed sizes in inches (multiples of 1/4, so ``inches x DPI`` is an exact
pixel count) and are saved at :data:`DPI` without a tight bounding box: a PNG's pixel size is
known in advance (:func:`ranked_list_size` etc.; the tests check it). Files are written
atomically (temp file, then rename).
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from bench.io import atomic_write

DPI = 100
CMC_SIZE = (7.0, 4.5)
TSNE_SIZE = (7.5, 6.5)
# Ranked lists: a query column, a gap, ``TOP_K`` gallery columns; one band per query.
TOP_K = 10
RANKED_WIDTH = 12.75
RANKED_HEADER = 0.75
RANKED_CELL = 1.0  # image width; images are at most RANKED_MAX_IMAGE tall
RANKED_MAX_IMAGE = 1.4
# Leaderboard figures: one band per dataset.
BARS_WIDTH = 9.0
LB_CMC_WIDTH = 8.0
LB_ROW = 4.0

MATCH_RGB = (44, 160, 44)  # green: same identity as the query
NON_MATCH_RGB = (214, 39, 40)  # red: another identity
QUERY_RGB = (60, 60, 60)
JUNK_GREY = "#9e9e9e"


def pixel_size(width_in: float, height_in: float) -> tuple[int, int]:
    """``(width, height)`` in pixels of a figure of this size saved at :data:`DPI`."""
    return int(width_in * DPI), int(height_in * DPI)


def ranked_image_height(aspect: float) -> float:
    """Height (inches) at which images of ``aspect`` (height / width) are drawn in ranked lists."""
    return min(RANKED_MAX_IMAGE, RANKED_CELL * aspect)


def ranked_row_height(aspect: float) -> float:
    """Height (inches) of one query's band: a 0.3 label strip, the images, 0.45 for the text,
    rounded up to a quarter inch."""
    return math.ceil((0.3 + ranked_image_height(aspect) + 0.45) * 4) / 4


def ranked_list_size(rows: int, aspect: float) -> tuple[int, int]:
    """Pixel size of :func:`ranked_list_figure` with ``rows`` queries whose (tallest) query
    image has ``aspect`` = height / width."""
    return pixel_size(RANKED_WIDTH, RANKED_HEADER + rows * ranked_row_height(aspect))


def leaderboard_size(kind: str, datasets: int) -> tuple[int, int]:
    """Pixel size of :func:`bars_figure` (``"bars"``) or :func:`leaderboard_cmc_figure`."""
    width = BARS_WIDTH if kind == "bars" else LB_CMC_WIDTH
    return pixel_size(width, datasets * LB_ROW)


def save_png(fig: Figure, path: Path) -> Path:
    """Render ``fig`` to ``path`` (PNG at :data:`DPI`) atomically; returns ``path``."""
    path = Path(path)
    FigureCanvasAgg(fig)
    atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=DPI), binary=True)
    return path


# ----------------------------------------------------------------------------------------- CMC


def _plot_cmc(ax, curves: Mapping[str, Sequence[float]], marks: Sequence[int]) -> None:
    for label, cmc in curves.items():
        y = 100.0 * np.asarray(cmc, dtype=float)
        x = np.arange(1, len(y) + 1)
        (line,) = ax.plot(x, y, label=label, linewidth=1.8, drawstyle="steps-mid")
        for k in marks:
            if k <= len(y):
                ax.plot([k], [y[k - 1]], "o", color=line.get_color(), markersize=4)
                if len(curves) == 1:
                    ax.annotate(
                        f"Rank-{k} {y[k - 1]:.1f}%",
                        (k, y[k - 1]),
                        textcoords="offset points",
                        xytext=(6, -12),
                        fontsize=8,
                    )
    ax.set_xlabel("rank k")
    ax.set_ylabel("matching rate (%) = Rank-k")
    ax.set_ylim(0, 101)
    longest = max((len(c) for c in curves.values()), default=1)
    ax.set_xlim(0.5, max(longest, 2) + 0.5)
    ax.grid(True, alpha=0.3)


def cmc_figure(
    curves: Mapping[str, Sequence[float]], title: str, marks: Sequence[int] = (1, 5, 10)
) -> Figure:
    """CMC curves (``cmc[k-1]`` = Rank-k in [0, 1]) on one axis, in percent, with the Rank-k
    values of ``marks`` dotted (and labelled when there is one curve)."""
    fig = Figure(figsize=CMC_SIZE, dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    _plot_cmc(ax, curves, marks)
    ax.set_title(title, fontsize=10)
    if len(curves) > 1:
        ax.legend(fontsize=8, loc="lower right")
    return fig


def leaderboard_cmc_figure(panels: Sequence[tuple[str, Mapping[str, Sequence[float]]]]) -> Figure:
    """One axis per dataset with the mean CMC curve of every leaderboard row on it."""
    fig = Figure(figsize=(LB_CMC_WIDTH, LB_ROW * len(panels)), dpi=DPI, layout="constrained")
    for i, (dataset, curves) in enumerate(panels):
        ax = fig.add_subplot(len(panels), 1, i + 1)
        _plot_cmc(ax, curves, marks=(1,))
        ax.set_title(f"{dataset}: mean CMC over seeds/folds", fontsize=10)
        ax.legend(fontsize=7, loc="lower right")
    return fig


# ------------------------------------------------------------------------------ leaderboard bars


def bars_figure(
    panels: Sequence[tuple[str, Sequence[str], Mapping[str, Sequence[tuple[float, float]]]]],
) -> Figure:
    """Grouped bars per dataset: groups are the metrics (e.g. mAP, Rank-1), one bar per row
    (method) with its std as an error bar; ``panels`` = ``(dataset, labels, {metric: [(mean,
    std), ...]})`` with one ``(mean, std)`` per label, in percent (std may be NaN)."""
    fig = Figure(figsize=(BARS_WIDTH, LB_ROW * len(panels)), dpi=DPI, layout="constrained")
    cmap = _categorical(max((len(p[1]) for p in panels), default=1))
    for i, (dataset, labels, metrics) in enumerate(panels):
        ax = fig.add_subplot(len(panels), 1, i + 1)
        n = max(len(labels), 1)
        width = 0.8 / n
        for j, label in enumerate(labels):
            xs = np.arange(len(metrics)) + (j - (n - 1) / 2) * width
            means = [metrics[m][j][0] for m in metrics]
            stds = [metrics[m][j][1] for m in metrics]
            ax.bar(xs, means, width, label=label, color=cmap[j])
            has_std = ~np.isnan(np.asarray(stds, dtype=float))  # one run: no error bar
            if has_std.any():
                ax.errorbar(
                    xs[has_std],
                    np.asarray(means)[has_std],
                    yerr=np.asarray(stds)[has_std],
                    fmt="none",
                    ecolor="black",
                    capsize=3,
                )
            for x, m, sd in zip(xs, means, stds):  # the value above the bar and its error bar
                top = m + (0.0 if np.isnan(sd) else sd)
                ax.text(x, top + 1.5, f"{m:.1f}", ha="center", va="bottom", fontsize=7)
        ax.set_xticks(np.arange(len(metrics)), list(metrics))
        ax.set_ylim(0, 105)
        ax.set_ylabel("%")
        ax.set_title(f"{dataset}: mean ± std over seeds/folds", fontsize=10)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        ax.grid(True, axis="y", alpha=0.3)
    return fig


def _categorical(n: int) -> list[tuple[float, float, float, float]]:
    """``n`` distinguishable colours: tab10/tab20 when they suffice, else a spread of a
    perceptual wheel, interleaved so neighbouring indices differ."""
    from matplotlib import colormaps

    if n <= 10:
        return [colormaps["tab10"](i) for i in range(n)]
    if n <= 20:
        return [colormaps["tab20"](i) for i in range(n)]
    wheel = colormaps["hsv"]
    step = 7 if n % 7 else 11  # coprime stride: index i and i+1 land far apart on the wheel
    return [wheel(((i * step) % n) / n * 0.92) for i in range(n)]


# -------------------------------------------------------------------------------------- t-SNE


def tsne_figure(
    points: np.ndarray, pids: Sequence[int], is_query: Sequence[bool], title: str
) -> Figure:
    """2-D t-SNE points coloured by identity (pid -1, junk, in grey); queries as triangles,
    gallery entries as dots."""
    fig = Figure(figsize=TSNE_SIZE, dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    pids = np.asarray(pids)
    is_query = np.asarray(is_query, dtype=bool)
    ids = sorted(int(p) for p in set(pids.tolist()) if p != -1)
    palette = dict(zip(ids, _categorical(len(ids))))
    colours = [palette.get(int(p), JUNK_GREY) for p in pids]
    colours_arr = np.array(colours, dtype=object)
    for mask, marker, size in ((~is_query, "o", 14), (is_query, "^", 26)):
        if mask.any():
            ax.scatter(
                points[mask, 0],
                points[mask, 1],
                c=list(colours_arr[mask]),
                marker=marker,
                s=size,
                linewidths=0.3,
                edgecolors="black",
            )
    handles = [
        Line2D([], [], marker="^", linestyle="", color="grey", markeredgecolor="black"),
        Line2D([], [], marker="o", linestyle="", color="grey", markeredgecolor="black"),
    ]
    ax.legend(
        handles,
        ["query", "gallery"],
        title=f"colour = identity ({len(ids)})",
        fontsize=8,
        title_fontsize=8,
        loc="best",
    )
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    return fig


# ------------------------------------------------------------------------------- ranked lists


@dataclass
class Tile:
    """One image of a ranked list: RGB ``uint8 (H, W, 3)``, a label above it, and ``match``:
    True (green border), False (red border) or None (the query: a dark border)."""

    image: np.ndarray
    label: str
    match: bool | None = None


@dataclass
class RankedRow:
    query: Tile
    gallery: list[Tile]
    text: str | None = None  # the query's text, shown under the row


def with_border(image: np.ndarray, match: bool | None, frac: float = 0.07) -> np.ndarray:
    """``image`` padded with a border ``frac`` of its longer side thick: green for a true match,
    red for a false one, dark grey for the query (``None``)."""
    rgb = MATCH_RGB if match is True else NON_MATCH_RGB if match is False else QUERY_RGB
    b = max(2, round(frac * max(image.shape[:2])))
    h, w = image.shape[:2]
    out = np.empty((h + 2 * b, w + 2 * b, 3), dtype=np.uint8)
    out[:] = rgb
    out[b : b + h, b : b + w] = image[..., :3]
    return out


def _clip_text(text: str, width: int = 190, lines: int = 2) -> str:
    wrapped = textwrap.wrap(" ".join(text.split()), width=width)
    if len(wrapped) > lines:
        wrapped = wrapped[:lines]
        wrapped[-1] = wrapped[-1][: width - 1] + "…"
    return "\n".join(wrapped)


def ranked_list_figure(rows: Sequence[RankedRow], title: str, caption: str) -> Figure:
    """Query then its top-:data:`TOP_K` gallery entries, one band per query, the query's text
    under the band; each image bordered green (true match) or red (false match).

    Layout in inches (the pixel size is :func:`ranked_list_size`): per band a label strip, the
    images (1.0 wide, at most 1.4 tall, from the tallest query's aspect), the text under them.
    """
    aspect = max((r.query.image.shape[0] / max(r.query.image.shape[1], 1) for r in rows), default=1)
    img_h, row_h = ranked_image_height(aspect), ranked_row_height(aspect)
    height = RANKED_HEADER + len(rows) * row_h
    fig = Figure(figsize=(RANKED_WIDTH, height), dpi=DPI)
    fig.text(0.5, 1 - 0.2 / height, title, ha="center", va="top", fontsize=11, weight="bold")
    caption = "\n".join(textwrap.wrap(caption, width=200)[:2])
    fig.text(0.5, 1 - 0.42 / height, caption, ha="center", va="top", fontsize=8)
    cell_w, margin, gap, step = RANKED_CELL, 0.2, 0.4, 1.1
    for r, row in enumerate(rows):
        top = height - RANKED_HEADER - r * row_h  # inches from the bottom
        img_bottom = top - 0.3 - img_h
        tiles = [(row.query, margin)] + [
            (t, margin + cell_w + gap + i * step) for i, t in enumerate(row.gallery[:TOP_K])
        ]
        for tile, x in tiles:
            ax = fig.add_axes(
                (x / RANKED_WIDTH, img_bottom / height, cell_w / RANKED_WIDTH, img_h / height)
            )
            ax.imshow(with_border(tile.image, tile.match), interpolation="bilinear")
            ax.set_anchor("N")
            ax.set_axis_off()
            fig.text(
                (x + cell_w / 2) / RANKED_WIDTH,
                (top - 0.06) / height,
                tile.label,
                ha="center",
                va="top",
                fontsize=7,
                weight="bold" if tile.match is None else "normal",
            )
        if row.text:
            fig.text(
                margin / RANKED_WIDTH,
                (img_bottom - 0.08) / height,
                "query text: " + _clip_text(row.text),
                ha="left",
                va="top",
                fontsize=7,
                style="italic",
            )
    return fig


def overlay_heatmap(image: np.ndarray, heat: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """``heat`` (any ``(h, w)`` in [0, 1]) resized to ``image`` and blended on it with the jet
    colour map (red = strongest); returns RGB ``uint8``."""
    from matplotlib import colormaps
    from PIL import Image

    h, w = image.shape[:2]
    heat_img = Image.fromarray(np.clip(heat * 255, 0, 255).astype(np.uint8)).resize(
        (w, h), Image.BILINEAR
    )
    coloured = colormaps["jet"](np.asarray(heat_img) / 255.0)[..., :3]
    blend = (1 - alpha) * image[..., :3] / 255.0 + alpha * coloured
    return np.clip(blend * 255, 0, 255).astype(np.uint8)
