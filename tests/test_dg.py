"""Domain generalisation: several source datasets, per-dataset options, the target kept out."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.config import config_hash, dataset_label, parse_dataset_spec, split_sources
from bench.engine.runner import RunRequest, fold_identity, prepare_run, run
from bench.engine.sources import merge_training, parse_choice, source_roots
from bench.errors import BenchError, ConfigError

TINY = ["synthetic.identities=4", "train.epochs=1"]


def _request(tmp_path: Path, **kw) -> RunRequest:
    base = dict(
        method="bot",
        dataset="synthetic-person",
        preset="quick",
        sets=TINY,
        results_dir=tmp_path / "results",
        progress=False,
    )
    return RunRequest(**{**base, **kw})


def test_spec_syntax_names_options_after_colons_and_sources_after_commas():
    assert parse_dataset_spec("synthetic-person") == ("synthetic-person", {})
    assert parse_dataset_spec("synthetic-person:synthetic.seed=3:synthetic.identities=8") == (
        "synthetic-person",
        {"synthetic.seed": 3, "synthetic.identities": 8},
    )
    assert split_sources("a:k=[1,2],b") == ["a:k=[1,2]", "b"]
    assert dataset_label("synthetic-person", {"synthetic.seed": 3}) == (
        "synthetic-person:synthetic.seed=3"
    )
    choice = parse_choice("synthetic-person:synthetic.seed=3")
    assert choice.options == {"synthetic.seed": 3}
    assert choice.config({"synthetic.seed": 0, "train.epochs": 1}) == {
        "synthetic.seed": 3,
        "train.epochs": 1,
    }


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("synthetic-person:synthetic.sed=1", "no config key 'synthetic.sed' of its own"),
        ("synthetic-person:train.epochs=1", "no config key 'train.epochs' of its own"),
        ("synthetic-person:synthetic.seed", "expected key=value after ':'"),
        ("synthetic-person:synthetic.seed=x", "'synthetic.seed' expects an integer"),
        ("synthetic-person:synthetic.identities=1", "'synthetic.identities' must be >= 2"),
    ],
)
def test_bad_dataset_options_name_the_key_and_the_dataset(spec, says):
    with pytest.raises(ConfigError) as err:
        parse_choice(spec)
    message = str(err.value)
    assert says in message and "synthetic-person" in message and "\n" not in message


def test_train_roots_one_per_source(tmp_path):
    assert source_roots(None, 2) == [None, None]
    assert source_roots(f"{tmp_path},", 2) == [tmp_path, None]
    assert source_roots(tmp_path, 1) == [tmp_path]
    with pytest.raises(ConfigError, match="lists 1 root"):
        source_roots("a", 2)


def test_target_options_change_the_run_identity_and_override_set(tmp_path):
    data = {"dataset": {"fingerprint": "f"}}
    plain = prepare_run(_request(tmp_path))
    seeded = prepare_run(_request(tmp_path, dataset="synthetic-person:synthetic.seed=1"))
    again = prepare_run(_request(tmp_path, dataset="synthetic-person:synthetic.seed=0"))
    keys = {config_hash(fold_identity(r, 0, None, data)) for r in (plain, seeded, again)}
    assert len(keys) == 3  # the options count even where they equal the default
    assert "dataset_options" not in fold_identity(plain, 0, None, data)  # old identities kept
    over = prepare_run(
        _request(tmp_path, dataset="synthetic-person:synthetic.seed=2", sets=["synthetic.seed=5"])
    )
    assert over.target_choice.config(over.config)["synthetic.seed"] == 2
    assert over.config["synthetic.seed"] == 5  # --set still holds for the other datasets


def test_several_sources_merge_relabelled_apart(tmp_path):
    a = parse_choice("synthetic-person:synthetic.seed=1:synthetic.identities=4")
    b = parse_choice("synthetic-person:synthetic.seed=2:synthetic.identities=3")
    parts = []
    for choice in (a, b):
        ds = choice.cls(None, choice.config({}), show_progress=False)
        ds.prepare()
        parts.append(ds.load().train)
    merged = merge_training(parts)
    assert len(merged) == len(parts[0]) + len(parts[1])
    first = {s.pid for s in merged[: len(parts[0])]}
    second = {s.pid for s in merged[len(parts[0]) :]}
    assert first == set(range(4)) and second == set(range(4, 7))
    assert [s.camid for s in merged] == [s.camid for p in parts for s in p]  # cameras kept


def test_cross_domain_run_on_two_sources_records_each(tmp_path):
    (record,) = run(
        _request(
            tmp_path,
            train_dataset="synthetic-person:synthetic.seed=1,synthetic-person:synthetic.seed=2",
            dataset="synthetic-person:synthetic.seed=3",
            sets=[*TINY, "protocol.val_identities=2", "sampler.p=4"],
        )
    )
    assert record["train_dataset"] == "synthetic-person,synthetic-person"
    assert record["train_dataset_options"] == [{"synthetic.seed": 1}, {"synthetic.seed": 2}]
    assert record["dataset_options"] == {"synthetic.seed": 3}
    assert sorted(record["data"]) == ["dataset", "train_dataset.0", "train_dataset.1"]
    fps = {v["fingerprint"] for v in record["data"].values()}
    assert len(fps) == 3


def test_source_that_is_the_target_with_the_same_data_is_refused(tmp_path):
    with pytest.raises(BenchError, match="is the evaluation dataset 'synthetic-person' with the "):
        run(_request(tmp_path, train_dataset="synthetic-person"))
    assert not (tmp_path / "results" / "runs").exists()
    with pytest.raises(BenchError, match="--train-root is the root of --train-dataset"):
        prepare_run(_request(tmp_path, train_root=tmp_path))


def test_sweep_plans_a_target_with_its_options(tmp_path):
    from bench.sweep.plan import plan
    from bench.sweep.spec import SweepSpec

    spec = SweepSpec(
        methods=("bot",),
        datasets=("synthetic-person:synthetic.seed=4",),
        presets=("quick",),
        sets={"synthetic.identities": 3},
        results_dir=tmp_path,
        progress=False,
    )
    (job,), (adapter,) = plan(spec)
    assert adapter.config["synthetic.seed"] == 4  # generated with the target's own seed
    (plain,), _ = plan(SweepSpec(**{**vars(spec), "datasets": ("synthetic-person",)}))
    assert job.config_hash != plain.config_hash


def test_sources_of_different_protocols_or_the_same_data_twice_are_refused(tmp_path):
    with pytest.raises(BenchError, match="different protocols .*synthetic-polyp: colo-pair"):
        prepare_run(_request(tmp_path, train_dataset="synthetic-person,synthetic-polyp"))
    twice = "synthetic-person:synthetic.seed=1,synthetic-person:synthetic.seed=1"
    with pytest.raises(BenchError, match="names the same data twice"):
        run(_request(tmp_path, train_dataset=twice))
