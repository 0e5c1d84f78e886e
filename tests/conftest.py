"""Test-wide settings: offline hubs and a throw-away data cache (never the user's home)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

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


#: A tiny Market-1501 release: two training and two test identities, junk and a distractor.
MARKET_FILES = {
    "bounding_box_train": [
        "0002_c1s1_000451_03.jpg",
        "0002_c2s1_000500_01.jpg",
        "0007_c3s2_000100_01.jpg",
        "0007_c4s2_000101_01.jpg",
    ],
    "bounding_box_test": [
        "0003_c1s1_000001_01.jpg",
        "0003_c4s1_000020_01.jpg",
        "0009_c2s1_000001_01.jpg",
        "0009_c3s1_000002_01.jpg",
        "-1_c2s1_000001_01.jpg",
        "0000_c3s1_000001_01.jpg",
    ],
    "query": ["0003_c2s1_000009_01.jpg", "0009_c6s1_000003_01.jpg"],
}


def build_market_release(root: Path) -> Path:
    """A tiny Market-1501 release of decodable JPEGs (two training, two test identities)."""
    for folder, names in MARKET_FILES.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for i, name in enumerate(names):
            Image.new("RGB", (8, 16), (40 * i % 255, 90, 160)).save(root / folder / name, "JPEG")
    return root


@pytest.fixture
def market_release():
    """:func:`build_market_release`: ``market_release(root)`` writes the release, returns root."""
    return build_market_release


@dataclass
class FinishedRun:
    """A finished tiny run of bot on synthetic-person (one epoch): its results folder (record,
    final.pt, last.pt, saved features), its record, and the ``bench run`` arguments that make it
    again. Copy the folder before changing it: the fixture is shared by the session."""

    results: Path
    record: dict
    cli: list[str]


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory: pytest.TempPathFactory, _bench_cache: None) -> FinishedRun:
    from bench.engine.runner import RunRequest, run

    sets = ["synthetic.identities=16", "train.epochs=1"]
    results = tmp_path_factory.mktemp("finished") / "results"
    request = RunRequest(
        method="bot",
        dataset="synthetic-person",
        preset="quick",
        sets=sets,
        results_dir=results,
        progress=False,
    )
    (record,) = run(request)
    cli = ["--method", "bot", "--dataset", "synthetic-person", "--preset", "quick"]
    return FinishedRun(results, record, [*cli, *(a for s in sets for a in ("--set", s))])


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes); ``{}`` when it does not exist."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def folder_snapshot():
    """:func:`snapshot`: to assert that a failed command changed nothing."""
    return snapshot


class _Touch:
    """Unpickling this calls ``Path.touch(marker)``: what a hostile checkpoint would do (the
    issue's tester used ``os.system``)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def plant(path: Path, marker: Path) -> None:
    """Write a checkpoint-shaped pickle at ``path`` whose loading would create ``marker``."""
    import torch

    torch.save({"epoch": 0, "states": {"model": _Touch(marker)}, "rng": {}}, path)


@pytest.fixture
def plant_pickle():
    """:func:`plant`: ``plant_pickle(path, marker)``."""
    return plant
