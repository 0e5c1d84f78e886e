"""``bench data check`` and ``bench data info``: what a dataset root holds, and what is wrong.

:func:`check_dataset` lists every problem it can find before a run would meet it: missing
folders, file names that do not parse, images that do not decode, symlinks to nothing, text files
that are not UTF-8, repeated keys and empty texts, text sheet rows with no images and polyps
with no text, and what ``bench run`` refuses too (:mod:`bench.data.guards`: identities in both
train and test, images that do not exist, empty texts). With no problem it returns the
statistics table (identities, images, cameras per split, text coverage).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.api.dataset import DatasetAdapter
from bench.api.samples import Sample
from bench.config import flatten
from bench.data.guards import split_problems
from bench.data.images import open_image
from bench.errors import DatasetError, Problems
from bench.progress import progress


@dataclass
class DataReport:
    """Statistics rows (one per fold and split) and ``(path, message)`` problems."""

    dataset: str
    root: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def split_stats(samples: Sequence[Sample], distractors: bool = False) -> dict[str, Any]:
    """Identities (Market's distractor pid 0 counted as one), images without junk, junk
    (pid -1) images, distractor (pid 0) images when ``distractors`` (Market-style test splits;
    elsewhere pid 0 is an ordinary identity), cameras, clips, the share with a text, and for
    video datasets the videos and frames per clip."""
    kept = [s for s in samples if s.pid != -1]
    clips = {s.clip for s in kept if s.clip is not None}
    with_text = sum(1 for s in kept if s.text)
    return {
        "ids": len({s.pid for s in kept}),
        "images": len(kept),
        "junk": len(samples) - len(kept),
        "distractors": sum(1 for s in kept if s.pid == 0) if distractors else "-",
        "cameras": len({s.camid for s in kept}),
        "clips": len(clips) if clips else "-",
        "text": f"{100 * with_text / len(kept):.0f}%" if kept else "-",
        **_video_stats(kept),
    }


def _video_stats(samples: Sequence[Sample]) -> dict[str, Any]:
    """For samples from videos (tracklet datasets): the videos, and the frames per clip
    (shortest / median / longest); nothing for other datasets."""
    if not any(s.video is not None for s in samples):
        return {}
    lengths: dict[str, int] = {}
    for s in samples:
        if s.clip is not None:
            lengths[s.clip] = lengths.get(s.clip, 0) + 1
    ordered = sorted(lengths.values())
    spread = f"{ordered[0]} / {ordered[len(ordered) // 2]} / {ordered[-1]}" if ordered else "-"
    return {"videos": len({s.video for s in samples}), "frames/clip": spread}


def check_dataset(adapter: DatasetAdapter, *, verify_images: bool = True) -> DataReport:
    """Scan ``adapter``'s root, then load every fold, check identities and decode every image."""
    report = DataReport(adapter.name, str(adapter.root))
    problems = Problems(collect=True)
    adapter.scan(problems)
    if problems.items:
        report.problems = problems.items
        return report
    paths: dict[str, None] = {}
    for fold in adapter.folds():
        try:
            splits = adapter.load(fold)
        except DatasetError as e:
            problems.report(adapter.root, str(e))
            continue
        found = Problems(collect=True)
        split_problems(splits, adapter.name, fold, found)  # what bench run refuses
        for item in found.items:
            if item not in problems.items:  # folds share images: say it once
                problems.items.append(item)
        for split in ("train", "query", "gallery"):
            samples = getattr(splits, split)
            market_test = adapter.protocol == "market" and split != "train"
            stats = split_stats(samples, distractors=market_test)
            report.rows.append({"fold": fold or "-", "split": split, **stats})
            paths.update(dict.fromkeys(s.path for s in samples))
    if verify_images:
        readable = [p for p in paths if os.path.exists(p)]  # missing ones are listed already
        for path in progress(
            readable,
            desc=f"{adapter.name}: decoding images",
            unit="img",
            enabled=adapter.show_progress,
        ):
            try:
                open_image(path)
            except DatasetError as e:
                problems.report(path, str(e))
    report.problems = problems.items
    return report


def format_report(report: DataReport) -> str:
    """The statistics table, then one line per problem."""
    from tabulate import tabulate

    lines = [f"{report.dataset} at {report.root}"]
    if report.rows:
        lines.append(tabulate(report.rows, headers="keys", tablefmt="github"))
    if report.problems:
        lines.append(f"{len(report.problems)} problem(s):")
        lines.extend(f"  {message}" for _, message in report.problems)
    else:
        lines.append("no problems found")
    return "\n".join(lines)


def format_info(cls: type[DatasetAdapter]) -> str:
    """Where to get ``cls``'s data, its licence terms, and the tree ``--root`` must hold."""
    parts = [f"{cls.name}: {cls.description}"]
    parts.append(f"download: {cls.homepage or 'generated by reid-bench on first use'}")
    parts.append(f"licence: {cls.licence or 'n/a'}")
    parts.append(f"protocol: {cls.protocol}")
    if cls.expected_tree:
        parts.append(
            "expected tree:\n" + "\n".join("  " + ln for ln in cls.expected_tree.splitlines())
        )
    keys = flatten(cls.default_config)
    if keys:
        parts.append("config keys (--set): " + ", ".join(f"{k}={v!r}" for k, v in keys.items()))
    return "\n".join(parts)
