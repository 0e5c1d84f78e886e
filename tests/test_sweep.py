"""``bench sweep``: settings, planning, skipping, failures, retries, restarts, the local pool."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from bench.cli import main
from bench.errors import BenchError, ConfigError
from bench.results.records import read_failures, read_records
from bench.sweep.plan import plan
from bench.sweep.run import run_sweep
from bench.sweep.spec import SweepSpec, load_sweep_file, normalize
from bench.sweep.summary import summary_table

SMALL = {"synthetic.identities": 24}


def _spec(tmp_path: Path, **kw) -> SweepSpec:
    base = dict(
        methods=("sweep-probe",),
        datasets=("synthetic-person",),
        seeds=(0, 1, 2),
        sets=SMALL,
        results_dir=tmp_path / "results",
        progress=False,
    )
    base.update(kw)
    return SweepSpec(**base)


def _statuses(report) -> dict[int, str]:
    return {r.job.seed: r.status for r in report.results}


def test_settings_from_a_file_and_their_errors(tmp_path):
    got = normalize(
        {
            "methods": "bot, sweep-probe",
            "seeds": [0, 2],
            "folds": "all",
            "max-parallel": 2,
            "results-dir": "out",
            "set": {"train.epochs": 1},
            "roots": {"market1501": "~/data/market"},
        }
    )
    assert got["methods"] == ("bot", "sweep-probe") and got["seeds"] == (0, 2)
    assert got["folds"] is None and got["max_parallel"] == 2
    assert got["results_dir"] == Path("out") and got["sets"] == {"train.epochs": 1}
    assert got["roots"]["market1501"] == Path("~/data/market").expanduser()
    assert normalize({"seeds": "3,1,3", "folds": "fold0,fold2"}) == {
        "seeds": (3, 1),
        "folds": ("fold0", "fold2"),
    }
    bad = [
        ({"methodz": "bot"}, r"unknown sweep key 'methodz' in s\.yaml\. Did you mean 'methods'"),
        ({"seeds": "0,x"}, r"seeds: 'x' is not an integer in s\.yaml"),
        ({"seeds": [0.5]}, r"seeds: 0\.5 is not an integer"),
        ({"executor": "slurm"}, r"executor: must be one of local, ray in s\.yaml"),
        ({"max_parallel": 0}, r"max_parallel: expected a positive integer"),
        ({"methods": []}, r"methods: no names given"),
        ({"set": 5}, r"set: expected a mapping"),
    ]
    for data, message in bad:
        with pytest.raises(ConfigError, match=message):
            normalize(data, "s.yaml")
    path = tmp_path / "s.yaml"
    with pytest.raises(BenchError, match=r"s\.yaml does not exist"):
        load_sweep_file(path)
    path.write_text("methods: [bot\n")
    with pytest.raises(BenchError, match=r"s\.yaml is not valid YAML"):
        load_sweep_file(path)
    path.write_text("- bot\n")
    with pytest.raises(BenchError, match=r"s\.yaml must hold a mapping"):
        load_sweep_file(path)
    path.write_text("methods: [bot]\nseed: [1]\n")
    with pytest.raises(ConfigError, match=r"unknown sweep key 'seed' in .*s\.yaml.*'seeds'"):
        load_sweep_file(path)


def test_plan_covers_the_grid_and_checks_everything_first(tmp_path):
    spec = SweepSpec(
        methods=("bot",),
        datasets=("synthetic-person", "synthetic-polyp"),
        seeds=(0, 1),
        presets=("quick",),
        sets=SMALL,
        results_dir=tmp_path,
    )
    jobs, _ = plan(spec)
    cells = [(j.dataset, j.seed, j.fold) for j in jobs]
    assert cells == [("synthetic-person", s, None) for s in (0, 1)] + [
        ("synthetic-polyp", s, f"fold{k}") for s in (0, 1) for k in range(4)
    ]
    assert len({j.config_hash for j in jobs}) == len(jobs)
    assert all(j.preset == "quick" for j in jobs)
    # --folds picks folds of datasets that have them; a dataset without folds runs its split
    picked, _ = plan(replace(spec, folds=("fold1",)))
    assert [(j.dataset, j.fold) for j in picked] == [
        ("synthetic-person", None),
        ("synthetic-person", None),
        ("synthetic-polyp", "fold1"),
        ("synthetic-polyp", "fold1"),
    ]
    # resources say where a run goes, not what it computes: same identities
    placed, _ = plan(replace(spec, sets={**SMALL, "resources.num_cpus": 2}))
    assert [j.config_hash for j in placed] == [j.config_hash for j in jobs]
    assert {j.num_cpus for j in placed} == {2.0}
    other, _ = plan(replace(spec, sets={**SMALL, "train.epochs": 1}))
    assert not {j.config_hash for j in other} & {j.config_hash for j in jobs}
    # a duplicate cell (the default preset named twice) is one run
    twice, _ = plan(replace(spec, presets=("quick", "quick")))
    assert len(twice) == len(jobs)
    errors = [
        (dict(folds=("fold9",)), r"dataset 'synthetic-polyp' has no fold 'fold9'"),
        (dict(methods=("bot", "nope")), r"unknown method 'nope'"),
        (dict(presets=("fast",)), r"unknown preset 'fast' for method 'bot'"),
        (dict(sets={"train.epoch": 1}), r"unknown config key 'train\.epoch'"),
        (dict(sets={"resources.num_gpus": -1}), r"'resources\.num_gpus' must be >= 0"),
        (dict(roots={"market1501": tmp_path}), r"--root names dataset 'market1501'"),
        (dict(device="gpu"), r"--device must be cpu or cuda"),
    ]
    for change, message in errors:
        with pytest.raises(BenchError, match=message):
            plan(replace(spec, **change))


def test_failures_are_recorded_skipped_runs_are_not_redone_and_failures_retried(
    tmp_path, probe_plugin, monkeypatch
):
    spec = _spec(tmp_path)
    results = spec.results_dir
    monkeypatch.setenv("PROBE_FAIL_SEEDS", "1")
    first = run_sweep(spec)
    assert _statuses(first) == {0: "done", 1: "failed", 2: "done"}
    failed = first.results[1]
    assert "RuntimeError: probe asked to fail for seed 1" in failed.error
    records = read_records(results)
    assert sorted(r["seed"] for r in records) == [0, 2]
    planned = {r.job.seed: r.job.config_hash for r in first.results}
    assert {r["seed"]: r["config_hash"] for r in records} == {0: planned[0], 2: planned[2]}
    (failure,) = read_failures(results)
    assert failure["status"] == "failed" and failure["seed"] == 1
    assert failure["config_hash"] == planned[1]
    assert "probe asked to fail" in failure["error"] and "Traceback" in failure["traceback"]
    assert not (results / "runs" / f"{failure['config_hash']}.json").exists()
    (failure_file,) = (results / "failed").iterdir()
    assert failure_file.name.endswith(f"-{planned[1]}.json")

    again = run_sweep(spec)  # finished runs are skipped, the failed one is tried again
    assert _statuses(again) == {0: "skipped", 1: "failed", 2: "skipped"}
    assert again.results[0].run_id == first.results[0].run_id
    assert len(read_records(results)) == 2 and len(read_failures(results)) == 1

    monkeypatch.delenv("PROBE_FAIL_SEEDS")
    fixed = run_sweep(spec)
    assert _statuses(fixed) == {0: "skipped", 1: "done", 2: "skipped"}
    assert read_failures(results) == []  # a success clears the run's failure record
    assert sorted(r["seed"] for r in read_records(results)) == [0, 1, 2]
    table = summary_table(fixed)
    assert "3 runs: 1 done, 2 skipped, 0 failed" in table
    assert table.count("| skipped ") == 2


def test_a_killed_sweep_restarted_does_only_what_is_left(tmp_path, probe_plugin, monkeypatch):
    spec = _spec(tmp_path)
    monkeypatch.setenv("PROBE_INTERRUPT_SEEDS", "1")
    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec)
    assert [r["seed"] for r in read_records(spec.results_dir)] == [0]
    assert read_failures(spec.results_dir) == []  # an interrupted run is not a failure
    monkeypatch.delenv("PROBE_INTERRUPT_SEEDS")
    report = run_sweep(spec)
    assert _statuses(report) == {0: "skipped", 1: "done", 2: "done"}
    assert len(read_records(spec.results_dir)) == 3


def test_local_process_pool(tmp_path, probe_plugin, monkeypatch):
    monkeypatch.setenv("PROBE_FAIL_SEEDS", "3")
    spec = _spec(tmp_path, seeds=(0, 1, 2, 3), max_parallel=2)
    report = run_sweep(spec)
    assert _statuses(report) == {0: "done", 1: "done", 2: "done", 3: "failed"}
    workers = {r.worker for r in report.results}
    assert all(w and not w.endswith(f":{os.getpid()}") for w in workers)  # other processes
    records = read_records(spec.results_dir)
    assert {r["config_hash"] for r in records} == {
        r.job.config_hash for r in report.results if r.status == "done"
    }
    logs = spec.results_dir / "logs"
    for r in report.results:  # each run's output went to its own log
        assert (logs / f"{r.job.stem}.log").is_file()
    failed_log = (logs / f"{report.results[3].job.stem}.log").read_text()
    assert "probe asked to fail for seed 3" in failed_log
    (failure,) = read_failures(spec.results_dir)
    assert failure["log"] == str(logs / f"{report.results[3].job.stem}.log")
    monkeypatch.delenv("PROBE_FAIL_SEEDS")
    done = run_sweep(spec)  # then nothing is left to run: no pool of zero workers
    assert _statuses(done) == {0: "skipped", 1: "skipped", 2: "skipped", 3: "done"}
    assert _statuses(run_sweep(spec)) == dict.fromkeys(range(4), "skipped")


def test_cli_sweep_file_flags_summary_and_leaderboard(tmp_path, probe_plugin, monkeypatch, capsys):
    results = tmp_path / "out"
    sweep_file = tmp_path / "grid.yaml"
    sweep_file.write_text(
        "methods: [sweep-probe]\n"
        "datasets: [synthetic-person]\n"
        "seeds: [0, 1]\n"
        "set:\n  synthetic.identities: 24\n"
        f"results_dir: {json.dumps(str(results))}\n"
    )
    # flags override the file's keys: seeds 0 and 2, not 0 and 1
    assert main(["sweep", str(sweep_file), "--seeds", "0,2", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "2 runs: 2 done, 0 skipped, 0 failed" in out
    assert "## synthetic-person" in out and "sweep-probe" in out
    assert sorted(r["seed"] for r in read_records(results)) == [0, 2]
    assert (results / "leaderboard.md").read_text().strip() in out

    monkeypatch.setenv("PROBE_FAIL_SEEDS", "1")
    code = main(["sweep", str(sweep_file), "--no-progress"])
    captured = capsys.readouterr()
    assert code == 1
    assert "2 runs: 0 done, 1 skipped, 1 failed" in captured.out
    assert "probe asked to fail for seed 1" in captured.out
    assert "1 of 2 runs failed" in captured.err and str(results / "failed") in captured.err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--datasets", "synthetic-person"], "bench sweep needs --methods"),
        (["--methods", "nope", "--datasets", "synthetic-person"], "unknown method 'nope'"),
        (["--methods", "bot", "--datasets", "synthetic-person", "--seeds", "a"], "seeds: 'a'"),
        (["--methods", "bot", "--datasets", "x", "--executor", "ray"], "pip install"),
        (["missing.yaml"], "sweep file missing.yaml does not exist"),
    ],
)
def test_cli_sweep_errors_are_one_line(argv, message, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    assert main(["sweep", *argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith("bench: error: ") and message in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "results").exists()


def test_readme_sweep_file_is_valid(tmp_path):
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    (block,) = [
        b.split("```", 1)[0] for b in readme.split("```yaml\n") if b.startswith("# sweep.yaml")
    ]
    path = tmp_path / "sweep.yaml"
    path.write_text(block)
    settings = load_sweep_file(path)
    assert settings["roots"]["market1501"].name == "Market-1501-v15.09.15"
    spec = SweepSpec(**{**settings, "roots": {}, "results_dir": tmp_path})
    jobs, _ = plan(spec)
    assert len(jobs) == 3 + 3 * 4  # synthetic-person: 3 seeds; synthetic-polyp: 3 seeds x 4 folds
