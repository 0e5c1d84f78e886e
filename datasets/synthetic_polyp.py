"""``synthetic-polyp``: procedural colonoscopy clips in the Colo-Pair layout (no download needed).

Generated on first use (``prepare``) into the cache, in Colo-Pair's layout with a ``text.xlsx``
sheet, and read back with the same reader and fold logic as Colo-Pair. See
:mod:`bench.data.synthetic.polyp` for what is drawn.

``colo_pair.text_key`` is accepted as on ``colo-pair`` so that one config (DMCL's ``released``
preset sets ``patient``) runs on both, but the generator draws one polyp per patient: its ids
``P001``, ``P002``, ... have no patient part (cutting the last character would make P001..P009 one
"patient"), so ``patient`` reads the same rows as ``polyp``: each polyp's own text.
"""

from __future__ import annotations

from pathlib import Path

from bench.api.dataset import DatasetAdapter
from bench.api.ranges import AT_LEAST_TWO, SEED
from bench.api.registry import register_dataset
from bench.api.samples import Splits
from bench.data.colo_pair import TEXT_KEYS, colo_pair_splits, read_colo_pair
from bench.data.splits import fold_names
from bench.data.synthetic import default_root, ensure_dataset
from bench.data.synthetic.polyp import DEFAULT_IDENTITIES, FRAMES_PER_CLIP, SHEET_FILE
from bench.evaluation.clips import LEVELS


@register_dataset
class SyntheticPolyp(DatasetAdapter):
    name = "synthetic-polyp"
    description = (
        f"procedural colonoscopy clips in the Colo-Pair layout with a text sheet (default "
        f"{DEFAULT_IDENTITIES} polyps x 2 screenings x {FRAMES_PER_CLIP} frames, 96x96); "
        "k-fold by polyp; generated on first use"
    )
    modalities = frozenset({"image", "text", "clip"})
    protocol = "colo-pair"
    config_choices = {"protocol.level": LEVELS, "colo_pair.text_key": TEXT_KEYS}
    config_ranges = {
        "synthetic.seed": SEED,
        "synthetic.identities": AT_LEAST_TWO,
        "protocol.folds": AT_LEAST_TWO,
    }
    default_config = {
        "synthetic": {"seed": 0, "identities": DEFAULT_IDENTITIES},
        "protocol": {"folds": 4, "level": "frame"},
        "colo_pair": {"text_key": "polyp"},
    }

    def _params(self) -> tuple[object, object]:
        return (
            self.config.get("synthetic.seed", 0),
            self.config.get("synthetic.identities", DEFAULT_IDENTITIES),
        )

    @property
    def k(self) -> int:
        return self.config.get("protocol.folds", 4)

    def default_root(self) -> Path:
        return default_root(self.name, *self._params())

    def prepare(self) -> None:
        fold_names(self.k)
        ensure_dataset(self.name, self.root, *self._params(), progress=self.show_progress)

    def folds(self) -> list[str | None]:
        return list(fold_names(self.k))

    def load(self, fold: str | None = None) -> Splits:
        self.prepare()  # generated on demand; a no-op once the root is complete
        # one polyp per patient: "patient" and "polyp" read the same row (module docstring)
        samples = read_colo_pair(self.root, self.root / SHEET_FILE, text_key="polyp")
        return colo_pair_splits(samples, fold, self.k)
