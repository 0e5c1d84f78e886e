"""Any failure of a command is one line on stderr and an exit code, never a traceback unless
asked for with --debug."""

from __future__ import annotations

import errno
import subprocess
import sys
from pathlib import Path

import pytest

import bench.cli
from bench.cli import main
from bench.cli.failures import describe
from bench.errors import DatasetError


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (DatasetError("no polyp folders in /x"), "no polyp folders in /x"),
        (BrokenPipeError(errno.EPIPE, "Broken pipe"), "the output was closed"),
        (None, None),  # a UnicodeDecodeError, made in the test
        (OSError(errno.ENOSPC, "No space left on device", "/r/runs/a.json"), "no space left"),
        (PermissionError(errno.EACCES, "Permission denied", "/r/runs"), "permission denied: /r"),
        (NotADirectoryError(errno.ENOTDIR, "Not a directory", "/r/f/x"), "a file stands where"),
        (
            IsADirectoryError(errno.EISDIR, "Is a directory", "/t/.x.tmp", None, "/t"),
            "folder stands",
        ),
        (OSError(errno.EROFS, "Read-only file system", "/ro/x"), "read-only file system: /ro/x"),
        (MemoryError(), "out of memory"),
        (AssertionError("shapes"), "unexpected AssertionError: shapes (rerun with --debug"),
    ],
)
def test_each_kind_of_failure_has_its_own_line(exc, expected) -> None:
    if exc is None:
        try:
            b"caf\xe9".decode("utf-8")
        except UnicodeDecodeError as e:
            exc, expected = e, "is not UTF-8"
    line = describe(exc)
    assert expected in line and "\n" not in line
    if isinstance(exc, IsADirectoryError):
        assert line.endswith(": /t")  # the rename's target, not the temp file


def test_unexpected_errors_are_one_line_and_debug_shows_the_traceback(monkeypatch, capsys):
    def boom(args) -> int:
        raise ValueError("eval.batch_size must be positive\nsecond line")

    parser = bench.cli.build_parser()
    monkeypatch.setattr(bench.cli, "build_parser", lambda: parser)
    for action in parser._subparsers._group_actions[0].choices.values():  # type: ignore[union-attr]
        action.set_defaults(handler=boom)
    monkeypatch.delenv("BENCH_DEBUG", raising=False)
    assert main(["list", "methods"]) == 1
    err = capsys.readouterr().err
    assert err == (
        "bench: error: unexpected ValueError: eval.batch_size must be positive "
        "(rerun with --debug for the traceback)\n"
    )
    with pytest.raises(ValueError, match="must be positive"):
        main(["list", "methods", "--debug"])
    monkeypatch.setenv("BENCH_DEBUG", "1")
    with pytest.raises(ValueError):
        main(["list", "methods"])

    def interrupted(args) -> int:
        raise KeyboardInterrupt

    for action in parser._subparsers._group_actions[0].choices.values():  # type: ignore[union-attr]
        action.set_defaults(handler=interrupted)
    monkeypatch.delenv("BENCH_DEBUG")
    assert main(["list", "methods"]) == 130


def test_cli_failures_through_a_real_process(tmp_path: Path, subprocess_env) -> None:
    """A leaderboard written onto a folder, and a closed output pipe: one line, exit 1."""
    record = tmp_path / "res" / "runs" / "r.json"
    record.parent.mkdir(parents=True)
    record.write_text(
        '{"run_id": "r", "method": "m", "dataset": "d", "seed": 0, "metrics": {"mAP": 0.5}}'
    )
    cmd = [sys.executable, "-m", "bench", "leaderboard", "--results-dir", str(tmp_path / "res")]
    out = subprocess.run(
        [*cmd, "--out", str(tmp_path)], capture_output=True, text=True, env=subprocess_env
    )
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1] == (
        f"bench: error: a folder stands where a file is expected: {tmp_path}"
    )
    script = (
        "import sys, bench.cli as cli\n"
        "parser = cli.build_parser()\n"
        "cli.build_parser = lambda: parser\n"
        "loud = lambda args: [print('row', i) for i in range(10**6)] and 0\n"
        "parser._subparsers._group_actions[0].choices['list'].set_defaults(handler=loud)\n"
        "sys.exit(cli.main(['list', 'methods']))\n"
    )
    listing = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=subprocess_env,
    )
    assert listing.stdout is not None
    listing.stdout.readline()
    listing.stdout.close()  # like `| head -1`
    err = listing.stderr.read().decode() if listing.stderr else ""
    assert listing.wait() == 1 and "Traceback" not in err
    assert "bench: error: the output was closed before bench finished" in err
