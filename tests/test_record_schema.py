"""The run-record schema: a bad record is skipped with one warning naming the file and the field,
the rest of the leaderboard renders, and no non-finite or out-of-range number reaches a table."""

from __future__ import annotations

import copy
import csv
import io
import json
import math
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.cli import main
from bench.errors import BenchError
from bench.results.records import (
    SkippedRecordWarning,
    load_record,
    read_records,
    runs_dir,
    write_record,
)
from bench.results.schema import ORACLE_KEY, RecordError, validate_record

CMC = [0.5, 0.6, 0.7, 0.75, 0.8, 0.82, 0.85, 0.88, 0.9, 0.91]


def full_record(run_id: str = "good", method: str = "good-method", **extra: Any) -> dict[str, Any]:
    """A record shaped as the runner writes it (every field, small values)."""
    return {
        "schema": 1,
        "run_id": run_id,
        "method": method,
        "family": "bot",
        "dataset": "synthetic-person",
        "train_dataset": "synthetic-person",
        "protocol": "market",
        "preset": "quick",
        "seed": 0,
        "fold": None,
        "config": {
            "eval.metric": "cosine",
            "protocol.oracle_gallery_text": False,
            "train.epochs": 1,
            "resources.num_cpus": 1.0,
        },
        "config_diff": {"train.epochs": 1},
        "config_hash": "1e56e52b58f94df5",
        "data": {"dataset": {"fingerprint": "f24aeead80df557a", "files": 455, "bytes": 1298777}},
        "text_policy": "fair",
        "oracle": False,
        "gallery_text_withheld": 0,
        "selection": {"rule": "last", "epoch": 1, "val": None, "val_identities": 0},
        "method_facts": {},
        "metrics": {
            "mAP": 0.4,
            "mINP": 0.1,
            "MRR": 0.55,
            "rank1": CMC[0],
            "rank5": CMC[4],
            "rank10": CMC[9],
            "cmc": list(CMC),
            "num_valid_queries": 67,
            "num_queries": 67,
        },
        "history": [{"epoch": 0, "loss": 5.48, "acc": 0.05, "lr": 0.0001}],
        "timings": {"load_s": 0.035, "train_s": 1.954, "test_s": 0.969, "total_s": 2.958},
        "resumed_from_epoch": None,
        "versions": {"python": "3.11.7", "reid_bench": "0.1.0"},
        "created": "2026-12-02T04:41:11+00:00",
        **extra,
    }


def with_(path: str | tuple[str, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    """Set ``path`` of a record (dotted, ``metrics.mAP``, or a tuple of keys) to ``value``."""

    def edit(record: dict[str, Any]) -> None:
        *parents, last = path.split(".") if isinstance(path, str) else path
        for key in parents:
            record = record[key]
        record[last] = value

    return edit


def without(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda record: record.pop(key)


def edited(*edits: Callable[[dict[str, Any]], None]) -> bytes:
    record = full_record("bad", method="bad-method")
    for edit in edits:
        edit(record)
    return json.dumps(record).encode()  # allow_nan: NaN and Infinity become JSON tokens


def set_cmc(index: int, value: float) -> Callable[[dict[str, Any]], None]:
    return lambda record: record["metrics"]["cmc"].__setitem__(index, value)


# (case, the bad file's bytes, the start of the reason the warning gives)
BAD_FILES: list[tuple[str, bytes, str]] = [
    ("metrics-list", edited(with_("metrics", [0.4, 0.5])), "metrics: must be a JSON object"),
    ("mAP-nan", edited(with_("metrics.mAP", math.nan)), "metrics.mAP: must be a finite number"),
    ("mAP-inf", edited(with_("metrics.mAP", math.inf)), "metrics.mAP: must be a finite number"),
    ("mAP-neg-inf", edited(with_("metrics.mAP", -math.inf)), "metrics.mAP: must be a finite"),
    ("mAP-1e400", edited(with_("metrics.mAP", 0.123456)).replace(b"0.123456", b"1e400"), "m"),
    ("mAP-string", edited(with_("metrics.mAP", "high")), 'metrics.mAP: must be a number, got "'),
    ("mAP-null", edited(with_("metrics.mAP", None)), "metrics.mAP: must be a number, got null"),
    ("mAP-true", edited(with_("metrics.mAP", True)), "metrics.mAP: must be a number, got true"),
    ("mAP-percent", edited(with_("metrics.mAP", 18.457)), "metrics.mAP: must be at most 1"),
    ("mAP-negative", edited(with_("metrics.mAP", -0.1)), "metrics.mAP: must be at least 0"),
    ("mAP-missing", edited(lambda r: r["metrics"].pop("mAP")), "metrics.mAP: missing"),
    ("rank1-nan", edited(with_("metrics.rank1", math.nan)), "metrics.rank1: must be a finite"),
    ("mINP-null", edited(with_("metrics.mINP", None)), "metrics.mINP: must be a number"),
    ("cmc-nan", edited(set_cmc(3, math.nan)), "metrics.cmc[3]: must be a finite number"),
    ("cmc-decreasing", edited(set_cmc(3, 0.1)), "metrics.cmc: must not decrease"),
    ("cmc-above-1", edited(set_cmc(9, 1.5)), "metrics.cmc[9]: must be at most 1"),
    ("missing-run-id", edited(without("run_id")), "run_id: missing"),
    ("missing-metrics", edited(without("metrics")), "metrics: missing"),
    ("run-id-path", edited(with_("run_id", "../x")), "run_id: must be a file name"),
    ("method-number", edited(with_("method", 3)), "method: must be a string, got 3"),
    ("method-newline", edited(with_("method", "a\nb")), "method: must be one line"),
    ("seed-bool", edited(with_("seed", True)), "seed: must be an integer, got true"),
    ("seed-string", edited(with_("seed", "0")), 'seed: must be an integer, got "0"'),
    ("fold-number", edited(with_("fold", 0)), "fold: must be a string, got 0"),
    ("config-list", edited(with_("config", [1])), "config: must be a JSON object"),
    ("config-nan", edited(with_(("config", "train.epochs"), math.nan)), "config.train.epochs:"),
    ("diff-string", edited(with_("config_diff", "x")), "config_diff: must be a JSON object"),
    ("data-string", edited(with_("data.dataset", "abc")), "data.dataset: must be a JSON object"),
    ("oracle-string", edited(with_("oracle", "yes")), 'oracle: must be true or false, got "y'),
    (
        "oracle-unmarked",
        edited(with_(("config", "protocol.oracle_gallery_text"), True)),
        "oracle: must be true as the config sets protocol.oracle_gallery_text=true, got false",
    ),
    ("timing-negative", edited(with_("timings.train_s", -1)), "timings.train_s: must be at least"),
    ("history-nan", edited(lambda r: r["history"][0].update(loss=math.nan)), "history[0].loss"),
    (
        "more-valid-queries",
        edited(with_("metrics.num_valid_queries", 1000)),
        "metrics.num_queries: must be at least num_valid_queries (1000), got 67",
    ),
    ("json-list", b"[1, 2]", "record: must be a JSON object, got [1, 2]"),
    ("json-null", b"null", "record: must be a JSON object, got null"),
    ("truncated", edited()[:200], "not valid JSON: "),
    ("empty", b"", "not valid JSON: Expecting value (line 1, column 1)"),
    ("not-utf8", b'{"run_id": "\xff\xfe"}', "not UTF-8 text (byte 0xff at offset 12)"),
    ("nested-deep", b"[" * 100_000 + b"]" * 100_000, "not valid JSON: nested too deeply"),
]


def results_with(tmp: Path, files: dict[str, bytes]) -> Path:
    """A results folder with the good record and ``files`` (name -> bytes) under runs/."""
    folder = runs_dir(tmp)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "good.json").write_text(json.dumps(full_record()))
    for name, content in files.items():
        (folder / name).write_bytes(content)
    return tmp


def leaderboard(results: Path, capsys: pytest.CaptureFixture[str], *fmt: str) -> tuple[str, str]:
    """``bench leaderboard`` on ``results``: its stdout and its warning lines."""
    assert main(["leaderboard", "--results-dir", str(results), *fmt]) == 0
    out, err = capsys.readouterr()
    assert all(line.startswith(("bench: warning: ", "written to ")) for line in err.splitlines())
    return out, "\n".join(line for line in err.splitlines() if line.startswith("bench: warning"))


@pytest.mark.parametrize(("case", "content", "reason"), BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_a_bad_record_is_skipped_with_one_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, content: bytes, reason: str
) -> None:
    results = results_with(tmp_path, {"bad.json": content})
    out, warning = leaderboard(results, capsys)
    bad = runs_dir(results) / "bad.json"
    assert warning.startswith(f"bench: warning: skipped {bad}: {reason}"), warning
    assert "\n" not in warning  # one line
    assert "good-method" in out and "bad-method" not in out
    row = next(line for line in out.splitlines() if "good-method" in line)
    cells = [cell.strip() for cell in row.split("|")[2:7]]
    assert cells == ["**40.0**", "**50.0**", "**80.0**", "**91.0**", "**10.0**"]


def test_load_record_names_the_file_and_the_field(tmp_path: Path) -> None:
    results = results_with(tmp_path, {"bad.json": edited(with_("metrics.mAP", math.nan))})
    assert load_record(results, "good") == full_record()
    with pytest.raises(BenchError) as info:
        load_record(results, "bad")
    bad = runs_dir(results) / "bad.json"
    assert str(info.value) == (
        f"invalid run record {bad}: metrics.mAP: must be a finite number, got NaN"
    )


def test_bench_report_of_an_invalid_record_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = results_with(tmp_path, {"bad.json": edited(with_("metrics", [0.5]))})
    assert main(["report", "bad", "--results-dir", str(results)]) == 1
    err = capsys.readouterr().err.strip()
    bad = runs_dir(results) / "bad.json"
    assert (
        err == f"bench: error: invalid run record {bad}: metrics: must be a JSON object, got [0.5]"
    )


def test_read_records_warns_by_default(tmp_path: Path) -> None:
    results = results_with(tmp_path, {"bad.json": edited(with_("metrics.mAP", 18.457))})
    with pytest.warns(SkippedRecordWarning, match=r"bad\.json: metrics\.mAP: must be at most 1"):
        assert [r["run_id"] for r in read_records(results)] == ["good"]


def test_the_first_problem_is_named_and_the_rest_counted() -> None:
    record = full_record()
    del record["run_id"]
    record["seed"] = -1
    record["metrics"]["mAP"] = 2
    with pytest.raises(RecordError) as info:
        validate_record(record)
    assert str(info.value) == "run_id: missing (and 2 more)"


@pytest.mark.parametrize(
    "edit",
    [
        without("fold"),
        without("config"),
        without("data"),
        without("timings"),
        with_("fold", "fold0"),
        with_("metrics.rank5", None),  # not computed: max_rank below 5
        with_("metrics.rank10", None),
        with_("metrics.MRR", None),
        with_("metrics.mAP", 1),  # an integer is a number
        with_("metrics.cmc", []),
        with_("plugin_fact", {"anything": [1, "two", None]}),  # fields of plugins, newer versions
        with_("schema", 2),
        lambda r: r["metrics"].update(AUROC=0.9),
        lambda r: [r["metrics"].pop(k) for k in ("rank1", "rank5", "rank10", "mINP", "cmc")],
        lambda r: r.update(oracle=True, config={**r["config"], ORACLE_KEY: True}),
    ],
)
def test_valid_variants_pass_unchanged(edit: Callable[[dict[str, Any]], None]) -> None:
    record = full_record()
    edit(record)
    expected = copy.deepcopy(record)
    assert validate_record(record) is record
    assert record == expected


def test_a_record_the_runner_writes_is_valid(tmp_path: Path) -> None:
    from bench.engine.runner import RunRequest, run

    request = RunRequest(
        method="bot",
        dataset="synthetic-person",
        preset="quick",
        seed=0,
        sets=["synthetic.identities=24", "train.epochs=1", "model.width=8", "sampler.p=4"],
        results_dir=tmp_path,
        progress=False,
    )
    (record,) = run(request)
    assert validate_record(record) is record
    with_warnings = read_records(tmp_path)
    assert [r["run_id"] for r in with_warnings] == [record["run_id"]]


# --- property: random damage never breaks the leaderboard ---------------------------------------

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats()  # NaN and infinities included
    | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path into ``value`` (dict keys and list indices)."""
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else []
    )
    out = []
    for key, item in items:
        out.append((*prefix, key))
        out += _paths(item, (*prefix, key))
    return out


PATHS = _paths(full_record())


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    """A record file: the full record with a few fields deleted or replaced, or its text cut."""
    record = full_record("bad", method="bad-method")
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS))
        parent = record
        try:
            for key in path[:-1]:
                parent = parent[key]
            if draw(st.booleans()):
                del parent[path[-1]]
            else:
                parent[path[-1]] = draw(JSON_VALUES)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit removed or replaced the path
    text = json.dumps(record).encode()
    if draw(st.integers(0, 9)) == 0:
        text = text[: draw(st.integers(0, len(text)))]
    return text


NUMBER = re.compile(r"-?\d+(\.\d+)?")


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(files=st.lists(damaged(), min_size=1, max_size=3))
def test_random_damage_is_rendered_or_skipped(
    files: list[bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    with tempfile.TemporaryDirectory() as tmp:
        names = {f"bad{i}.json": content for i, content in enumerate(files)}
        results = results_with(Path(tmp), names)
        out, warnings = leaderboard(results, capsys, "--format", "csv")
        skipped = {n for n in names if f"skipped {runs_dir(results) / n}: " in warnings}
        assert len(warnings.splitlines()) == len(skipped)  # one line per skipped file
        rows = list(csv.DictReader(io.StringIO(out.strip())))
        assert sum(int(r["runs"]) for r in rows) == 1 + len(names) - len(skipped)
        for row in rows:
            for column, cell in row.items():
                if column.endswith(("_mean", "_std")) and cell:
                    value = float(cell)
                    assert math.isfinite(value) and 0 <= value <= 100, (column, cell)
        md, md_warnings = leaderboard(results, capsys)
        assert md_warnings == warnings
        rows = [line for line in md.splitlines() if line.startswith("|") and "---" not in line]
        body = [r for r in rows if not r.startswith("| Method")]
        cells = [c for line in body for c in re.split(r"(?<!\\)\|", line)[2:7]]
        for cell in cells:
            for number in NUMBER.finditer(cell):
                assert 0 <= float(number.group()) <= 100, cell
            assert not re.search(r"nan|inf", cell, re.IGNORECASE), cell


def test_a_record_the_leaderboard_would_skip_is_never_written(tmp_path: Path) -> None:
    record = full_record()
    record["metrics"]["mAP"] = 18.457  # a percentage where a fraction belongs
    with pytest.raises(BenchError, match=r"refusing to write run record .*metrics\.mAP"):
        write_record(tmp_path, record)
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").glob("*.json"))
    record["metrics"]["mAP"] = 0.18
    assert write_record(tmp_path, record).is_file()
