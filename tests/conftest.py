"""Test-wide settings: offline hubs and a throw-away data cache (never the user's home)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def _bench_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Synthetic data is generated once per session into a temp cache unless BENCH_CACHE is set."""
    if not os.environ.get("BENCH_CACHE"):
        os.environ["BENCH_CACHE"] = str(tmp_path_factory.mktemp("bench-cache"))


@pytest.fixture
def subprocess_env() -> dict[str, str]:
    """Environment for running ``python -m bench`` in a subprocess."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["BENCH_DEBUG"] = ""
    return env


PYTHON = sys.executable


SWEEP_PLUGINS = REPO / "tests" / "sweep_plugins"


@pytest.fixture
def probe_plugin(monkeypatch: pytest.MonkeyPatch):
    """The ``sweep-probe`` test method, registered here and (through ``BENCH_PLUGINS``) in
    every process a sweep starts; the registry and plugin modules are restored afterwards."""
    import bench.plugins
    from bench.api import registry
    from bench.plugins import load_plugins

    load_plugins()
    saved = dict(registry._METHODS)
    monkeypatch.setenv("BENCH_PLUGINS", str(SWEEP_PLUGINS))
    for var in ("PROBE_FAIL_SEEDS", "PROBE_INTERRUPT_SEEDS"):
        monkeypatch.delenv(var, raising=False)
    load_plugins(force=True)
    yield
    registry._METHODS.clear()
    registry._METHODS.update(saved)
    for name in [n for n in sys.modules if n.startswith("bench.plugins.user")]:
        del sys.modules[name]
    for attr in [a for a in vars(bench.plugins) if a[4:].isdigit() and a.startswith("user")]:
        delattr(bench.plugins, attr)
