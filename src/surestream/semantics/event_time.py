"""Event-time extraction (SEMANTICS §1): a timestamp column -> int64 ms since the epoch.

Accepted values, per record:

- integers: epoch milliseconds (the Flink cases and every connector write ints as ms);
- floats: epoch seconds when ``|x| < 1e11``, else epoch milliseconds;
- strings: ISO-8601 with a zone (``2025-12-25T10:30:00Z``, ``+00:00``) or a plain number;
- ``timestamp_unit: s`` / ``ms`` on the watermark step forces the unit of numbers.

Anything else -- missing, null, a string without a zone, garbage -- is not guessed: the row
is reported with a reason so that the record goes to the errors output. So is a timestamp
outside the valid range (default the years 1900 to 2500, ``model.time_range``): one record
at int64 max would otherwise push the watermark to the end of time, and every later record
would be late. Values are range-checked before they become int64 (``1e300`` is out of
range, not an overflow), and negative values inside the range (before 1970) are valid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl

from surestream.model.time_range import (
    DEFAULT_MAX_TIMESTAMP,
    DEFAULT_MIN_TIMESTAMP,
    format_epoch_ms,
    to_epoch_ms,
)

SECONDS_BELOW = 1e11  # a float under this is epoch seconds (1e11 s is the year 5138)
DEFAULT_RANGE_MS = (to_epoch_ms(DEFAULT_MIN_TIMESTAMP), to_epoch_ms(DEFAULT_MAX_TIMESTAMP))

TimestampUnit = Literal["auto", "ms", "s"]


@dataclass(frozen=True, slots=True)
class EventTimes:
    """Timestamps for the rows where ``ok`` is true; ``reasons[i]`` says why row i is not,
    and ``out_of_range[i]`` whether that is because it lies outside the valid range."""

    ts: np.ndarray  # int64; meaningless where not ok
    ok: np.ndarray  # bool
    reasons: list[str | None] | None  # None when every row is ok
    out_of_range: np.ndarray | None = None  # bool; None when every row is ok


def _numbers_to_ms(values: pl.Series, unit: TimestampUnit) -> pl.Series:
    """Milliseconds, not yet range-checked: the integers themselves when they are ms,
    else floored Float64 (which may be huge, infinite or NaN)."""
    if values.dtype.is_integer() and unit in ("auto", "ms"):
        return values
    f = values.cast(pl.Float64)
    if unit == "s":
        expr = pl.lit(f) * 1000.0
    elif unit == "ms" or values.dtype.is_integer():
        expr = pl.lit(f)
    else:  # auto, floats: seconds below 1e11, else milliseconds
        expr = pl.when(pl.lit(f).abs() < SECONDS_BELOW).then(pl.lit(f) * 1000.0).otherwise(f)
    return pl.select(expr.floor()).to_series()


def _strings_to_ms(values: pl.Series, unit: TimestampUnit) -> pl.Series:
    """ISO-8601 with a zone, or a number written as a string, as Float64 milliseconds."""
    iso_ms = values.str.to_datetime(time_zone="UTC", strict=False, time_unit="ms").dt.epoch("ms")
    # A string parsed without an explicit zone would be a guess: reject it.
    has_zone = values.str.contains(r"(Z|z|[+-]\d{2}:?\d{2})$")
    numeric = values.str.strip_chars().cast(pl.Float64, strict=False)
    num_ms = _numbers_to_ms(numeric, unit)
    if unit == "auto":
        # "1700000000000" is a number written as a string: integral values are ms, like ints
        num_ms = pl.select(pl.when(numeric == numeric.floor()).then(numeric)
                           .otherwise(num_ms)).to_series()
    return pl.select(pl.coalesce(pl.when(has_zone).then(iso_ms.cast(pl.Float64)),
                                 num_ms)).to_series()


def _raw_ms(values: pl.Series, unit: TimestampUnit) -> pl.Series | None:
    """Milliseconds before the range check (null where unreadable), or None for a type
    that cannot hold a timestamp."""
    dtype = values.dtype
    if dtype.is_integer() or dtype.is_float():
        return _numbers_to_ms(values, unit)
    if dtype == pl.String:
        return _strings_to_ms(values, unit)
    if dtype == pl.Date:
        return values.cast(pl.Datetime("ms")).dt.epoch("ms")
    if dtype == pl.Datetime:
        return values.dt.epoch("ms")
    if dtype == pl.Null:
        return pl.Series(values.name, [None] * values.len(), dtype=pl.Int64)
    return None


def extract_event_time(data: pl.DataFrame, column: str, unit: TimestampUnit = "auto",
                       valid_range: tuple[int, int] = DEFAULT_RANGE_MS) -> EventTimes:
    """Read ``column`` of ``data`` as event time; never raises for bad values.

    ``valid_range`` is ``(min, max)`` in epoch ms, both included; a value outside it is
    reported (reason naming the column, the value and the range), never turned into ms."""
    n = data.height
    if column not in data.columns:
        return EventTimes(np.zeros(n, np.int64), np.zeros(n, bool),
                          [f"missing timestamp column {column!r}"] * n, np.zeros(n, bool))
    values = data.get_column(column)
    raw = _raw_ms(values, unit)
    if raw is None:
        return EventTimes(np.zeros(n, np.int64), np.zeros(n, bool),
                          [f"timestamp {column!r} has unsupported type {values.dtype}"] * n,
                          np.zeros(n, bool))
    lo, hi = valid_range
    # compare as floats: exact for the bounds (|bound| <= 10^15 < 2^53), and a value far
    # outside int64 (1e300, a UInt64 above int64 max) is simply beyond them
    as_float = raw.cast(pl.Float64)
    readable = (as_float.is_not_null() & as_float.is_not_nan()).to_numpy()
    in_range = (readable & (as_float >= lo).fill_null(False).to_numpy()
                & (as_float <= hi).fill_null(False).to_numpy())
    ts = np.zeros(n, dtype=np.int64)
    if in_range.all():
        ts = raw.cast(pl.Int64).to_numpy()
        return EventTimes(np.ascontiguousarray(ts, dtype=np.int64), in_range, None)
    ts[in_range] = raw.filter(pl.Series(in_range)).cast(pl.Int64).to_numpy()
    raw_null = values.is_null().to_numpy()
    outside = readable & ~in_range
    span = f"{format_epoch_ms(lo)} .. {format_epoch_ms(hi)}"
    reasons: list[str | None] = [None] * n
    for i in np.flatnonzero(~in_range).tolist():
        if outside[i]:
            reasons[i] = (f"timestamp {column!r} = {values[i]!r} is outside the valid range "
                          f"{span} (the watermark step's min_timestamp / max_timestamp)")
        elif raw_null[i]:
            reasons[i] = f"missing timestamp {column!r}"
        else:
            reasons[i] = (f"unparseable timestamp {column!r}: {values[i]!r} "
                          "(expected epoch ms, epoch s, or ISO-8601 with a zone)")
    return EventTimes(ts, in_range, reasons, outside)
