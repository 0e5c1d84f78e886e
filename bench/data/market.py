"""Market-1501 and DukeMTMC-reID: folders of ``*.jpg`` named by identity, camera and frame
(:func:`read_market_folder`), and :class:`MarketStyleRelease`, the base of the adapters of
datasets released in that layout: release-folder lookup, verification, ``bench data check``
scanning, and text attached from a text source chosen with ``--set text.source=...``.

Text sources (:mod:`bench.data.text_sources`): ``none`` (default; the dataset then provides no
``text`` modality), ``attributes`` (the identity-level attribute annotations of Lin et al.,
turned into sentences), ``cuhk-pedes`` (CUHK-PEDES captions, ``reid_raw.json``) and ``captions``
(a CSV or JSON file keyed by image file name or identity). ``text.file`` names the file; when
empty, the source's usual file name is looked up in the root and the release folder.

Every malformed input raises :class:`~bench.errors.DatasetError` naming the file or folder.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from bench.api.dataset import DatasetAdapter
from bench.api.ranges import NON_NEGATIVE, Range
from bench.api.samples import JUNK_PID, Sample, Splits
from bench.data.captions import attach_text, read_captions
from bench.data.files import dangling_note, image_files
from bench.data.splits import relabel
from bench.data.text_sources import read_text_source
from bench.errors import RAISE, DatasetError, Problems

#: Market-1501: ``PPPP_cCsS_FFFFFF_BB.jpg`` (``0002_c1s1_000451_03.jpg``); pid ``-1`` is junk,
#: ``0000`` a distractor. Groups: pid, cam, seq, frame, bbox.
MARKET = re.compile(
    r"^(?P<pid>-1|\d+)_c(?P<cam>\d+)s(?P<seq>\d+)_(?P<frame>\d+)_(?P<bbox>\d+)\.jpg$",
    re.IGNORECASE,
)


#: DukeMTMC-reID: ``PPPP_cC_fFFFFFFF.jpg`` (``0001_c2_f0046182.jpg``). Groups: pid, cam, frame.
DUKE = re.compile(r"^(?P<pid>-1|\d+)_c(?P<cam>\d+)_f(?P<frame>\d+)\.jpg$", re.IGNORECASE)


PATTERNS: dict[str, re.Pattern[str]] = {"market": MARKET, "duke": DUKE}


MARKET_SPLIT_FOLDERS = ("bounding_box_train", "bounding_box_test", "query")


MARKET_TREE = "<root>/bounding_box_train/, <root>/bounding_box_test/, <root>/query/"


def read_market_folder(
    folder: Path, pattern: re.Pattern[str] | str = MARKET, problems: Problems = RAISE
) -> list[Sample]:
    """Every ``*.jpg`` in ``folder`` as a :class:`Sample` (sorted by file name).

    ``pattern`` is :data:`MARKET`, :data:`DUKE` (or their names) or any regex with the named
    groups ``pid``, ``cam`` and ``frame``. ``camid`` is the camera number minus 1; ``pid`` is kept
    as written (``-1`` junk and ``0`` distractors included). Files that are not ``.jpg``
    (Market ships ``Thumbs.db``) are ignored; a ``.jpg`` whose name does not parse, and ``.jpg``
    symlinks whose target does not exist, are a problem (raised, or collected and skipped by
    ``problems``).
    """
    if isinstance(pattern, str):
        if pattern not in PATTERNS:
            raise DatasetError(
                f"unknown file-name pattern {pattern!r}; known: {', '.join(PATTERNS)}"
            )
        pattern = PATTERNS[pattern]
    folder = Path(folder)
    if not folder.is_dir():
        problems.report(
            folder,
            f"folder {folder} is missing{dangling_note(folder)}; expected the release layout "
            f"{MARKET_TREE} (with <root> = {folder.parent})",
        )
        return []
    files = image_files(folder, (".jpg",), problems)  # reports symlinks to nothing
    if not files:
        problems.report(folder, f"folder {folder} holds no .jpg images")
        return []
    samples = []
    for path in files:
        m = pattern.match(path.name)
        if m is None:
            problems.report(
                path,
                f"cannot parse image file name {path.name!r} in {folder} "
                f"(expected names matching {pattern.pattern})",
            )
            continue
        cam = int(m["cam"])
        if cam < 1:
            problems.report(path, f"camera number 0 in image file name {path.name!r} in {folder}")
            continue
        samples.append(Sample(str(path), int(m["pid"]), cam - 1, frame=int(m["frame"])))
    return samples


def read_market_splits(
    root: Path, pattern: re.Pattern[str] | str = MARKET, problems: Problems = RAISE
) -> tuple[list[Sample], list[Sample], list[Sample]]:
    """``(train, query, gallery)`` of a Market-style root, train not yet relabelled."""
    root = Path(root)
    for name in MARKET_SPLIT_FOLDERS:
        if not (root / name).is_dir():
            problems.report(
                root / name,
                f"folder {root / name} is missing{dangling_note(root / name)}; expected the "
                f"release layout {MARKET_TREE} (with <root> = {root})",
            )
    folders = [root / name for name in ("bounding_box_train", "query", "bounding_box_test")]
    train, query, gallery = (
        read_market_folder(f, pattern, problems) if f.is_dir() else [] for f in folders
    )
    return train, query, gallery


def market_style_splits(
    root: Path,
    pattern: re.Pattern[str] | str = MARKET,
    problems: Problems = RAISE,
    captions: Mapping[str, str] | None = None,
) -> Splits:
    """:func:`read_market_splits` as :class:`Splits`, text attached from ``captions`` (by file
    name, then original identity: :func:`attach_text`), training pids relabelled; the original
    training pids are kept in ``meta["train_pids"]`` (``bench data check`` looks for them among
    the test identities)."""
    parts = read_market_splits(root, pattern, problems)
    if captions is not None:
        parts = tuple(attach_text(samples, captions) for samples in parts)
    train, query, gallery = parts
    return Splits(
        relabel(train),
        query,
        gallery,
        meta={"root": str(root), "train_pids": sorted({s.pid for s in train if s.pid != JUNK_PID})},
    )


TEXT_SOURCES = ("none", "attributes", "cuhk-pedes", "captions")


TEXT_CONFIG = {"text": {"source": "none", "file": "", "caption_index": 0}}


TEXT_CHOICES = {"text.source": TEXT_SOURCES}


class MarketStyleRelease(DatasetAdapter):
    """Base of the adapters of Market-layout releases (register a subclass, not this class).

    Subclasses set ``release_folder`` (the name the archive unpacks to), ``file_pattern``
    (a :data:`PATTERNS` name), ``attribute_file`` and ``pedes_prefix`` (the
    CUHK-PEDES ``file_path`` folder of this dataset's images).
    """

    release_folder: ClassVar[str]
    file_pattern: ClassVar[str] = "market"
    attribute_file: ClassVar[str] = ""
    pedes_prefix: ClassVar[str] = ""
    modalities: ClassVar[frozenset[str]] = frozenset({"image"})
    protocol: ClassVar[str] = "market"
    default_config: ClassVar[dict[str, Any]] = TEXT_CONFIG
    config_choices: ClassVar[dict[str, tuple[Any, ...]]] = TEXT_CHOICES
    config_ranges: ClassVar[dict[str, Range]] = {"text.caption_index": NON_NEGATIVE}

    @classmethod
    def provided_modalities(cls, config: Mapping[str, Any]) -> frozenset[str]:
        if config.get("text.source", "none") != "none":
            return cls.modalities | {"text"}
        return cls.modalities

    @property
    def release(self) -> Path:
        """The folder holding the split folders: the root, or ``<root>/<release_folder>``."""
        nested = self.root / self.release_folder
        if not (self.root / MARKET_SPLIT_FOLDERS[0]).is_dir() and nested.is_dir():
            return nested
        return self.root

    def prepare(self) -> None:
        super().prepare()
        for name in MARKET_SPLIT_FOLDERS:
            if not (self.release / name).is_dir():
                raise DatasetError(
                    f"dataset {self.name!r}: folder {self.release / name} is missing; expected "
                    f"{MARKET_TREE} with <root> = {self.release} "
                    f"(or <root>/{self.release_folder}/)"
                )
        if self.text_source != "none":
            self.text_file()

    def scan(self, problems: Problems) -> None:
        if not self.root.is_dir():
            problems.report(self.root, f"dataset {self.name!r}: root folder {self.root} is missing")
            return
        try:
            captions = self.captions()
        except DatasetError as e:
            problems.report(self.config.get("text.file") or self.release, str(e))
            captions = None
        market_style_splits(self.release, self.file_pattern, problems, captions)

    def load(self, fold: str | None = None) -> Splits:
        if fold is not None:
            raise DatasetError(f"dataset {self.name!r} has one fixed split, not fold {fold!r}")
        return market_style_splits(self.release, self.file_pattern, RAISE, self.captions())

    def annotation_files(self) -> list[Path]:
        """The root's own files, and the text source's file wherever it lives."""
        files = super().annotation_files()
        if self.text_source != "none":
            files.append(self.text_file())
        return files

    # -- text ------------------------------------------------------------------------------
    @property
    def text_source(self) -> str:
        return str(self.config.get("text.source", "none"))

    def text_file(self) -> Path:
        """The file of the chosen text source: ``text.file``, else its usual name in the root."""
        given = str(self.config.get("text.file", "") or "")
        if given:
            path = Path(given).expanduser()
            if not path.is_file():
                raise DatasetError(f"text.file {path} does not exist")
            return path
        usual = {"attributes": self.attribute_file, "cuhk-pedes": "reid_raw.json"}.get(
            self.text_source
        )
        if usual:
            for folder in (self.root, self.release):
                if (folder / usual).is_file():
                    return folder / usual
        where = f"{usual} in {self.root}, or " if usual else ""
        raise DatasetError(
            f"dataset {self.name!r}: text.source={self.text_source} needs its file: put "
            f"{where}name it with --set text.file=PATH"
        )

    def captions(self) -> dict[str, str] | None:
        """``{image file name or identity: text}`` of the chosen source, ``None`` for ``none``."""
        if self.text_source == "none":
            return None
        return load_text_source(
            self.text_source,
            self.text_file(),
            dataset=self.file_pattern,
            pedes_prefix=self.pedes_prefix,
            caption_index=int(self.config.get("text.caption_index", 0)),
        )


def load_text_source(
    source: str,
    path: Path,
    *,
    dataset: str,
    pedes_prefix: str = "",
    caption_index: int = 0,
) -> dict[str, str]:
    """``{image file name or identity: text}`` from one of :data:`TEXT_SOURCES` (not ``none``),
    read by :func:`bench.data.text_sources.read_text_source`."""
    if source == "captions":
        return read_captions(path)
    if source == "attributes":
        return read_text_source("attributes", path, dataset=dataset)
    if source == "cuhk-pedes":
        if not pedes_prefix:
            raise DatasetError(
                "text.source=cuhk-pedes: CUHK-PEDES holds no images of this dataset; use "
                "text.source=captions or attributes"
            )
        return read_text_source("cuhk-pedes", path, source=pedes_prefix, caption=caption_index)
    raise DatasetError(f"unknown text.source {source!r}; known: {', '.join(TEXT_SOURCES)}")
