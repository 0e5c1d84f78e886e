"""``bench report RUN_ID``: the pictures researchers look at before they trust a number.

For one run record it writes, into ``--out`` (default ``<results>/reports/<run_id>/``):

* ``cmc.png``: the run's CMC curve (from the record's metrics);
* ``ranked_lists.png``: for sampled (``--queries N``) or chosen (``--query``) queries, the query
  then its top-10 gallery entries, green border for a true match, red for a false one, the
  query's text under the row; ranked from the saved features with evaluation's rules;
* ``tsne.png``: t-SNE (scikit-learn) of query and gallery embeddings coloured by identity, on at
  most ``--tsne-max-points`` points (whole identities drawn at random);
* ``attention.png``: the same rows as heat maps over the method's last convolutional stage
  (:mod:`bench.report.cam`), for methods that expose one;
* ``index.html``: the page showing them with the metrics, config, command and versions. It
  references the PNGs by relative file name: the folder is self-contained (move or zip it whole).

Nothing is retrained: the run saved its query/gallery features (or similarity matrix) and
samples (:mod:`bench.results.artifacts`); attention maps reload the checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch

from bench.api.method import Method
from bench.api.samples import Sample
from bench.data.images import open_image
from bench.errors import BenchError
from bench.evaluation.protocol import sample_labels
from bench.io import atomic_write_text
from bench.progress import progress
from bench.report.cam import attention_maps, embeddings, supports_attention
from bench.report.extras import import_figures
from bench.report.page import render_html
from bench.report.ranking import RankedList, ranked_list, select_queries
from bench.report.rebuild import rebuild_method, recompute_artifacts
from bench.report.tsne import tsne_points
from bench.results.artifacts import EvalArtifacts, load_eval_artifacts
from bench.results.paths import inside_results
from bench.results.records import load_record

FILES = {
    "cmc": "cmc.png",
    "ranked": "ranked_lists.png",
    "attention": "attention.png",
    "tsne": "tsne.png",
    "html": "index.html",
}
CAM_CHOICES = ("eigencam", "eigengradcam", "gradcam", "none")
THUMBNAIL = 256  # images are shrunk to at most this many pixels a side before drawing

RULES = (
    "Green border: same identity as the query (true match); red: another identity. As in "
    "evaluation, gallery entries with the query's identity and camera, and junk (pid -1), are "
    "left out of each list."
)


@dataclass
class ReportOptions:
    """What ``bench report`` takes from the command line (see ``bench report --help``)."""

    out: Path | None = None
    num_queries: int = 6
    queries: Sequence[str] = ()
    seed: int = 0
    tsne_max_points: int = 2000
    cam: str = "eigengradcam"
    device: str = "cpu"
    recompute: bool = False
    root: Path | None = None
    progress: bool = True


@dataclass
class Report:
    out: Path
    html: Path
    images: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _artifacts(results_dir: Path, record: dict[str, Any]) -> EvalArtifacts:
    saved = record.get("eval_artifacts")
    how = (
        f"re-create them from its checkpoint with `bench report {record['run_id']} --recompute` "
        "(add --root DIR when the dataset is not in its default place), or re-run with "
        "--set report.save_features=true"
    )
    if not isinstance(saved, dict) or not saved.get("features") or not saved.get("samples"):
        raise BenchError(
            f"run {record['run_id']} has no saved query/gallery features (recorded with "
            f"report.save_features=false, or before reports existed); {how}"
        )
    features, samples = (
        inside_results(results_dir, saved[k], f"saved {k} of run {record['run_id']}")
        for k in ("features", "samples")
    )
    missing = [p for p in (features, samples) if not p.is_file()]
    if missing:
        raise BenchError(
            f"the saved features of run {record['run_id']} are gone ({missing[0]}); {how}"
        )
    return load_eval_artifacts(features, samples)


# ------------------------------------------------------------------------------------ figures


def _thumbnail(path: str) -> np.ndarray:
    img = open_image(path)
    img.thumbnail((THUMBNAIL, THUMBNAIL))
    return np.asarray(img)


def _tile_label(rank: int | None, sample: Sample, distance: float | None, score: bool) -> str:
    who = f"id {sample.pid}"
    if rank is None:
        return f"query · {who}"
    value = f"s {-distance:.2f}" if score else f"d {distance:.2f}"
    return f"#{rank} · {who} · {value}"


def _ranked_rows(
    plots: ModuleType,
    art: EvalArtifacts,
    lists: list[RankedList],
    images: dict[int, list[np.ndarray]] | None = None,
) -> list[Any]:
    """Figure rows for ``lists``; ``images`` (query index -> list of arrays) replaces the
    thumbnails (attention overlays)."""
    score = art.similarity is not None
    rows = []
    for rl in lists:
        q = art.query[rl.query]
        pics = images[rl.query] if images is not None else None
        q_img = pics[0] if pics is not None else _thumbnail(q.path)
        tiles = []
        for k, (g, d, m) in enumerate(zip(rl.gallery, rl.distances, rl.matches)):
            g_img = pics[k + 1] if pics is not None else _thumbnail(art.gallery[g].path)
            tiles.append(
                plots.Tile(g_img, _tile_label(k + 1, art.gallery[g], float(d), score), bool(m))
            )
        q_tile = plots.Tile(q_img, _tile_label(None, q, None, score))
        rows.append(plots.RankedRow(q_tile, tiles, q.text))
    return rows


def _layer_name(method: Method, layer: torch.nn.Module) -> str:
    """``layer``'s dotted name inside the method's networks (``net.backbone.layer4``), else its
    class name."""
    for attr, value in vars(method).items():
        if isinstance(value, torch.nn.Module):
            for name, module in value.named_modules():
                if module is layer:
                    return f"{attr}.{name}" if name else attr
    return type(layer).__name__


def _attention_images(
    plots: ModuleType,
    method: Method,
    art: EvalArtifacts,
    lists: list[RankedList],
    kind: str,
    bar: Any,
) -> dict[int, list[np.ndarray]]:
    out = {}
    for rl in lists:
        samples = [art.query[rl.query]] + [art.gallery[g] for g in rl.gallery]
        refs = None
        if kind != "eigencam":
            emb = embeddings(method, samples)
            # The query explains its likeness to its top-1 entry, each entry its likeness to
            # the query.
            refs = torch.stack([emb[1] if len(emb) > 1 else emb[0]] + [emb[0]] * (len(emb) - 1))
        maps = attention_maps(method, samples, kind, refs)
        out[rl.query] = [
            plots.overlay_heatmap(_thumbnail(s.path), m) for s, m in zip(samples, maps)
        ]
        bar.update(1)
    return out


# ----------------------------------------------------------------------------------- the report


Figure = tuple[str, str, str]  # heading, file name relative to the page, caption


@dataclass
class _Context:
    """What every figure of one report needs."""

    plots: ModuleType  # bench.report.figures
    results_dir: Path
    record: dict[str, Any]
    art: EvalArtifacts
    lists: list[RankedList]
    options: ReportOptions
    out: Path
    metric: str
    label: str  # "bot on synthetic-polyp fold0"
    ranking: str  # "cosine distance" or "similarity from score()"

    def figure(self, report: Report, key: str, fig: Any, heading: str, caption: str) -> Figure:
        """Save ``fig`` as the report's ``FILES[key]`` and return its entry on the page."""
        report.images[key] = self.plots.save_png(fig, self.out / FILES[key])
        return heading, FILES[key], caption


def _cmc_section(c: _Context, report: Report) -> Figure | None:
    metrics = c.record.get("metrics") or {}
    cmc = metrics.get("cmc")
    if not isinstance(cmc, list) or not cmc:
        report.notes.append("no CMC curve: the record has no CMC list")
        return None
    title = f"CMC: {c.label} (mAP {100 * float(metrics.get('mAP', float('nan'))):.1f}%)"
    return c.figure(
        report,
        "cmc",
        c.plots.cmc_figure({c.record["method"]: cmc}, title),
        "CMC curve",
        f"Rank-k matching rate for k = 1..{len(cmc)} over "
        f"{metrics.get('num_valid_queries', '?')} valid queries, from the run record.",
    )


def _ranked_section(c: _Context, report: Report) -> Figure:
    rows = _ranked_rows(c.plots, c.art, c.lists)
    caption = f"{RULES} Ranking: {c.ranking}."
    how = "chosen" if c.options.queries else f"drawn at random (seed {c.options.seed})"
    return c.figure(
        report,
        "ranked",
        c.plots.ranked_list_figure(rows, f"Ranked lists: {c.label}", caption),
        "Ranked lists",
        f"{len(c.lists)} queries {how}, each followed by its top-{c.plots.TOP_K} gallery "
        f"entries by {c.ranking}. {RULES}",
    )


def _attention_section(c: _Context, report: Report) -> Figure | None:
    kind = c.options.cam
    if kind == "none":
        report.notes.append("no attention maps: --cam none")
        return None
    try:
        method = rebuild_method(c.results_dir, c.record, c.options.device, c.options.progress)
    except BenchError as exc:  # the other pictures are still worth having
        report.notes.append(f"no attention maps: {exc}")
        return None
    if not supports_attention(method):
        report.notes.append("no attention maps: method does not expose a CNN stage")
        return None
    bar = progress(total=len(c.lists), desc="attention", enabled=c.options.progress, leave=False)
    with bar:
        images = _attention_images(c.plots, method, c.art, c.lists, kind, bar)
    fig = c.plots.ranked_list_figure(
        _ranked_rows(c.plots, c.art, c.lists, images),
        f"Attention maps ({kind}): {c.label}",
        f"Heat maps over the last convolutional stage (red = strongest). {RULES}",
    )
    target = (
        "no target (the first principal component of the stage's activations)"
        if kind == "eigencam"
        else "target: cosine similarity of each gallery image's embedding to the query's, and "
        "of the query's to its top-1 entry"
    )
    layer = _layer_name(method, method.attention_layer())
    return c.figure(
        report,
        "attention",
        fig,
        "Attention maps",
        f"{kind} over the method's last convolutional stage ({layer}), {target}; the same "
        f"queries and lists as above. {RULES}",
    )


def _tsne_section(c: _Context, report: Report) -> Figure | None:
    if not c.art.has_features:
        report.notes.append(
            "no t-SNE: the method answers with score() (a similarity matrix), not embeddings"
        )
        return None
    points, pids, is_query, n_ids = tsne_points(
        c.art, c.metric, c.options.tsne_max_points, c.options.seed
    )
    title = f"t-SNE: {c.label} ({len(points)} points, {n_ids} identities)"
    total = len(c.art.query) + len(c.art.gallery)
    sub = (
        f" (a random subset of whole identities: {len(points)} of {total} points)"
        if len(points) < total
        else ""
    )
    return c.figure(
        report,
        "tsne",
        c.plots.tsne_figure(points, pids, is_query, title),
        "t-SNE of the embeddings",
        f"Query (triangles) and gallery (dots) embeddings{sub}, coloured by identity; "
        f"{'L2-normalised, ' if c.metric == 'cosine' else ''}perplexity "
        f"{min(30.0, (len(points) - 1) / 3):.0f}, seed {c.options.seed}.",
    )


def make_report(results_dir: Path, run_id: str, options: ReportOptions | None = None) -> Report:
    """Write the pictures and the page of run ``run_id`` (module docstring); returns the paths."""
    options = options or ReportOptions()
    if options.cam not in CAM_CHOICES:
        raise BenchError(f"--cam must be one of {', '.join(CAM_CHOICES)}, got {options.cam!r}")
    if options.tsne_max_points < 6:
        raise BenchError(f"--tsne-max-points must be at least 6, got {options.tsne_max_points}")
    plots = import_figures()
    results_dir = Path(results_dir)
    record = load_record(results_dir, run_id)
    if options.recompute:
        recompute_artifacts(results_dir, record, options.root, options.device, options.progress)
    art = _artifacts(results_dir, record)
    out = Path(options.out) if options.out else results_dir / "reports" / run_id
    metric = str((record.get("config") or {}).get("eval.metric", "cosine"))
    dist = art.distance(metric)
    picked = select_queries(art, dist, options.queries, options.num_queries, options.seed)
    q_pids, q_camids = sample_labels(art.query)
    g_pids, g_camids = sample_labels(art.gallery)
    lists = [
        ranked_list(dist[i], q_pids[i], q_camids[i], g_pids, g_camids, i, plots.TOP_K)
        for i in picked
    ]
    fold = f" {record['fold']}" if record.get("fold") else ""
    c = _Context(
        plots,
        results_dir,
        record,
        art,
        lists,
        options,
        out,
        metric,
        label=f"{record['method']} on {record['dataset']}{fold}",
        ranking="similarity from score()" if art.similarity is not None else f"{metric} distance",
    )
    report = Report(out=out, html=out / FILES["html"])
    sections = {
        "CMC": _cmc_section,
        "ranked lists": _ranked_section,
        "attention maps": _attention_section,
        "t-SNE": _tsne_section,
    }
    figures = []
    bar = progress(sections.items(), desc="report", enabled=options.progress, leave=False)
    for name, section in bar:
        bar.set_postfix_str(name)
        figure = section(c, report)
        if figure is not None:
            figures.append(figure)
    for key, name in FILES.items():  # a picture left by an earlier report of this run
        if key != "html" and key not in report.images:
            (out / name).unlink(missing_ok=True)
    atomic_write_text(report.html, render_html(record, figures, report.notes))
    return report
