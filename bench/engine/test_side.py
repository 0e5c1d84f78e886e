"""The test side as a method sees it: nothing but pixels and fair text says who is who.

The harness keeps the true query and gallery samples and computes every metric from them. A
method is given a *view* of them (:func:`method_view`):

* order: query and gallery in a seeded shuffled order (:func:`presentation_order`), which the
  harness also evaluates in. Readers list a gallery sorted by file name, which starts with the
  identity, and the ranking breaks ties by gallery position: in reading order, a method that
  gives equal scores would be ranked by identity;
* ``pid`` hidden (``-1``);
* ``clip`` replaced by an opaque id (``clip-00017``), numbered in the shuffled order, so frames
  of one clip stay grouped but the id no longer names the polyp (Colo-Pair's
  ``<polyp_id>/<screening>``) or the person; ``video`` likewise (``video-0003``, one id per
  video across query and gallery: a REAL-Colon identity is named after its video);
* ``path`` replaced by an opaque link in a private folder (``q00012.jpg``, a hard link where the
  file system allows, else a symbolic link), so the file name no longer starts with the pid;
* text: a gallery sample never carries identity-level text (``text_level="identity"``: a text
  that describes the identity is its label in words) unless the run sets
  ``protocol.oracle_gallery_text=true``, which marks it an oracle (:func:`text_policy`).
  Image-level captions stay; query samples keep their text (a method may condition each gallery
  item on the query's text through ``score``).

Camera ids and frame numbers stay: neither names an identity. This guards against leaks by
accident, not against a plugin that goes looking on disk (it could read the dataset root).
"""

from __future__ import annotations

import dataclasses
import os
import random
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.api.samples import Sample
from bench.errors import BenchError
from bench.io import cache_dir

#: ``text_policy`` of a run: gallery identity-level text withheld, or given (an oracle).
FAIR, ORACLE = "fair", "oracle-gallery-text"


def text_policy(config: Mapping[str, Any]) -> str:
    """``fair`` (default) or ``oracle-gallery-text`` (``protocol.oracle_gallery_text=true``)."""
    return ORACLE if config.get("protocol.oracle_gallery_text", False) else FAIR


def presentation_order(
    query: Sequence[Sample], gallery: Sequence[Sample], seed: int
) -> tuple[list[Sample], list[Sample]]:
    """``query`` and ``gallery`` shuffled, reproducibly per ``seed`` (its own RNG: the run's
    global RNGs are not touched)."""
    rng = random.Random(f"reid-bench test order {seed}")
    q, g = list(query), list(gallery)
    rng.shuffle(q)
    rng.shuffle(g)
    return q, g


def withheld_gallery_texts(gallery: Sequence[Sample], policy: str) -> int:
    """How many gallery samples lose their text under ``policy``."""
    if policy == ORACLE:
        return 0
    return sum(1 for s in gallery if s.text is not None and s.text_level == "identity")


def _link(source: str, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        os.symlink(os.path.abspath(source), target)


@dataclasses.dataclass(frozen=True)
class MethodView:
    """The samples a method is given, and the way back from an opaque path to the true one."""

    query: list[Sample]
    gallery: list[Sample]
    true_paths: dict[str, str]

    def reveal(self, text: str) -> str:
        """``text`` (an error message) with every opaque path replaced by the true one."""
        for opaque, true in self.true_paths.items():
            if opaque in text:
                text = text.replace(opaque, true)
        return text


@contextmanager
def method_view(
    query: Sequence[Sample], gallery: Sequence[Sample], policy: str = FAIR
) -> Iterator[MethodView]:
    """The view of ``query`` and ``gallery`` (already in presentation order) that a method is
    given: pid hidden, opaque clip ids and paths, identity-level gallery text withheld unless
    ``policy`` is the oracle. The links live until the ``with`` block ends."""
    base = cache_dir() / "test-views"
    base.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(dir=base, prefix="view-"))
    clips: dict[str, str] = {}
    videos: dict[str, str] = {}
    true_paths: dict[str, str] = {}

    def hide(samples: Sequence[Sample], role: str) -> list[Sample]:
        out = []
        for i, s in enumerate(samples):
            opaque = folder / f"{role}{i:06d}{Path(s.path).suffix.lower()}"
            if os.path.lexists(s.path):
                _link(s.path, opaque)
            true_paths[str(opaque)] = s.path
            clip = None
            if s.clip is not None:
                clip = clips.setdefault(f"{role}:{s.clip}", f"clip-{len(clips):05d}")
            video = None
            if s.video is not None:
                video = videos.setdefault(s.video, f"video-{len(videos):04d}")
            text, level = s.text, s.text_level
            if role == "g" and policy != ORACLE and level == "identity":
                text, level = None, None
            out.append(
                dataclasses.replace(
                    s,
                    path=str(opaque),
                    pid=-1,
                    clip=clip,
                    video=video,
                    text=text,
                    text_level=level,
                )
            )
        return out

    try:
        view = MethodView(hide(query, "q"), hide(gallery, "g"), true_paths)
        try:
            yield view
        except BenchError as exc:
            message = view.reveal(str(exc))
            if message == str(exc):
                raise
            raise type(exc)(message) from exc
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def training_view(train: Sequence[Sample]) -> Iterator[list[Sample]]:
    """What a self-supervised method (``supervision = "self"``) is given to train on: the
    training samples with pid -1, opaque paths and clip and video ids (as on the test side),
    and no text, so no code path can use the identity labels; only which frames share a video
    or a tracklet, and their order, remain. The links live until the ``with`` block ends."""
    with method_view(train, [], FAIR) as view:
        yield [dataclasses.replace(s, text=None, text_level=None) for s in view.query]
