"""Planning a sweep: every run of the grid as a :class:`Job`, checked before anything trains."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.api.dataset import DatasetAdapter
from bench.config import config_hash
from bench.engine.devices import parse_device
from bench.engine.runner import RunRequest, fingerprints, fold_identity, prepare_run
from bench.errors import BenchError
from bench.sweep.spec import SweepSpec

#: The axes of a sweep's grid, each a field of a job's run request.
GRID_AXES = ("method", "preset", "dataset", "seed", "fold")


@dataclass(frozen=True)
class Job:
    """One run of the grid (one method, preset, dataset, seed and fold; one record): the run
    request, the hash of the run's identity, and what its execution asks for."""

    request: RunRequest
    config_hash: str
    num_cpus: float
    num_gpus: float
    threads: int | None = None  # torch threads in the worker; None: leave torch's default
    log_path: Path | None = None  # the run's output goes here (parallel runs), else the console

    def __getattr__(self, name: str) -> Any:
        """The grid's axes, ``job.method``, ``job.preset``, ``job.dataset``, ``job.seed`` and
        ``job.fold``, are the request's."""
        if name in GRID_AXES:
            return getattr(self.request, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

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


def _select_folds(target: DatasetAdapter, wanted: tuple[str, ...] | None) -> list[str | None]:
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


def _resources(config: Mapping[str, Any]) -> tuple[float, float]:
    """What one run asks of a worker (ranges checked when the config was resolved)."""
    return float(config["resources.num_cpus"]), float(config["resources.num_gpus"])


def plan(spec: SweepSpec) -> tuple[list[Job], list[DatasetAdapter]]:
    """Every run of the grid as a :class:`Job` (duplicates removed), and the dataset adapters
    they read. Each dataset is generated or verified here, and every fold's files are
    fingerprinted (names and sizes), since the data is part of a run's identity. Raises
    :class:`BenchError` for any unknown name, preset, key, fold or value."""
    parse_device(spec.device)
    known = set(spec.datasets)
    for name in spec.roots:
        if name not in known:
            raise BenchError(
                f"--root names dataset {name!r}, which is not in the sweep's datasets "
                f"({', '.join(spec.datasets)})"
            )
    results_dir = Path(spec.results_dir).resolve()
    jobs: dict[str, Job] = {}
    adapters: dict[tuple[str, str], DatasetAdapter] = {}
    for method in spec.methods:
        for preset in spec.presets:
            for dataset in spec.datasets:
                root = spec.roots.get(dataset)
                root = root.resolve() if root is not None else None
                request = RunRequest(
                    method=method, dataset=dataset, preset=preset, sets=dict(spec.sets), root=root
                )
                resolved = prepare_run(request)
                config = resolved.target_choice.config(resolved.config)  # NAME:key=value
                target = resolved.dataset_cls(root, config, show_progress=spec.progress)
                where = (dataset, str(target.root))
                if where not in adapters:
                    target.prepare()  # generate or verify once: fingerprints read the files
                    adapters[where] = target
                num_cpus, num_gpus = _resources(resolved.config)
                folds = _select_folds(target, spec.folds)
                data = {fold: fingerprints(target, target.load(fold)) for fold in folds}
                for seed in spec.seeds:
                    for fold in folds:
                        key = config_hash(fold_identity(resolved, seed, fold, data[fold]))
                        run = dataclasses.replace(
                            request,
                            preset=resolved.preset,
                            seed=seed,
                            fold=fold,
                            sets=dict(spec.sets),
                            device=spec.device,
                            results_dir=results_dir,
                            resume=spec.resume,
                            progress=spec.progress,
                        )
                        jobs.setdefault(key, Job(run, key, num_cpus, num_gpus))
    return list(jobs.values()), list(adapters.values())
