"""The schema of a run record, ``runs/<run_id>.json``: every field the leaderboard and ``bench
report`` rely on, checked by :func:`validate_record` whenever a record is read.

A record is what :func:`bench.engine.runner.run` writes. The rules:

* ``metrics``: fractions in [0, 1] (the tables show percent), finite numbers, never strings or
  booleans. ``mAP`` is required; ``mINP``, ``rank1``, ``cmc`` and the query counts may be absent
  but not null; ``rank5``, ``rank10`` and ``MRR`` may be null (not computed: the CMC is shorter
  than 5 or 10; the writer stores NaN as null). The CMC never decreases, and ``num_queries`` is
  at least ``num_valid_queries``.
* ``run_id`` a file name; ``method``, ``dataset`` and the other names the tables print one line
  each; ``seed`` an integer in [0, 2**32 - 1]; ``config`` and ``config_diff`` JSON objects;
  ``data`` maps each dataset role to its ``fingerprint`` (``dataset``; ``train_dataset``, or
  ``train_dataset.0``, ``train_dataset.1``, ... for several sources); ``dataset_options`` is a
  JSON object and ``train_dataset_options`` a list of them (one per source); ``oracle`` equals
  the config's ``protocol.oracle_gallery_text`` where the config has it; timings are
  non-negative.
* Fields not named here (plugin facts, fields of newer versions) are allowed, but no number
  anywhere in a record may be NaN or infinite (``json`` reads ``NaN``, ``Infinity`` and ``1e400``
  as such floats; the writer never writes them).

A record that breaks a rule raises :class:`RecordError`, one line naming the field:
``metrics.mAP: must be a finite number, got NaN``.
"""

from __future__ import annotations

import json
import math
import re
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from bench.api.ranges import SEED
from bench.errors import BenchError

#: A run id: a file name that is not empty, has no ``/``, ``\\`` or NUL, does not start with ``.``.
RUN_ID_PATTERN = r"^[^./\\\x00][^/\\\x00]*$"
RUN_ID = re.compile(RUN_ID_PATTERN)
#: A name the tables print (method, dataset, preset, ...): one line, no control characters.
LINE_PATTERN = r"^[^\x00-\x1f\x7f]*$"
#: The config key that makes a run an oracle (its record must then say ``"oracle": true``).
ORACLE_KEY = "protocol.oracle_gallery_text"

_RULES = ConfigDict(extra="allow", strict=True, allow_inf_nan=False)

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
Seconds = Annotated[float, Field(ge=0.0)]
Count = Annotated[int, Field(ge=0)]
Seed = Annotated[int, Field(ge=SEED.low, le=SEED.high)]  # what --seed accepts
Line = Annotated[str, Field(pattern=LINE_PATTERN)]
Name = Annotated[str, Field(min_length=1, pattern=LINE_PATTERN)]
RunId = Annotated[str, Field(pattern=RUN_ID_PATTERN)]


def _absent() -> Any:
    """The default of a field that may be absent but not null: pydantic validates an explicit
    null against the field's type, never the default."""
    return Field(default=None)


class Fingerprint(BaseModel):
    """One dataset's entry of ``data``: ``{"fingerprint": hex digits, "files": n, ...}``."""

    model_config = _RULES
    fingerprint: Name


class Metrics(BaseModel):
    """``metrics``: ranking metrics (or the tracklet protocol's) as fractions in [0, 1]."""

    model_config = _RULES
    mAP: Fraction
    mINP: Fraction = _absent()
    rank1: Fraction = _absent()
    rank5: Fraction | None = None
    rank10: Fraction | None = None
    MRR: Fraction | None = None
    cmc: list[Fraction] = _absent()
    num_valid_queries: Count = _absent()
    num_queries: Count = _absent()
    # The tracklet protocol (bench.evaluation.tracklet_protocol); probes null where the
    # dataset does not annotate them.
    HR_1: Fraction = Field(default=None, alias="HR@1")
    HR_5: Fraction = Field(default=None, alias="HR@5")
    AUROC: Fraction = _absent()
    AP: Fraction = _absent()
    size_F1: Fraction | None = None
    histology_acc: Fraction | None = None
    num_tracklets: Count = _absent()

    @field_validator("cmc")
    @classmethod
    def _non_decreasing(cls, cmc: list[float]) -> list[float]:
        for i in range(1, len(cmc)):
            if cmc[i] < cmc[i - 1]:
                raise PydanticCustomError(
                    "non_decreasing",
                    "must not decrease, got {value} at [{index}] after {previous}",
                    {"value": f"{cmc[i]:g}", "index": i, "previous": f"{cmc[i - 1]:g}"},
                )
        return cmc

    @field_validator("num_queries")
    @classmethod
    def _at_least_valid(cls, total: int, info: ValidationInfo) -> int:
        valid = info.data.get("num_valid_queries")
        if valid is not None and total < valid:
            raise PydanticCustomError(
                "valid_queries",
                "must be at least num_valid_queries ({valid}), got {total}",
                {"valid": valid, "total": total},
            )
        return total


class RunRecord(BaseModel):
    """A run record as the leaderboard reads it (other fields allowed and not checked)."""

    model_config = _RULES
    schema_version: Count = Field(default=1, alias="schema")
    run_id: RunId
    method: Name
    family: Line | None = None
    dataset: Name
    train_dataset: Line | None = None  # several sources: their names joined by ','
    dataset_options: dict[str, Any] | None = None  # --dataset NAME:key=value
    train_dataset_options: list[dict[str, Any]] | None = None  # one per source
    protocol: Line | None = None
    preset: Line | None = None
    seed: Seed
    fold: Line | None = None
    config: dict[str, Any] | None = None
    config_diff: dict[str, Any] | None = None
    config_hash: str | None = None
    data: dict[str, Fingerprint] | None = None
    text_policy: Line | None = None
    oracle: bool = Field(default=False, validate_default=True)
    reported: bool = False
    source: str | None = None
    metrics: Metrics
    timings: dict[str, Seconds] | None = None

    @field_validator("oracle")
    @classmethod
    def _oracle_as_configured(cls, oracle: bool, info: ValidationInfo) -> bool:
        configured = (info.data.get("config") or {}).get(ORACLE_KEY)
        if configured is not None and configured != oracle:
            raise PydanticCustomError(
                "oracle",
                "must be {configured} as the config sets {key}={configured}, got {oracle}",
                {"oracle": _text(oracle), "key": ORACLE_KEY, "configured": _text(configured)},
            )
        return oracle


class RecordError(BenchError):
    """A run record cannot be parsed or breaks the schema; the message names the field,
    ``<field>: <problem>`` (prefixed by the file where the reader knows it)."""


def _text(value: Any, width: int = 60) -> str:
    """``value`` as JSON spells it (``NaN``, ``null``, ``true``), cut to ``width`` characters."""
    text = json.dumps(value, default=repr, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 3] + "..."


def _field(loc: tuple[int | str, ...]) -> str:
    """``metrics.cmc[3]`` for ``("metrics", "cmc", 3)``; ``record`` for the whole record."""
    text = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)
    return text.lstrip(".") or "record"


_PROBLEMS = {
    "missing": "missing",
    "finite_number": "must be a finite number",
    "float_type": "must be a number",
    "int_type": "must be an integer",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "dict_type": "must be a JSON object",
    "model_type": "must be a JSON object",
    "list_type": "must be a JSON array",
    "less_than_equal": "must be at most {le}",
    "greater_than_equal": "must be at least {ge}",
    "string_too_short": "must not be empty",
}
#: What breaking each pattern means.
_PATTERNS = {
    RUN_ID_PATTERN: "must be a file name without '/' or '\\' not starting with '.'",
    LINE_PATTERN: "must be one line without control characters",
}


#: Errors whose message says all: no ``got <value>`` after it.
_NO_INPUT = {"missing", "oracle", "non_decreasing", "valid_queries"}


def _problem(error: ErrorDetails) -> str:
    """One pydantic error as ``<field>: <problem>, got <value>``."""
    kind = error["type"]
    ctx = {k: f"{v:g}" if isinstance(v, float) else v for k, v in (error.get("ctx") or {}).items()}
    if kind == "string_pattern_mismatch":
        problem = _PATTERNS[ctx["pattern"]]
    else:
        problem = _PROBLEMS[kind].format(**ctx) if kind in _PROBLEMS else error["msg"]
    got = "" if kind in _NO_INPUT else f", got {_text(error['input'])}"
    return f"{_field(error['loc'])}: {problem}{got}"


def _non_finite(data: Any) -> tuple[tuple[int | str, ...], float] | None:
    """Where the first NaN or infinite number of a parsed JSON value is, in document order."""
    stack: list[tuple[tuple[int | str, ...], Any]] = [((), data)]
    while stack:
        loc, value = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            return loc, value
        if isinstance(value, dict):
            children: list[tuple[int | str, Any]] = list(value.items())
        elif isinstance(value, list):
            children = list(enumerate(value))
        else:
            continue
        stack.extend(((*loc, key), item) for key, item in reversed(children))
    return None


def validate_record(data: Any) -> dict[str, Any]:
    """``data`` itself (unchanged) if it is a valid run record (module docstring); otherwise
    :class:`RecordError` naming the first field at fault and how many more there are."""
    found = _non_finite(data)
    if found is not None:
        loc, value = found
        raise RecordError(f"{_field(loc)}: must be a finite number, got {_text(value)}")
    try:
        RunRecord.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise RecordError(_problem(errors[0]) + more) from None
    return data
