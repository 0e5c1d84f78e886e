"""A base for adapters of datasets released in the Market-1501 folder layout (Market-1501,
DukeMTMC-reID): release-folder lookup, verification, ``bench data check`` scanning, and text
attached from a text source chosen with ``--set text.source=...``.

Text sources (:mod:`bench.textsources`): ``none`` (default; the dataset then provides no
``text`` modality), ``attributes`` (the identity-level attribute annotations of Lin et al.,
turned into sentences), ``cuhk-pedes`` (CUHK-PEDES captions, ``reid_raw.json``) and ``captions``
(a CSV or JSON file keyed by image file name or identity). ``text.file`` names the file; when
empty, the source's usual file name is looked up in the root and the release folder.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from bench.dataset import DatasetAdapter
from bench.errors import RAISE, DatasetError, Problems
from bench.layouts import MARKET_SPLIT_FOLDERS, MARKET_TREE, market_style_splits, read_captions
from bench.samples import Splits

TEXT_SOURCES = ("none", "attributes", "cuhk-pedes", "captions")
TEXT_CONFIG = {"text": {"source": "none", "file": "", "caption_index": 0}}
TEXT_CHOICES = {"text.source": TEXT_SOURCES}


class MarketStyleRelease(DatasetAdapter):
    """Base of the adapters of Market-layout releases (register a subclass, not this class).

    Subclasses set ``release_folder`` (the name the archive unpacks to), ``file_pattern``
    (a :data:`bench.layouts.PATTERNS` name), ``attribute_file`` and ``pedes_prefix`` (the
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
        if not self.root.is_dir():
            raise DatasetError(f"dataset {self.name!r}: root folder {self.root} does not exist")
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
    read by :func:`bench.textsources.read_text_source`."""
    from bench.textsources import read_text_source

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
