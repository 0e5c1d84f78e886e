"""``market1501``: Market-1501 as released (``Market-1501-v15.09.15``).

``--root`` is the release folder (holding ``bounding_box_train/``, ``bounding_box_test/``,
``query/``; other folders such as ``gt_bbox/`` are ignored) or a folder that contains
``Market-1501-v15.09.15/``. Junk (``-1``) and distractor (``0000``) gallery images are kept and
evaluated under the Market rules; training pids are relabelled ``0..N-1``.
"""

from __future__ import annotations

from bench.api.registry import register_dataset
from bench.data.market import MarketStyleRelease

__all__ = ["Market1501"]


@register_dataset
class Market1501(MarketStyleRelease):
    name = "market1501"
    description = (
        "Market-1501 (751 train / 750 test identities, 6 cameras); --root is the downloaded "
        "release; text from attributes or CUHK-PEDES with --set text.source=..."
    )
    release_folder = "Market-1501-v15.09.15"
    file_pattern = "market"
    attribute_file = "market_attribute.mat"
    pedes_prefix = "Market"
    homepage = "http://zheng-lab.cecs.anu.edu.au/Project/project_reid.html"
    licence = (
        "Research use only; cite Zheng et al., 'Scalable Person Re-identification: A Benchmark', "
        "ICCV 2015. Do not redistribute the images."
    )
    expected_tree = """\
<root>/  (Market-1501-v15.09.15/, or a folder holding it)
  bounding_box_train/  12,936 images of 751 ids, e.g. 0002_c1s1_000451_03.jpg
  bounding_box_test/   19,732 images: 13,057 of 750 ids + 2,793 distractors (0000_*)
                       + 3,819 junk (-1_*); the gallery is 15,913 images without the junk
  query/               3,368 images of 750 ids
  gt_bbox/, gt_query/  (ignored)
names: PPPP_cCsS_FFFFFF_BB.jpg = pid, camera 1-6, sequence, frame, box
text (optional): market_attribute.mat (github.com/vana77/Market-1501_Attribute) or
  CUHK-PEDES reid_raw.json, in <root> or named by --set text.file=PATH"""
