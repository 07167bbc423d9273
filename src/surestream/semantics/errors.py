"""The error output: one record shape for everything that could not be processed.

Nothing is dropped silently (SEMANTICS §1, §6): a line that does not parse, a record
without a usable timestamp, an exception in user code, a record no route accepts -- each
becomes one record on the ``errors`` tag. Every producer builds it here, so the errors
sink, the dead-letter tooling and the tests see one schema:

=================  =====================================================================
``pipeline``       the pipeline name
``operator``       the step (operator uid) that gave up on the record
``error_type``     a category below, or the exception class name for user-code errors
``error_message``  a human-readable reason
``raw``            the record as compact JSON, or the raw input text, cut to 10,000 chars
``traceback``      the Python traceback for exceptions, else null
``category``       the category below (``user_code_error`` for exceptions in user code)
``exception``      the exception class: the user's own (``ZeroDivisionError``), the
                   decoder's for input that does not parse (``JSONDecodeError``), else the
                   class standing for what the engine found (``ValueError``, ``TypeError``)
=================  =====================================================================

The last two are what error outputs route and shape by (``PipelineSpec`` outputs'
``error_kinds`` / ``error_fields``): the default ``errors`` output writes the first six.
Each category belongs to one *kind* (``input``, ``processing``, ``output``;
``ERROR_KINDS``), so a spec can send, say, every input problem to a dead-letter output.

Error records keep the ``wm``/``seq`` (and ``ts`` when known) of the record they describe,
so the errors output is ordered like the input and is itself deterministic.
"""

from __future__ import annotations

import traceback as tb
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson
import polars as pl

from surestream.model.batch import Batch
from surestream.model.error_kinds import (  # noqa: F401 - re-exported: the producers' names
    DEFAULT_ERROR_FIELDS,
    DESERIALIZATION_ERROR,
    ENGINE_EXCEPTION,
    ERROR_CATEGORIES,
    ERROR_COLUMNS,
    ERROR_FIELD_SOURCES,
    ERROR_KINDS,
    EXPRESSION_ERROR,
    INVALID_BROADCAST_UPDATE,
    INVALID_VALUE,
    MISSING_TIMESTAMP,
    NULL_KEY,
    RECORDED_AT,
    TIMESTAMP_OUT_OF_RANGE,
    UNDECLARED_SIDE_OUTPUT,
    UNROUTABLE,
    UNWRITABLE,
    USER_CODE_ERROR,
    USER_FUNCTION_ERROR,
)
from surestream.semantics.operator import ERRORS
from surestream.semantics.records import RecordBuffer

ERROR_SCHEMA = pl.Schema({column: pl.String for column in ERROR_COLUMNS})

#: ``raw`` is cut to this many characters so one huge record cannot blow up the sink.
MAX_RAW_CHARS = 10_000
#: Tracebacks keep their *last* characters: the innermost frames say what went wrong.
MAX_TRACEBACK_CHARS = 10_000

_JSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def to_raw(value: Any) -> str:
    """The ``raw`` column for one input: text as it came, anything else as compact JSON.

    Values JSON cannot express (Decimal, sets, custom objects) are written with ``str``;
    should even that fail (an integer beyond 64 bits, a cycle), the ``repr`` is kept
    instead -- reporting an error must never raise one.
    """
    if isinstance(value, str):
        text = value
    elif isinstance(value, bytes | bytearray | memoryview):
        text = bytes(value).decode("utf-8", errors="replace")
    else:
        try:
            text = orjson.dumps(value, default=str, option=_JSON_OPTIONS).decode()
        except (TypeError, orjson.JSONEncodeError):
            text = repr(value)
    return text[:MAX_RAW_CHARS]


def describe_exception(exc: BaseException) -> tuple[str, str, str]:
    """``(error_type, error_message, traceback)`` for an exception raised by user code."""
    text = "".join(tb.format_exception(type(exc), exc, exc.__traceback__))
    return type(exc).__name__, str(exc), text[-MAX_TRACEBACK_CHARS:]


def classify(error_type: str, exception: str | None = None) -> tuple[str, str]:
    """``(category, exception class)`` of an error record from its ``error_type``: a
    category names itself (its exception defaults to ``ENGINE_EXCEPTION``); anything else
    is the class of an exception user code raised."""
    if error_type in ERROR_CATEGORIES:
        return error_type, exception or ENGINE_EXCEPTION
    if error_type == USER_FUNCTION_ERROR:
        return USER_CODE_ERROR, exception or "Exception"
    return USER_CODE_ERROR, exception or error_type


def _per_row(value: Any, n: int, name: str) -> list[Any]:
    if value is None or isinstance(value, str):
        return [value] * n
    values = list(value)
    if len(values) != n:
        raise ValueError(f"{name} has {len(values)} entries for {n} error records")
    return values


def error_batch(
    records: Sequence[Any] | pl.DataFrame,
    *,
    pipeline: str,
    operator: str,
    error_type: str | Sequence[str],
    message: str | Sequence[str],
    traceback: str | None | Sequence[str | None] = None,
    wm: Sequence[int] | np.ndarray,
    seq: Sequence[int] | np.ndarray,
    wm_end: int,
    ts: Sequence[int] | np.ndarray | None = None,
    exception: str | None | Sequence[str | None] = None,
) -> Batch:
    """Error records for many inputs at once (vectorized producers: router, parsers).

    ``records`` are dicts, raw strings/bytes, or a DataFrame whose rows are the records.
    ``error_type``, ``message``, ``traceback`` and ``exception`` (the exception class, when
    ``error_type`` is a category; see ``classify``) are one value for all or one per record.
    """
    rows = records.to_dicts() if isinstance(records, pl.DataFrame) else list(records)
    n = len(rows)
    types = _per_row(error_type, n, "error_type")
    classes = [classify(t, x) for t, x in zip(types, _per_row(exception, n, "exception"),
                                              strict=True)]
    columns = {
        "pipeline": [pipeline] * n,
        "operator": [operator] * n,
        "error_type": types,
        "error_message": _per_row(message, n, "message"),
        "raw": [to_raw(r) for r in rows],
        "traceback": _per_row(traceback, n, "traceback"),
        "category": [c for c, _ in classes],
        "exception": [x for _, x in classes],
    }
    return Batch(
        data=pl.DataFrame(columns, schema=ERROR_SCHEMA),
        wm=np.ascontiguousarray(wm, dtype=np.int64),
        seq=np.ascontiguousarray(seq, dtype=np.int64),
        wm_end=wm_end,
        ts=None if ts is None else np.ascontiguousarray(ts, dtype=np.int64),
    )


class ErrorCollector:
    """Error records gathered one at a time (record-at-a-time operators).

    Each ``add`` captures the record's position (``wm``/``seq``/``ts``), so ``to_batch``
    yields the errors in input order.
    """

    __slots__ = ("pipeline", "operator", "_buffer")

    def __init__(self, pipeline: str, operator: str) -> None:
        self.pipeline = pipeline
        self.operator = operator
        self._buffer = RecordBuffer()

    def __len__(self) -> int:
        return len(self._buffer)

    def add(
        self,
        record: Any,
        *,
        error_type: str,
        message: str,
        traceback: str | None = None,
        wm: int,
        seq: int,
        ts: int | None = None,
        exception: str | None = None,
    ) -> None:
        category, exception = classify(error_type, exception)
        row = {
            "pipeline": self.pipeline,
            "operator": self.operator,
            "error_type": error_type,
            "error_message": message,
            "raw": to_raw(record),
            "traceback": traceback,
            "category": category,
            "exception": exception,
        }
        self._buffer.append(row, ts, wm, seq)

    def add_exception(
        self, record: Any, exc: BaseException, *, wm: int, seq: int, ts: int | None = None
    ) -> None:
        """The record that user code failed on, with the exception's type, text and stack."""
        error_type, message, trace = describe_exception(exc)
        self.add(record, error_type=error_type, message=message, traceback=trace,
                 wm=wm, seq=seq, ts=ts)

    def to_batch(self, wm_end: int, *, with_ts: bool) -> Batch:
        return self._buffer.to_batch(wm_end, operator=self.operator, with_ts=with_ts,
                                     schema=ERROR_SCHEMA)

    def emit_into(self, outputs: dict[str, Batch], wm_end: int, *, with_ts: bool) -> int:
        """Add the ``errors`` output to ``outputs`` when there is anything to report, and
        return how many error records that is (for the operator's ``errors`` counter).

        The errors tag is left out when empty: it is a sink, not a stream anything reads
        the watermark from.
        """
        if self._buffer:
            outputs[ERRORS] = self.to_batch(wm_end, with_ts=with_ts)
        return len(self._buffer)
