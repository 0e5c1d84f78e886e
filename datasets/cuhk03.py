"""``cuhk03``: CUHK03 under the new protocol of Zhong et al. 2017 (767 training / 700 test
identities), ``labeled`` (hand-drawn boxes) or ``detected`` (DPM boxes) images.

``--root`` is either the CUHK03-NP release::

    <root>/labeled/{bounding_box_train,bounding_box_test,query}/0003_c1_21.png ...
    <root>/detected/{bounding_box_train,bounding_box_test,query}/...
    (or the same inside <root>/cuhk03-np/)

or the original release with the split files of Zhong et al. (torchreid's layout)::

    <root>/cuhk03_release/cuhk-03.mat          (or <root>/cuhk-03.mat)
    <root>/cuhk03_new_protocol_config_labeled.mat
    <root>/cuhk03_new_protocol_config_detected.mat

whose images are extracted once into the harness cache (``$BENCH_CACHE``, else
``~/.cache/reid-bench``) under ``cuhk03/<hash>/<variant>/`` and reused afterwards.

Config: ``cuhk03.variant`` (``labeled`` | ``detected``, default ``labeled``) and
``cuhk03.source`` (``auto`` | ``np`` | ``mat``; ``auto`` takes CUHK03-NP when its folders are
there). Evaluated with the Market rules (same identity and camera in the gallery is junk), as the
CUHK03-NP README prescribes.
"""

from __future__ import annotations

from pathlib import Path

from bench.api.dataset import DatasetAdapter
from bench.api.registry import register_dataset
from bench.api.samples import Splits
from bench.data.cuhk03 import (
    MAT_FILE,
    MAT_TREE,
    NP_SPLIT_FOLDERS,
    NP_TREE,
    VARIANTS,
    find_mat_file,
    find_split_file,
    read_mat_splits,
    read_np_splits,
)
from bench.data.splits import relabel
from bench.errors import DatasetError

NP_FOLDER = "cuhk03-np"
SOURCES = ("auto", "np", "mat")


@register_dataset
class CUHK03(DatasetAdapter):
    name = "cuhk03"
    description = (
        "CUHK03 new protocol (767/700 identities, Zhong et al. 2017), labeled or detected "
        "(cuhk03.variant); --root is CUHK03-NP or cuhk03_release/ with the split .mat files"
    )
    modalities = frozenset({"image"})
    protocol = "market"
    default_config = {"cuhk03": {"variant": "labeled", "source": "auto"}}
    config_choices = {"cuhk03.variant": VARIANTS, "cuhk03.source": SOURCES}

    @property
    def variant(self) -> str:
        return self.config.get("cuhk03.variant", "labeled")

    def _np_root(self) -> Path | None:
        """The CUHK03-NP folder holding ``<variant>/``, if there is one."""
        for root in (self.root, self.root / NP_FOLDER):
            if (root / self.variant / NP_SPLIT_FOLDERS[0]).is_dir():
                return root
        return None

    def source(self) -> tuple[str, Path]:
        """``("np", CUHK03-NP root)`` or ``("mat", path of cuhk-03.mat)`` for this root."""
        wanted = self.config.get("cuhk03.source", "auto")
        np_root = self._np_root() if wanted in ("auto", "np") else None
        if np_root is not None:
            return "np", np_root
        if wanted == "np":
            raise DatasetError(
                f"dataset {self.name!r}: no CUHK03-NP folder {self.root / self.variant} "
                f"(cuhk03.source=np expects {NP_TREE} with <root> = {self.root})"
            )
        mats = (self.root / "cuhk03_release" / MAT_FILE, self.root / MAT_FILE)
        if wanted == "mat" or any(p.is_file() for p in mats):
            return "mat", find_mat_file(self.root)
        raise DatasetError(
            f"dataset {self.name!r}: {self.root} holds neither CUHK03-NP ({NP_TREE}) nor the "
            f"original release ({MAT_TREE})"
        )

    def _split_file(self, mat_path: Path) -> Path:
        return find_split_file(self.root, self.variant, also=[mat_path.parent])

    def _read(self) -> tuple[str, Path, tuple]:
        kind, where = self.source()
        if kind == "np":
            return kind, where, read_np_splits(where, self.variant)
        split = self._split_file(where)
        splits = read_mat_splits(where, split, self.variant, show_progress=self.show_progress)
        return kind, where, splits

    def prepare(self) -> None:
        """Check the layout; from ``cuhk-03.mat``, extract the images (once)."""
        super().prepare()
        self._read()

    def load(self, fold: str | None = None) -> Splits:
        if fold is not None:
            raise DatasetError(f"dataset {self.name!r} has one fixed split, not fold {fold!r}")
        kind, where, (train, query, gallery) = self._read()
        meta = {
            "root": str(where),
            "variant": self.variant,
            "source": kind,
            "train_pids": sorted({s.pid for s in train}),  # checked against the test pids
        }
        return Splits(relabel(train), query, gallery, meta=meta)
