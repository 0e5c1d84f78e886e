"""``synthetic-colonoscopy``: procedural colonoscopy videos in the ``polyp-tracklets`` layout.

The built-in dataset of NTSSL (Parolari et al., "Contrastive Learning under Noisy Temporal
Self-Supervision for Colonoscopy Videos"): videos in which a few polyps leave and re-enter the
view, so one polyp makes several tracklets and temporal neighbours are usually the same polyp;
boxes, sizes and histology as REAL-Colon annotates them. Generated on first use (``prepare``)
into the cache and read back exactly as ``polyp-tracklets`` reads REAL-Colon (its tracklet
rules and ``tracklets.*`` keys). See :mod:`bench.data.synthetic.colonoscopy` for what is drawn.
"""

from __future__ import annotations

from pathlib import Path

from bench.plugins.datasets.polyp_tracklets import PolypTracklets

from bench.api.ranges import AT_LEAST_ONE, SEED
from bench.api.registry import register_dataset
from bench.api.samples import Splits
from bench.data.synthetic import default_root, ensure_dataset
from bench.data.synthetic.colonoscopy import DEFAULT_VIDEOS, IMAGE_SIZE, split_videos

_SPLITS = split_videos(DEFAULT_VIDEOS)


@register_dataset
class SyntheticColonoscopy(PolypTracklets):
    name = "synthetic-colonoscopy"
    description = (
        f"procedural colonoscopy videos in the polyp-tracklets layout (default "
        f"{_SPLITS['train']} training, {_SPLITS['val']} validation and {_SPLITS['test']} test "
        f"videos of 2-4 polyps that leave and re-enter the view, {IMAGE_SIZE}x{IMAGE_SIZE}); "
        "generated on first use"
    )
    default_config = {
        "synthetic": {"seed": 0, "videos": DEFAULT_VIDEOS},
        **PolypTracklets.default_config,
    }
    config_ranges = {
        "synthetic.seed": SEED,
        "synthetic.videos": AT_LEAST_ONE,
        **PolypTracklets.config_ranges,
    }
    homepage = ""
    licence = ""
    expected_tree = ""
    supports_test_root = False

    def _params(self) -> tuple[object, object]:
        return (
            self.config.get("synthetic.seed", 0),
            self.config.get("synthetic.videos", DEFAULT_VIDEOS),
        )

    def default_root(self) -> Path:
        return default_root(self.name, *self._params())

    def prepare(self) -> None:
        ensure_dataset(self.name, self.root, *self._params(), progress=self.show_progress)
        super().prepare()

    def load(self, fold: str | None = None) -> Splits:
        self.prepare()  # generated on demand; a no-op once the root is complete
        return super().load(fold)
