"""Run records on disk: one JSON file per run under ``<results_dir>/runs/<run_id>.json``.

Every write is atomic (temp file in the same folder, fsync, ``os.replace``), so a reader never
sees a half-written record, even while runs write concurrently. Temp files are named
``.<name>.<random>.tmp`` and never match ``*.json``.

Runs that failed (``bench sweep`` records them) go to ``<results_dir>/failed/``, one file per
failing run keyed by its config hash, never among the records: the leaderboard cannot count them,
and a later success of the same run removes its failure file.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from bench.errors import BenchError

#: Keys every run record must have (write_record refuses a record without them).
REQUIRED_KEYS = ("run_id", "method", "dataset", "metrics", "seed")

_BAD_RUN_ID = re.compile(r"[/\\\x00]")


def runs_dir(results_dir: Path) -> Path:
    """The folder of run records: ``results_dir / "runs"``."""
    return Path(results_dir) / "runs"


def _atomic_write(path: Path, write: Callable[[IO[str]], None]) -> None:
    """Call ``write`` on a temp file next to ``path``, then rename it onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed below, renamed or removed
        mode="w",
        encoding="utf-8",
        dir=path.parent,
        prefix=f".{path.name}.",
        suffix=".tmp",
        delete=False,
    )
    try:
        with tmp:
            write(tmp)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp.name, path)
    except BaseException:
        Path(tmp.name).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically; the old file stays intact on failure."""
    _atomic_write(path, lambda fh: fh.write(text))


def _json_safe(obj: Any, where: str = "$") -> Any:
    """A copy of ``obj`` that strict JSON can hold: NaN -> None, numpy scalars/arrays -> Python.

    Raises ValueError naming the key path for an infinite float (no JSON equivalent).
    Objects JSON cannot encode at all are left as they are (``json`` raises TypeError on them).
    """
    if isinstance(obj, dict):
        return {k: _json_safe(v, f"{where}.{k}") for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    if type(obj).__module__ == "numpy" and hasattr(obj, "tolist"):
        return _json_safe(obj.tolist(), where)  # numpy scalar or array
    if isinstance(obj, float) and not math.isfinite(obj):
        if math.isnan(obj):
            return None
        raise ValueError(f"cannot write {obj} at {where} to JSON (infinite value)")
    return obj


def atomic_write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON atomically (NaN written as null; infinity is an error)."""
    safe = _json_safe(obj)

    def write(fh: IO[str]) -> None:
        json.dump(safe, fh, indent=2, sort_keys=False, allow_nan=False, ensure_ascii=False)
        fh.write("\n")

    _atomic_write(path, write)


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
        near = difflib.get_close_matches(run_id, known, n=3, cutoff=0.5)
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
