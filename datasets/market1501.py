"""``market1501``: Market-1501 as released (``Market-1501-v15.09.15``), images only.

``--root`` is the release folder (holding ``bounding_box_train/``, ``bounding_box_test/``,
``query/``) or a folder that contains ``Market-1501-v15.09.15/``.
"""

from __future__ import annotations

from pathlib import Path

from bench.dataset import DatasetAdapter
from bench.errors import DatasetError
from bench.layouts import MARKET_SPLIT_FOLDERS, MARKET_TREE, read_market_splits, relabel
from bench.registry import register_dataset
from bench.samples import Splits

RELEASE_FOLDER = "Market-1501-v15.09.15"


@register_dataset
class Market1501(DatasetAdapter):
    name = "market1501"
    description = "Market-1501 (1501 identities, 6 cameras); --root is the downloaded release"
    modalities = frozenset({"image"})
    protocol = "market"

    @property
    def release(self) -> Path:
        """The folder holding the three split folders."""
        nested = self.root / RELEASE_FOLDER
        if not (self.root / MARKET_SPLIT_FOLDERS[0]).is_dir() and nested.is_dir():
            return nested
        return self.root

    def prepare(self) -> None:
        super().prepare()
        for name in MARKET_SPLIT_FOLDERS:
            if not (self.release / name).is_dir():
                raise DatasetError(
                    f"dataset {self.name!r}: folder {self.release / name} is missing; expected "
                    f"{MARKET_TREE} with <root> = {self.release} (or <root>/{RELEASE_FOLDER}/)"
                )

    def load(self, fold: str | None = None) -> Splits:
        if fold is not None:
            raise DatasetError(f"dataset {self.name!r} has one fixed split, not fold {fold!r}")
        train, query, gallery = read_market_splits(self.release)
        return Splits(relabel(train), query, gallery, meta={"root": str(self.release)})
