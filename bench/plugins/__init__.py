"""Plugin discovery and lookups: the built-in ``methods/`` and ``datasets/`` folders, then
``$BENCH_PLUGINS`` and entry points; :func:`get_method` and :func:`get_dataset` find what they
registered (:mod:`bench.api.registry`).

The folders are loaded under private names (``bench.plugins.methods.bot``), never as top-level
``methods`` or ``datasets``: Hugging Face ships a package called ``datasets``.
In a wheel the folders are shipped inside the package (``bench/plugins/methods/``); in a source
checkout they sit at the repository root. ``$BENCH_PLUGINS`` (folders separated by ``os.pathsep``)
adds folders of one-file plugins, each loaded as ``bench.plugins.user<i>.<stem>``.
Third-party plugins come in through the entry-point groups ``bench.methods`` and
``bench.datasets``; loading the entry point imports the module, whose decorator registers the
class (an entry point may also point straight at the class).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import types
from importlib.metadata import entry_points
from pathlib import Path

from bench.api import registry
from bench.api.dataset import DatasetAdapter
from bench.api.method import Method, MethodSpec
from bench.errors import BenchError, PluginError, did_you_mean

KINDS = ("methods", "datasets")
ENTRY_POINT_GROUPS = {"methods": "bench.methods", "datasets": "bench.datasets"}
_loaded = False


def plugin_folder(kind: str) -> Path | None:
    """The folder of built-in plugins of ``kind``: inside the package, else in the checkout."""
    here = Path(__file__).resolve().parent
    for folder in (here / kind, here.parent.parent / kind):
        if folder.is_dir() and any(folder.glob("*.py")):
            return folder
    return None


def user_folders() -> list[Path]:
    """Extra plugin folders named by ``$BENCH_PLUGINS``."""
    raw = os.environ.get("BENCH_PLUGINS", "")
    return [Path(p).expanduser() for p in raw.split(os.pathsep) if p.strip()]


def _package_for(kind: str, folder: Path) -> str:
    name = f"{__name__}.{kind}"
    module = sys.modules.get(name)
    if module is None:
        module = types.ModuleType(name, f"built-in {kind} plugins")
        module.__path__ = [str(folder)]
        module.__package__ = name
        sys.modules[name] = module
        setattr(sys.modules[__name__], kind, module)
    return name


def _load_folder(kind: str, folder: Path | None = None) -> None:
    folder = folder if folder is not None else plugin_folder(kind)
    if folder is None:
        return
    package = _package_for(kind, folder)
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue
        try:
            importlib.import_module(f"{package}.{path.stem}")
        except Exception as exc:  # a broken plugin must name its file
            raise PluginError(f"could not load plugin {path}: {type(exc).__name__}: {exc}") from exc


def _load_entry_points(kind: str) -> None:
    register = registry.register_method if kind == "methods" else registry.register_dataset
    for ep in entry_points(group=ENTRY_POINT_GROUPS[kind]):
        try:
            obj = ep.load()
        except Exception as exc:
            raise PluginError(
                f"could not load entry point {ep.name!r} ({ep.value}) of group "
                f"{ep.group!r}: {type(exc).__name__}: {exc}"
            ) from exc
        if isinstance(obj, type):
            register(obj)


def load_plugins(force: bool = False) -> None:
    """Import every built-in and entry-point plugin once; each registers itself."""
    global _loaded
    if _loaded and not force:
        return
    _loaded = True
    try:
        for kind in KINDS:
            _load_folder(kind)
        for i, folder in enumerate(user_folders()):
            if not folder.is_dir():
                raise PluginError(f"BENCH_PLUGINS names {folder}, which is not a folder")
            _load_folder(f"user{i}", folder)
        for kind in KINDS:
            _load_entry_points(kind)
    except Exception:
        _loaded = False
        raise


# ---------------------------------------------------------------------------------------------
# lookups


def _unknown(kind: str, name: str, known: list[str]) -> BenchError:
    hint = did_you_mean(name, known, cutoff=0.6)
    return BenchError(
        f"unknown {kind} {name!r}.{hint} Known {kind}s: {', '.join(known) or '(none)'}"
    )


def method_names() -> list[str]:
    load_plugins()
    return sorted({n for cls in registry.METHODS.values() for n in (cls.name, *cls.variants)})


def dataset_names() -> list[str]:
    load_plugins()
    return sorted(registry.DATASETS)


def get_method(name: str) -> MethodSpec:
    """Resolve a method or variant name; unknown names list the known ones."""
    load_plugins()
    if name in registry.METHODS:
        return MethodSpec(name, registry.METHODS[name], None)
    for cls in registry.METHODS.values():
        if name in cls.variants:
            return MethodSpec(name, cls, cls.variants[name])
    raise _unknown("method", name, method_names())


def get_dataset(name: str) -> type[DatasetAdapter]:
    load_plugins()
    if name not in registry.DATASETS:
        raise _unknown("dataset", name, dataset_names())
    return registry.DATASETS[name]


def method_families() -> list[type[Method]]:
    load_plugins()
    return [registry.METHODS[k] for k in sorted(registry.METHODS)]
