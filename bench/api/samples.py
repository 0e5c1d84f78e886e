"""The data every dataset adapter produces and every method consumes: samples and splits.

The harness hides a query or gallery sample's identity (``pid = -1``) before a method sees it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MODALITIES = ("image", "text", "clip")
#: What a sample's text describes: its ``identity`` (one text per polyp, patient or person: the
#: identity's label in words, withheld from the gallery by the fair protocol) or its ``image``
#: (a caption of this one image).
TEXT_LEVELS = ("identity", "image")
#: The pid of junk images (Market-1501's ``-1``): never trained on, never ranked.
JUNK_PID = -1


@dataclass(frozen=True)
class Sample:
    """One image of one identity.

    ``pid`` is the identity (training splits relabel it to 0..N-1; -1 is junk, 0 a distractor
    in Market-style galleries), ``camid`` the camera (Colo-Pair: the screening, 0 or 1).
    ``clip`` groups frames of one video clip or tracklet, ``frame`` orders them, ``video`` names
    the video they come from (a colonoscopy shows several polyps); ``box`` is the object's
    ``(x, y, w, h)`` in pixels when ``path`` is a whole frame (polyp tracklets), else None;
    ``text`` is the description attached to the sample, when the dataset has one, and
    ``text_level`` what that text describes (:data:`TEXT_LEVELS`: ``identity`` or ``image``).
    """

    path: str
    pid: int
    camid: int
    text: str | None = None
    clip: str | None = None
    frame: int | None = None
    text_level: str | None = None
    video: str | None = None
    box: tuple[float, float, float, float] | None = None


@dataclass
class Splits:
    """The three splits of one evaluation unit (a whole dataset, or one fold of it)."""

    train: list[Sample]
    query: list[Sample]
    gallery: list[Sample]
    fold: str | None = None
    meta: dict = field(default_factory=dict)

    @property
    def num_train_pids(self) -> int:
        return len({s.pid for s in self.train})
