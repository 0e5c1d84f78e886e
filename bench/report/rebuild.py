"""A finished run's trained method, rebuilt from its checkpoint: for attention maps, and to make
the saved query/gallery features again (``bench report --recompute``) without retraining."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.api.method import Method
from bench.engine.checkpoints import load_checkpoint
from bench.engine.context import RunContext
from bench.engine.devices import resolve_device
from bench.engine.measure import measure
from bench.errors import BenchError
from bench.evaluation.protocol import get_protocol
from bench.plugins import get_dataset, get_method
from bench.results.artifacts import save_eval_artifacts
from bench.results.paths import inside_results, relative_to_results
from bench.results.records import write_record


def rebuild_method(
    results_dir: Path, record: dict[str, Any], device: str, progress: bool
) -> Method:
    """The run's method with its trained state from ``final.pt`` (config from the record), read
    only inside ``results_dir`` (:func:`bench.results.paths.inside_results`)."""
    what = f"checkpoint of run {record['run_id']}"
    ckpt = inside_results(results_dir, record.get("checkpoint"), what)
    if not ckpt.is_file():
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
        state = load_checkpoint(ckpt, map_location=ctx.device)
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
    method = rebuild_method(results_dir, record, device, progress)
    target = get_dataset(str(record["dataset"]))(root, record["config"], show_progress=progress)
    target.prepare()
    splits = target.load(record.get("fold"))
    measured = measure(
        method,
        splits.query,
        splits.gallery,
        protocol=get_protocol(target.protocol),
        config=record["config"],
        seed=int(record.get("seed", 0)),
        device=method.device,
        score=False,
    )
    folder = inside_results(results_dir, record["checkpoint"], "checkpoint").parent
    saved = save_eval_artifacts(folder, measured.query, measured.gallery, measured.represented)
    paths = {k: relative_to_results(results_dir.resolve(), Path(v)) for k, v in saved.items()}
    record["eval_artifacts"] = paths
    write_record(results_dir, record)
    return paths
