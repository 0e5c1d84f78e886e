"""The reliability suite (issue 14): bad inputs and faults, one per class, run through the CLI.

Each case asserts the exit code, exactly one ``bench...: error:`` line on stderr naming what is
wrong, no traceback, and a results folder left byte for byte as it was. Cases that should work
(tiny re-ranking, a huge --max-rank, a leaderboard beside a bad record) assert their result.
The property tests feed random ``--set`` values and random files. Planted pickles:
``tests/test_planted_pickles.py``; record files: ``tests/test_record_schema.py``; caption
files: ``tests/test_data_strict.py``.
"""

from __future__ import annotations

import errno
import json
import math
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.cli import main
from bench.config import HARNESS_RANGES, flatten, resolve_config
from bench.errors import BenchError, ConfigError
from bench.plugins import get_dataset, get_method


def _features(path: Path, q: int = 2, g: int = 3, width: int = 8) -> Path:
    rng = np.random.default_rng(0)
    np.savez(
        path,
        query_features=rng.normal(size=(q, width)).astype("f4"),
        gallery_features=rng.normal(size=(g, width)).astype("f4"),
        query_pids=np.arange(1, q + 1),
        gallery_pids=(np.arange(g) % q) + 1,
        query_camids=np.zeros(q, dtype=int),
        gallery_camids=np.ones(g, dtype=int),
    )
    return path


@dataclass
class Env:
    """What a case may touch: a copy of the finished results folder, a scratch folder and the
    finished record."""

    results: Path
    scratch: Path
    record: dict
    monkeypatch: pytest.MonkeyPatch
    market_release: Callable[[Path], Path]  # the conftest fixture: a tiny Market-1501 release
    run: list[str]  # `bench run` of the finished run again (conftest.finished_run)

    @property
    def last_pt(self) -> Path:
        return self.results / Path(self.record["checkpoint"]).with_name("last.pt")


@dataclass
class Case:
    name: str
    argv: Callable[[Env], list[str]]
    code: int
    says: str  # in the error line (code != 0) or on stdout/stderr (code == 0)
    setup: Callable[[Env], None] = field(default=lambda env: None)
    #: The results folder may change (a leaderboard written, a run finished).
    writes: bool = False


def _results(env: Env) -> list[str]:
    return ["--results-dir", str(env.results)]


def _set(key_value: str) -> Callable[[Env], list[str]]:
    return lambda env: [*env.run, "--set", key_value, *_results(env)]


def _file(env: Env) -> None:
    (env.scratch / "a-file").write_text("not a folder\n")


def _bad_record(metrics: object) -> Callable[[Env], None]:
    def setup(env: Env) -> None:
        data = dict(env.record, run_id="bad-record", metrics=metrics)
        (env.results / "runs" / "bad-record.json").write_text(json.dumps(data))

    return setup


def _no_space(env: Env) -> None:
    import bench.io

    def fsync(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    env.monkeypatch.setattr(bench.io.os, "fsync", fsync)


def _interrupt(env: Env) -> None:
    import bench.cli.listing

    def main_(args: object) -> int:
        raise KeyboardInterrupt

    env.monkeypatch.setattr(bench.cli.listing, "main", main_)


def _cache_is_a_file(env: Env) -> None:
    _file(env)
    env.monkeypatch.setenv("BENCH_CACHE", str(env.scratch / "a-file"))


def _last_pt(content: bytes | None) -> Callable[[Env], None]:
    def setup(env: Env) -> None:
        good = env.last_pt.read_bytes()
        env.last_pt.write_bytes(good[:400] if content is None else content)

    return setup


def _market_run(*sets: str) -> Callable[[Env], list[str]]:
    """``bench run`` of bot on the tiny Market release in scratch/m (conftest)."""

    def argv(env: Env) -> list[str]:
        args = ["run", "--method", "bot", "--preset", "quick", "--dataset", "market1501"]
        args += ["--root", str(env.scratch / "m"), *_results(env), "--no-progress"]
        for item in ("train.epochs=1", "sampler.p=2", "sampler.k=2", *sets):
            args += ["--set", item.replace("SCRATCH", str(env.scratch))]
        return args

    return argv


def _market(change: Callable[[Path], None] = lambda root: None) -> Callable[[Env], None]:
    def setup(env: Env) -> None:
        change(env.market_release(env.scratch / "m"))

    return setup


def _captions(data: bytes) -> Callable[[Path], None]:
    return lambda root: (root.parent / "captions.csv").write_bytes(data)


def _leak(root: Path) -> None:
    shutil.copy(
        root / "bounding_box_train" / "0002_c1s1_000451_03.jpg",
        root / "bounding_box_test" / "0002_c5s1_000001_01.jpg",
    )


def _dangling(root: Path) -> None:
    (root / "query" / "0009_c5s1_000004_01.jpg").symlink_to(root / "gone.jpg")


CAPTIONS = ["text.source=captions", "text.file=SCRATCH/captions.csv"]


def _read_only_parent() -> Path:
    """A folder nothing can write in, root included (/sys on Linux)."""
    return Path("/sys/reid-bench-readonly")


CASES = [
    # point 2: config values checked when the config is resolved, before any data is read
    Case("negative lr", _set("optim.lr=-0.1"), 1, "'optim.lr' must be > 0; got -0.1"),
    Case("NaN lr", _set("optim.lr=.nan"), 1, "'optim.lr' must be > 0; got nan"),
    Case("zero input height", _set("input.height=0"), 1, "'input.height' must be >= 1; got 0"),
    Case("negative workers", _set("data.workers=-1"), 1, "'data.workers' must be >= 0; got -1"),
    Case("zero eval batch", _set("eval.batch_size=0"), 1, "'eval.batch_size' must be >= 1"),
    Case("zero max_rank", _set("eval.max_rank=0"), 1, "'eval.max_rank' must be >= 1; got 0"),
    Case("negative epochs", _set("train.epochs=-3"), 1, "'train.epochs' must be >= 1; got -3"),
    Case("flip above 1", _set("input.flip=2"), 1, "'input.flip' must be in [0, 1]; got 2"),
    Case("unknown key", _set("train.epoch=3"), 1, "unknown config key 'train.epoch'"),
    Case("wrong type", _set("train.epochs=many"), 1, "'train.epochs' expects an integer"),
    Case(
        "negative seed",
        lambda env: [*env.run, "--seed", "-1", *_results(env)],
        2,
        "argument --seed: must be in [0, 4294967295], got -1",
    ),
    Case(
        "seed beyond 32 bits",
        lambda env: [*env.run, "--seed", str(2**32), *_results(env)],
        2,
        "argument --seed: must be in [0, 4294967295]",
    ),
    # point 2: folders the run writes, checked before training
    Case(
        "results dir is a file",
        lambda env: [*env.run, "--results-dir", str(env.scratch / "a-file")],
        1,
        "a-file is a file, not a folder",
        setup=_file,
    ),
    Case(
        "results dir below a file",
        lambda env: [*env.run, "--results-dir", str(env.scratch / "a-file" / "runs")],
        1,
        "a-file is a file, not a folder",
        setup=_file,
    ),
    Case(
        "results dir read-only",
        lambda env: [*env.run, "--results-dir", str(_read_only_parent() / "results")],
        1,
        "cannot write the results folder",
    ),
    Case(
        "BENCH_CACHE is a file",
        lambda env: [*env.run, *_results(env)],
        1,
        "cache folder ($BENCH_CACHE)",
        setup=_cache_is_a_file,
    ),
    # point 3: no traceback reaches a user
    Case(
        "leaderboard --out a folder",
        lambda env: ["leaderboard", *_results(env), "--out", str(env.results)],
        1,
        "a folder stands where a file is expected",
    ),
    Case(
        "leaderboard --out read-only",
        lambda env: ["leaderboard", *_results(env), "--out", str(_read_only_parent() / "l.md")],
        1,
        "/sys/reid-bench-readonly",
    ),
    Case(
        "full disk",
        lambda env: ["leaderboard", *_results(env), "--out", str(env.results / "lb.md")],
        1,
        "no space left on the device while writing",
        setup=_no_space,
    ),
    Case(
        "resume from a truncated last.pt",
        lambda env: [*env.run, *_results(env), "--resume"],
        1,
        "last.pt: truncated or not a checkpoint",
        setup=_last_pt(None),
    ),
    Case(
        "resume from an empty last.pt",
        lambda env: [*env.run, *_results(env), "--resume"],
        1,
        "last.pt: it is empty",
        setup=_last_pt(b""),
    ),
    Case(
        "eval on a .npy",
        lambda env: ["eval", "--features", str(env.scratch / "f.npy")],
        1,
        "a single array (.npy), not an .npz archive",
        setup=lambda env: np.save(env.scratch / "f.npy", np.zeros((3, 4))),
    ),
    Case(
        "eval on random bytes",
        lambda env: ["eval", "--features", str(env.scratch / "f.npz")],
        1,
        "not an .npz file",
        setup=lambda env: (env.scratch / "f.npz").write_bytes(bytes(range(256))),
    ),
    Case(
        "eval --max-rank 0",
        lambda env: [
            "eval",
            "--features",
            str(_features(env.scratch / "f.npz")),
            "--max-rank",
            "0",
        ],
        2,
        "argument --max-rank: must be >= 1, got 0",
    ),
    Case(
        "report of an unknown run",
        lambda env: ["report", "no-such-run", *_results(env)],
        1,
        "no run record 'no-such-run'",
    ),
    Case(
        "interrupted",
        lambda env: ["list", "methods"],
        130,
        "interrupted",
        setup=_interrupt,
    ),
    # point 4: no silent accept
    Case(
        "eval on width-0 features",
        lambda env: ["eval", "--features", str(_features(env.scratch / "f.npz", width=0))],
        1,
        "the features have width 0",
    ),
    Case(
        "caption file not UTF-8",
        _market_run(*CAPTIONS),
        1,
        "captions.csv: not UTF-8 text (byte 0xe9 at offset 20); save it as UTF-8",
        setup=_market(_captions(b"key,text\n0002,un caf\xe9\n")),
    ),
    Case(
        "caption key twice",
        _market_run(*CAPTIONS),
        1,
        "lists the key '0002' twice with different texts",
        setup=_market(_captions(b"key,text\n0002,red coat\n0002,blue coat\n")),
    ),
    Case(
        "empty caption",
        _market_run(*CAPTIONS),
        1,
        "the key '0002' has an empty text",
        setup=_market(_captions(b"key,text\n0002,\n0007,a man\n")),
    ),
    Case(
        "identity in train and test",
        _market_run(),
        1,
        "identity 2 is in both the training and the test split of market1501",
        setup=_market(_leak),
    ),
    Case(
        "image symlink to nothing",
        _market_run(),
        1,
        "is a symlink to",
        setup=_market(_dangling),
    ),
    # point 5 and 4: what should work, works
    Case(
        "re-ranking 2 queries, 3 gallery",
        lambda env: ["eval", "--features", str(_features(env.scratch / "f.npz")), "--rerank"],
        0,
        "euclidean + re-ranking",
    ),
    Case(
        "--max-rank 1e9 on 3 gallery",
        lambda env: [
            "eval",
            "--features",
            str(_features(env.scratch / "f.npz")),
            "--max-rank",
            "1000000000",
        ],
        0,
        "the CMC stops at rank 3",
    ),
    Case(
        "leaderboard beside a record whose metrics is a list",
        lambda env: ["leaderboard", *_results(env)],
        0,
        "bad-record.json: metrics: must be a JSON object",
        setup=_bad_record([0.1, 0.2]),
        writes=True,
    ),
    Case(
        "leaderboard beside a record with NaN mAP",
        lambda env: ["leaderboard", *_results(env)],
        0,
        "bad-record.json: metrics.mAP: must be a finite number",
        setup=_bad_record({"mAP": math.nan}),
        writes=True,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_one_clean_line_and_changes_nothing(
    case, finished_run, tmp_path, capsys, monkeypatch, market_release, folder_snapshot
):
    if case.name.endswith("read-only") and _writable(_read_only_parent().parent):
        pytest.skip("no read-only folder here (/sys is writable)")
    source, record = finished_run.results, finished_run.record
    run_again = ["run", *finished_run.cli, "--no-progress"]
    env = Env(
        tmp_path / "results", tmp_path / "scratch", record, monkeypatch, market_release, run_again
    )
    shutil.copytree(source, env.results)
    env.scratch.mkdir()
    case.setup(env)
    before = folder_snapshot(env.results)
    try:
        code = main(case.argv(env))
    except SystemExit as exc:  # argparse's usage errors, as the console script exits
        code = exc.code
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "Traceback" not in out
    assert code == case.code, err
    if code != 0:
        errors = [line for line in err.splitlines() if line.strip()]
        assert len(errors) == 1, err
        assert errors[0].startswith("bench")
        assert ": error: " in errors[0] or errors[0] == "bench: interrupted"
        assert case.says in errors[0]
    else:
        assert case.says in out + err
    if not case.writes:
        assert folder_snapshot(env.results) == before
    else:  # the records and checkpoints themselves are never touched
        after = folder_snapshot(env.results)
        assert {k: v for k, v in after.items() if k in before} == before
    print(f"{case.name}: exit {code}: {(err.strip().splitlines() or [out.strip()])[-1][:160]}")


def _writable(folder: Path) -> bool:
    try:
        (folder / ".probe").write_text("x")
    except OSError:
        return False
    (folder / ".probe").unlink()
    return True


def test_a_closed_pipe_is_one_line(subprocess_env) -> None:
    """``bench list methods | head -1``: the reader left; one line, exit 1, no traceback."""
    proc = subprocess.run(
        f"{sys.executable} -m bench list methods | head -1",
        shell=True,
        capture_output=True,
        text=True,
        env=subprocess_env,
        timeout=120,
    )
    assert proc.stdout.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") <= 1


# -------------------------------------------------------------------------- property tests


def _all_keys() -> dict[str, object]:
    spec, data = get_method("bot"), get_dataset("synthetic-person")
    config, _ = resolve_config(spec, [data], "quick")
    return config


KEYS = sorted(_all_keys())
VALUES = st.one_of(
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=8),
    st.lists(st.integers(-5, 200), max_size=3),
    st.none(),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=st.sampled_from([*KEYS, "train.epoch", "nope", "optim"]), value=VALUES)
def test_random_set_values_resolve_or_fail_cleanly(key: str, value: object) -> None:
    """Any ``--set key=value`` either resolves to a config holding that value, inside its key's
    declared range, or is one ConfigError naming the key; never another exception."""
    spec, data = get_method("bot"), get_dataset("synthetic-person")
    text = json.dumps(value) if not isinstance(value, str) else value
    try:
        config, _ = resolve_config(spec, [data], "quick", [f"{key}={text}"])
        spec.family.preflight(config)
    except ConfigError as exc:
        assert key in str(exc) or "--set" in str(exc)
        assert "\n" not in str(exc)
        return
    except BenchError as exc:  # preflight: e.g. weights named but not on disk
        assert "\n" not in str(exc)
        return
    got = config[key]
    if isinstance(got, float):
        assert math.isfinite(got)
    ranges = {**HARNESS_RANGES, **data.config_ranges, **spec.family.config_ranges}
    if key in ranges and isinstance(got, (int, float)) and not isinstance(got, bool):
        assert got in ranges[key]


def test_the_property_test_sees_every_numeric_key() -> None:
    numeric = [k for k, v in flatten(_all_keys()).items() if isinstance(v, (int, float))]
    assert len(numeric) > 20 and set(numeric) <= set(KEYS)
