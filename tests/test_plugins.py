"""Registry and plugin discovery: decorator, variants, folders, entry points, wheel, sys.modules."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from bench.api import registry
from bench.api.method import Method, Variant
from bench.api.registry import register_method
from bench.errors import BenchError, PluginError
from bench.plugins import get_dataset, get_method, load_plugins, method_names

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "docs" / "plugin_example.py"
SMALL = ["--set", "synthetic.identities=24", "--no-progress"]


@pytest.fixture
def clean_registry():
    load_plugins()
    saved = dict(registry._METHODS)
    yield
    registry._METHODS.clear()
    registry._METHODS.update(saved)


def _toy(name: str, variants: dict | None = None) -> type[Method]:
    class Toy(Method):
        def fit(self, train):  # pragma: no cover - never trained here
            raise AssertionError

        def state_dict(self):
            return {}

        def load_state_dict(self, state):
            pass

    Toy.name = name
    Toy.variants = variants or {}
    Toy.__qualname__ = f"Toy_{name}"
    return Toy


def test_register_is_one_decorator_and_variants_resolve(clean_registry):
    cls = register_method(_toy("toy", {"toy-small": Variant("smaller", {"a": 1}, frozenset())}))
    assert get_method("toy").family is cls and get_method("toy").variant is None
    spec = get_method("toy-small")
    assert spec.family is cls and spec.overrides == {"a": 1} and spec.modalities == frozenset()
    assert "toy-small" in method_names()


def test_name_clash_is_an_error(clean_registry):
    with pytest.raises(PluginError, match="'bot' .* already registered"):
        register_method(_toy("bot"))
    nameless = _toy("x")
    nameless.name = ""
    with pytest.raises(PluginError, match="no `name`"):
        register_method(nameless)


def test_unknown_names_list_known_ones():
    with pytest.raises(BenchError, match=r"unknown method 'bott'\. Did you mean 'bot'\?.*bot"):
        get_method("bott")
    with pytest.raises(BenchError, match="unknown dataset 'market'.*synthetic-person"):
        get_dataset("market")


def test_builtins_load_under_private_names_only():
    load_plugins()
    assert "datasets" not in sys.modules and "methods" not in sys.modules
    assert "bench.plugins.methods.bot" in sys.modules
    assert "bench.plugins.datasets.synthetic_person" in sys.modules
    # The same holds in a fresh interpreter that loads every plugin.
    code = (
        "import sys; from bench.plugins import load_plugins; load_plugins(); "
        "from bench.plugins import method_names, dataset_names; "
        "print(method_names(), dataset_names()); "
        "assert 'datasets' not in sys.modules and 'methods' not in sys.modules, 'leaked'"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd="/",
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert out.returncode == 0, out.stderr
    assert "bot" in out.stdout and "synthetic-polyp" in out.stdout


def test_readme_shows_the_executed_example():
    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert EXAMPLE.read_text() in blocks, "README's plugin example must be docs/plugin_example.py"


def _bench(args: list[str], env: dict[str, str], cwd: Path, python: str = sys.executable):
    return subprocess.run(
        [python, "-m", "bench", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=600,
    )


def test_one_file_plugin_in_bench_plugins_folder_runs(tmp_path, subprocess_env):
    folder = tmp_path / "my_methods"
    folder.mkdir()
    shutil.copy(EXAMPLE, folder / "stripe_histogram.py")
    env = {**subprocess_env, "BENCH_PLUGINS": str(folder)}
    listed = _bench(["list", "methods"], env, tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "stripe-histogram" in listed.stdout
    results = tmp_path / "results"
    args = [
        "run",
        "--method",
        "stripe-histogram",
        "--dataset",
        "synthetic-person",
        "--set",
        "train.epochs=3",
        "--results-dir",
        str(results),
        *SMALL,
    ]
    out = _bench(args, env, tmp_path)
    assert out.returncode == 0, out.stderr
    (record,) = [json.loads(p.read_text()) for p in (results / "runs").glob("*.json")]
    assert record["method"] == "stripe-histogram" and 0 < record["metrics"]["mAP"] <= 1


def test_entry_point_plugin_from_another_distribution(tmp_path, subprocess_env):
    project = tmp_path / "reid-bench-stripe"
    project.mkdir()
    shutil.copy(EXAMPLE, project / "stripe_plugin.py")
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "reid-bench-stripe"\nversion = "0.0.1"\n'
        '[tool.setuptools]\npy-modules = ["stripe_plugin"]\n'
        '[project.entry-points."bench.methods"]\nstripe = "stripe_plugin"\n'
    )
    site = tmp_path / "site"
    pip = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(site),
            str(project),
        ],
        capture_output=True,
        text=True,
    )
    assert pip.returncode == 0, pip.stderr
    assert list(site.glob("reid_bench_stripe-*.dist-info"))
    env = {**subprocess_env, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}
    listed = _bench(["list", "methods"], env, tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "stripe-histogram" in listed.stdout
    results = tmp_path / "results"
    out = _bench(
        [
            "run",
            "--method",
            "stripe-histogram",
            "--dataset",
            "synthetic-person",
            "--set",
            "train.epochs=2",
            "--results-dir",
            str(results),
            *SMALL,
        ],
        env,
        tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert len(list((results / "runs").glob("*.json"))) == 1


def test_wheel_in_fresh_venv_lists_builtin_plugins(tmp_path):
    dist = tmp_path / "dist"
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(dist),
            str(REPO),
        ],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = dist.glob("reid_bench-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "bench/plugins/methods/bot.py" in names
    assert "bench/plugins/datasets/synthetic_person.py" in names
    assert not any(n.startswith(("methods/", "datasets/")) for n in names)

    venv = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            python,
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stderr
    # Dependencies (torch & co.) come from this environment; the package itself from the wheel.
    fresh_site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(fresh_site, "_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "BENCH_PLUGINS")}
    where = subprocess.run(
        [python, "-c", "import bench; print(bench.__file__)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    assert where.stdout.strip().startswith(str(venv)), where.stdout + where.stderr
    methods = _bench(["list", "methods"], env, tmp_path, python)
    datasets = _bench(["list", "datasets"], env, tmp_path, python)
    assert methods.returncode == 0 and datasets.returncode == 0, methods.stderr + datasets.stderr
    for name in ("bot",):
        assert re.search(rf"^\|\s*{name}\s*\|", methods.stdout, flags=re.M), methods.stdout
    for name in ("synthetic-person", "synthetic-polyp", "market1501", "colo-pair"):
        assert re.search(rf"^\|\s*{name}\s*\|", datasets.stdout, flags=re.M), datasets.stdout
