"""A results folder may come from anyone: a code-executing pickle planted as ``last.pt``, as
``final.pt`` or behind a record's checkpoint path runs nothing on resume, in a sweep or in
``bench report``; each is one error line, and nothing in the folder changes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bench.cli import main


@pytest.fixture
def folder(finished_run, tmp_path) -> tuple[Path, dict, Path]:
    """A copy of the finished run's results folder, its record, and the marker file's path."""
    copy = tmp_path / "results"
    shutil.copytree(finished_run.results, copy)
    return copy, finished_run.record, tmp_path / "code-ran"


def _one_error(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and "Warning" not in line]
    assert "Traceback" not in err
    errors = [line for line in lines if line.startswith("bench: error:")]
    assert len(errors) == 1, err
    return errors[0]


def test_planted_last_pt_runs_nothing_on_resume(
    folder, capsys, finished_run, plant_pickle, folder_snapshot
):
    results, record, marker = folder
    last = results / Path(record["checkpoint"]).with_name("last.pt")
    plant_pickle(last, marker)
    before = folder_snapshot(results)
    argv = ["run", *finished_run.cli, "--results-dir", str(results), "--resume", "--no-progress"]
    code = main(argv)
    assert code == 1
    line = _one_error(capsys)
    assert "last.pt holds objects other than tensors and plain data" in line
    assert "never loaded" in line
    assert not marker.exists()
    assert folder_snapshot(results) == before


def test_planted_last_pt_runs_nothing_in_a_sweep(folder, capsys, plant_pickle):
    results, record, marker = folder
    (results / "runs" / f"{record['run_id']}.json").unlink()  # unfinished: the sweep resumes it
    last = results / Path(record["checkpoint"]).with_name("last.pt")
    plant_pickle(last, marker)
    argv = ["sweep", "--methods", "bot", "--datasets", "synthetic-person", "--presets", "quick"]
    sets = ["--set", "synthetic.identities=16", "--set", "train.epochs=1"]  # the finished run's
    code = main([*argv, *sets, "--results-dir", str(results), "--no-progress"])
    captured = capsys.readouterr()
    assert code == 1 and "Traceback" not in captured.err
    assert "1 failed" in captured.out and "cannot" not in captured.err
    assert not marker.exists()
    (failure,) = (results / "failed").glob("*.json")
    assert "last.pt holds objects other than tensors" in json.loads(failure.read_text())["error"]


def test_planted_final_pt_runs_nothing_in_bench_report(folder, capsys, plant_pickle):
    results, record, marker = folder
    plant_pickle(results / record["checkpoint"], marker)
    rid = record["run_id"]
    out = results.parent / "report"
    code = main(["report", rid, "--results-dir", str(results), "--out", str(out), "--no-progress"])
    assert code == 0, capsys.readouterr().err  # the other pictures; attention maps refused
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "no attention maps" in page and "never loaded" in page
    assert not marker.exists()
    code = main(["report", rid, "--results-dir", str(results), "--recompute", "--no-progress"])
    assert code == 1
    assert "final.pt holds objects other than tensors" in _one_error(capsys)
    assert not marker.exists()


@pytest.mark.parametrize("where", ["absolute", "dotdot", "symlink"])
def test_a_record_path_leading_outside_its_folder_is_not_followed(
    folder, capsys, where, plant_pickle, folder_snapshot
):
    results, record, marker = folder
    outside = results.parent / "elsewhere" / "final.pt"
    outside.parent.mkdir()
    plant_pickle(outside, marker)
    if where == "absolute":
        value = str(outside)
    elif where == "dotdot":
        value = "../elsewhere/final.pt"
    else:
        (results / "checkpoints" / "link.pt").symlink_to(outside)
        value = "checkpoints/link.pt"
    path = results / "runs" / f"{record['run_id']}.json"
    data = json.loads(path.read_text())
    data["checkpoint"] = value
    path.write_text(json.dumps(data))
    before = folder_snapshot(results)
    rid = record["run_id"]
    code = main(["report", rid, "--results-dir", str(results), "--recompute", "--no-progress"])
    assert code == 1
    line = _one_error(capsys)
    assert "leads outside the results folder" in line and "final.pt" in line
    assert not marker.exists()
    assert folder_snapshot(results) == before
