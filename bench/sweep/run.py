"""``run_sweep``: plan the grid (each dataset prepared and fingerprinted once, here), skip the
runs already recorded, execute the rest, and collect every job's result in the grid's order."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

from bench.progress import progress
from bench.results.records import read_records
from bench.sweep.executors import JobResult, SweepReport, execute_local, execute_ray, import_ray
from bench.sweep.plan import Job, plan
from bench.sweep.spec import SweepSpec


def run_sweep(spec: SweepSpec) -> SweepReport:
    """Plan the grid, skip finished runs, execute the rest, return every job's result."""
    start = time.perf_counter()
    if spec.executor == "ray":
        import_ray()  # say how to install it before planning anything
    jobs, _ = plan(spec)  # generates or verifies each dataset once, here
    finished = {r.get("config_hash"): r for r in read_records(spec.results_dir)}
    results: list[JobResult] = []
    todo: list[Job] = []
    for job in jobs:
        record = finished.get(job.config_hash)
        if record is None:
            todo.append(job)
            continue
        metrics = record.get("metrics") or {}
        results.append(
            JobResult(
                job,
                "skipped",
                seconds=(record.get("timings") or {}).get("total_s"),
                run_id=record.get("run_id"),
                metrics={k: metrics[k] for k in ("mAP", "rank1") if k in metrics},
            )
        )
    parallel = spec.executor == "ray" or (spec.max_parallel or 1) > 1
    if parallel:
        slots = spec.max_parallel or 1
        threads = max(1, (os.cpu_count() or 1) // slots) if spec.executor == "local" else None
        logs = Path(spec.results_dir).resolve() / "logs"
        todo = [
            dataclasses.replace(
                job,
                request=dataclasses.replace(job.request, progress=False),
                log_path=logs / f"{job.stem}.log",
                threads=threads if threads is not None else max(1, int(job.num_cpus)),
            )
            for job in todo
        ]
    if spec.executor == "ray":
        stream = execute_ray(todo, spec.max_parallel, spec.ray_address)
    else:
        stream = execute_local(todo, spec.max_parallel or 1)
    bar = progress(total=len(todo), desc="sweep", unit="run", enabled=spec.progress and bool(todo))
    with bar:
        for result in stream:
            results.append(result)
            bar.update(1)
            bar.write(_one_line(result))
    order = {job.config_hash: i for i, job in enumerate(jobs)}
    results.sort(key=lambda r: order[r.job.config_hash])
    return SweepReport(results, time.perf_counter() - start)


def _one_line(result: JobResult) -> str:
    if result.status == "failed":
        return f"failed  {result.job.label}: {result.error}"
    m = result.metrics
    score = f"mAP {100 * m['mAP']:.1f}  " if "mAP" in m else ""
    return f"done    {result.job.label}: {score}({result.seconds or 0:.1f} s)"
