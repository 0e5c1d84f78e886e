"""Method and dataset registries: registering is one decorator (timm's ``register_model`` feel).

    @register_method
    class BoT(Method):
        name = "bot"

A method family may carry variants (ablations); each variant is addressable by its own name
(``bench run --method dmcl-no-text``) and resolves to the family class plus config overrides.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from bench.errors import BenchError, PluginError

if TYPE_CHECKING:
    from bench.dataset import DatasetAdapter
    from bench.method import Method

_METHODS: dict[str, type[Method]] = {}
_DATASETS: dict[str, type[DatasetAdapter]] = {}

M = TypeVar("M", bound="type[Method]")
D = TypeVar("D", bound="type[DatasetAdapter]")


@dataclass(frozen=True)
class Variant:
    """A variant of a method family: config overrides and, if it drops one, modalities."""

    description: str
    overrides: dict[str, Any] = field(default_factory=dict)
    modalities: frozenset[str] | None = None


@dataclass(frozen=True)
class MethodSpec:
    """What ``--method NAME`` resolves to."""

    name: str
    family: type[Method]
    variant: Variant | None

    @property
    def description(self) -> str:
        return self.variant.description if self.variant else self.family.description

    @property
    def modalities(self) -> frozenset[str]:
        if self.variant is not None and self.variant.modalities is not None:
            return self.variant.modalities
        return self.family.modalities

    @property
    def overrides(self) -> dict[str, Any]:
        return dict(self.variant.overrides) if self.variant else {}


def _check_name(name: object, kind: str, cls: type) -> str:
    if not isinstance(name, str) or not name:
        raise PluginError(
            f"{kind} class {cls.__module__}.{cls.__qualname__} has no `name` attribute"
        )
    return name


def register_method(cls: M) -> M:
    """Class decorator: add a :class:`~bench.method.Method` subclass (and its variants)."""
    name = _check_name(getattr(cls, "name", None), "method", cls)
    for other in _METHODS.values():
        if _same_class(other, cls):
            continue
        clash = {name, *cls.variants} & {other.name, *other.variants}
        if clash:
            raise PluginError(
                f"method name {sorted(clash)[0]!r} of {cls.__module__} is already registered "
                f"by {other.__module__}"
            )
    _METHODS[name] = cls
    return cls


def register_dataset(cls: D) -> D:
    """Class decorator: add a :class:`~bench.dataset.DatasetAdapter` subclass."""
    name = _check_name(getattr(cls, "name", None), "dataset", cls)
    owner = _DATASETS.get(name)
    if owner is not None and owner is not cls and not _same_class(owner, cls):
        raise PluginError(f"dataset name {name!r} of {cls.__module__} is already registered")
    _DATASETS[name] = cls
    return cls


def _same_class(a: type | None, b: type) -> bool:
    # A module imported twice (e.g. by path and by entry point) re-registers the same class.
    return a is not None and a.__module__ == b.__module__ and a.__qualname__ == b.__qualname__


def _unknown(kind: str, name: str, known: list[str]) -> BenchError:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return BenchError(
        f"unknown {kind} {name!r}.{hint} Known {kind}s: {', '.join(known) or '(none)'}"
    )


def method_names() -> list[str]:
    from bench.plugins import load_plugins

    load_plugins()
    return sorted({n for cls in _METHODS.values() for n in (cls.name, *cls.variants)})


def dataset_names() -> list[str]:
    from bench.plugins import load_plugins

    load_plugins()
    return sorted(_DATASETS)


def get_method(name: str) -> MethodSpec:
    """Resolve a method or variant name; unknown names list the known ones."""
    from bench.plugins import load_plugins

    load_plugins()
    if name in _METHODS:
        return MethodSpec(name, _METHODS[name], None)
    for cls in _METHODS.values():
        if name in cls.variants:
            return MethodSpec(name, cls, cls.variants[name])
    raise _unknown("method", name, method_names())


def get_dataset(name: str) -> type[DatasetAdapter]:
    from bench.plugins import load_plugins

    load_plugins()
    if name not in _DATASETS:
        raise _unknown("dataset", name, dataset_names())
    return _DATASETS[name]


def method_families() -> list[type[Method]]:
    from bench.plugins import load_plugins

    load_plugins()
    return [_METHODS[k] for k in sorted(_METHODS)]
