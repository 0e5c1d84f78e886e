"""``bench sweep``: a grid of runs (methods x presets x datasets x seeds x folds), resumable.

A sweep plans every run first (names, presets, ``--set`` keys and dataset roots are checked
before anything trains), computes each run's identity hash (:func:`bench.runner.fold_identity`)
and skips the runs whose record with that ``config_hash`` already exists under
``DIR/runs/``; a killed sweep restarted with the same command does only what is left (a run killed
mid-training continues from its last epoch checkpoint). A failing run is written to
``DIR/failed/`` with its error (:func:`bench.results.write_failure`) and the others go on;
running the sweep again retries it.

The runs are fanned out by existing engines, not a scheduler of our own:

* ``local``: in this process one after another (``--max-parallel 1``, the default), or a
  ``concurrent.futures.ProcessPoolExecutor`` of N spawned processes, each run's output going
  to ``DIR/logs/``;
* ``ray``: one Ray task per run, asking for the run's ``resources.num_cpus`` and
  ``resources.num_gpus`` (config keys, ``--set``-able); every worker writes its record into the
  one results folder (shared storage on a cluster).
"""

from __future__ import annotations

import contextlib
import difflib
import multiprocessing
import os
import socket
import time
import traceback
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from bench.config import config_hash, parse_set_args
from bench.errors import BenchError, ConfigError

EXECUTORS = ("local", "ray")
#: Keys of a sweep file (the long flags of ``bench sweep``, dashes or underscores).
SWEEP_KEYS = (
    "methods",
    "datasets",
    "seeds",
    "folds",
    "presets",
    "set",
    "roots",
    "device",
    "executor",
    "max_parallel",
    "ray_address",
    "results_dir",
    "resume",
)
RAY_INSTALL_HINT = (
    "--executor ray needs Ray, an optional extra: pip install -c constraints.txt -e '.[ray]' "
    "in a checkout of reid-bench (or pip install 'ray>=2.10')"
)


@dataclass(frozen=True)
class SweepSpec:
    """A grid of runs and how to execute it (the flags of ``bench sweep``, or a sweep file)."""

    methods: tuple[str, ...]
    datasets: tuple[str, ...]
    seeds: tuple[int, ...] = (0,)
    folds: tuple[str, ...] | None = None  # None: every fold of each dataset
    presets: tuple[str | None, ...] = (None,)  # None: each method's default preset
    sets: Mapping[str, Any] = field(default_factory=dict)
    roots: Mapping[str, Path] = field(default_factory=dict)  # dataset name -> --root
    device: str = "cpu"
    executor: str = "local"
    max_parallel: int | None = None  # local: default 1; ray: default no limit
    ray_address: str | None = None
    results_dir: Path = Path("results")
    resume: bool = True
    progress: bool = True


@dataclass(frozen=True)
class Job:
    """One run of the grid: one method, preset, dataset, seed and fold; one record."""

    method: str
    preset: str | None
    dataset: str
    seed: int
    fold: str | None
    config_hash: str
    sets: Mapping[str, Any]
    root: Path | None
    device: str
    results_dir: Path
    num_cpus: float
    num_gpus: float
    resume: bool = True
    progress: bool = True
    threads: int | None = None  # torch threads in the worker; None: leave torch's default
    log_path: Path | None = None  # the run's output goes here (parallel runs), else the console

    @property
    def label(self) -> str:
        preset = f"/{self.preset}" if self.preset else ""
        fold = f" {self.fold}" if self.fold else ""
        return f"{self.method}{preset} on {self.dataset} s{self.seed}{fold}"

    @property
    def stem(self) -> str:
        """``method-dataset-sSEED[-fold]-HASH``: the file name of its log and failure record."""
        fold = f"-{self.fold}" if self.fold else ""
        return f"{self.method}-{self.dataset}-s{self.seed}{fold}-{self.config_hash}"

    def request(self) -> Any:
        from bench.runner import RunRequest

        return RunRequest(
            method=self.method,
            dataset=self.dataset,
            preset=self.preset,
            seed=self.seed,
            fold=self.fold,
            sets=dict(self.sets),
            root=self.root,
            device=self.device,
            results_dir=self.results_dir,
            resume=self.resume,
            progress=self.progress,
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


# ---------------------------------------------------------------------------------------------
# reading a sweep from flags or a file


def _where(source: str) -> str:
    return f" in {source}" if source else ""


def _names(value: Any, key: str, source: str) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(v, str) for v in items):
        raise ConfigError(f"{key}: expected names (a list or A,B,C){_where(source)}, got {value!r}")
    names = tuple(v.strip() for v in items if v.strip())
    if not names:
        raise ConfigError(f"{key}: no names given{_where(source)}")
    return names


def _seeds(value: Any, source: str) -> tuple[int, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if isinstance(items, int) and not isinstance(items, bool):
        items = [items]
    if not isinstance(items, (list, tuple)):
        raise ConfigError(f"seeds: expected integers (0,1,2){_where(source)}, got {value!r}")
    seeds = []
    for item in items:
        text = item.strip() if isinstance(item, str) else item
        if text == "":
            continue
        try:
            if isinstance(text, (bool, float)):
                raise ValueError
            seeds.append(int(text))
        except (TypeError, ValueError):
            raise ConfigError(
                f"seeds: {item!r} is not an integer{_where(source)} (expected e.g. 0,1,2)"
            ) from None
    if not seeds:
        raise ConfigError(f"seeds: no seeds given{_where(source)}")
    return tuple(dict.fromkeys(seeds))


def _sets(value: Any, source: str) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str):
        value = [value]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return parse_set_args(value)
    raise ConfigError(
        f"set: expected a mapping of config keys to values or KEY=VALUE strings{_where(source)}, "
        f"got {value!r}"
    )


def _roots(value: Any, source: str) -> dict[str, Path]:
    if isinstance(value, (list, tuple, str)):
        items = [value] if isinstance(value, str) else value
        out = {}
        for item in items:
            name, sep, path = str(item).partition("=")
            if not sep or not name.strip() or not path.strip():
                raise ConfigError(f"--root expects DATASET=PATH{_where(source)}, got {item!r}")
            out[name.strip()] = Path(path.strip()).expanduser()
        return out
    if isinstance(value, Mapping):
        return {str(k): Path(str(v)).expanduser() for k, v in value.items()}
    raise ConfigError(f"roots: expected a mapping dataset -> folder{_where(source)}, got {value!r}")


def _positive_int(value: Any, key: str, source: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{key}: expected a positive integer{_where(source)}, got {value!r}")
    return value


def normalize(data: Mapping[str, Any], source: str = "") -> dict[str, Any]:
    """Check a sweep's settings (a sweep file's mapping or the flags given) and convert them to
    :class:`SweepSpec` field values; errors name the key and ``source``."""
    out: dict[str, Any] = {}
    for raw_key, value in data.items():
        key = str(raw_key).replace("-", "_")
        if key not in SWEEP_KEYS:
            close = difflib.get_close_matches(key, SWEEP_KEYS, n=1, cutoff=0.5)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"unknown sweep key {raw_key!r}{_where(source)}.{hint} "
                f"Known keys: {', '.join(SWEEP_KEYS)}"
            )
        if value is None:
            continue
        if key in ("methods", "datasets", "presets"):
            out[key] = _names(value, key, source)
        elif key == "seeds":
            out[key] = _seeds(value, source)
        elif key == "folds":
            out[key] = None if value == "all" else _names(value, key, source)
            if out[key] is not None and "all" in out[key]:
                out[key] = None
        elif key == "set":
            out["sets"] = _sets(value, source)
        elif key == "roots":
            out["roots"] = _roots(value, source)
        elif key == "executor":
            if value not in EXECUTORS:
                raise ConfigError(
                    f"executor: must be one of {', '.join(EXECUTORS)}{_where(source)}, "
                    f"got {value!r}"
                )
            out[key] = value
        elif key == "max_parallel":
            out[key] = _positive_int(value, "max_parallel", source)
        elif key in ("device", "ray_address"):
            if not isinstance(value, str):
                raise ConfigError(f"{key}: expected a string{_where(source)}, got {value!r}")
            out[key] = value
        elif key == "results_dir":
            out[key] = Path(str(value)).expanduser()
        elif key == "resume":
            if not isinstance(value, bool):
                raise ConfigError(f"resume: expected true/false{_where(source)}, got {value!r}")
            out[key] = value
    return out


def load_sweep_file(path: Path) -> dict[str, Any]:
    """A sweep file (YAML mapping with the flags' keys), checked; errors name the file."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BenchError(f"sweep file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BenchError(f"cannot read sweep file {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise BenchError(f"sweep file {path} is not valid YAML: {exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise BenchError(f"sweep file {path} must hold a mapping (methods:, datasets:, ...)")
    return normalize(data, str(path))


def make_spec(settings: Mapping[str, Any], progress: bool = True) -> SweepSpec:
    """A :class:`SweepSpec` from normalized settings; methods and datasets are required."""
    for key in ("methods", "datasets"):
        if key not in settings:
            raise ConfigError(f"bench sweep needs --{key} (or {key}: in a sweep file)")
    return SweepSpec(**dict(settings), progress=progress)


# ---------------------------------------------------------------------------------------------
# planning


def _check_device(device: str) -> None:
    if device not in ("cpu", "cuda") and not (device.startswith("cuda:") and device[5:].isdigit()):
        raise BenchError(f"--device must be cpu or cuda (or cuda:N), got {device!r}")


def _select_folds(target: Any, wanted: tuple[str, ...] | None) -> list[str | None]:
    folds = target.folds()
    if wanted is None or folds == [None]:
        return folds  # datasets without folds run their one split whatever --folds says
    missing = [f for f in wanted if f not in folds]
    if missing:
        raise BenchError(
            f"dataset {target.name!r} has no fold {missing[0]!r}; folds: "
            f"{', '.join(str(f) for f in folds)}"
        )
    return [f for f in folds if f in wanted]


def _resources(config: Mapping[str, Any], label: str) -> tuple[float, float]:
    values = []
    for key in ("resources.num_cpus", "resources.num_gpus"):
        value = float(config[key])
        if value < 0:
            raise ConfigError(f"config key {key!r} must be at least 0, got {value} ({label})")
        values.append(value)
    return values[0], values[1]


def plan(spec: SweepSpec) -> tuple[list[Job], list[Any]]:
    """Every run of the grid as a :class:`Job` (duplicates removed), and the dataset adapters
    they read. Raises :class:`BenchError` for any unknown name, preset, key, fold or value."""
    from bench.runner import RunRequest, fold_identity, prepare_run

    _check_device(spec.device)
    known = set(spec.datasets)
    for name in spec.roots:
        if name not in known:
            raise BenchError(
                f"--root names dataset {name!r}, which is not in the sweep's datasets "
                f"({', '.join(spec.datasets)})"
            )
    results_dir = Path(spec.results_dir).resolve()
    jobs: dict[str, Job] = {}
    adapters: dict[tuple[str, str], Any] = {}
    for method in spec.methods:
        for preset in spec.presets:
            for dataset in spec.datasets:
                root = spec.roots.get(dataset)
                root = root.resolve() if root is not None else None
                request = RunRequest(
                    method=method, dataset=dataset, preset=preset, sets=dict(spec.sets), root=root
                )
                resolved = prepare_run(request)
                target = resolved.dataset_cls(root, resolved.config, show_progress=spec.progress)
                adapters.setdefault((dataset, str(target.root)), target)
                num_cpus, num_gpus = _resources(resolved.config, f"{method} on {dataset}")
                for seed in spec.seeds:
                    for fold in _select_folds(target, spec.folds):
                        key = config_hash(fold_identity(resolved, seed, fold))
                        jobs.setdefault(
                            key,
                            Job(
                                method=method,
                                preset=resolved.preset,
                                dataset=dataset,
                                seed=seed,
                                fold=fold,
                                config_hash=key,
                                sets=dict(spec.sets),
                                root=root,
                                device=spec.device,
                                results_dir=results_dir,
                                num_cpus=num_cpus,
                                num_gpus=num_gpus,
                                resume=spec.resume,
                                progress=spec.progress,
                            ),
                        )
    return list(jobs.values()), list(adapters.values())


# ---------------------------------------------------------------------------------------------
# executing one job (in whichever process the executor gives it)


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
    from bench.results import write_failure

    now = datetime.now(timezone.utc)
    write_failure(
        job.results_dir,
        {
            "schema": 1,
            "method": job.method,
            "dataset": job.dataset,
            "preset": job.preset,
            "seed": job.seed,
            "fold": job.fold,
            "config_hash": job.config_hash,
            "sets": dict(job.sets),
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
    from bench.results import clear_failure
    from bench.runner import run

    start = time.perf_counter()
    worker = _worker_name()
    if job.threads is not None:
        import torch

        torch.set_num_threads(job.threads)
    try:
        with _output_to(job.log_path):
            try:
                records = run(job.request())
            except Exception:
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
    clear_failure(job.results_dir, job.config_hash)
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


# ---------------------------------------------------------------------------------------------
# executors


def _local(jobs: Sequence[Job], max_parallel: int) -> Iterator[JobResult]:
    """In this process one by one, or a pool of ``max_parallel`` spawned processes."""
    if max_parallel == 1:
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


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise BenchError(RAY_INSTALL_HINT) from None
    return ray


def _ray(jobs: Sequence[Job], max_parallel: int | None, address: str | None) -> Iterator[JobResult]:
    """One Ray task per job with the job's ``num_cpus``/``num_gpus``; at most ``max_parallel``
    in flight (default: as many as the cluster's resources allow)."""
    ray = _import_ray()
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


# ---------------------------------------------------------------------------------------------
# the sweep


def _prepare_locally(spec: SweepSpec) -> bool:
    """Whether the datasets are generated/verified here before fanning out (same machine)."""
    return spec.executor == "local" or (
        spec.ray_address is None and not os.environ.get("RAY_ADDRESS")
    )


def run_sweep(spec: SweepSpec) -> SweepReport:
    """Plan the grid, skip finished runs, execute the rest, return every job's result."""
    from bench.results import read_records

    start = time.perf_counter()
    if spec.executor == "ray":
        _import_ray()  # say how to install it before planning anything
    jobs, adapters = plan(spec)
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
    if _prepare_locally(spec):  # generate or verify each dataset once, not once per worker
        needed = {job.dataset for job in todo}
        for adapter in adapters:
            if adapter.name in needed:
                adapter.prepare()

    parallel = spec.executor == "ray" or (spec.max_parallel or 1) > 1
    if parallel:
        slots = spec.max_parallel or 1
        threads = max(1, (os.cpu_count() or 1) // slots) if spec.executor == "local" else None
        logs = Path(spec.results_dir).resolve() / "logs"
        todo = [
            _with(
                job,
                progress=False,
                log_path=logs / f"{job.stem}.log",
                threads=threads if threads is not None else max(1, int(job.num_cpus)),
            )
            for job in todo
        ]
    if spec.executor == "ray":
        stream = _ray(todo, spec.max_parallel, spec.ray_address)
    else:
        stream = _local(todo, spec.max_parallel or 1)
    bar = tqdm(total=len(todo), desc="sweep", unit="run", disable=not spec.progress or not todo)
    with bar:
        for result in stream:
            results.append(result)
            bar.update(1)
            bar.write(_one_line(result))
    order = {job.config_hash: i for i, job in enumerate(jobs)}
    results.sort(key=lambda r: order[r.job.config_hash])
    return SweepReport(results, time.perf_counter() - start)


def _with(job: Job, **changes: Any) -> Job:
    from dataclasses import replace

    return replace(job, **changes)


def _one_line(result: JobResult) -> str:
    if result.status == "failed":
        return f"failed  {result.job.label}: {result.error}"
    m = result.metrics
    score = f"mAP {100 * m['mAP']:.1f}  " if "mAP" in m else ""
    return f"done    {result.job.label}: {score}({result.seconds or 0:.1f} s)"


def summary_table(report: SweepReport) -> str:
    """One row per run (status, mAP, Rank-1, time, error), then the totals. A skipped run
    shows the metrics and time of its existing record."""
    from tabulate import tabulate

    rows = []
    for r in report.results:
        m = r.metrics
        error = (r.error or "").splitlines()[0] if r.error else ""
        rows.append(
            [
                r.job.method,
                r.job.preset or "-",
                r.job.dataset,
                r.job.fold or "-",
                r.job.seed,
                r.status,
                f"{100 * m['mAP']:.1f}" if "mAP" in m else "-",
                f"{100 * m['rank1']:.1f}" if "rank1" in m else "-",
                f"{r.seconds:.1f}" if r.seconds is not None else "-",
                error if len(error) <= 80 else error[:77] + "...",
            ]
        )
    headers = ["method", "preset", "dataset", "fold", "seed", "status", "mAP", "Rank-1", "time (s)"]
    table = tabulate(rows, headers=[*headers, "error"], tablefmt="github", disable_numparse=True)
    totals = (
        f"{len(report.results)} runs: {report.count('done')} done, "
        f"{report.count('skipped')} skipped, {report.count('failed')} failed "
        f"in {report.seconds:.1f} s"
    )
    return f"{table}\n\n{totals}"
