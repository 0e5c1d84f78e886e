"""``bench sweep --executor ray`` on a real local Ray instance started by the test."""

from __future__ import annotations

import os
import time

import pytest

from bench.results.records import read_failures, read_records
from bench.sweep.run import run_sweep
from bench.sweep.spec import SweepSpec

ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install -e '.[ray]'")


@pytest.fixture
def local_ray(probe_plugin, monkeypatch):
    """A 2-CPU Ray on this machine; its workers inherit this environment (plugins, cache)."""
    monkeypatch.setenv("PROBE_FAIL_SEEDS", "1")
    t0 = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    print(f"ray.init {time.perf_counter() - t0:.1f} s")
    yield
    ray.shutdown()


def test_ray_executor_one_task_per_run_into_one_results_folder(tmp_path, local_ray):
    spec = SweepSpec(
        methods=("bot", "sweep-probe"),
        datasets=("synthetic-person",),
        seeds=(0, 1),
        presets=("quick",),
        sets={"synthetic.identities": 24, "train.epochs": 1},
        executor="ray",
        results_dir=tmp_path / "results",
        progress=False,
    )
    t0 = time.perf_counter()
    report = run_sweep(spec)
    print(f"ray sweep of 4 runs: {time.perf_counter() - t0:.1f} s")
    status = {(r.job.method, r.job.seed): r.status for r in report.results}
    assert status == {
        ("bot", 0): "done",
        ("bot", 1): "done",
        ("sweep-probe", 0): "done",
        ("sweep-probe", 1): "failed",
    }
    assert ray.is_initialized()  # the sweep used the running Ray and left it running
    # every run ran in a Ray worker process, not here
    assert all(r.worker and not r.worker.endswith(f":{os.getpid()}") for r in report.results)
    records = read_records(spec.results_dir)
    assert {r["config_hash"] for r in records} == {
        r.job.config_hash for r in report.results if r.status == "done"
    }
    bot = [r for r in records if r["method"] == "bot"]
    assert len(bot) == 2 and all(0 < r["metrics"]["mAP"] <= 1 for r in bot)
    assert bot[0]["metrics"] != bot[1]["metrics"]  # two seeds, two different runs
    (failure,) = read_failures(spec.results_dir)
    assert failure["method"] == "sweep-probe" and failure["seed"] == 1
    assert "probe asked to fail for seed 1" in failure["error"]

    again = run_sweep(spec)  # resumable on Ray too: only the failed run is tried again
    assert [r.status for r in again.results].count("skipped") == 3
    assert [r.status for r in again.results].count("failed") == 1
    assert len(read_records(spec.results_dir)) == 3
