"""``bench report RUN_ID``: the pictures researchers look at before they trust a number.

For one run record it writes, into ``--out`` (default ``<results>/reports/<run_id>/``):

* ``cmc.png``: the run's CMC curve (from the record's metrics);
* ``ranked_lists.png``: for sampled (``--queries N``) or chosen (``--query``) queries, the query
  then its top-10 gallery entries, green border for a true match, red for a false one, the
  query's text under the row; ranked from the saved features with evaluation's rules;
* ``tsne.png``: t-SNE (scikit-learn) of query and gallery embeddings coloured by identity, on at
  most ``--tsne-max-points`` points (whole identities drawn at random);
* ``attention.png``: the same rows as heat maps over the method's last convolutional stage
  (:mod:`bench.attention`), for methods that expose one;
* ``index.html``: the page showing them with the metrics, config, command and versions. It
  references the PNGs by relative file name: the folder is self-contained (move or zip it whole).

Nothing is retrained: the run saved its query/gallery features (or similarity matrix) and
samples (:mod:`bench.artifacts`); attention maps reload the checkpoint.
"""

from __future__ import annotations

import html
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

import bench
from bench.artifacts import EvalArtifacts, load_eval_artifacts, save_eval_artifacts
from bench.errors import BenchError
from bench.results import atomic_write_text, load_record, write_record
from bench.samples import Sample

FILES = {
    "cmc": "cmc.png",
    "ranked": "ranked_lists.png",
    "attention": "attention.png",
    "tsne": "tsne.png",
    "html": "index.html",
}
CAM_CHOICES = ("eigencam", "eigengradcam", "gradcam", "none")
EXACT_TSNE_POINTS = 300  # exact t-SNE up to this many points, Barnes-Hut above
THUMBNAIL = 256  # images are shrunk to at most this many pixels a side before drawing

RULES = (
    "Green border: same identity as the query (true match); red: another identity. As in "
    "evaluation, gallery entries with the query's identity and camera, and junk (pid -1), are "
    "left out of each list."
)


def _import_plotting():
    try:
        import matplotlib  # noqa: F401
        import sklearn  # noqa: F401
    except ImportError as exc:
        raise BenchError(
            f"bench report needs matplotlib and scikit-learn ({exc.name} is missing): "
            "pip install 'reid-bench[report]'"
        ) from exc
    from bench import plots

    return plots


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


# ------------------------------------------------------------------------------------ ranking


@dataclass
class RankedList:
    """One query's ranking: gallery indices best first, their distances and true-match flags,
    after evaluation's removals (same pid and camera; pid -1)."""

    query: int
    gallery: np.ndarray
    distances: np.ndarray
    matches: np.ndarray


def ranked_list(
    dist_row: np.ndarray,
    q_pid: int,
    q_camid: int,
    g_pids: np.ndarray,
    g_camids: np.ndarray,
    query: int = 0,
    top_k: int | None = 10,
) -> RankedList:
    """The first ``top_k`` kept gallery entries of one query (all with ``None``), ranked as
    :func:`bench.evaluation.evaluate_rank` ranks them (stable ascending sort of distances)."""
    order = np.argsort(dist_row, kind="stable")
    keep = ~(((g_pids[order] == q_pid) & (g_camids[order] == q_camid)) | (g_pids[order] == -1))
    kept = order[keep][:top_k]
    return RankedList(query, kept, dist_row[kept], g_pids[kept] == q_pid)


def _labels(samples: Sequence[Sample]) -> tuple[np.ndarray, np.ndarray]:
    return (
        np.array([s.pid for s in samples], dtype=np.int64),
        np.array([s.camid for s in samples], dtype=np.int64),
    )


def select_queries(
    art: EvalArtifacts, dist: np.ndarray, chosen: Sequence[str], count: int, seed: int
) -> list[int]:
    """Query indices: the ``chosen`` ones (an index into the query list, or an image's file
    name or path), else ``count`` drawn at random (``seed``) among queries with a true match."""
    if chosen:
        out = []
        names = {}
        for i, s in enumerate(art.query):
            names.setdefault(s.path, i)
            names.setdefault(Path(s.path).name, i)
        for item in chosen:
            text = str(item).strip()
            if text.isdigit() and int(text) < len(art.query):
                out.append(int(text))
            elif text in names:
                out.append(names[text])
            else:
                raise BenchError(
                    f"--query {item!r} names no query: give an index from 0 to "
                    f"{len(art.query) - 1} or a query image's file name (e.g. "
                    f"{Path(art.query[0].path).name})"
                )
        return out
    if count < 1:
        raise BenchError(f"--queries must be at least 1, got {count}")
    q_pids, q_camids = _labels(art.query)
    g_pids, g_camids = _labels(art.gallery)
    valid = [
        i
        for i in range(len(art.query))
        if ranked_list(dist[i], q_pids[i], q_camids[i], g_pids, g_camids, i, None).matches.any()
    ]
    pool = valid or list(range(len(art.query)))
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(pool), size=min(count, len(pool)), replace=False)
    return sorted(pool[i] for i in picked)


# ------------------------------------------------------------------------ artifacts and method


def _rebuild_method(record: dict[str, Any], device: str, progress: bool):
    """The run's method with its trained state from ``final.pt`` (config from the record)."""
    from bench.context import RunContext
    from bench.registry import get_method
    from bench.runner import resolve_device

    ckpt = Path(str(record.get("checkpoint") or ""))
    if not record.get("checkpoint") or not ckpt.is_file():
        raise BenchError(
            f"checkpoint {ckpt} of run {record['run_id']} is gone; re-run it: "
            f"{record.get('command') or 'bench run ...'}"
        )
    spec = get_method(str(record["method"]))
    ctx = RunContext(
        device=resolve_device(device), seed=int(record.get("seed", 0)), show_progress=progress
    )
    try:
        method = spec.family(record["config"], ctx)
        state = torch.load(ckpt, map_location=ctx.device, weights_only=False)
        method.load_state_dict(state)
    except KeyError as exc:
        raise BenchError(
            f"cannot rebuild {record['method']!r} from run {record['run_id']}: its config or "
            f"checkpoint {ckpt} lacks {exc} (recorded by another version of the method?)"
        ) from exc
    return method


def recompute_artifacts(
    results_dir: Path, record: dict[str, Any], root: Path | None, device: str, progress: bool
) -> dict[str, str]:
    """Re-create a run's saved features from its checkpoint (no training) and note them in its
    record; ``root`` is the dataset folder when it is not in its default place."""
    from bench.registry import get_dataset
    from bench.runner import _represent

    method = _rebuild_method(record, device, progress)
    target = get_dataset(str(record["dataset"]))(root, record["config"], show_progress=progress)
    target.prepare()
    splits = target.load(record.get("fold"))
    represented = _represent(method, splits.query, splits.gallery)
    folder = Path(str(record["checkpoint"])).parent
    paths = save_eval_artifacts(folder, splits.query, splits.gallery, represented)
    record["eval_artifacts"] = paths
    write_record(results_dir, record)
    return paths


def _artifacts(record: dict[str, Any]) -> EvalArtifacts:
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
    missing = [p for p in (saved["features"], saved["samples"]) if not Path(p).is_file()]
    if missing:
        raise BenchError(
            f"the saved features of run {record['run_id']} are gone ({missing[0]}); {how}"
        )
    return load_eval_artifacts(Path(saved["features"]), Path(saved["samples"]))


# ------------------------------------------------------------------------------------ figures


def _thumbnail(path: str) -> np.ndarray:
    from bench.imagedata import open_image

    img = open_image(path)
    img.thumbnail((THUMBNAIL, THUMBNAIL))
    return np.asarray(img)


def _tile_label(rank: int | None, sample: Sample, distance: float | None, score: bool) -> str:
    who = f"id {sample.pid}"
    if rank is None:
        return f"query · {who}"
    value = f"s {-distance:.2f}" if score else f"d {distance:.2f}"
    return f"#{rank} · {who} · {value}"


def _ranked_rows(plots, art: EvalArtifacts, lists: list[RankedList], images=None):
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


def tsne_points(
    art: EvalArtifacts, metric: str, max_points: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """t-SNE of query + gallery features: ``(points (n, 2), pids, is_query, identities shown)``.

    Above ``max_points`` whole identities are drawn at random until the cap is reached, so every
    identity shown keeps all its points. Cosine runs are L2-normalised first (Euclidean t-SNE on
    unit vectors ranks as cosine distance does). Exact t-SNE up to :data:`EXACT_TSNE_POINTS`
    points, Barnes-Hut above.
    """
    from sklearn.manifold import TSNE

    assert art.query_features is not None and art.gallery_features is not None
    feats = np.concatenate([art.query_features, art.gallery_features]).astype(np.float64)
    pids = np.array([s.pid for s in (*art.query, *art.gallery)], dtype=np.int64)
    is_query = np.arange(len(feats)) < len(art.query)
    if len(feats) > max_points:
        rng = np.random.default_rng(seed)
        chosen: list[int] = []
        ids = np.unique(pids)
        for pid in rng.permutation(ids):
            idx = np.flatnonzero(pids == pid)
            if len(chosen) + len(idx) > max_points:
                if not chosen:
                    chosen.extend(idx[:max_points].tolist())
                break
            chosen.extend(idx.tolist())
        keep = np.sort(np.array(chosen))
        feats, pids, is_query = feats[keep], pids[keep], is_query[keep]
    if metric == "cosine":
        feats /= np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)
    if len(feats) < 6:
        raise BenchError(f"t-SNE needs at least 6 points, the run has {len(feats)}")
    perplexity = float(min(30.0, (len(feats) - 1) / 3))
    points = TSNE(
        n_components=2,
        perplexity=perplexity,
        init="pca",
        learning_rate="auto",
        random_state=seed,
        # Barnes-Hut's overhead dominates on small sets (64 points: 5 s vs 0.7 s exact).
        method="exact" if len(feats) <= EXACT_TSNE_POINTS else "barnes_hut",
    ).fit_transform(feats)
    return points, pids, is_query, len(set(pids.tolist()) - {-1})


def _layer_name(method, layer: torch.nn.Module) -> str:
    """``layer``'s dotted name inside the method's networks (``net.backbone.layer4``), else its
    class name."""
    for attr, value in vars(method).items():
        if isinstance(value, torch.nn.Module):
            for name, module in value.named_modules():
                if module is layer:
                    return f"{attr}.{name}" if name else attr
    return type(layer).__name__


def _attention_images(method, art, lists, kind, bar) -> dict[int, list[np.ndarray]]:
    from bench.attention import attention_maps, embeddings
    from bench.plots import overlay_heatmap

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
        out[rl.query] = [overlay_heatmap(_thumbnail(s.path), m) for s, m in zip(samples, maps)]
        bar.update(1)
    return out


# --------------------------------------------------------------------------------------- html


def _metrics_table(metrics: dict[str, Any]) -> str:
    rows = [("mAP", "mAP"), ("Rank-1", "rank1"), ("Rank-5", "rank5"), ("Rank-10", "rank10")]
    rows.append(("mINP", "mINP"))
    cells = []
    for title, key in rows:
        value = metrics.get(key)
        text = "-" if value is None else f"{100 * float(value):.1f}"
        cells.append(f"<tr><th>{title}</th><td>{text}</td></tr>")
    for title, key in (("valid queries", "num_valid_queries"), ("queries", "num_queries")):
        if key in metrics:
            cells.append(f"<tr><th>{title}</th><td>{html.escape(str(metrics[key]))}</td></tr>")
    return "<table class='metrics'>" + "".join(cells) + "</table>"


def _kv_table(items: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in items.items()
    )
    return f"<table>{rows}</table>"


def _report_versions() -> dict[str, str]:
    import matplotlib
    import sklearn

    out = {"reid_bench": bench.__version__, "matplotlib": matplotlib.__version__}
    out["scikit-learn"] = sklearn.__version__
    try:
        from importlib.metadata import version

        out["grad-cam"] = version("grad-cam")
    except Exception:  # not installed: attention maps were off
        pass
    out["python"] = platform.python_version()
    return out


def render_html(
    record: dict[str, Any], figures: list[tuple[str, str, str]], notes: list[str]
) -> str:
    """The report page; ``figures`` = ``(heading, file name relative to the page, caption)``."""
    import yaml

    esc = html.escape
    rid = str(record["run_id"])
    head = {
        "method": record.get("method"),
        "dataset": record.get("dataset"),
        "train dataset": record.get("train_dataset"),
        "protocol": record.get("protocol"),
        "preset": record.get("preset"),
        "seed": record.get("seed"),
        "fold": record.get("fold") or "-",
        "created": record.get("created"),
    }
    figs = "".join(
        f"<figure><h2>{esc(h)}</h2><img src='{esc(f)}' alt='{esc(h)}'>"
        f"<figcaption>{esc(c)}</figcaption></figure>"
        for h, f, c in figures
    )
    note_html = "".join(f"<li>{esc(n)}</li>" for n in notes)
    config = yaml.safe_dump(record.get("config", {}), sort_keys=True)
    provenance = {
        "command": record.get("command"),
        "git commit": record.get("git_commit"),
        "checkpoint": record.get("checkpoint"),
        **{f"timing {k}": v for k, v in (record.get("timings") or {}).items()},
        **{f"hardware {k}": v for k, v in (record.get("hardware") or {}).items()},
    }
    made = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>reid-bench report {esc(rid)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1300px; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; }}
th, td {{ border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; font-size: 0.9em; }}
table.metrics td {{ text-align: right; font-variant-numeric: tabular-nums; }}
figure {{ margin: 0 0 2em; }} figure img {{ max-width: 100%; border: 1px solid #ddd; }}
figcaption {{ font-size: 0.9em; color: #444; margin-top: 0.3em; }}
pre {{ background: #f6f6f6; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }}
code {{ background: #f6f6f6; }}
</style></head><body>
<h1>Run <code>{esc(rid)}</code></h1>
{_kv_table(head)}
<h2>Metrics (%)</h2>
{_metrics_table(record.get("metrics") or {})}
{f"<h2>Notes</h2><ul>{note_html}</ul>" if notes else ""}
{figs}
<h2>Config</h2>
<pre>{esc(config)}</pre>
<h2>Run</h2>
{_kv_table(provenance)}
<h2>Versions (run)</h2>
{_kv_table(record.get("versions") or {})}
<h2>Versions (report, made {esc(made)})</h2>
{_kv_table(_report_versions())}
</body></html>
"""


# ----------------------------------------------------------------------------------- the report


@dataclass
class _Context:
    """What every figure of one report needs."""

    plots: Any
    record: dict[str, Any]
    art: EvalArtifacts
    lists: list[RankedList]
    options: ReportOptions
    out: Path
    metric: str
    label: str  # "bot on synthetic-polyp fold0"
    ranking: str  # "cosine distance" or "similarity from score()"


Figure = tuple[str, str, str]  # heading, file name relative to the page, caption


def _cmc_section(c: _Context, report: Report) -> Figure | None:
    metrics = c.record.get("metrics") or {}
    cmc = metrics.get("cmc")
    if not isinstance(cmc, list) or not cmc:
        report.notes.append("no CMC curve: the record has no CMC list")
        return None
    title = f"CMC: {c.label} (mAP {100 * float(metrics.get('mAP', float('nan'))):.1f}%)"
    fig = c.plots.cmc_figure({c.record["method"]: cmc}, title)
    report.images["cmc"] = c.plots.save_png(fig, c.out / FILES["cmc"])
    return (
        "CMC curve",
        FILES["cmc"],
        f"Rank-k matching rate for k = 1..{len(cmc)} over "
        f"{metrics.get('num_valid_queries', '?')} valid queries, from the run record.",
    )


def _ranked_section(c: _Context, report: Report) -> Figure:
    rows = _ranked_rows(c.plots, c.art, c.lists)
    caption = f"{RULES} Ranking: {c.ranking}."
    fig = c.plots.ranked_list_figure(rows, f"Ranked lists: {c.label}", caption)
    report.images["ranked"] = c.plots.save_png(fig, c.out / FILES["ranked"])
    how = "chosen" if c.options.queries else f"drawn at random (seed {c.options.seed})"
    return (
        "Ranked lists",
        FILES["ranked"],
        f"{len(c.lists)} queries {how}, each followed by its top-{c.plots.TOP_K} gallery "
        f"entries by {c.ranking}. {RULES}",
    )


def _attention_section(c: _Context, report: Report) -> Figure | None:
    kind = c.options.cam
    if kind == "none":
        report.notes.append("no attention maps: --cam none")
        return None
    from bench.attention import supports_attention

    try:
        method = _rebuild_method(c.record, c.options.device, c.options.progress)
    except BenchError as exc:  # the other pictures are still worth having
        report.notes.append(f"no attention maps: {exc}")
        return None
    if not supports_attention(method):
        report.notes.append("no attention maps: method does not expose a CNN stage")
        return None
    bar = tqdm(total=len(c.lists), desc="attention", disable=not c.options.progress, leave=False)
    with bar:
        images = _attention_images(method, c.art, c.lists, kind, bar)
    fig = c.plots.ranked_list_figure(
        _ranked_rows(c.plots, c.art, c.lists, images),
        f"Attention maps ({kind}): {c.label}",
        f"Heat maps over the last convolutional stage (red = strongest). {RULES}",
    )
    report.images["attention"] = c.plots.save_png(fig, c.out / FILES["attention"])
    target = (
        "no target (the first principal component of the stage's activations)"
        if kind == "eigencam"
        else "target: cosine similarity of each gallery image's embedding to the query's, and "
        "of the query's to its top-1 entry"
    )
    layer = _layer_name(method, method.attention_layer())
    return (
        "Attention maps",
        FILES["attention"],
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
    fig = c.plots.tsne_figure(points, pids, is_query, title)
    report.images["tsne"] = c.plots.save_png(fig, c.out / FILES["tsne"])
    total = len(c.art.query) + len(c.art.gallery)
    sub = (
        f" (a random subset of whole identities: {len(points)} of {total} points)"
        if len(points) < total
        else ""
    )
    return (
        "t-SNE of the embeddings",
        FILES["tsne"],
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
    plots = _import_plotting()
    results_dir = Path(results_dir)
    record = load_record(results_dir, run_id)
    if options.recompute:
        recompute_artifacts(results_dir, record, options.root, options.device, options.progress)
    art = _artifacts(record)
    out = Path(options.out) if options.out else results_dir / "reports" / run_id
    metric = str((record.get("config") or {}).get("eval.metric", "cosine"))
    dist = art.distance(metric)
    picked = select_queries(art, dist, options.queries, options.num_queries, options.seed)
    q_pids, q_camids = _labels(art.query)
    g_pids, g_camids = _labels(art.gallery)
    lists = [
        ranked_list(dist[i], q_pids[i], q_camids[i], g_pids, g_camids, i, plots.TOP_K)
        for i in picked
    ]
    fold = f" {record['fold']}" if record.get("fold") else ""
    c = _Context(
        plots,
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
    bar = tqdm(sections.items(), desc="report", disable=not options.progress, leave=False)
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


# -------------------------------------------------------------------------- leaderboard plots


def _row_key(dataset: Any, method: Any, preset: Any, train: Any, reported: Any) -> tuple:
    return (str(dataset), str(method), str(preset or "-"), str(train or dataset), bool(reported))


def _row_label(key: tuple) -> str:
    dataset, method, preset, train, reported = key
    label = method + (f" [train: {train}]" if train != dataset else "")
    label += " (reported)" if reported else ""
    return label + (f" · {preset}" if preset != "-" else "")


def plot_leaderboard(results_dir: Path, table_path: Path, dataset: str | None = None) -> list[Path]:
    """``bench leaderboard --plot``: next to ``table_path`` write ``<stem>_bars.png`` (mAP and
    Rank-1 per leaderboard row, mean ± std, one panel per dataset) and ``<stem>_cmc.png`` (each
    row's mean CMC over its runs, one axis per dataset). Rows are the table's: (dataset, method,
    preset, training dataset, reported)."""
    from bench.leaderboard import summarize
    from bench.results import read_records

    plots = _import_plotting()
    records = read_records(Path(results_dir), dataset=dataset)
    summary = summarize(records)
    bars = []
    for ds, group in summary.groupby("dataset", sort=True):
        keys = [
            _row_key(r["dataset"], r["method"], r["preset"], r["train_dataset"], r["reported"])
            for _, r in group.iterrows()
        ]
        metrics = {
            title: [(float(r[f"{m}_mean"]), float(r[f"{m}_std"])) for _, r in group.iterrows()]
            for title, m in (("mAP", "mAP"), ("Rank-1", "rank1"))
        }
        bars.append((str(ds), [_row_label(k) for k in keys], metrics))
    curves: dict[str, dict[str, list[list[float]]]] = {}
    for r in records:
        cmc = (r.get("metrics") or {}).get("cmc")
        if not isinstance(cmc, list) or not cmc:
            continue
        key = _row_key(
            r["dataset"], r["method"], r.get("preset"), r.get("train_dataset"), r.get("reported")
        )
        curves.setdefault(key[0], {}).setdefault(_row_label(key), []).append(cmc)
    panels = []
    for ds in sorted(curves):
        means = {}
        for label, lists in curves[ds].items():
            n = min(len(c) for c in lists)  # runs with different max_rank: the common ranks
            means[label] = np.mean([np.asarray(c[:n], dtype=float) for c in lists], axis=0)
        panels.append((ds, means))
    table_path = Path(table_path)
    written = [
        plots.save_png(plots.bars_figure(bars), table_path.with_name(f"{table_path.stem}_bars.png"))
    ]
    if panels:
        written.append(
            plots.save_png(
                plots.leaderboard_cmc_figure(panels),
                table_path.with_name(f"{table_path.stem}_cmc.png"),
            )
        )
    return written
