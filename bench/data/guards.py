"""What no run may start with, checked on loaded splits: identities in both the training and
the test split, images that do not exist (symlinks to nothing named as such) and empty texts.

One implementation, two callers: ``bench data check`` lists each as a problem
(:func:`split_problems` with a collecting :class:`~bench.errors.Problems`) and ``bench run``
refuses the fold before any training (:func:`refuse_unsafe_splits`, one
:class:`~bench.errors.DatasetError`). Each is one line naming the identities or paths, a few of
them then "and N more".
"""

from __future__ import annotations

import os

from bench.api.samples import Sample, Splits
from bench.data.files import dangling_note, listing
from bench.errors import RAISE, Problems


def _label(dataset: str, fold: str | None) -> str:
    return dataset + (f" {fold}" if fold else "")


def _samples(splits: Splits) -> list[Sample]:
    return [*splits.train, *splits.query, *splits.gallery]


def overlap_problems(splits: Splits, where: str, problems: Problems) -> None:
    """Test identities (query and gallery pids above 0: Market's distractors ``0`` and junk
    ``-1`` are no identity) among the original training pids ``splits.meta["train_pids"]``
    (readers that relabel the training split keep them there; without them nothing is
    checked), as one problem naming them and a test image of the first."""
    train_pids = set(splits.meta.get("train_pids", ()))
    if not train_pids:
        return
    test_samples: dict[int, str] = {}
    for s in [*splits.query, *splits.gallery]:
        if s.pid > 0:
            test_samples.setdefault(s.pid, s.path)
    both = sorted(train_pids & set(test_samples))
    if not both:
        return
    who = f"identity {both[0]} is" if len(both) == 1 else f"identities {listing(both)} are"
    problems.report(
        test_samples[both[0]],
        f"{who} in both the training and the test split of {where} "
        f"(e.g. {test_samples[both[0]]}); a run would be scored on identities it trained on",
    )


def missing_image_problems(splits: Splits, dataset: str, problems: Problems) -> None:
    """Sample images that do not exist (a symlink to nothing says where it points), as one
    problem naming them."""
    paths = dict.fromkeys(s.path for s in _samples(splits))
    missing = [p for p in paths if not os.path.exists(p)]
    if not missing:
        return
    if len(missing) == 1:
        message = f"image {missing[0]} of {dataset} does not exist{dangling_note(missing[0])}"
    else:
        named = listing(f"{p}{dangling_note(p)}" for p in missing)
        message = f"{len(missing)} images of {dataset} do not exist: {named}"
    problems.report(missing[0], message)


def empty_text_problems(splits: Splits, dataset: str, problems: Problems) -> None:
    """Samples whose text is empty or blank (no text is ``None``, not ``""``), as one problem
    naming their images."""
    blank = list(
        dict.fromkeys(s.path for s in _samples(splits) if s.text is not None and not s.text.strip())
    )
    if not blank:
        return
    have = "has an empty text" if len(blank) == 1 else "have empty texts"
    images = f"image {blank[0]}" if len(blank) == 1 else f"{len(blank)} images ({listing(blank)})"
    problems.report(blank[0], f"{images} of {dataset} {have}; give a text or none")


def split_problems(
    splits: Splits, dataset: str, fold: str | None, problems: Problems = RAISE
) -> None:
    """Every check of this module on one fold of ``dataset``, reported to ``problems``."""
    overlap_problems(splits, _label(dataset, fold), problems)
    missing_image_problems(splits, dataset, problems)
    empty_text_problems(splits, dataset, problems)


def refuse_unsafe_splits(splits: Splits, dataset: str, fold: str | None = None) -> None:
    """Raise :class:`~bench.errors.DatasetError` with the first problem of
    :func:`split_problems`: what ``bench run`` calls on a loaded fold before training."""
    split_problems(splits, dataset, fold, RAISE)
