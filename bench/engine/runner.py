"""``bench run``: resolve config, load data, train, represent, evaluate, write records."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from bench.api.dataset import DatasetAdapter
from bench.api.method import SUPERVISIONS, Method, MethodSpec
from bench.api.samples import Sample, Splits
from bench.config import NON_EXPERIMENT_PREFIXES, config_hash, resolve_config
from bench.data.fingerprint import data_fingerprint
from bench.data.guards import refuse_unsafe_splits
from bench.engine import distributed
from bench.engine.checkpoints import atomic_torch_save
from bench.engine.context import RunContext, seed_everything
from bench.engine.devices import resolve_device
from bench.engine.folders import check_writable
from bench.engine.measure import measure
from bench.engine.selection import (
    Validator,
    carve_validation,
    check_selection,
    last_epoch_selection,
)
from bench.engine.sources import (
    DatasetChoice,
    merge_training,
    parse_choice,
    parse_sources,
    refuse_target_data,
    source_role,
    source_roots,
)
from bench.engine.test_side import ORACLE, text_policy, training_view, withheld_gallery_texts
from bench.errors import BenchError, PluginError
from bench.evaluation.protocol import Protocol, get_protocol, protocol_of_record
from bench.io import cache_dir
from bench.plugins import get_method
from bench.results.artifacts import save_eval_artifacts
from bench.results.paths import relative_to_results
from bench.results.provenance import git_commit, hardware, thread_settings, versions
from bench.results.records import write_record


@dataclass
class RunRequest:
    """Everything ``bench run`` takes from the command line."""

    method: str
    dataset: str
    train_dataset: str | None = None
    preset: str | None = None
    seed: int = 0
    fold: str | None = None  # None: every fold of the dataset
    sets: Sequence[str] = ()
    root: Path | None = None
    train_root: str | Path | None = None  # one root per source, comma-separated
    test_root: Path | None = None  # the test split's folder, for datasets that allow it
    device: str = "cpu"
    results_dir: Path = Path("results")
    resume: bool = False
    progress: bool = True


@dataclass
class ResolvedRun:
    spec: MethodSpec
    dataset_cls: type[DatasetAdapter]
    train_dataset_cls: type[DatasetAdapter]
    preset: str | None
    config: dict[str, Any]
    preset_config: dict[str, Any] = field(default_factory=dict)  # the config without --set
    choices: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    #: The target's own options (``--dataset NAME:key=value``) and the sources of a
    #: cross-domain run (``--train-dataset a,b``; empty for an in-domain run).
    target: DatasetChoice | None = None
    sources: list[DatasetChoice] = field(default_factory=list)

    @property
    def target_choice(self) -> DatasetChoice:
        return self.target if self.target is not None else DatasetChoice(self.dataset_cls, {})

    @property
    def train_dataset_name(self) -> str:
        """The record's ``train_dataset``: the sources' names joined by ',' (the dataset's own
        name for an in-domain run)."""
        return ",".join(s.cls.name for s in self.sources) or self.dataset_cls.name

    @property
    def train_options(self) -> list[dict[str, Any]]:
        """The record's ``train_dataset_options``: each source's options, in order."""
        chosen = self.sources or [self.target_choice]
        return [dict(s.options) for s in chosen]


def check_modalities(
    spec: MethodSpec,
    dataset_cls: type[DatasetAdapter],
    role: str,
    config: dict[str, Any] | None = None,
) -> None:
    provided = dataset_cls.provided_modalities(config or {})
    missing = sorted(set(spec.modalities) - set(provided))
    if missing:
        hint = ""
        if "text" in missing and "text.source" in (config or {}):
            hint = "; choose a text source with --set text.source=... (bench data info NAME)"
        raise BenchError(
            f"method {spec.name!r} needs the {', '.join(missing)} modality, which {role} "
            f"{dataset_cls.name!r} does not provide (it provides: "
            f"{', '.join(sorted(provided))}){hint}"
        )


#: Config keys that say where a run executes, not what it computes: left out of its identity.
PLACEMENT_PREFIXES = ("resources.",)


def fold_identity(
    resolved: ResolvedRun, seed: int, fold: str | None, data: Mapping[str, Any]
) -> dict[str, Any]:
    """What makes one fold's run: method, datasets and their fingerprints (``data``, from
    :func:`bench.data.fingerprint.data_fingerprint`), seed, fold and the resolved config (minus
    placement keys such as ``resources.*``). Its :func:`~bench.config.config_hash` keys the run
    record, the checkpoint folder and ``bench sweep``'s skipping of finished runs."""
    identity = {
        "method": resolved.spec.name,
        "dataset": resolved.dataset_cls.name,
        "train_dataset": resolved.train_dataset_name,
        "data": {role: dict(fp)["fingerprint"] for role, fp in sorted(data.items())},
        "seed": seed,
        "fold": fold,
        "config": {
            k: v for k, v in resolved.config.items() if not k.startswith(PLACEMENT_PREFIXES)
        },
    }
    # Per-dataset options (only when given, so runs without them keep their identity).
    if resolved.target_choice.options:
        identity["dataset_options"] = dict(resolved.target_choice.options)
    if any(s.options for s in resolved.sources):
        identity["train_dataset_options"] = resolved.train_options
    return identity


def fingerprints(
    target: DatasetAdapter,
    splits: Splits,
    sources: Sequence[DatasetAdapter] = (),
    source_splits: Sequence[Splits] = (),
) -> dict[str, dict[str, Any]]:
    """The data fingerprints of a fold's run: ``{"dataset": ...}`` and one entry per source
    (:func:`~bench.engine.sources.source_role`: ``train_dataset``, or ``train_dataset.0``,
    ``train_dataset.1``, ... for several)."""
    data = {"dataset": data_fingerprint(target.root, splits, target.annotation_files())}
    for i, (source, loaded) in enumerate(zip(sources, source_splits)):
        data[source_role(i, len(sources))] = data_fingerprint(
            source.root, loaded, source.annotation_files()
        )
    return data


def config_diff(config: Mapping[str, Any], preset_config: Mapping[str, Any]) -> dict[str, Any]:
    """The keys whose value differs from the preset's (``--set`` and anything else that changed
    them), leaving out :data:`NON_EXPERIMENT_PREFIXES`."""
    return {
        k: v
        for k, v in sorted(config.items())
        if not k.startswith(NON_EXPERIMENT_PREFIXES) and preset_config.get(k, object()) != v
    }


def check_gallery_text(
    spec: MethodSpec, method: Method, gallery: Sequence[Sample], policy: str, dataset: str
) -> None:
    """A method that needs text and embeds each gallery sample alone needs gallery text: under
    the fair protocol identity-level text is withheld, so say so before any training."""
    if "text" not in spec.modalities or method.answers != "embed":
        return
    withheld = withheld_gallery_texts(gallery, policy)
    missing = sum(1 for s in gallery if s.text is None) + withheld
    if missing:
        raise BenchError(
            f"method {spec.name!r} embeds each gallery sample with its own text, but {missing} of "
            f"{len(gallery)} gallery samples of {dataset!r} have none under the fair protocol "
            f"({withheld} carry identity-level text, which names the identity and is withheld); "
            "use a method that scores the gallery against the query's text (for DMCL, "
            "--set dmcl.gallery_text=query), or --set protocol.oracle_gallery_text=true for an "
            "oracle run (marked as such and never ranked)"
        )


def prepare_run(request: RunRequest) -> ResolvedRun:
    """Validate names, config and modalities: everything that can fail before any data is read."""
    spec = get_method(request.method)
    target = parse_choice(request.dataset)
    dataset_cls = target.cls
    sources = parse_sources(request.train_dataset) if request.train_dataset else []
    train_cls = sources[0].cls if sources else dataset_cls
    if request.train_root is not None and not sources:
        raise BenchError("--train-root is the root of --train-dataset; name one or drop it")
    source_roots(request.train_root, len(sources))  # one root per source, checked up front
    datasets = list(dict.fromkeys([*(s.cls for s in sources), dataset_cls]))
    protocols = {s.cls.name: s.cls.protocol for s in sources}
    if len(set(protocols.values())) > 1:
        raise BenchError(
            "--train-dataset merges datasets of different protocols ("
            + ", ".join(f"{n}: {p}" for n, p in protocols.items())
            + "); merge sources of one protocol"
        )
    config, preset = resolve_config(spec, datasets, request.preset, request.sets)
    preset_config, _ = resolve_config(spec, datasets, preset)
    check_selection(config)
    role = "training dataset" if request.train_dataset else "dataset"
    check_modalities(spec, train_cls, role, config)
    if train_cls is not dataset_cls:
        check_modalities(spec, dataset_cls, "evaluation dataset", config)
    for extra in dict.fromkeys(s.cls for s in sources[1:]):
        if extra is not train_cls:
            check_modalities(spec, extra, "training dataset", config)
    spec.family.preflight(config)
    return ResolvedRun(
        spec, dataset_cls, train_cls, preset, config, preset_config, target=target, sources=sources
    )


def run(request: RunRequest) -> list[dict[str, Any]]:
    """Train and evaluate one method on one dataset (every fold unless one is named).

    Under ``torchrun`` the processes form one DDP run (:mod:`bench.engine.distributed`); rank 0
    writes the records and returns them, the other ranks return an empty list.
    """
    with distributed.process_group(request.device):
        return _run(request)


def fit(method: Method, train: Sequence[Sample]) -> None:
    """``method.fit``: on the training samples, or for a self-supervised method on their
    :func:`~bench.engine.test_side.training_view` (no pid, no text, opaque ids and paths)."""
    supervision = type(method).supervision_for(method.config)
    if supervision not in SUPERVISIONS:
        raise PluginError(
            f"method {method.name!r}: supervision_for() must return one of "
            f"{', '.join(SUPERVISIONS)}, got {supervision!r}"
        )
    if supervision == "self":
        with training_view(train) as unlabelled:
            method.fit(unlabelled)
    else:
        method.fit(train)


def check_output_folders(request: RunRequest) -> None:
    """The results folder (records, checkpoints) and the cache (generated data, test views)
    are creatable and writable: checked before any data is read or training starts."""
    check_writable(Path(request.results_dir), "results folder")
    check_writable(Path(request.results_dir) / "checkpoints", "checkpoint folder")
    check_writable(cache_dir(), "cache folder ($BENCH_CACHE)")


def _run(request: RunRequest) -> list[dict[str, Any]]:
    resolved = prepare_run(request)
    if distributed.is_main():
        check_output_folders(request)
    if distributed.world_size() > 1 and not resolved.spec.family.supports_ddp:
        raise BenchError(
            f"method {resolved.spec.name!r} does not support distributed training; "
            "run it without torchrun"
        )
    device = distributed.local_device(resolve_device(request.device))
    config = resolved.config
    protocol = get_protocol(resolved.dataset_cls.protocol)

    target = resolved.dataset_cls(
        request.root, resolved.target_choice.config(config), show_progress=request.progress
    )
    target.use_test_root(request.test_root)
    folds = target.folds()
    if request.fold is not None:
        if folds == [None]:
            raise BenchError(f"dataset {target.name!r} has no folds; drop --fold {request.fold}")
        if request.fold not in folds:
            names = ", ".join(str(f) for f in folds)
            raise BenchError(
                f"dataset {target.name!r} has no fold {request.fold!r}; folds: {names}"
            )
        folds = [request.fold]
    with distributed.main_first():  # generate or verify the data once, not once per rank
        target.prepare()
    sources: list[DatasetAdapter] = []
    for choice, root in zip(
        resolved.sources, source_roots(request.train_root, len(resolved.sources))
    ):
        source = choice.cls(root, choice.config(config), show_progress=request.progress)
        with distributed.main_first():
            source.prepare()
        sources.append(source)

    records = []
    for fold in folds:
        record = _run_fold(request, resolved, device, protocol, target, sources, fold)
        if record is not None:
            records.append(record)
    if records:
        print_metrics(records)
    return records


def _run_fold(
    request: RunRequest,
    resolved: ResolvedRun,
    device: torch.device,
    protocol: Protocol,
    target: DatasetAdapter,
    sources: Sequence[DatasetAdapter],
    fold: str | None,
) -> dict[str, Any] | None:
    """Train, evaluate and record one fold; ``None`` on the ranks other than 0 of a DDP run."""
    spec, config = resolved.spec, resolved.config
    t_start = time.perf_counter()
    splits = target.load(fold)
    refuse_unsafe_splits(splits, target.name, fold)  # overlap, missing images, empty texts
    source_splits = [source.load(None) for source in sources]
    data = fingerprints(target, splits, sources, source_splits)
    if sources:
        parts = [loaded.train for loaded in source_splits]
        refuse_target_data(resolved.target_choice, splits, data, resolved.sources, parts)
        train = merge_training(parts)  # pids of each source shifted past the previous ones'
    else:
        train = splits.train
    train_protocol = get_protocol(resolved.train_dataset_cls.protocol).name
    train, val = carve_validation(
        train, float(config["protocol.val_identities"]), request.seed, train_protocol
    )
    identity = fold_identity(resolved, request.seed, fold, data)
    key = config_hash(identity)
    checkpoint_dir = Path(request.results_dir) / "checkpoints" / f"{spec.name}-{target.name}-{key}"
    rank, world = distributed.rank(), distributed.world_size()
    seed_everything(request.seed + rank)  # DDP: own augmentation draws; weights come from rank 0
    ctx = RunContext(
        device=device,
        seed=request.seed,
        workers=int(config["data.workers"]),
        checkpoint_dir=checkpoint_dir,
        resume=request.resume,
        show_progress=request.progress,
        rank=rank,
        world_size=world,
    )
    method = spec.family(config, ctx)
    policy = text_policy(config)
    check_gallery_text(spec, method, splits.gallery, policy, target.name)
    validator = None
    if val is not None:
        validator = Validator(method, val, ctx=ctx, protocol=protocol, config=config)
        ctx.on_epoch_end = validator
    label = f"{spec.name} on {resolved.target_choice.label}" + (f" {fold}" if fold else "")
    if resolved.sources:
        label += f" (trained on {', '.join(s.label for s in resolved.sources)})"
    say = tqdm.write if rank == 0 else (lambda _: None)
    held = f", {val.meta['identities']} held out for validation" if val is not None else ""
    say(
        f"{label}: {len(train)} train images ({len({s.pid for s in train})} ids{held}), "
        f"{len(splits.query)} query, {len(splits.gallery)} gallery"
    )
    t0 = time.perf_counter()
    fit(method, train)
    if validator is not None:
        selection = validator.finish()
    else:
        selection = last_epoch_selection(config.get("train.epochs"))
    t1 = time.perf_counter()
    if rank == 0:
        atomic_torch_save(method.state_dict(), checkpoint_dir / "final.pt")
    measured = measure(
        method,
        splits.query,
        splits.gallery,
        protocol=protocol,
        config=config,
        seed=request.seed,
        device=device,
        score=rank == 0,
        labels=splits.meta.get("tracklet_labels"),
    )
    t2 = time.perf_counter()
    if rank != 0 or measured.metrics is None:
        return None
    metrics = measured.metrics
    query, gallery = measured.query, measured.gallery
    artifacts = None
    if config["report.save_features"]:
        saved = save_eval_artifacts(checkpoint_dir, query, gallery, measured.represented)
        artifacts = {k: relative_to_results(request.results_dir, Path(v)) for k, v in saved.items()}
    now = datetime.now(timezone.utc)
    run_id = "-".join(
        [now.strftime("%Y%m%dT%H%M%S%f"), spec.name, target.name, f"s{request.seed}"]
        + ([fold] if fold else [])
        + [key[:6]]
    )
    level = str(config.get("protocol.level", "frame"))
    record = {
        "schema": 1,
        "run_id": run_id,
        "method": spec.name,
        "family": spec.family.name,
        "dataset": target.name,
        "dataset_options": dict(resolved.target_choice.options),
        "train_dataset": identity["train_dataset"],
        "train_dataset_options": resolved.train_options,
        "protocol": protocol.name if level == "frame" else f"{protocol.name}/{level}",
        "preset": resolved.preset,
        "seed": request.seed,
        "fold": fold,
        "config": config,
        "config_diff": config_diff(config, resolved.preset_config),
        "config_hash": key,
        "data": data,
        "text_policy": policy,
        "oracle": policy == ORACLE,
        "gallery_text_withheld": withheld_gallery_texts(splits.gallery, policy),
        "test_order": f"shuffled, seed {request.seed}",
        "selection": selection,
        "answers": method.answers,
        "method_facts": method.run_facts(),
        "metrics": metrics.as_dict(),
        "history": ctx.history,
        "timings": {
            "load_s": round(t0 - t_start, 3),
            "train_s": round(t1 - t0, 3),
            "test_s": round(t2 - t1, 3),  # represent and evaluate the test split
            "total_s": round(t2 - t_start, 3),
        },
        "resumed_from_epoch": ctx.resumed_from,
        # Relative to the results folder, and read only inside it (bench.results.paths).
        "checkpoint": relative_to_results(request.results_dir, checkpoint_dir / "final.pt"),
        "eval_artifacts": artifacts,
        "versions": versions(),
        "git_commit": git_commit(),
        "hardware": hardware(device, world),
        "threads": thread_settings(),
        "command": " ".join(sys.argv),
        "created": now.isoformat(timespec="seconds"),
    }
    path = write_record(Path(request.results_dir), record)
    tag = " (oracle: gallery given its identity-level text)" if policy == ORACLE else ""
    say(f"{label}: {metrics.summary()}{tag}  -> {path}")
    return record


def print_metrics(records: list[dict[str, Any]]) -> None:
    """The metrics table printed at the end of ``bench run`` (percent; mean row for folds)."""
    import pandas as pd
    from tabulate import tabulate

    rows = []
    for r in records:
        m = r["metrics"]
        columns = protocol_of_record(r["protocol"]).columns
        rows.append(
            {
                "method": r["method"],
                "dataset": r["dataset"],
                "fold": r["fold"] or "-",
                "seed": r["seed"],
                **{
                    title: math.nan if m.get(key) is None else 100 * m[key]
                    for key, title in columns
                },
            }
        )
    df = pd.DataFrame(rows)
    if len(df) > 1:
        mean = df.select_dtypes("number").mean()
        mean_row = {**{c: "" for c in df.columns}, **mean.to_dict(), "fold": "mean"}
        mean_row["seed"] = ""
        df = pd.concat([df, pd.DataFrame([mean_row])], ignore_index=True)
    print(tabulate(df, headers="keys", tablefmt="github", floatfmt=".1f", showindex=False))
