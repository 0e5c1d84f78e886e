"""Run records on disk: one JSON file per run under ``<results_dir>/runs/<run_id>.json``.

Every write is atomic (:func:`bench.io.atomic_write_json`: temp file in the same folder, fsync,
``os.replace``), so a reader never sees a half-written record, even while runs write
concurrently. Temp files are named ``.<name>.<random>.tmp`` and never match ``*.json``.

Runs that failed (``bench sweep`` records them) go to ``<results_dir>/failed/``, one file per
failing run keyed by its config hash, never among the records: the leaderboard cannot count them,
and a later success of the same run removes its failure file.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any

from bench.errors import BenchError, close_matches
from bench.io import atomic_write_json

#: Keys every run record must have (write_record refuses a record without them).
REQUIRED_KEYS = ("run_id", "method", "dataset", "metrics", "seed")

_BAD_RUN_ID = re.compile(r"[/\\\x00]")


def runs_dir(results_dir: Path) -> Path:
    """The folder of run records: ``results_dir / "runs"``."""
    return Path(results_dir) / "runs"


def _check_run_id(run_id: Any) -> str:
    if (
        not isinstance(run_id, str)
        or not run_id
        or run_id.startswith(".")
        or _BAD_RUN_ID.search(run_id)
    ):
        raise BenchError(
            f"invalid run_id {run_id!r}: it must be a non-empty file name without '/' or '\\' "
            "that does not start with '.'"
        )
    return run_id


def write_record(results_dir: Path, record: dict[str, Any]) -> Path:
    """Write ``record`` to ``runs/<run_id>.json`` atomically and return the path."""
    for key in REQUIRED_KEYS:
        if key not in record:
            raise BenchError(f"run record is missing the required key {key!r}")
    run_id = _check_run_id(record["run_id"])
    path = runs_dir(results_dir) / f"{run_id}.json"
    atomic_write_json(path, record)
    return path


def _record_files(results_dir: Path) -> list[Path]:
    folder = runs_dir(results_dir)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.json") if not p.name.startswith("."))


def _read_one(path: Path) -> dict[str, Any] | None:
    """The record in ``path``, or None (with a warning) if it cannot be read or is malformed."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        warnings.warn(f"skipping unreadable run record {path}: {exc}", stacklevel=3)
        return None
    if not isinstance(record, dict):
        warnings.warn(f"skipping run record {path}: not a JSON object", stacklevel=3)
        return None
    missing = [k for k in REQUIRED_KEYS if k not in record]
    if missing:
        warnings.warn(
            f"skipping run record {path}: missing key(s) {', '.join(missing)}", stacklevel=3
        )
        return None
    return record


def _sort_key(record: dict[str, Any]) -> tuple[str, str, int, str, str, str]:
    seed = record.get("seed")
    return (
        str(record["dataset"]),
        str(record["method"]),
        seed if isinstance(seed, int) else -1,
        str(record.get("fold") or ""),
        str(record.get("train_dataset") or ""),
        str(record["run_id"]),
    )


def read_records(results_dir: Path, *, dataset: str | None = None) -> list[dict[str, Any]]:
    """Every record in ``runs/*.json``, sorted by (dataset, method, seed, fold).

    A file that cannot be parsed (e.g. truncated by a crash or another tool) is skipped with a
    ``warnings.warn`` naming it; a missing ``runs`` folder gives an empty list.
    """
    records = [r for p in _record_files(results_dir) if (r := _read_one(p)) is not None]
    if dataset is not None:
        records = [r for r in records if r["dataset"] == dataset]
    return sorted(records, key=_sort_key)


def load_record(results_dir: Path, run_id: str) -> dict[str, Any]:
    """The record with this ``run_id``; BenchError naming the id and the nearest ids if absent."""
    path = runs_dir(results_dir) / f"{_check_run_id(run_id)}.json"
    if not path.is_file():
        known = [p.stem for p in _record_files(results_dir)]
        near = close_matches(run_id, known, n=3)
        hint = f"; nearest: {', '.join(near)}" if near else ""
        raise BenchError(f"no run record {run_id!r} under {runs_dir(results_dir)}{hint}")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BenchError(f"cannot read run record {path}: {exc}") from exc
    if not isinstance(record, dict):
        raise BenchError(f"run record {path} is not a JSON object")
    return record


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
