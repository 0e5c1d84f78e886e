"""``dukemtmc``: DukeMTMC-reID as released (``DukeMTMC-reID``), Market-style folders.

``--root`` is the release folder (``bounding_box_train/``, ``bounding_box_test/``, ``query/``)
or a folder that contains ``DukeMTMC-reID/``. Names ``PPPP_cC_fFFFFFFF.jpg``; training pids
are relabelled ``0..N-1``; gallery distractor identities are ordinary negatives.
"""

from __future__ import annotations

from bench.api.registry import register_dataset
from bench.data.market import MarketStyleRelease

__all__ = ["DukeMTMCReID"]


@register_dataset
class DukeMTMCReID(MarketStyleRelease):
    name = "dukemtmc"
    description = (
        "DukeMTMC-reID (702 train / 1,110 test identities, 8 cameras); --root is the downloaded "
        "release; text from attributes or captions with --set text.source=..."
    )
    release_folder = "DukeMTMC-reID"
    file_pattern = "duke"
    attribute_file = "duke_attribute.mat"
    pedes_prefix = ""
    homepage = "https://github.com/layumi/DukeMTMC-reID_evaluation"
    licence = (
        "CC BY-NC-SA 4.0 (non-commercial, share alike); cite Ristani et al., ECCV 2016 workshops, "
        "and Zheng et al., ICCV 2017. Duke University withdrew DukeMTMC in 2019: use only a copy "
        "you obtained under these terms."
    )
    expected_tree = """\
<root>/  (DukeMTMC-reID/, or a folder holding it)
  bounding_box_train/  16,522 images of 702 ids, e.g. 0001_c2_f0046182.jpg
  bounding_box_test/   17,661 images of 1,110 ids (702 test ids + 408 distractor ids)
  query/               2,228 images of 702 ids
names: PPPP_cC_fFFFFFFF.jpg = pid, camera 1-8, frame
text (optional): duke_attribute.mat (github.com/vana77/DukeMTMC-attribute), in <root> or
  named by --set text.file=PATH; or a captions CSV/JSON (text.source=captions)"""
