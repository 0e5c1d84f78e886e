"""``colo-pair``: Colo-Pair as distributed by its authors (access on request, research only).

``--root`` holds one folder per polyp with ``1/`` (first screening: query) and ``2/`` (second
screening: gallery) frame folders, and one text sheet (``*.xlsx``, ``*.csv`` or ``*.json`` with
the columns ``id`` and ``Eng_text``). Evaluated k-fold by polyp (``protocol.folds``).
"""

from __future__ import annotations

from bench.dataset import DatasetAdapter
from bench.layouts import colo_pair_splits, find_text_sheet, fold_names, read_colo_pair
from bench.registry import register_dataset
from bench.samples import Splits


@register_dataset
class ColoPair(DatasetAdapter):
    name = "colo-pair"
    description = (
        "Colo-Pair (polyps seen in two screenings, one English text per polyp); "
        "--root is the folder you received; k-fold by polyp"
    )
    modalities = frozenset({"image", "text", "clip"})
    protocol = "colo-pair"
    default_config = {"protocol": {"folds": 4}}

    @property
    def k(self) -> int:
        return self.config.get("protocol.folds", 4)

    def prepare(self) -> None:
        super().prepare()
        fold_names(self.k)
        read_colo_pair(self.root, find_text_sheet(self.root))

    def folds(self) -> list[str | None]:
        return list(fold_names(self.k))

    def load(self, fold: str | None = None) -> Splits:
        samples = read_colo_pair(self.root, find_text_sheet(self.root))
        return colo_pair_splits(samples, fold, self.k)
