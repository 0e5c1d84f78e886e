"""The peer evaluators the benchmark measures against, from their packages on the package index.

``torchreid==0.2.5`` and ``fastreid==1.4.0`` (see ``benchmarks/peers.txt``) are installed but not
imported as packages: both package ``__init__``s pull in their whole training stacks (scipy,
opencv, faiss, tensorboard, ...), and fastreid's metadata pins ``torch==1.13.1``. The evaluation
modules themselves need only numpy (and torch for torchreid's distance), so they are loaded from
the installed files, unchanged. fast-reid's Cython evaluator ships as a ``.pyx``: it is compiled
here once (Cython + a C compiler), into ``$BENCH_CACHE/peers``, as its own Makefile would.
"""

from __future__ import annotations

import contextlib
import importlib.machinery
import importlib.util
import os
import subprocess
import sys
import sysconfig
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType


def package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)  # finds the package without running its __init__
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    with warnings.catch_warnings():  # "Cython evaluation unavailable, now use python evaluation"
        warnings.simplefilter("ignore")
        spec.loader.exec_module(module)
    return module


def version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as _version

    try:
        return _version(dist)
    except PackageNotFoundError:
        return None


def torchreid_rank() -> ModuleType | None:
    """torchreid's ``metrics/rank.py`` (its Python ``eval_market1501``)."""
    root = package_dir("torchreid")
    return _load(root / "reid/metrics/rank.py", "_peer_torchreid_rank") if root else None


def torchreid_distance() -> ModuleType | None:
    """torchreid's ``metrics/distance.py`` (``compute_distance_matrix``: distance by matmul)."""
    root = package_dir("torchreid")
    return _load(root / "reid/metrics/distance.py", "_peer_torchreid_distance") if root else None


class _StableArgsortNumpy:
    """numpy, but ``argsort`` is stable (equal values ordered by index)."""

    def __getattr__(self, name: str):
        import numpy

        return getattr(numpy, name)

    @staticmethod
    def argsort(a, axis=-1):
        import numpy

        return numpy.argsort(a, axis=axis, kind="stable")


def torchreid_rerank() -> ModuleType | None:
    """torchreid's ``utils/rerank.py`` (``re_ranking``, the reference re-ranking)."""
    root = package_dir("torchreid")
    return _load(root / "reid/utils/rerank.py", "_peer_torchreid_rerank") if root else None


def fastreid_rank() -> ModuleType | None:
    """fast-reid's ``evaluation/rank.py`` (its Python ``eval_market1501``, with mINP)."""
    root = package_dir("fastreid")
    return _load(root / "evaluation/rank.py", "_peer_fastreid_rank") if root else None


@contextlib.contextmanager
def stable_argsort(module: ModuleType) -> Iterator[ModuleType]:
    """Within the block, a peer module's global ``np`` is numpy with a stable ``argsort``: its
    rankings order equal distances by index, as ours do (numpy's default, quicksort, orders
    them arbitrarily). Works for the compiled ``rank_cy`` too (it looks ``np`` up at call
    time)."""
    before = module.np
    module.np = _StableArgsortNumpy()
    try:
        yield module
    finally:
        module.np = before


def fastreid_cython() -> tuple[ModuleType | None, str]:
    """fast-reid's compiled ``rank_cy`` (``evaluate_cy``), or ``(None, why not)``."""
    root = package_dir("fastreid")
    if root is None:
        return None, "fastreid is not installed (pip install --no-deps fastreid==1.4.0)"
    pyx = root / "evaluation/rank_cylib/rank_cy.pyx"
    cache = Path(os.environ.get("BENCH_CACHE", Path.home() / ".cache/reid-bench"))
    tag = sys.implementation.cache_tag
    build = cache / "peers" / f"fastreid-{version('fastreid')}-{tag}"
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    so = build / f"rank_cy{suffix}"
    if not so.exists():
        build.mkdir(parents=True, exist_ok=True)
        (build / "rank_cy.pyx").write_bytes(pyx.read_bytes())
        script = (
            "from setuptools import setup, Extension\n"
            "from Cython.Build import cythonize\n"
            "import numpy\n"
            "setup(script_args=['build_ext', '--inplace', '-q'], ext_modules=cythonize("
            "[Extension('rank_cy', ['rank_cy.pyx'], include_dirs=[numpy.get_include()])],"
            " quiet=True))\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", script], cwd=build, capture_output=True, text=True
        )
        if done.returncode != 0 or not so.exists():
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            return None, f"could not compile fast-reid's rank_cy.pyx: {tail[0]}"
    loader = importlib.machinery.ExtensionFileLoader("rank_cy", str(so))
    spec = importlib.util.spec_from_file_location("rank_cy", so, loader=loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module, "compiled"
