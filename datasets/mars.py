"""``mars``: MARS (Zheng et al. 2016, "MARS: A Video Benchmark for Large-Scale Person
Re-identification", ECCV), the video person re-identification release.

``--root`` is the release folder (``bbox_train/``, ``bbox_test/``, ``info/``) or a folder that
contains ``MARS/`` or ``mars/``. Query and gallery are tracklets: by default every tracklet is
ranked as one mean-pooled feature of its frames (``protocol.level=clip``; ``frame`` ranks the
frames), under the Market rules: a gallery tracklet of the query's identity and camera is left
out, junk (``-1``) is left out, distractors (``0``) are negatives. Training pids are relabelled
``0..N-1``.
"""

from __future__ import annotations

from pathlib import Path

from bench.api.dataset import DatasetAdapter
from bench.api.registry import register_dataset
from bench.api.samples import Splits
from bench.data.mars import MARS_TREE, QUERY_FILE, SPLIT_FOLDERS, mars_splits
from bench.errors import RAISE, DatasetError, Problems

__all__ = ["MARS"]

#: ``protocol.level`` values (those of :data:`bench.evaluation.clips.LEVELS`).
LEVELS = ("frame", "clip")
RELEASE_FOLDERS = ("MARS", "mars")


@register_dataset
class MARS(DatasetAdapter):
    name = "mars"
    description = (
        "MARS video person re-id (625 train / 636 test identities, 6 cameras, tracklets); "
        "--root is the release; clip-level evaluation by default (protocol.level)"
    )
    modalities = frozenset({"image", "clip"})
    protocol = "market"
    default_config = {"protocol": {"level": "clip"}}
    config_choices = {"protocol.level": LEVELS}
    homepage = "http://zheng-lab.cecs.anu.edu.au/Project/project_mars.html"
    licence = (
        "Research use only; cite Zheng et al., 'MARS: A Video Benchmark for Large-Scale Person "
        "Re-identification', ECCV 2016. Do not redistribute the images."
    )
    expected_tree = f"""\
<root>/  (the release, or a folder holding MARS/ or mars/)
  bbox_train/PPPP/*.jpg   509,914 frames of 8,298 tracklets of 625 ids
  bbox_test/PPPP/*.jpg    681,089 frames of 12,180 tracklets: 634 ids, distractors (0000/)
                          and junk (00-1/)
  info/train_name.txt, info/test_name.txt     the frame names, one a line
  info/tracks_train_info.mat, info/tracks_test_info.mat
                          [first line, last line, pid, camera] per tracklet
  info/query_IDX.mat      the 1,980 query tracklets; the gallery is the other test tracklets
                          (9,330 without the junk)
names: PPPPCcTttttFfff.jpg = pid, camera 1-6, tracklet, frame, e.g. 0001C1T0001F001.jpg
= {MARS_TREE}"""

    @property
    def release(self) -> Path:
        """The folder holding ``info/``: the root, or ``<root>/MARS`` or ``<root>/mars``."""
        if not (self.root / "info").is_dir():
            for name in RELEASE_FOLDERS:
                if (self.root / name / "info").is_dir():
                    return self.root / name
        return self.root

    def prepare(self) -> None:
        super().prepare()
        for folder in ("bbox_train", "bbox_test", "info"):
            if not (self.release / folder).is_dir():
                raise DatasetError(
                    f"dataset {self.name!r}: folder {self.release / folder} is missing; "
                    f"expected {MARS_TREE} with <root> = {self.release}"
                )

    def scan(self, problems: Problems) -> None:
        if not self.root.is_dir():
            problems.report(self.root, f"dataset {self.name!r}: root folder {self.root} is missing")
            return
        try:
            mars_splits(self.release, problems)
        except DatasetError as e:  # a name list that is not UTF-8
            problems.report(self.release, str(e))

    def load(self, fold: str | None = None) -> Splits:
        if fold is not None:
            raise DatasetError(f"dataset {self.name!r} has one fixed split, not fold {fold!r}")
        return mars_splits(self.release, RAISE)

    def annotation_files(self) -> list[Path]:
        """The five files of ``info/`` (those present)."""
        info = self.release / "info"
        names = [n for _, n, t, _ in SPLIT_FOLDERS.values() for n in (n, t)] + [QUERY_FILE]
        return sorted(info / n for n in names if (info / n).is_file())
