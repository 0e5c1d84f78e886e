"""``colo-pair``: Colo-Pair as distributed by its authors (access on request, research only).

``--root`` holds one folder per polyp with ``1/`` (first screening: query) and ``2/`` (second
screening: gallery) frame folders, and one text sheet (``*.xlsx``, ``*.csv`` or ``*.json`` with
the columns ``id`` and ``Eng_text``). Evaluated k-fold by polyp (``protocol.folds``).

``colo_pair.text_key`` says which sheet row a polyp folder reads
(:func:`bench.data.colo_pair.sheet_key`): ``polyp`` (default) the row of its own id; ``patient``
its patient's (the folder name without its last character; DMCL's released code, where the
polyps of one patient share that patient's first text). A folder the chosen key finds no row for
is an error naming the sheet and the id.
"""

from __future__ import annotations

from bench.api.dataset import DatasetAdapter
from bench.api.ranges import AT_LEAST_TWO
from bench.api.registry import register_dataset
from bench.api.samples import Splits
from bench.data.colo_pair import (
    COLO_PAIR_TREE,
    TEXT_KEYS,
    colo_pair_splits,
    find_text_sheet,
    read_colo_pair,
)
from bench.data.splits import fold_names
from bench.errors import DatasetError, Problems
from bench.evaluation.clips import LEVELS


@register_dataset
class ColoPair(DatasetAdapter):
    name = "colo-pair"
    description = (
        "Colo-Pair (polyps seen in two screenings, one English text per polyp); "
        "--root is the folder you received; k-fold by polyp"
    )
    modalities = frozenset({"image", "text", "clip"})
    protocol = "colo-pair"
    config_choices = {"protocol.level": LEVELS, "colo_pair.text_key": TEXT_KEYS}
    config_ranges = {"protocol.folds": AT_LEAST_TWO}
    default_config = {
        "protocol": {"folds": 4, "level": "frame"},
        "colo_pair": {"text_key": "polyp"},
    }
    homepage = (
        "not public: request access from the authors of Xiang et al., 'Learning Collaborative "
        "Knowledge with Multimodal Representation for Polyp Re-Identification' (DMCL)"
    )
    licence = (
        "Access on request, research use only, no redistribution; cite the DMCL paper. "
        "Keep the images and the text sheet out of shared repositories."
    )
    expected_tree = f"""\
<root>/
  <polyp_id>/1/*.jpg   first screening (the query side), frames in name order
  <polyp_id>/2/*.jpg   second screening (the gallery side)
  process_text.xlsx    one English description per polyp: columns id, Eng_text
                       (.csv and .json also read; ids are polyp folder names, or with
                       --set colo_pair.text_key=patient matched by patient: the name without
                       its last character, one text shared by a patient's polyps)
= {COLO_PAIR_TREE}; 31 polyps in the public subset, 4 folds by polyp"""

    @property
    def k(self) -> int:
        return self.config.get("protocol.folds", 4)

    @property
    def text_key(self) -> str:
        return self.config.get("colo_pair.text_key", "polyp")

    def prepare(self) -> None:
        super().prepare()
        fold_names(self.k)
        read_colo_pair(self.root, find_text_sheet(self.root), text_key=self.text_key)

    def scan(self, problems: Problems) -> None:
        if not self.root.is_dir():
            problems.report(self.root, f"Colo-Pair root {self.root} does not exist")
            return
        try:
            sheet = find_text_sheet(self.root)
        except DatasetError as e:
            problems.report(self.root, str(e))
            sheet = None
        try:
            read_colo_pair(self.root, sheet, problems, self.text_key)
        except DatasetError as e:  # no polyp folder at all, or an unreadable sheet
            problems.report(self.root, str(e))

    def folds(self) -> list[str | None]:
        return list(fold_names(self.k))

    def load(self, fold: str | None = None) -> Splits:
        samples = read_colo_pair(self.root, find_text_sheet(self.root), text_key=self.text_key)
        return colo_pair_splits(samples, fold, self.k)
