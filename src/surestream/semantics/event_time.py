"""Event-time extraction (SEMANTICS §1): a timestamp column -> int64 ms since the epoch.

Accepted values, per record:

- integers: epoch milliseconds (the Flink cases and every connector write ints as ms);
- floats: epoch seconds when ``|x| < 1e11`` (``1700000000.123``), else epoch milliseconds;
- strings: ISO-8601 with a zone (``2025-12-25T10:30:00Z``, ``+00:00``) or a plain number;
- ``timestamp_unit: s`` / ``ms`` on the watermark step forces the unit of numbers.

Anything else -- missing, null, a string without a zone, garbage -- is not guessed: the row
is reported with a reason so that the record goes to the errors output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl

SECONDS_BELOW = 1e11  # a float under this is epoch seconds (1e11 s is the year 5138)

TimestampUnit = Literal["auto", "ms", "s"]


@dataclass(frozen=True, slots=True)
class EventTimes:
    """Timestamps for the rows where ``ok`` is true; ``reasons[i]`` says why row i is not."""

    ts: np.ndarray  # int64; meaningless where not ok
    ok: np.ndarray  # bool
    reasons: list[str | None] | None  # None when every row is ok


def _numbers_to_ms(values: pl.Series, unit: TimestampUnit) -> pl.Series:
    if unit == "ms" or (unit == "auto" and values.dtype.is_integer()):
        if values.dtype.is_integer():
            return values.cast(pl.Int64)
        expr = pl.lit(values).floor()
    elif unit == "s":
        expr = (pl.lit(values).cast(pl.Float64) * 1000.0).floor()
    else:  # auto, floats: seconds below 1e11, else milliseconds
        f = pl.lit(values).cast(pl.Float64)
        expr = pl.when(f.abs() < SECONDS_BELOW).then(f * 1000.0).otherwise(f).floor()
    return pl.select(expr.cast(pl.Int64, strict=False)).to_series()


def _strings_to_ms(values: pl.Series, unit: TimestampUnit) -> pl.Series:
    iso_ms = values.str.to_datetime(time_zone="UTC", strict=False, time_unit="ms").dt.epoch("ms")
    # A string parsed without an explicit zone would be a guess: reject it.
    has_zone = values.str.contains(r"(Z|z|[+-]\d{2}:?\d{2})$")
    numeric = values.str.strip_chars().cast(pl.Float64, strict=False)
    # "1700000000000" is a number written as a string: integral values are ms, like ints.
    num_ms = _numbers_to_ms(numeric, unit if unit != "auto" else "auto")
    integral = numeric == numeric.floor()
    if unit == "auto":
        num_ms = pl.select(pl.when(integral).then(numeric.cast(pl.Int64, strict=False))
                           .otherwise(num_ms)).to_series()
    return pl.select(pl.coalesce(pl.when(has_zone).then(iso_ms), num_ms)).to_series()


def extract_event_time(data: pl.DataFrame, column: str,
                       unit: TimestampUnit = "auto") -> EventTimes:
    """Read ``column`` of ``data`` as event time; never raises for bad values."""
    n = data.height
    if column not in data.columns:
        return EventTimes(np.zeros(n, np.int64), np.zeros(n, bool),
                          [f"missing timestamp column {column!r}"] * n)
    values = data.get_column(column)
    dtype = values.dtype
    if dtype.is_integer() or dtype.is_float():
        ms = _numbers_to_ms(values, unit)
    elif dtype == pl.String:
        ms = _strings_to_ms(values, unit)
    elif dtype == pl.Datetime or dtype == pl.Date:
        ms = values.cast(pl.Datetime("ms")).dt.epoch("ms") if dtype == pl.Date \
            else values.dt.epoch("ms")
    elif dtype == pl.Null:
        ms = pl.Series(column, [None] * n, dtype=pl.Int64)
    else:
        return EventTimes(np.zeros(n, np.int64), np.zeros(n, bool),
                          [f"timestamp {column!r} has unsupported type {dtype}"] * n)
    ok = ms.is_not_null().to_numpy()
    ts = ms.fill_null(0).to_numpy().astype(np.int64, copy=False)
    if ok.all():
        return EventTimes(ts, ok, None)
    raw_null = values.is_null().to_numpy()
    reasons: list[str | None] = [None] * n
    for i in np.flatnonzero(~ok):
        reasons[i] = (f"missing timestamp {column!r}" if raw_null[i]
                      else f"unparseable timestamp {column!r}: {values[int(i)]!r} "
                           "(expected epoch ms, epoch s, or ISO-8601 with a zone)")
    return EventTimes(ts, ok, reasons)
