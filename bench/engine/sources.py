"""Where a run's training data comes from: dataset specs with their own options, several source
datasets merged into one training set, and the guard that keeps the target out of training.

A dataset spec is ``NAME`` or ``NAME:key=value:key=value`` (:func:`bench.config.
parse_dataset_spec`): the keys are the dataset's own config keys and override ``--set`` for that
dataset only. ``--train-dataset a,b`` names several sources (commas between specs);
``--train-root`` then lists one root per source, an empty entry meaning that dataset's default.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.api.dataset import DatasetAdapter
from bench.api.samples import Sample, Splits
from bench.config import dataset_label, dataset_options, parse_dataset_spec, split_sources
from bench.errors import BenchError, ConfigError
from bench.plugins import get_dataset


@dataclass(frozen=True)
class DatasetChoice:
    """One dataset of a run: its adapter class and its own options (validated, sorted)."""

    cls: type[DatasetAdapter]
    options: Mapping[str, Any]

    @property
    def label(self) -> str:
        return dataset_label(self.cls.name, self.options)

    def config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The run's resolved ``config`` with this dataset's options on top."""
        return {**config, **self.options}


def parse_choice(text: str) -> DatasetChoice:
    """A dataset spec (``NAME[:key=value...]``) as a :class:`DatasetChoice`; unknown names,
    keys that are not the dataset's own and bad values raise one line naming them."""
    name, raw = parse_dataset_spec(text)
    cls = get_dataset(name)
    try:
        return DatasetChoice(cls, dataset_options(cls, raw))
    except ConfigError as e:
        raise ConfigError(f"dataset spec {text!r}: {e}") from None


def parse_sources(text: str) -> list[DatasetChoice]:
    """``--train-dataset a,b:key=value``: one :class:`DatasetChoice` per comma-separated spec."""
    specs = split_sources(text)
    if any(not s.strip() for s in specs):
        raise ConfigError(
            f"--train-dataset {text!r} has an empty entry; name each source, separated by ','"
        )
    return [parse_choice(s) for s in specs]


def source_roots(train_root: str | Path | None, count: int) -> list[Path | None]:
    """``--train-root`` as one root per source: a path (one source), or a comma-separated list
    with one entry per source (an empty entry: that dataset's default root)."""
    if train_root is None:
        return [None] * count
    # A Path (the API's single root) is taken whole; the command line's text is split.
    entries = [str(train_root)] if isinstance(train_root, Path) else str(train_root).split(",")
    if len(entries) != count:
        raise ConfigError(
            f"--train-root {str(train_root)!r} lists {len(entries)} root(s) but --train-dataset "
            f"names {count} dataset(s); give one per source, separated by ',' (empty: default)"
        )
    return [Path(e.strip()) if e.strip() else None for e in entries]


def source_role(index: int, count: int) -> str:
    """A source's key in the record's ``data``: ``train_dataset`` for one source (as before
    several were allowed), ``train_dataset.0``, ``train_dataset.1``, ... for several."""
    return "train_dataset" if count == 1 else f"train_dataset.{index}"


def merge_training(parts: Sequence[Sequence[Sample]]) -> list[Sample]:
    """The training samples of several sources as one set: each source's pids are shifted past
    the previous sources' (source ``i`` starts at the sum of the earlier sources' ``max pid +
    1``), so no two datasets share an identity. Camera ids are kept as they are: pids already
    tell the sources apart, so every (pid, camid) view stays distinct, and the Colo-Pair
    validation carving reads camid 0 as the first screening. ``clip`` and ``video`` get a
    ``s<i>/`` prefix so clips of different sources never group together. One source: unchanged."""
    if len(parts) == 1:
        return list(parts[0])
    merged: list[Sample] = []
    offset = 0
    for i, part in enumerate(parts):
        for s in part:
            merged.append(
                dataclasses.replace(
                    s,
                    pid=s.pid + offset if s.pid >= 0 else s.pid,
                    clip=None if s.clip is None else f"s{i}/{s.clip}",
                    video=None if s.video is None else f"s{i}/{s.video}",
                )
            )
        offset += max((s.pid for s in part), default=-1) + 1
    return merged


def refuse_target_data(
    target: DatasetChoice,
    splits: Splits,
    data: Mapping[str, Mapping[str, Any]],
    sources: Sequence[DatasetChoice],
    train_parts: Sequence[Sequence[Sample]],
) -> None:
    """No target data in training: a source that is the target dataset with the same data
    (same fingerprint), or whose training images include a target query or gallery image, is
    refused with one line (the ordinary in-domain run has no ``--train-dataset``); so is the
    same data named twice as a source."""
    target_fp = data["dataset"]["fingerprint"]
    tested = {os.path.abspath(s.path) for s in [*splits.query, *splits.gallery]}
    seen: dict[str, str] = {}
    for i, (source, train) in enumerate(zip(sources, train_parts)):
        fp = data[source_role(i, len(sources))]["fingerprint"]
        if fp in seen:
            raise BenchError(
                f"--train-dataset names the same data twice: {seen[fp]!r} and {source.label!r} "
                f"(fingerprint {fp}); give each source other options or another root"
            )
        seen[fp] = source.label
        if source.cls.name == target.cls.name and fp == target_fp:
            raise BenchError(
                f"--train-dataset {source.label!r} is the evaluation dataset {target.label!r} "
                f"with the same data (fingerprint {fp}): not a cross-domain run; drop "
                "--train-dataset for the in-domain run, or give the source other options or root"
            )
        shared = sorted(p for p in {os.path.abspath(s.path) for s in train} if p in tested)
        if shared:
            raise BenchError(
                f"--train-dataset {source.label!r} trains on {len(shared)} image(s) of the "
                f"evaluation dataset {target.label!r}'s query/gallery, e.g. {shared[0]}"
            )
