"""``synthetic-person``: a procedural Market-1501 look-alike with captions (no download needed).

Generated on first use (``prepare``) into the cache, in Market-1501's exact layout, and read back
with the same reader as Market-1501. See :mod:`bench.data.synthetic.person` for what is drawn.
``synthetic.domain`` (default 0) picks a rendering domain: another clothing palette, other
cameras, light and backgrounds, and other people, for train-on-one, test-on-another experiments.
"""

from __future__ import annotations

from pathlib import Path

from bench.api.dataset import DatasetAdapter
from bench.api.ranges import AT_LEAST_TWO, NON_NEGATIVE, SEED
from bench.api.registry import register_dataset
from bench.api.samples import Splits
from bench.data.captions import read_captions
from bench.data.market import market_style_splits
from bench.data.synthetic import default_root, ensure_dataset
from bench.data.synthetic.person import CAPTIONS_FILE, DEFAULT_IDENTITIES
from bench.errors import DatasetError


@register_dataset
class SyntheticPerson(DatasetAdapter):
    name = "synthetic-person"
    description = (
        "procedural pedestrians in the Market-1501 layout with one caption per image "
        f"(default {DEFAULT_IDENTITIES} train + {DEFAULT_IDENTITIES} test identities, 6 cameras, "
        "128x64); generated on first use; synthetic.domain=d > 0 renders another domain (palette, "
        "cameras, light, backgrounds, people) for domain-generalisation experiments"
    )
    modalities = frozenset({"image", "text"})
    protocol = "market"
    default_config = {"synthetic": {"seed": 0, "identities": DEFAULT_IDENTITIES, "domain": 0}}
    config_ranges = {
        "synthetic.seed": SEED,
        "synthetic.identities": AT_LEAST_TWO,
        "synthetic.domain": NON_NEGATIVE,
    }

    def _params(self) -> tuple[object, object, object]:
        return (
            self.config.get("synthetic.seed", 0),
            self.config.get("synthetic.identities", DEFAULT_IDENTITIES),
            self.config.get("synthetic.domain", 0),
        )

    def default_root(self) -> Path:
        return default_root(self.name, *self._params())

    def prepare(self) -> None:
        ensure_dataset(self.name, self.root, *self._params(), progress=self.show_progress)

    def load(self, fold: str | None = None) -> Splits:
        if fold is not None:
            raise DatasetError(f"dataset {self.name!r} has one fixed split, not fold {fold!r}")
        self.prepare()  # generated on demand; a no-op once the root is complete
        splits = market_style_splits(self.root, captions=read_captions(self.root / CAPTIONS_FILE))
        for samples in (splits.train, splits.query, splits.gallery):
            missing = [s.path for s in samples if s.text is None]
            if missing:
                raise DatasetError(f"{self.root / CAPTIONS_FILE} has no caption for {missing[0]}")
        return splits
