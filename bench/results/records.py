"""Run records on disk: one JSON file per run under ``<results_dir>/runs/<run_id>.json``.

Every write is atomic (:func:`bench.io.atomic_write_json`: temp file in the same folder, fsync,
``os.replace``), so a reader never sees a half-written record, even while runs write
concurrently. Temp files are named ``.<name>.<random>.tmp`` and never match ``*.json``.

Every read checks the record against :mod:`bench.results.schema`. The leaderboard's
:func:`read_records` skips a record that is unreadable or breaks it, with one warning naming the
file and the field; :func:`load_record` (one run asked for by id) raises instead.

Runs that failed (``bench sweep`` records them) go to ``<results_dir>/failed/``, one file per
failing run keyed by its config hash, never among the records: the leaderboard cannot count them,
and a later success of the same run removes its failure file.
"""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.errors import BenchError, close_matches
from bench.io import atomic_write_json, json_safe, read_text
from bench.results.schema import RUN_ID, RecordError, validate_record

#: Keys every run record must have (write_record refuses a record without them).
REQUIRED_KEYS = ("run_id", "method", "dataset", "metrics", "seed")

#: What a reader does with a record it skips: called with the file and the reason.
OnSkip = Callable[[Path, str], None]


class SkippedRecordWarning(UserWarning):
    """A run record was left out of a read: unreadable, or it breaks the schema."""


def runs_dir(results_dir: Path) -> Path:
    """The folder of run records: ``results_dir / "runs"``."""
    return Path(results_dir) / "runs"


def _check_run_id(run_id: Any) -> str:
    if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id):
        raise BenchError(
            f"invalid run_id {run_id!r}: it must be a non-empty file name without '/' or '\\' "
            "that does not start with '.'"
        )
    return run_id


def write_record(results_dir: Path, record: dict[str, Any]) -> Path:
    """Write ``record`` to ``runs/<run_id>.json`` atomically and return the path. The record
    must pass the schema the leaderboard reads it with (:mod:`bench.results.schema`, after NaN
    becomes null), so a record the leaderboard would skip is never written."""
    for key in REQUIRED_KEYS:
        if key not in record:
            raise BenchError(f"run record is missing the required key {key!r}")
    run_id = _check_run_id(record["run_id"])
    path = runs_dir(results_dir) / f"{run_id}.json"
    try:
        validate_record(json_safe(record))
    except RecordError as exc:
        raise BenchError(f"refusing to write run record {path}: {exc}") from None
    atomic_write_json(path, record)
    return path


def _record_files(results_dir: Path) -> list[Path]:
    folder = runs_dir(results_dir)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.json") if not p.name.startswith("."))


def _load(path: Path) -> dict[str, Any]:
    """The valid record in ``path``; OSError, or RecordError saying what is wrong with it."""
    text = read_text(path, what=None, error=RecordError)  # the warning names the file
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RecordError(
            f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except RecursionError:
        raise RecordError("not valid JSON: nested too deeply") from None
    return validate_record(data)


def _one_line(text: str) -> str:
    """``text`` with unprintable characters (line breaks such as U+0085 among them) escaped, so a
    field name or value from a damaged record cannot split the warning's line."""
    return "".join(
        ch if ch.isprintable() else (f"\\x{ord(ch):02x}" if ord(ch) < 256 else f"\\u{ord(ch):04x}")
        for ch in text
    )


def warn_skipped(path: Path, reason: str) -> None:
    """:func:`read_records`' default: a :class:`SkippedRecordWarning` ``skipped <file>: <why>``,
    attributed to the caller of :func:`read_records`."""
    warnings.warn(f"skipped {path}: {_one_line(reason)}", SkippedRecordWarning, stacklevel=4)


def print_skipped(path: Path, reason: str) -> None:
    """One line on stderr: ``bench: warning: skipped <file>: <why>``."""
    print(f"bench: warning: skipped {path}: {_one_line(reason)}", file=sys.stderr)


def _read_one(path: Path, on_skip: OnSkip) -> dict[str, Any] | None:
    """The record in ``path``, or None (after ``on_skip``) if it is unreadable or invalid."""
    try:
        return _load(path)
    except RecordError as exc:
        on_skip(path, str(exc))
    except OSError as exc:
        on_skip(path, f"cannot read it: {exc.strerror or exc}")
    return None


def _sort_key(record: dict[str, Any]) -> tuple[str, str, int, str, str, str]:
    return (
        record["dataset"],
        record["method"],
        record["seed"],
        record.get("fold") or "",
        record.get("train_dataset") or "",
        record["run_id"],
    )


def read_records(
    results_dir: Path, *, dataset: str | None = None, on_skip: OnSkip = warn_skipped
) -> list[dict[str, Any]]:
    """Every valid record in ``runs/*.json``, sorted by (dataset, method, seed, fold).

    A file that cannot be read or parsed (e.g. truncated by a crash or another tool), or whose
    record breaks the schema (:func:`bench.results.schema.validate_record`), is skipped:
    ``on_skip(path, reason)`` is called with the reason naming the field at fault (default
    :func:`warn_skipped`). A missing ``runs`` folder gives an empty list.
    """
    records = []
    for path in _record_files(results_dir):  # a loop, not a comprehension: the warning's stacklevel
        record = _read_one(path, on_skip)
        if record is not None and dataset in (None, record["dataset"]):
            records.append(record)
    return sorted(records, key=_sort_key)


def load_record(results_dir: Path, run_id: str) -> dict[str, Any]:
    """The record with this ``run_id``: BenchError naming the id and the nearest ids if absent,
    or naming the file and the field if it is unreadable or breaks the schema."""
    path = runs_dir(results_dir) / f"{_check_run_id(run_id)}.json"
    if not path.is_file():
        known = [p.stem for p in _record_files(results_dir)]
        near = close_matches(run_id, known, n=3)
        hint = f"; nearest: {', '.join(near)}" if near else ""
        raise BenchError(f"no run record {run_id!r} under {runs_dir(results_dir)}{hint}")
    try:
        return _load(path)
    except RecordError as exc:
        raise RecordError(f"invalid run record {path}: {exc}") from None
    except OSError as exc:
        raise BenchError(f"cannot read run record {path}: {exc.strerror or exc}") from exc


def failed_dir(results_dir: Path) -> Path:
    """The folder of failure records: ``results_dir / "failed"``."""
    return Path(results_dir) / "failed"


def _failure_name(record: dict[str, Any]) -> str:
    parts = [str(record["method"]), str(record["dataset"]), f"s{record['seed']}"]
    if record.get("fold"):
        parts.append(str(record["fold"]))
    return _check_run_id("-".join([*parts, str(record["config_hash"])]))


def write_failure(results_dir: Path, record: dict[str, Any]) -> Path:
    """Write a failed run's record (``status: failed``, ``error``) to
    ``failed/<method>-<dataset>-s<seed>[-<fold>]-<config_hash>.json`` atomically, replacing an
    earlier failure of the same run."""
    for key in ("method", "dataset", "seed", "config_hash", "error"):
        if key not in record:
            raise BenchError(f"failure record is missing the required key {key!r}")
    path = failed_dir(results_dir) / f"{_failure_name(record)}.json"
    atomic_write_json(path, {**record, "status": "failed"})
    return path


def clear_failure(results_dir: Path, config_hash: str) -> None:
    """Remove the failure record of the run with this config hash, if there is one."""
    folder = failed_dir(results_dir)
    if folder.is_dir():
        for path in folder.glob(f"*-{config_hash}.json"):
            path.unlink(missing_ok=True)


def read_failures(results_dir: Path) -> list[dict[str, Any]]:
    """Every failure record under ``failed/`` (unreadable files skipped with a warning)."""
    folder = failed_dir(results_dir)
    if not folder.is_dir():
        return []
    out = []
    for path in sorted(folder.glob("*.json")):
        if path.name.startswith("."):
            continue
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            continue  # cleared by a run that succeeded meanwhile
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            warnings.warn(f"skipping unreadable failure record {path}: {exc}", stacklevel=2)
            continue
        if isinstance(record, dict):
            out.append(record)
    return out
