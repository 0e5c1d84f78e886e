"""The registries of methods and datasets: plain dicts, filled by one decorator each (timm's
``register_model`` feel)::

    @register_method
    class BoT(Method):
        name = "bot"

A method family may carry variants (ablations, :class:`~bench.api.method.Variant`); each is
addressable by its own name (``bench run --method dmcl-no-text``). Looking names up, which first
loads every plugin, is :mod:`bench.plugins`' job; this module only holds what registered.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING, TypeVar

from bench.api.method import SUPERVISIONS
from bench.errors import PluginError

if TYPE_CHECKING:
    from bench.api.dataset import DatasetAdapter
    from bench.api.method import Method

_METHODS: dict[str, type[Method]] = {}
_DATASETS: dict[str, type[DatasetAdapter]] = {}
#: What registered, read-only: family name -> method class, dataset name -> adapter class.
METHODS = MappingProxyType(_METHODS)
DATASETS = MappingProxyType(_DATASETS)

M = TypeVar("M", bound="type[Method]")
D = TypeVar("D", bound="type[DatasetAdapter]")


def _check_name(name: object, kind: str, cls: type) -> str:
    if not isinstance(name, str) or not name:
        raise PluginError(
            f"{kind} class {cls.__module__}.{cls.__qualname__} has no `name` attribute"
        )
    return name


def register_method(cls: M) -> M:
    """Class decorator: add a :class:`~bench.api.method.Method` subclass (and its variants)."""
    name = _check_name(getattr(cls, "name", None), "method", cls)
    if getattr(cls, "supervision", "identity") not in SUPERVISIONS:
        raise PluginError(
            f"method {name!r} of {cls.__module__}: supervision must be one of "
            f"{', '.join(SUPERVISIONS)}, got {cls.supervision!r}"
        )
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
    """Class decorator: add a :class:`~bench.api.dataset.DatasetAdapter` subclass."""
    name = _check_name(getattr(cls, "name", None), "dataset", cls)
    owner = _DATASETS.get(name)
    if owner is not None and owner is not cls and not _same_class(owner, cls):
        raise PluginError(f"dataset name {name!r} of {cls.__module__} is already registered")
    _DATASETS[name] = cls
    return cls


def _same_class(a: type | None, b: type) -> bool:
    # A module imported twice (e.g. by path and by entry point) re-registers the same class.
    return a is not None and a.__module__ == b.__module__ and a.__qualname__ == b.__qualname__
