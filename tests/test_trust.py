"""What makes a leaderboard row trustworthy: one configuration per row, the data in the run's
identity, model selection on validation identities only, identical metrics per seed and
thread count."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from bench.api.samples import Sample
from bench.config import config_hash, resolve_config
from bench.engine.runner import RunRequest, config_diff, prepare_run, run
from bench.engine.selection import carve_validation, validation_count
from bench.errors import ConfigError
from bench.plugins import get_dataset, get_method
from bench.results.leaderboard import render, summarize
from bench.sweep.plan import plan
from bench.sweep.spec import SweepSpec

TINY_BOT = ["train.epochs=2", "sampler.p=4", "model.width=8", "eval.batch_size=64"]


def _record(sets: list[str], seed: int = 0, mAP: float = 0.5) -> dict:
    """A DMCL quick record as the runner writes it, without training (config, diff, data)."""
    spec = get_method("dmcl")
    data = get_dataset("synthetic-polyp")
    config, preset = resolve_config(spec, [data], "quick", sets)
    base, _ = resolve_config(spec, [data], "quick")
    return {
        "run_id": f"dmcl-{config_hash(config)}-s{seed}",
        "method": "dmcl",
        "dataset": "synthetic-polyp",
        "train_dataset": "synthetic-polyp",
        "protocol": "colo-pair",
        "preset": preset,
        "seed": seed,
        "fold": "fold0",
        "config": config,
        "config_diff": config_diff(config, base),
        "data": {"dataset": {"fingerprint": "0123456789abcdef"}},
        "text_policy": "fair",
        "metrics": {"mAP": mAP, "rank1": mAP, "rank5": mAP, "rank10": mAP, "mINP": mAP},
    }


def test_three_configurations_are_three_rows() -> None:
    records = [
        _record([], mAP=0.48),
        _record(["dmcl.gallery_text=own"], mAP=0.17),
        _record(["train.epochs=2"], mAP=0.79),
        _record(["train.epochs=2"], seed=1, mAP=0.81),  # another seed: the same row
        _record(["train.epochs=2", "resources.num_cpus=2", "report.save_features=false"], seed=2),
    ]
    df = summarize(records)
    text = render(df)
    print(text)
    assert len(df) == 3
    labels = sorted(df["label"])
    assert labels == [
        "dmcl · quick",
        "dmcl · quick · epochs=2",
        "dmcl · quick · gallery_text=own",
    ]
    assert sorted(df["runs"]) == [1, 1, 3]
    csv = render(df, fmt="csv")
    header = csv.splitlines()[0].split(",")
    assert "set:dmcl.gallery_text" in header and "set:train.epochs" in header
    assert "set:resources.num_cpus" not in header


def test_a_long_label_is_cut_and_a_changed_dataset_is_its_own_row() -> None:
    many = [
        "optim.lr=0.002",
        "loss.margin=0.2",
        "train.epochs=3",
        "fusion.layers=3",
        "fusion.heads=4",
        "fusion.ffn=96",
        "text.layers=1",
        "input.pad=2",
        "sampler.k=2",
    ]
    (row,) = summarize([_record(many)]).itertuples()
    assert len(row.label) < 100 and "+" in row.label and "keys" in row.label
    a, b = _record([]), _record([])
    b["data"] = {"dataset": {"fingerprint": "fedcba9876543210"}}
    df = summarize([a, b])
    assert sorted(df["label"]) == ["dmcl · quick · data 01234567", "dmcl · quick · data fedcba98"]


def test_oracle_rows_are_marked_and_never_ranked() -> None:
    fair = _record([], mAP=0.2)
    oracle = _record(["protocol.oracle_gallery_text=true"], mAP=0.9)
    oracle.update(oracle=True, text_policy="oracle-gallery-text")
    text = render(summarize([fair, oracle]))
    lines = [line for line in text.splitlines() if line.startswith("| dmcl")]
    assert "(oracle)" in lines[1] and "**" not in lines[1] and "<u>" not in lines[1]
    assert "**20.0**" in lines[0]
    assert "(oracle): the gallery was given its own identity-level text" in text


def _colo_root(tmp_path: Path) -> Path:
    data = get_dataset("synthetic-polyp")(None, {})
    data.prepare()
    root = tmp_path / "colo"
    shutil.copytree(data.root, root)
    (root / "text.xlsx").rename(root / "sheet.xlsx")
    for stray in root.glob(".*"):
        if stray.is_file():
            stray.unlink()
    return root


def test_a_changed_dataset_folder_is_a_new_run_for_the_sweep(tmp_path: Path) -> None:
    root = _colo_root(tmp_path)

    def keys() -> list[str]:
        spec = SweepSpec(
            methods=["bot"],
            datasets=["colo-pair"],
            presets=["quick"],
            seeds=[0],
            folds=("fold0",),
            roots={"colo-pair": root},
            results_dir=tmp_path / "res",
            progress=False,
        )
        jobs, _ = plan(spec)
        return [j.config_hash for j in jobs]

    before = keys()
    assert keys() == before
    next(iter(sorted(root.glob("*/2/*.jpg")))).unlink()
    after = keys()
    assert after != before
    moved = tmp_path / "moved"
    shutil.move(root, moved)
    root = moved  # the same files elsewhere: the same fingerprint
    assert keys() == after


def test_validation_split_is_carved_from_training_identities() -> None:
    train = [
        Sample(f"{pid}_{cam}_{i}.jpg", pid, cam)
        for pid in range(10)
        for cam in (0, 1, 2)
        for i in (0, 1)
    ]
    rest, val = carve_validation(train, 0.3, seed=0, protocol="market")
    assert val is not None
    held = {s.pid for s in val.query + val.gallery}
    assert len(held) == 3 and sorted({s.pid for s in rest}) == list(range(7))
    assert len(rest) == 7 * 6
    assert len(val.query) == 3 * 3 and len(val.gallery) == 3 * 3  # one query per camera
    assert carve_validation(train, 0.3, seed=0, protocol="market")[1] == val
    assert carve_validation(train, 0.3, seed=1, protocol="market")[1] != val
    _, colo = carve_validation(train, 2, seed=0, protocol="colo-pair")
    assert colo is not None and {s.camid for s in colo.query} == {0}
    assert carve_validation(train, 0, seed=0, protocol="market") == (train, None)
    for bad in (-1, 1.5, 9, 0.05):
        with pytest.raises(ConfigError, match="protocol.val_identities"):
            validation_count(bad, 10)


def test_best_val_needs_validation_identities() -> None:
    request = RunRequest(
        method="bot", dataset="synthetic-polyp", preset="quick", sets=["train.select=best-val"]
    )
    with pytest.raises(ConfigError, match="protocol.val_identities"):
        prepare_run(request)


def test_selection_uses_validation_and_leaves_training_alone(tmp_path: Path) -> None:
    def once(every: int, select: str, where: str) -> dict:
        sets = [
            *TINY_BOT,
            "train.epochs=3",
            "protocol.val_identities=8",
            f"protocol.val_every={every}",
            f"train.select={select}",
        ]
        (record,) = run(
            RunRequest(
                method="bot",
                dataset="synthetic-polyp",
                preset="quick",
                fold="fold0",
                sets=sets,
                results_dir=tmp_path / where,
                progress=False,
            )
        )
        return record

    every = once(1, "best-val", "a")
    last = once(3, "last", "b")
    sel = every["selection"]
    assert [h["epoch"] for h in sel["history"]] == [1, 2, 3]
    best = max(sel["history"], key=lambda h: (h["mAP"], -h["epoch"]))
    assert sel["epoch"] == best["epoch"] and sel["val"]["mAP"] == best["mAP"]
    assert sel["val_identities"] == 8
    # Validating after every epoch does not change training: epoch 3 measures the same.
    assert [h["epoch"] for h in last["selection"]["history"]] == [3]
    assert last["selection"]["history"][0] == sel["history"][-1]
    if sel["epoch"] == 3:
        assert every["metrics"] == last["metrics"]
    else:  # the best-val run tested an earlier epoch's weights
        assert every["metrics"] != last["metrics"]
    assert every["config_diff"]["train.select"] == "best-val"


def test_same_seed_and_threads_give_identical_metrics(tmp_path: Path) -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        records = [
            run(
                RunRequest(
                    method="bot",
                    dataset="synthetic-polyp",
                    preset="quick",
                    fold="fold1",
                    sets=TINY_BOT,
                    results_dir=tmp_path / str(i),
                    progress=False,
                )
            )[0]
            for i in range(2)
        ]
    finally:
        torch.set_num_threads(threads)
    a, b = records
    assert a["metrics"] == b["metrics"]
    assert a["threads"]["torch"] == 1 and "OMP_NUM_THREADS" in a["threads"]
    assert a["config_hash"] == b["config_hash"]
