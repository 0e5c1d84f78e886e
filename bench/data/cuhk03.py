"""Readers for CUHK03 under the new protocol of Zhong et al. 2017 ("Re-ranking Person
Re-identification with k-reciprocal Encoding", CVPR): 767 training and 700 test identities.

Two ways the data ships, both read here:

1. The CUHK03-NP release (Market-1501 layout, :func:`read_np_splits`)::

       <root>/labeled/bounding_box_train/0001_c1_1.png     PPPP_cC_N.png
       <root>/labeled/bounding_box_test/0003_c1_21.png     PPPP: identity (1..1467)
       <root>/labeled/query/0003_c1_22.png                 C: camera of the pair (1, 2)
       <root>/detected/{bounding_box_train,bounding_box_test,query}/...
                                                           N: 1-based row of the split file

2. The original release plus the split files (:func:`read_mat_splits`)::

       <root>/cuhk03_release/cuhk-03.mat                   (or <root>/cuhk-03.mat)
       <root>/cuhk03_new_protocol_config_labeled.mat
       <root>/cuhk03_new_protocol_config_detected.mat

   ``cuhk-03.mat`` is MATLAB v7.3 (HDF5): ``labeled`` and ``detected`` are cell arrays of 5
   camera pairs, each a cell array of persons x 10 images (images 1-5 from the pair's first
   camera, 6-10 from its second; some cells empty), each image a uint8 H x W x 3 array stored
   transposed. A split file (MATLAB v5) holds ``filelist`` (names ``P_NNN_V_II.png``: camera
   pair, person in the pair, camera 1/2, image 1-10; the names torchreid gives the extracted
   images), ``labels`` (identity 1..1467), ``camId`` (1/2) and 1-based ``train_idx``,
   ``query_idx``, ``gallery_idx`` into those rows. The images are extracted once into the
   harness cache (:func:`extract_mat_images`), never next to the user's data, which may be
   read-only or shared.

Both give the same samples: ``pid`` the identity of the split file (1..1467; the caller
relabels the training split), ``camid`` the camera within the pair minus 1 (0/1, as torchreid
and CUHK03-NP), ``frame`` the 1-based row of the split file (CUHK03-NP's ``N``). Statistics:
labeled 7,368 train / 1,400 query / 5,328 gallery images; detected 7,365 / 1,400 / 5,332.
Every malformed input raises :class:`~bench.errors.DatasetError` naming the file, key or name.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.api.samples import Sample
from bench.data.files import dangling_note, existing_file, image_files
from bench.errors import RAISE, DatasetError
from bench.io import StagedFolder, cache_dir

__all__ = [
    "EXPECTED_COUNTS",
    "MAT_FILE",
    "MAT_TREE",
    "NP_NAME",
    "NP_SPLIT_FOLDERS",
    "NP_TREE",
    "RAW_NAME",
    "SPLIT_KEYS",
    "VARIANTS",
    "NewProtocol",
    "extract_mat_images",
    "find_mat_file",
    "find_split_file",
    "mat_cache_folder",
    "protocol_samples",
    "raw_image_name",
    "read_mat_splits",
    "read_np_folder",
    "read_np_splits",
    "read_protocol",
    "split_file_name",
]

VARIANTS = ("labeled", "detected")
#: ``(train, query, gallery)`` image counts of the new protocol (Zhong et al. 2017, Table 1 of
#: the CUHK03-NP README); 767 training and 700 test identities in both variants.
EXPECTED_COUNTS = {"labeled": (7368, 1400, 5328), "detected": (7365, 1400, 5332)}

#: CUHK03-NP names: ``0003_c1_21.png`` = identity 3, camera 1, row 21 of the split file.
NP_NAME = re.compile(r"^(?P<pid>\d+)_c(?P<cam>\d+)_(?P<frame>\d+)\.(?:png|jpe?g)$", re.IGNORECASE)
NP_SPLIT_FOLDERS = ("bounding_box_train", "query", "bounding_box_test")  # train, query, gallery
NP_TREE = "<root>/{labeled,detected}/{bounding_box_train,bounding_box_test,query}/*.png"
NP_SUFFIXES = (".png", ".jpg", ".jpeg")

#: Split-file names: ``1_003_2_08.png`` = camera pair 1, person 3 of the pair, camera 2, image 8.
RAW_NAME = re.compile(r"^(?P<pair>\d+)_(?P<person>\d+)_(?P<view>\d+)_(?P<image>\d+)\.png$")
MAT_FILE = "cuhk-03.mat"
MAT_TREE = (
    "<root>/cuhk03_release/cuhk-03.mat (or <root>/cuhk-03.mat) and "
    "<root>/cuhk03_new_protocol_config_{labeled,detected}.mat"
)
SPLIT_KEYS = ("filelist", "labels", "camId", "train_idx", "query_idx", "gallery_idx")
IMAGES_PER_PERSON = 10  # images 1-5: the pair's first camera, 6-10: its second


def _check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise DatasetError(f"unknown CUHK03 variant {variant!r}; use one of {', '.join(VARIANTS)}")


def split_file_name(variant: str) -> str:
    """``cuhk03_new_protocol_config_<variant>.mat``."""
    _check_variant(variant)
    return f"cuhk03_new_protocol_config_{variant}.mat"


def raw_image_name(pair: int, person: int, image: int) -> str:
    """The split-file (and torchreid) name of image ``image`` (1-10) of person ``person`` of
    camera pair ``pair`` (all 1-based): ``1_003_2_08.png``; the camera is 1 for images 1-5."""
    view = 1 if image <= IMAGES_PER_PERSON // 2 else 2
    return f"{pair}_{person:03d}_{view}_{image:02d}.png"


# ---------------------------------------------------------------------------------------------
# CUHK03-NP folders


def read_np_folder(folder: Path) -> list[Sample]:
    """Every ``*.png`` (or ``.jpg``) of one CUHK03-NP split folder, sorted by file name.

    ``pid`` is the 4-digit identity, ``camid`` the camera minus 1, ``frame`` the row number ``N``
    of ``PPPP_cC_N.png``. Other files (``Thumbs.db``) are ignored; an image whose name does not
    parse, or names a camera other than 1 or 2, or is a symlink whose target does not exist, is an
    error naming it.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(
            f"folder {folder} is missing{dangling_note(folder)}; expected the CUHK03-NP layout "
            f"{NP_TREE}"
        )
    files = image_files(folder, NP_SUFFIXES, RAISE)  # a symlink to nothing is an error
    if not files:
        raise DatasetError(f"folder {folder} holds no .png images")
    samples = []
    for path in files:
        m = NP_NAME.match(path.name)
        if m is None:
            raise DatasetError(
                f"cannot parse image file name {path.name!r} in {folder} (expected CUHK03-NP "
                f"names PPPP_cC_N.png such as 0003_c1_21.png)"
            )
        cam = int(m["cam"])
        if cam not in (1, 2):
            raise DatasetError(
                f"image file name {path.name!r} in {folder} names camera {cam}; CUHK03 has "
                f"cameras 1 and 2 per camera pair"
            )
        samples.append(Sample(str(path), int(m["pid"]), cam - 1, frame=int(m["frame"])))
    return samples


def read_np_splits(root: Path, variant: str) -> tuple[list[Sample], list[Sample], list[Sample]]:
    """``(train, query, gallery)`` of ``<root>/<variant>/`` of CUHK03-NP, train not relabelled."""
    _check_variant(variant)
    base = Path(root) / variant
    for name in NP_SPLIT_FOLDERS:
        if not (base / name).is_dir():
            raise DatasetError(
                f"folder {base / name} is missing{dangling_note(base / name)}; expected the "
                f"CUHK03-NP layout {NP_TREE} "
                f"(with <root> = {root})"
            )
    train, query, gallery = (read_np_folder(base / name) for name in NP_SPLIT_FOLDERS)
    return train, query, gallery


# ---------------------------------------------------------------------------------------------
# Split files


@dataclass(frozen=True)
class NewProtocol:
    """One split file: per row the image name, identity and camera (1/2); 0-based row indices
    of the training, query and gallery images (the file's 1-based indices minus 1)."""

    path: Path
    names: list[str]
    pids: list[int]
    cams: list[int]
    train: list[int]
    query: list[int]
    gallery: list[int]

    def locate(self, row: int) -> tuple[int, int, int]:
        """``(pair, person, image)`` (1-based) of row ``row``, from its file name."""
        m = RAW_NAME.match(self.names[row])
        assert m is not None  # checked by read_protocol
        return int(m["pair"]), int(m["person"]), int(m["image"])


def find_split_file(root: Path, variant: str, also: Sequence[Path] = ()) -> Path:
    """``cuhk03_new_protocol_config_<variant>.mat`` in ``root`` (or one of ``also``)."""
    name = split_file_name(variant)
    places = [Path(root), *map(Path, also)]
    for place in places:
        if (place / name).is_file():
            return place / name
    where = " or ".join(str(p) for p in dict.fromkeys(places))
    raise DatasetError(
        f"split file {name} not found in {where}; the CUHK03 new protocol needs it beside "
        f"cuhk-03.mat ({MAT_TREE})"
    )


def _column(path: Path, mat: dict[str, Any], key: str) -> np.ndarray:
    value = np.asarray(mat[key])
    if value.ndim > 2 or (value.ndim == 2 and min(value.shape) > 1):
        raise DatasetError(
            f"split file {path}: {key!r} must be a vector, got shape {tuple(value.shape)}"
        )
    return value.reshape(-1)


def _integers(path: Path, mat: dict[str, Any], key: str) -> list[int]:
    value = _column(path, mat, key)
    if value.dtype.kind not in "iuf" or (
        value.dtype.kind == "f" and not np.all(np.isfinite(value) & (value == np.round(value)))
    ):
        raise DatasetError(f"split file {path}: {key!r} must hold integers")
    return [int(v) for v in value]


def _names(path: Path, mat: dict[str, Any]) -> list[str]:
    names = []
    for i, cell in enumerate(_column(path, mat, "filelist")):
        item = np.asarray(cell).reshape(-1)
        text = item[0] if item.size == 1 else None
        if not isinstance(text, str):
            raise DatasetError(
                f"split file {path}: 'filelist' row {i + 1} is not a file name ({cell!r})"
            )
        text = str(text)
        if RAW_NAME.match(text) is None:
            raise DatasetError(
                f"split file {path}: 'filelist' row {i + 1} {text!r} is not a CUHK03 image "
                f"name P_NNN_V_II.png such as 1_003_2_08.png"
            )
        names.append(text)
    return names


def read_protocol(path: Path) -> NewProtocol:
    """Read ``cuhk03_new_protocol_config_<variant>.mat`` (MATLAB v5, :data:`SPLIT_KEYS`).

    Checks that every key is present, that ``filelist``, ``labels`` and ``camId`` have one row
    per image, that every index lies in ``1..rows``, that the three index sets are disjoint,
    that no training identity is a test identity, and that each row's camera agrees with the
    camera in its file name.
    """
    from scipy.io import loadmat

    path = existing_file(path, "split file")
    try:
        mat = loadmat(str(path))
    except NotImplementedError as e:  # scipy: "Please use HDF reader for matlab v7.3 files"
        raise DatasetError(
            f"split file {path} is a MATLAB v7.3 file; expected the v5 split file of "
            f"Zhong et al. (zhunzhong07/person-re-ranking)"
        ) from e
    except Exception as e:  # scipy raises ValueError/TypeError/OSError on a damaged file
        raise DatasetError(f"cannot read split file {path}: {type(e).__name__}: {e}") from e
    missing = [k for k in SPLIT_KEYS if k not in mat]
    if missing:
        present = ", ".join(k for k in mat if not k.startswith("__")) or "(none)"
        raise DatasetError(
            f"split file {path} lacks the key {missing[0]!r} (keys present: {present})"
        )
    names = _names(path, mat)
    pids = _integers(path, mat, "labels")
    cams = _integers(path, mat, "camId")
    n = len(names)
    for key, values in (("labels", pids), ("camId", cams)):
        if len(values) != n:
            raise DatasetError(
                f"split file {path}: {key!r} has {len(values)} rows but 'filelist' has {n}"
            )
    for row, (name, cam) in enumerate(zip(names, cams)):
        m = RAW_NAME.match(name)
        assert m is not None
        if cam not in (1, 2) or int(m["view"]) != cam:
            raise DatasetError(
                f"split file {path}: row {row + 1} has camId {cam} but its file name {name!r} "
                f"names camera {m['view']}"
            )
    splits = {}
    for key in ("train_idx", "query_idx", "gallery_idx"):
        idx = _integers(path, mat, key)
        bad = [i for i in idx if not 1 <= i <= n]
        if bad:
            raise DatasetError(
                f"split file {path}: {key!r} holds index {bad[0]}, out of range 1..{n} "
                f"(the rows of 'filelist')"
            )
        splits[key] = [i - 1 for i in idx]
    pairs = (("train_idx", "query_idx"), ("train_idx", "gallery_idx"), ("query_idx", "gallery_idx"))
    for a, b in pairs:
        both = set(splits[a]) & set(splits[b])
        if both:
            raise DatasetError(f"split file {path}: row {min(both) + 1} is in both {a!r} and {b!r}")
    train_pids = {pids[i] for i in splits["train_idx"]}
    leaked = train_pids & {pids[i] for i in splits["query_idx"] + splits["gallery_idx"]}
    if leaked:
        raise DatasetError(
            f"split file {path}: identity {min(leaked)} is both a training and a test identity"
        )
    return NewProtocol(
        path, names, pids, cams, splits["train_idx"], splits["query_idx"], splits["gallery_idx"]
    )


def protocol_samples(
    protocol: NewProtocol, image_path: Callable[[int], Path]
) -> tuple[list[Sample], list[Sample], list[Sample]]:
    """``(train, query, gallery)`` samples of ``protocol`` in the split file's order; the image
    of row ``r`` (0-based) is ``image_path(r)``. Train is not relabelled."""

    def make(rows: list[int]) -> list[Sample]:
        return [
            Sample(str(image_path(r)), protocol.pids[r], protocol.cams[r] - 1, frame=r + 1)
            for r in rows
        ]

    return make(protocol.train), make(protocol.query), make(protocol.gallery)


# ---------------------------------------------------------------------------------------------
# cuhk-03.mat (MATLAB v7.3 = HDF5)


def find_mat_file(root: Path) -> Path:
    """``<root>/cuhk03_release/cuhk-03.mat`` or ``<root>/cuhk-03.mat``."""
    root = Path(root)
    for path in (root / "cuhk03_release" / MAT_FILE, root / MAT_FILE):
        if path.is_file():
            return path
    raise DatasetError(
        f"{MAT_FILE} not found in {root / 'cuhk03_release'} or {root}; expected {MAT_TREE}"
    )


class _MatCells:
    """The ``labeled`` or ``detected`` cell array of an open ``cuhk-03.mat``."""

    def __init__(self, f: Any, path: Path, variant: str) -> None:
        import h5py

        self.f, self.path, self.variant = f, path, variant
        if variant not in f:
            keys = ", ".join(k for k in f if not k.startswith("#")) or "(none)"
            raise DatasetError(f"{path} has no {variant!r} cell array (keys present: {keys})")
        top = f[variant]
        if not isinstance(top, h5py.Dataset) or top.dtype != h5py.ref_dtype:
            raise DatasetError(f"{path}: {variant!r} is not a MATLAB cell array")
        self.pairs = []
        for p, ref in enumerate(top[()].reshape(-1)):
            cell = f[ref] if ref else None
            if not isinstance(cell, h5py.Dataset) or cell.dtype != h5py.ref_dtype or cell.ndim != 2:
                raise DatasetError(
                    f"{path}: {variant!r} camera pair {p + 1} is not a persons x images cell array"
                )
            # stored transposed: (images, persons) -> (persons, images)
            self.pairs.append(cell[()].T)

    def cells(self) -> list[tuple[int, int, int]]:
        """Every ``(pair, person, image)`` (1-based) the cell array has room for."""
        return [
            (p + 1, i + 1, j + 1)
            for p, refs in enumerate(self.pairs)
            for i in range(refs.shape[0])
            for j in range(refs.shape[1])
        ]

    def image(self, pair: int, person: int, image: int, name: str | None = None) -> Any:
        """The HDF5 dataset of one image, or ``None`` for an empty cell; a cell outside the
        array is an error naming ``name`` (the split file's name of the image)."""
        what = f"image {name!r}" if name else f"camera pair {pair}, person {person}, image {image}"
        if not 1 <= pair <= len(self.pairs):
            raise DatasetError(
                f"{what}: {self.path} has {len(self.pairs)} camera pairs in {self.variant!r}"
            )
        refs = self.pairs[pair - 1]
        if not (1 <= person <= refs.shape[0] and 1 <= image <= refs.shape[1]):
            raise DatasetError(
                f"{what}: camera pair {pair} of {self.variant!r} in {self.path} has "
                f"{refs.shape[0]} persons x {refs.shape[1]} images"
            )
        ref = refs[person - 1, image - 1]
        if not ref:
            return None
        ds = self.f[ref]
        if ds.ndim != 3 or ds.size == 0:
            return None  # MATLAB stores an empty cell as a 2-element placeholder
        if ds.shape[0] != 3 or ds.dtype != np.uint8:
            raise DatasetError(
                f"{what} in {self.path} ({self.variant!r}) is not an RGB uint8 image "
                f"(stored shape {tuple(ds.shape)}, dtype {ds.dtype})"
            )
        return ds


def _open_mat(path: Path) -> Any:
    import h5py

    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path} does not exist; expected {MAT_TREE}")
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise DatasetError(f"cannot read {path} as a MATLAB v7.3 (HDF5) file: {e}") from e


def mat_cache_folder(mat_path: Path, variant: str, cache: Path | None = None) -> Path:
    """Where :func:`extract_mat_images` puts ``variant``'s images of ``mat_path``:
    ``<cache>/cuhk03/<hash of the file's absolute path, size and mtime>/<variant>/``, with
    ``<cache>`` :func:`bench.io.cache_dir` unless given. A replaced file gets a new folder."""
    _check_variant(variant)
    path = Path(mat_path).resolve()
    st = path.stat()
    key = hashlib.sha1(f"{path}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:12]
    return Path(cache if cache is not None else cache_dir()) / "cuhk03" / key / variant


MANIFEST = "manifest.json"


def extract_mat_images(
    mat_path: Path,
    variant: str,
    cache: Path | None = None,
    *,
    show_progress: bool = True,
) -> Path:
    """Write every non-empty image of ``variant`` in ``cuhk-03.mat`` as a PNG named
    :func:`raw_image_name` into :func:`mat_cache_folder` once, and return that folder.

    The images go to a temporary folder beside it that is renamed into place when complete, so
    an interrupted extraction leaves nothing half-written; a complete folder is reused.
    """
    from PIL import Image

    from bench.progress import progress

    _check_variant(variant)
    mat_path = Path(mat_path)
    with _open_mat(mat_path) as f:
        folder = mat_cache_folder(mat_path, variant, cache)
        if (folder / MANIFEST).is_file():
            return folder
        cells = _MatCells(f, mat_path, variant)
        try:
            folder.parent.mkdir(parents=True, exist_ok=True)
            staged = StagedFolder(folder, complete=lambda done: (done / MANIFEST).is_file())
        except OSError as e:
            raise DatasetError(
                f"cannot write the extracted CUHK03 images under {folder.parent}: {e} (set "
                f"BENCH_CACHE to a writable folder)"
            ) from e
        with staged as tmp:
            written = 0
            todo = cells.cells()
            bar = progress(
                todo,
                desc=f"cuhk03: extracting {variant} images from {mat_path.name}",
                unit="cell",
                enabled=show_progress,
            )
            for pair, person, image in bar:
                ds = cells.image(pair, person, image)
                if ds is None:
                    continue
                pixels = np.ascontiguousarray(ds[()].T)  # (3, W, H) -> (H, W, 3)
                Image.fromarray(pixels, "RGB").save(tmp / raw_image_name(pair, person, image))
                written += 1
            manifest = {"source": str(mat_path.resolve()), "variant": variant, "images": written}
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return folder


def read_mat_splits(
    mat_path: Path,
    split_path: Path,
    variant: str,
    cache: Path | None = None,
    *,
    show_progress: bool = True,
) -> tuple[list[Sample], list[Sample], list[Sample]]:
    """``(train, query, gallery)`` of the new protocol from ``cuhk-03.mat`` and a split file.

    Every name of the split file is first checked against the cell array (an image the split
    file names must exist and be non-empty in ``cuhk-03.mat``), then the images are extracted
    (once, :func:`extract_mat_images`). Train is not relabelled.
    """
    _check_variant(variant)
    protocol = read_protocol(split_path)
    mat_path = Path(mat_path)
    with _open_mat(mat_path) as f:
        cells = _MatCells(f, mat_path, variant)
        for row, name in enumerate(protocol.names):
            pair, person, image = protocol.locate(row)
            ds = cells.image(pair, person, image, name)  # raises outside the cell array
            if raw_image_name(pair, person, image) != name:
                raise DatasetError(
                    f"split file {protocol.path}: row {row + 1} {name!r} should read "
                    f"{raw_image_name(pair, person, image)!r} (P_NNN_V_II.png; images 1-5 are "
                    f"camera 1, 6-10 camera 2)"
                )
            if ds is None:
                raise DatasetError(
                    f"split file {protocol.path} names image {name!r} (row {row + 1}), but its "
                    f"cell in {mat_path} ({variant!r}) is empty"
                )
    folder = extract_mat_images(mat_path, variant, cache, show_progress=show_progress)
    return protocol_samples(protocol, lambda r: folder / protocol.names[r])
