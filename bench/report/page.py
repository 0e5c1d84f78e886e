"""The HTML page of a report: metrics, figures, config, provenance and versions, one file that
references its PNGs by relative name."""

from __future__ import annotations

import html
import platform
from datetime import datetime, timezone
from typing import Any

import bench


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
