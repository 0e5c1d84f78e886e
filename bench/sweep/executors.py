"""Executing a sweep's jobs with existing engines, not a scheduler of our own: in this process, a
pool of spawned processes, or one Ray task per job; each job's record, or its failure record,
is written wherever it runs."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import socket
import time
import traceback
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.engine.runner import run
from bench.errors import BenchError
from bench.results.records import clear_failure, write_failure
from bench.sweep.plan import Job

RAY_INSTALL_HINT = (
    "--executor ray needs Ray, an optional extra: pip install -c constraints.txt -e '.[ray]' "
    "in a checkout of reid-bench (or pip install 'ray>=2.10')"
)


@dataclass
class JobResult:
    """How a job ended: ``done`` (ran now), ``skipped`` (its record existed) or ``failed``."""

    job: Job
    status: str
    seconds: float | None = None
    run_id: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    worker: str | None = None


@dataclass
class SweepReport:
    results: list[JobResult]
    seconds: float

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)


@contextlib.contextmanager
def _output_to(path: Path | None) -> Iterator[None]:
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with (
        path.open("a", encoding="utf-8") as fh,
        contextlib.redirect_stdout(fh),
        contextlib.redirect_stderr(fh),
    ):
        yield


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def record_failure(job: Job, error: str, details: str, seconds: float, worker: str) -> JobResult:
    """Write ``job``'s failure record and return its failed result."""
    r = job.request
    now = datetime.now(timezone.utc)
    write_failure(
        r.results_dir,
        {
            "schema": 1,
            "method": r.method,
            "dataset": r.dataset,
            "preset": r.preset,
            "seed": r.seed,
            "fold": r.fold,
            "config_hash": job.config_hash,
            "sets": dict(r.sets),
            "error": error,
            "traceback": details,
            "log": str(job.log_path) if job.log_path is not None else None,
            "worker": worker,
            "seconds": round(seconds, 3),
            "created": now.isoformat(timespec="seconds"),
        },
    )
    return JobResult(job, "failed", seconds=seconds, error=error, worker=worker)


def execute(job: Job) -> JobResult:
    """Run ``job`` and write its record; on an exception, write a failure record instead.

    Module-level so that a spawned process or a Ray worker can import it.
    """
    start = time.perf_counter()
    worker = _worker_name()
    if job.threads is not None:
        import torch

        torch.set_num_threads(job.threads)
    try:
        with _output_to(job.log_path):
            try:
                records = run(job.request)
            except Exception:
                if job.log_path is not None:  # into the run's log file; never on a terminal
                    traceback.print_exc()
                raise
        if len(records) != 1 or records[0].get("config_hash") != job.config_hash:
            got = [r.get("config_hash") for r in records]
            raise RuntimeError(
                f"the sweep planned run {job.config_hash} but the runner recorded {got}; "
                "planning and running disagree on the run's identity"
            )
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        return record_failure(
            job, error, traceback.format_exc(), time.perf_counter() - start, worker
        )
    clear_failure(job.request.results_dir, job.config_hash)
    record = records[0]
    metrics = record.get("metrics") or {}
    return JobResult(
        job,
        "done",
        seconds=time.perf_counter() - start,
        run_id=record["run_id"],
        metrics={k: metrics[k] for k in ("mAP", "rank1") if k in metrics},
        worker=worker,
    )


def execute_local(jobs: Sequence[Job], max_parallel: int) -> Iterator[JobResult]:
    """In this process one by one, or a pool of ``max_parallel`` spawned processes (none when
    every run was skipped)."""
    if max_parallel == 1 or not jobs:
        for job in jobs:
            yield execute(job)
        return
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=min(max_parallel, len(jobs)), mp_context=context)
    clean = False
    try:
        futures = {pool.submit(execute, job): job for job in jobs}
        for future in as_completed(futures):
            job = futures[future]
            try:
                yield future.result()
            except Exception as exc:  # BrokenProcessPool: a worker was killed or crashed
                yield record_failure(
                    job,
                    f"worker process died: {type(exc).__name__}: {exc}",
                    traceback.format_exc(),
                    0.0,
                    _worker_name(),
                )
        clean = True
    finally:
        pool.shutdown(wait=clean, cancel_futures=True)


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise BenchError(RAY_INSTALL_HINT) from None
    return ray


def execute_ray(
    jobs: Sequence[Job], max_parallel: int | None, address: str | None
) -> Iterator[JobResult]:
    """One Ray task per job with the job's ``num_cpus``/``num_gpus``; at most ``max_parallel``
    in flight (default: as many as the cluster's resources allow)."""
    ray = import_ray()
    started = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"log_to_driver": False}
        if address is None and not os.environ.get("RAY_ADDRESS"):
            kwargs["include_dashboard"] = False
        ray.init(address=address, **kwargs)
        started = True
    try:
        task = ray.remote(execute)
        queue = list(jobs)
        pending: dict[Any, Job] = {}
        limit = max_parallel or len(queue)
        while queue or pending:
            while queue and len(pending) < limit:
                job = queue.pop(0)
                ref = task.options(
                    num_cpus=job.num_cpus,
                    num_gpus=job.num_gpus,
                    max_retries=0,
                    name=f"bench {job.label}",
                ).remote(job)
                pending[ref] = job
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                job = pending.pop(ref)
                try:
                    yield ray.get(ref)
                except ray.exceptions.RayError as exc:  # the worker died, the node was lost...
                    yield record_failure(
                        job,
                        f"Ray task failed: {type(exc).__name__}: {exc}".splitlines()[0],
                        str(exc),
                        0.0,
                        "ray",
                    )
    finally:
        if started:
            ray.shutdown()
