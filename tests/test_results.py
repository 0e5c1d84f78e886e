"""Run records on disk: atomic writes, tolerant reads, concurrent writers."""

from __future__ import annotations

import json
import math
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench import io
from bench.errors import BenchError
from bench.io import atomic_write_json, atomic_write_text
from bench.results.records import load_record, read_records, runs_dir, write_record


def make_record(
    run_id: str,
    method: str = "bot",
    dataset: str = "synthetic-person",
    seed: int = 0,
    fold: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "schema": 1,
        "run_id": run_id,
        "method": method,
        "family": method,
        "dataset": dataset,
        "train_dataset": dataset,
        "protocol": "market",
        "preset": "quick",
        "seed": seed,
        "fold": fold,
        "config": {"model.backbone": "resnet18"},
        "metrics": {
            "mAP": 0.5,
            "mINP": 0.2,
            "rank1": 0.7,
            "rank5": 0.9,
            "rank10": 0.95,
            "cmc": [0.7] * 50,
            "num_valid_queries": 100,
            "num_queries": 100,
        },
        **extra,
    }


def test_runs_dir(tmp_path: Path) -> None:
    assert runs_dir(tmp_path) == tmp_path / "runs"


def test_write_record_round_trip(tmp_path: Path) -> None:
    record = make_record("r1")
    path = write_record(tmp_path / "results", record)
    assert path == tmp_path / "results" / "runs" / "r1.json"
    assert json.loads(path.read_text()) == record
    assert load_record(tmp_path / "results", "r1") == record
    assert read_records(tmp_path / "results") == [record]


@pytest.mark.parametrize("key", ["run_id", "method", "dataset", "metrics", "seed"])
def test_write_record_requires_key(tmp_path: Path, key: str) -> None:
    record = make_record("r1")
    del record[key]
    with pytest.raises(BenchError, match=repr(key)):
        write_record(tmp_path, record)
    assert not runs_dir(tmp_path).exists() or not any(runs_dir(tmp_path).iterdir())


@pytest.mark.parametrize("run_id", ["", "../escape", "a/b", ".hidden", 5])
def test_write_record_rejects_unsafe_run_id(tmp_path: Path, run_id: Any) -> None:
    with pytest.raises(BenchError, match="invalid run_id"):
        write_record(tmp_path / "results", make_record(run_id))
    assert not (tmp_path / "escape.json").exists()


def test_atomic_write_text_creates_parents(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "out.md"
    atomic_write_text(target, "héllo ± 1\n")
    assert target.read_text(encoding="utf-8") == "héllo ± 1\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.md"]


def test_atomic_write_json_keeps_old_file_when_serialization_fails(tmp_path: Path) -> None:
    target = tmp_path / "rec.json"
    atomic_write_json(target, {"old": True})
    old = target.read_text()
    # json.dump streams: the long string is written to the temp file before the bad object
    bad = {"first": "x" * 200_000, "second": object()}
    with pytest.raises(TypeError):
        atomic_write_json(target, bad)
    assert target.read_text() == old
    assert [p.name for p in tmp_path.iterdir()] == ["rec.json"]


def test_atomic_write_keeps_old_file_when_rename_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "rec.json"
    atomic_write_text(target, "old")
    seen: list[str] = []

    def failing_replace(src: str, dst: Any) -> None:
        seen.append(Path(src).read_text())  # the temp file is complete when the rename happens
        raise OSError("disk on fire")

    monkeypatch.setattr(io.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk on fire"):
        atomic_write_text(target, "new")
    assert seen == ["new"]
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["rec.json"]


def test_atomic_write_json_nan_and_numpy(tmp_path: Path) -> None:
    target = tmp_path / "x.json"
    atomic_write_json(
        target,
        {
            "m": {
                "mAP": float("nan"),
                "r": np.float32(0.5),
                "n": np.int64(3),
                "cmc": np.array([0.25, 1.0]),
                "t": (1, 2),
            }
        },
    )
    assert json.loads(target.read_text()) == {
        "m": {"mAP": None, "r": 0.5, "n": 3, "cmc": [0.25, 1.0], "t": [1, 2]}
    }
    with pytest.raises(ValueError, match=r"\$\.m\.x"):
        atomic_write_json(target, {"m": {"x": math.inf}})
    assert json.loads(target.read_text())["m"]["n"] == 3  # old content intact


def test_read_records_missing_folder(tmp_path: Path) -> None:
    assert read_records(tmp_path / "nothing") == []


def test_read_records_skips_truncated_and_ignores_tmp(tmp_path: Path) -> None:
    good = make_record("good")
    write_record(tmp_path, good)
    text = json.dumps(make_record("trunc"), indent=2)
    (runs_dir(tmp_path) / "trunc.json").write_text(text[: len(text) // 2])
    # an in-progress write: complete JSON, but a temp name
    (runs_dir(tmp_path) / ".other.json.abc123.tmp").write_text(json.dumps(make_record("other")))
    (runs_dir(tmp_path) / "notes.txt").write_text("not a record")
    (runs_dir(tmp_path) / "list.json").write_text("[1, 2]")
    with pytest.warns(UserWarning) as caught:
        got = read_records(tmp_path)
    assert got == [good]
    messages = [str(w.message) for w in caught]
    assert any("trunc.json" in m for m in messages)
    assert any("list.json" in m for m in messages)
    assert not any("other" in m or "good" in m for m in messages)


def test_read_records_filter_and_order(tmp_path: Path) -> None:
    specs = [
        ("a", "bot", "ds-b", 1, None),
        ("b", "agw", "ds-a", 2, "fold1"),
        ("c", "agw", "ds-a", 2, "fold0"),
        ("d", "agw", "ds-a", 0, "fold0"),
        ("e", "bot", "ds-a", 10, None),
        ("f", "bot", "ds-a", 9, None),
    ]
    for run_id, method, dataset, seed, fold in specs:
        write_record(tmp_path, make_record(run_id, method, dataset, seed, fold))
    got = [r["run_id"] for r in read_records(tmp_path)]
    assert got == ["d", "c", "b", "f", "e", "a"]
    assert [r["run_id"] for r in read_records(tmp_path, dataset="ds-b")] == ["a"]
    assert read_records(tmp_path, dataset="nope") == []


def test_load_record_missing_names_nearest(tmp_path: Path) -> None:
    write_record(tmp_path, make_record("20261123T003000-bot-synthetic-person-s0-1a2b3c"))
    write_record(tmp_path, make_record("zzz"))
    with pytest.raises(BenchError) as info:
        load_record(tmp_path, "20261123T003000-bot-synthetic-person-s1-1a2b3c")
    message = str(info.value)
    assert "'20261123T003000-bot-synthetic-person-s1-1a2b3c'" in message
    assert "nearest: 20261123T003000-bot-synthetic-person-s0-1a2b3c" in message
    assert "zzz" not in message


def test_load_record_corrupt(tmp_path: Path) -> None:
    runs_dir(tmp_path).mkdir(parents=True)
    (runs_dir(tmp_path) / "bad.json").write_text("{")
    with pytest.raises(BenchError, match=r"bad\.json"):
        load_record(tmp_path, "bad")


def test_parallel_writers_and_reader(tmp_path: Path) -> None:
    writers, per_writer = 8, 20
    payload = "p" * 100_000  # big enough that a torn write would be visible
    start = threading.Barrier(writers + 1)
    done = threading.Event()
    errors: list[BaseException] = []
    reads: list[int] = []

    def write(w: int) -> None:
        try:
            start.wait()
            for rewrite in range(2):  # the second pass replaces each file: readers see old or new
                for i in range(per_writer):
                    write_record(
                        tmp_path,
                        make_record(
                            f"w{w}-{i:02d}",
                            f"m{w}",
                            seed=i,
                            payload=payload,
                            writer=w,
                            rewrite=rewrite,
                        ),
                    )
        except BaseException as exc:
            errors.append(exc)

    def read() -> None:
        try:
            start.wait()
            while not done.is_set():
                got = read_records(tmp_path)
                assert all(r["payload"] == payload for r in got)
                reads.append(len(got))
        except BaseException as exc:
            errors.append(exc)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a skipped (torn) file would raise in the reader
        threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
        reader = threading.Thread(target=read)
        for t in [*threads, reader]:
            t.start()
        for t in threads:
            t.join()
        done.set()
        reader.join()
    assert errors == []
    assert reads and reads == sorted(reads)  # records only appear, never vanish
    final = read_records(tmp_path)
    assert len(final) == writers * per_writer
    assert {r["run_id"] for r in final} == {
        f"w{w}-{i:02d}" for w in range(writers) for i in range(per_writer)
    }
    for r in final:
        assert r == make_record(
            r["run_id"],
            f"m{r['writer']}",
            seed=r["seed"],
            payload=payload,
            writer=r["writer"],
            rewrite=1,
        )
    assert sorted(p.name for p in runs_dir(tmp_path).iterdir()) == sorted(
        f"{r['run_id']}.json" for r in final
    )
