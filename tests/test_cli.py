"""Bad input never shows a traceback: one line on stderr, a non-zero exit, nothing written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.api import registry
from bench.api.method import Method
from bench.api.registry import register_method
from bench.cli import main
from bench.plugins import load_plugins


def _run(capsys, tmp_path: Path, *args: str) -> tuple[int, str, str]:
    code = main(["run", "--results-dir", str(tmp_path / "results"), "--no-progress", *args])
    out, err = capsys.readouterr()
    return code, out, err


def _assert_clean_failure(code: int, err: str, tmp_path: Path, *needles: str) -> None:
    assert code != 0
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    results = tmp_path / "results"
    assert not results.exists() or not any(p.is_file() for p in results.rglob("*"))


QUICK = ["--method", "bot", "--dataset", "synthetic-person", "--preset", "quick"]


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (
            ["--method", "bots", "--dataset", "synthetic-person"],
            ["unknown method 'bots'", "Known methods:", "bot"],
        ),
        (
            ["--method", "bot", "--dataset", "market"],
            ["unknown dataset 'market'", "synthetic-person"],
        ),
        ([*QUICK, "--set", "optim.lrr=0.1"], ["'optim.lrr'", "Did you mean 'optim.lr'?"]),
        ([*QUICK, "--set", "train.epochs=many"], ["'train.epochs' expects an integer", "'many'"]),
        ([*QUICK, "--set", "train.epochs"], ["--set expects key=value", "'train.epochs'"]),
        ([*QUICK, "--device", "tpu"], ["--device", "'tpu'"]),
        ([*QUICK, "--fold", "fold9"], ["has no folds", "drop --fold fold9"]),
        (
            [
                "--method",
                "bot",
                "--dataset",
                "synthetic-polyp",
                "--preset",
                "quick",
                "--fold",
                "fold9",
            ],
            ["no fold 'fold9'", "fold0, fold1, fold2, fold3"],
        ),
    ],
    ids=["method", "dataset", "set-key", "set-type", "set-syntax", "device", "no-folds", "fold"],
)
def test_bad_input_is_one_clean_line(capsys, tmp_path, args, needles):
    code, _, err = _run(capsys, tmp_path, *args)
    _assert_clean_failure(code, err, tmp_path, *needles)


def test_missing_dataset_root_names_folder(capsys, tmp_path):
    missing = tmp_path / "Market-1501-v15.09.15"
    code, _, err = _run(
        capsys,
        tmp_path,
        "--method",
        "bot",
        "--dataset",
        "market1501",
        "--preset",
        "quick",
        "--root",
        str(missing),
    )
    _assert_clean_failure(code, err, tmp_path, str(missing))


def test_paper_preset_without_weights_names_the_flag(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch-home"))
    code, _, err = _run(capsys, tmp_path, "--method", "bot", "--dataset", "synthetic-person")
    _assert_clean_failure(code, err, tmp_path, "model.pretrained=", "model.pretrained=none")


def test_missing_modality_fails_before_training(capsys, tmp_path):
    load_plugins()
    saved = dict(registry._METHODS)

    class NeedsText(Method):
        name = "needs-text"
        modalities = frozenset({"image", "text"})

        def fit(self, train):
            raise AssertionError("must fail before training")

        def state_dict(self):
            return {}

        def load_state_dict(self, state):
            pass

    register_method(NeedsText)
    try:
        # The root does not exist either: the modality check comes first, before any data.
        code, _, err = _run(
            capsys,
            tmp_path,
            "--method",
            "needs-text",
            "--dataset",
            "market1501",
            "--root",
            str(tmp_path / "nowhere"),
        )
    finally:
        registry._METHODS.clear()
        registry._METHODS.update(saved)
    _assert_clean_failure(code, err, tmp_path, "needs the text modality", "'market1501'")


def test_argparse_errors_are_one_line(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "bench", "run", "--method", "bot"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(Path(__file__).resolve().parents[1]), "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "--dataset" in out.stderr, out.stderr


@pytest.mark.parametrize("what", ["methods", "datasets"])
def test_list(capsys, what):
    assert main(["list", what]) == 0
    out = capsys.readouterr().out
    if what == "methods":
        assert "| bot" in out and "paper, quick" in out and "image" in out
    else:
        assert "synthetic-polyp" in out and "image, text" in out and "colo-pair" in out
