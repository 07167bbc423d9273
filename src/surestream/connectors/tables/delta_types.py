"""Which polars values a Delta table holds as they are, and as what type.

Delta's types are signed integers, floats, decimals, booleans, strings, binary, dates,
microsecond timestamps (``timestamp`` with a time zone, ``timestamp_ntz`` without), and
arrays / structs / maps of those. So:

- unsigned integers are held as the signed type one size up (``UInt64`` as ``Int64``: a
  value above 2**63-1 is rejected); categoricals and enums as strings;
- nanosecond and millisecond datetimes as microseconds: a value with a part below the
  microsecond is rejected (deltalake would drop it silently);
- times of day, durations and opaque Python objects have no Delta type: rejected, as are
  nested values holding an unsigned integer or a nanosecond datetime (kept simple: a
  nested value is written with its own types or not at all).
"""

from __future__ import annotations

import polars as pl

from surestream.connectors.sink_protocol import contains_type, refuses_objects

TYPE_ADVICE = ("cast the column to a type Delta holds first (e.g. in a with_columns step), "
               "or leave it out of this output")

_SIGNED_UP = {pl.UInt8: pl.Int16, pl.UInt16: pl.Int32, pl.UInt32: pl.Int64, pl.UInt64: pl.Int64}
_UNSIGNED = (pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64)


def _nested(dtype: pl.DataType) -> bool:
    return isinstance(dtype, pl.List | pl.Array | pl.Struct)


def refused_by_delta(dtype: pl.DataType) -> str | None:
    """What a column type is when Delta has no type for it, else None."""
    objects = refuses_objects(dtype)
    if objects:
        return objects
    if contains_type(dtype, lambda d: isinstance(d, pl.Time)):
        return "a time of day (Delta has no time type)"
    if contains_type(dtype, lambda d: isinstance(d, pl.Duration)):
        return "a duration (Delta has no duration type)"
    if _nested(dtype) and contains_type(
            dtype, lambda d: any(d == u for u in _UNSIGNED) or (isinstance(d, pl.Datetime)
                                                and d.time_unit == "ns")):
        return "a nested value holding unsigned integers or nanosecond datetimes"
    return None


def delta_column_type(dtype: pl.DataType) -> pl.DataType:
    """The polars type a Delta column holds ``dtype``'s values as."""
    for unsigned, signed in _SIGNED_UP.items():
        if dtype == unsigned:
            return signed()
    if isinstance(dtype, pl.Categorical | pl.Enum):
        return pl.String()
    if isinstance(dtype, pl.Datetime) and dtype.time_unit != "us":
        return pl.Datetime("us", dtype.time_zone)
    return dtype


def loses_in_delta(series: pl.Series) -> pl.Series | None:
    """The rows whose value Delta's type for the column would change, or None."""
    dtype = series.dtype
    if dtype == pl.UInt64:
        return series > (2**63 - 1)
    if isinstance(dtype, pl.Datetime) and dtype.time_unit == "ns":
        return series.dt.nanosecond() % 1000 != 0
    if isinstance(dtype, pl.Datetime) and dtype.time_unit == "ms":
        target = delta_column_type(dtype)
        return series.cast(target, strict=False).is_null() & series.is_not_null()
    return None
