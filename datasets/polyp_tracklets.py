"""``polyp-tracklets``: colonoscopy polyp tracklets in NTSSL's COCO layout (REAL-Colon).

Intrator et al. 2024 (REAL-Colon) annotated 60 colonoscopy videos; NTSSL (Parolari et al.,
"Contrastive Learning under Noisy Temporal Self-Supervision for Colonoscopy Videos") trains on
27 of them and tests on 19 others, so the test annotations may come from another root
(``--test-root``). Tracklets are built as NTSSL's released code builds them
(:mod:`bench.data.tracklets`); the test side is every test tracklet against every other
(query and gallery are the same tracklets, the protocol excludes each from its own ranking).
"""

from __future__ import annotations

from pathlib import Path

from bench.api.dataset import DatasetAdapter
from bench.api.ranges import AT_LEAST_ONE, NON_NEGATIVE, PROBABILITY
from bench.api.registry import register_dataset
from bench.api.samples import Splits
from bench.data.splits import relabel
from bench.data.tracklets import (
    SPLIT_FILES,
    build_tracklets,
    read_instances,
    tracklet_labels,
    tracklet_samples,
)
from bench.errors import RAISE, DatasetError, Problems

TREE = (
    "<root>/images/*.jpg and <root>/annotations/instances_train.json (and instances_test.json, "
    "here or under --test-root)"
)


@register_dataset
class PolypTracklets(DatasetAdapter):
    name = "polyp-tracklets"
    description = (
        "colonoscopy polyp tracklets in NTSSL's COCO layout (REAL-Colon); --root holds the "
        "training annotations, --test-root (default --root) the test ones"
    )
    modalities = frozenset({"image", "clip"})
    protocol = "tracklets"
    default_config = {"tracklets": {"min_length": 30, "max_gap": 1, "min_iou": 0.1}}
    config_ranges = {
        "tracklets.min_length": AT_LEAST_ONE,
        "tracklets.max_gap": NON_NEGATIVE,
        "tracklets.min_iou": PROBABILITY,
    }
    homepage = "https://github.com/lparolari/ntssl"
    licence = "REAL-Colon: CC BY 4.0 (check the release you received)"
    expected_tree = TREE
    supports_test_root = True

    def _file(self, split: str, root: Path | None = None) -> Path:
        return (root or self.root) / "annotations" / SPLIT_FILES[split]

    def _tracklets(self, split: str, root: Path, problems: Problems = RAISE) -> list:
        path = self._file(split, root)
        if not path.is_file():
            raise DatasetError(f"dataset {self.name!r}: no {path} (expected {TREE})")
        instances = read_instances(path, root / "images", problems)
        return build_tracklets(
            instances,
            max_gap=int(self.config["tracklets.max_gap"]),
            min_iou=float(self.config["tracklets.min_iou"]),
            min_length=int(self.config["tracklets.min_length"]),
        )

    @property
    def test_dir(self) -> Path:
        return self.test_root or self.root

    def prepare(self) -> None:
        super().prepare()
        for split, root in (("train", self.root), ("test", self.test_dir)):
            if not self._file(split, root).is_file():
                raise DatasetError(f"dataset {self.name!r}: no {self._file(split, root)} ({TREE})")

    def scan(self, problems: Problems) -> None:
        try:
            self.prepare()
        except DatasetError as exc:
            problems.report(self.root, str(exc))
            return
        for split, root in (("train", self.root), ("test", self.test_dir)):
            try:
                self._tracklets(split, root, problems)
            except DatasetError as exc:
                problems.report(self._file(split, root), str(exc))

    def annotation_files(self) -> list[Path]:
        return sorted({self._file("train"), self._file("test", self.test_dir)})

    def load(self, fold: str | None = None) -> Splits:
        if fold is not None:
            raise DatasetError(f"dataset {self.name!r} has one fixed split, not fold {fold!r}")
        train_t = self._tracklets("train", self.root)
        test_t = self._tracklets("test", self.test_dir)
        if not train_t or not test_t:
            empty = "training" if not train_t else "test"
            raise DatasetError(
                f"dataset {self.name!r}: no {empty} tracklet of at least "
                f"{self.config['tracklets.min_length']} frames (tracklets.min_length)"
            )
        # One integer per identity string across both splits, so an identity in both is seen.
        names = sorted({i.identity for t in (*train_t, *test_t) for i in t})
        pid_of = {name: k + 1 for k, name in enumerate(names)}
        train = tracklet_samples(train_t, "train", pid_of)
        test = tracklet_samples(test_t, "test", pid_of)
        meta = {
            "train_pids": sorted({s.pid for s in train}),
            "tracklet_labels": tracklet_labels(test_t, "test"),
            "test_root": str(self.test_dir),
        }
        return Splits(relabel(train), test, list(test), meta=meta)
