"""Dataset adapters: a root folder in a dataset's released layout -> ``Splits``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from bench.api.ranges import Range
from bench.api.samples import Splits
from bench.errors import DatasetError, Problems

#: Image file suffixes: files of these kinds are never annotation files.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


class DatasetAdapter(ABC):
    """Base class of every dataset plugin; register a subclass with ``@register_dataset``.

    Class attributes are plain data: ``name``, ``description``, ``modalities`` it provides,
    ``protocol`` (the evaluation rules, see :mod:`bench.evaluation.protocol`),
    ``default_config`` (its own ``--set`` keys, nested dicts), ``config_choices`` (allowed
    values per dotted key) and ``config_ranges`` (allowed numeric ranges, :mod:`bench.api.ranges`).
    ``homepage``, ``licence`` and ``expected_tree`` are what ``bench data info`` prints.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    modalities: ClassVar[frozenset[str]] = frozenset({"image"})
    protocol: ClassVar[str] = "market"
    default_config: ClassVar[dict[str, Any]] = {}
    config_choices: ClassVar[dict[str, tuple[Any, ...]]] = {}
    config_ranges: ClassVar[dict[str, Range]] = {}
    homepage: ClassVar[str] = ""
    licence: ClassVar[str] = ""
    expected_tree: ClassVar[str] = ""
    #: Whether the test split may come from another folder (``--test-root``): NTSSL trains on
    #: 27 REAL-Colon videos and tests on 19 others, released as two roots.
    supports_test_root: ClassVar[bool] = False

    def __init__(
        self, root: Path | None, config: Mapping[str, Any], *, show_progress: bool = True
    ) -> None:
        self.config = config
        self.show_progress = show_progress
        self.root = Path(root).expanduser() if root is not None else self.default_root()
        self.test_root: Path | None = None

    def use_test_root(self, test_root: Path | None) -> None:
        """Read the test split from ``test_root`` (``--test-root``), for datasets that allow it
        (:attr:`supports_test_root`); None keeps ``--root``."""
        if test_root is None:
            return
        if not self.supports_test_root:
            raise DatasetError(
                f"dataset {self.name!r} reads its test split from --root; drop --test-root"
            )
        self.test_root = Path(test_root).expanduser()

    @classmethod
    def provided_modalities(cls, config: Mapping[str, Any]) -> frozenset[str]:
        """The modalities a run with ``config`` gets (a text source may add ``text``)."""
        return cls.modalities

    def default_root(self) -> Path:
        """Where the data lives when ``--root`` is not given."""
        raise DatasetError(f"dataset {self.name!r} needs --root PATH (the folder you downloaded)")

    def prepare(self) -> None:
        """Make the root usable (synthetic datasets generate here); real datasets only verify."""
        if not self.root.is_dir():
            raise DatasetError(f"dataset {self.name!r}: root folder {self.root} does not exist")

    def scan(self, problems: Problems) -> None:
        """Report every structural problem of the root to ``problems`` without raising
        (``bench data check``). The default reports the first error of :meth:`prepare`;
        adapters of real layouts override it to list them all."""
        try:
            self.prepare()
        except DatasetError as e:
            problems.report(self.root, str(e))

    def folds(self) -> list[str | None]:
        """Evaluation units: ``[None]`` for one fixed split, else the fold names."""
        return [None]

    def annotation_files(self) -> list[Path]:
        """The annotation files a load reads besides the images, for the data fingerprint
        (:mod:`bench.data.fingerprint`). Default: the files directly in the root that are not
        images (text sheets, caption files, split files); hidden files skipped."""
        if not self.root.is_dir():
            return []
        return sorted(
            p
            for p in self.root.iterdir()
            if p.is_file()
            and not p.name.startswith((".", "~$"))
            and p.suffix.lower() not in IMAGE_SUFFIXES
        )

    @abstractmethod
    def load(self, fold: str | None = None) -> Splits:
        """Read the root and return train/query/gallery for ``fold``."""
