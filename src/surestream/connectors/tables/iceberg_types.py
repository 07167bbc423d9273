"""Which polars values an Iceberg table can hold, and the Arrow form they are written in.

Iceberg has no unsigned integers, no durations, no nanosecond timestamps (format v2) and
microsecond times; polars has all of them. A value is written only where Iceberg holds it
exactly: unsigned ints widen to a signed type that holds them (a UInt64 above 2**63-1 is
rejected), millisecond timestamps become microseconds (exact), a nanosecond timestamp or
time is written when it is a whole microsecond and rejected otherwise; categorical text
is written as text. A column the table already holds takes a value of the same type or
of one Iceberg promotes (int -> long, float -> double); any other value is rejected
(sink_protocol: a sink never changes a value to make it fit).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from surestream.connectors.sink_protocol import ColumnCheck, contains_type, shown

INT64_MAX = 2**63 - 1
_WIDER_INT = {pl.UInt8: pl.Int32, pl.UInt16: pl.Int32, pl.UInt32: pl.Int64,
              pl.UInt64: pl.Int64, pl.Int8: pl.Int32, pl.Int16: pl.Int32}


def refused_by_iceberg(dtype: pl.DataType) -> str | None:
    """A type no Iceberg column holds, whatever the value."""
    if contains_type(dtype, lambda d: d == pl.Object):
        return "an opaque Python object"
    if contains_type(dtype, lambda d: isinstance(d, pl.Duration)):
        return "a duration (Iceberg has no duration type)"
    return None


def value_checks(output: str) -> list[ColumnCheck]:
    """Per-value checks: a UInt64 above the long range, a sub-microsecond time."""

    def check(name: str, series: pl.Series) -> tuple[np.ndarray, Callable[[Any], str]] | None:
        dtype = series.dtype
        if dtype == pl.UInt64:
            bad = (series > INT64_MAX).fill_null(False)
            why = "is above the largest Iceberg long (2**63-1)"
        elif (isinstance(dtype, pl.Datetime) and dtype.time_unit == "ns") or dtype == pl.Time:
            bad = (series.to_physical() % 1000 != 0).fill_null(False)
            why = "has nanoseconds, and Iceberg keeps microseconds"
        else:
            return None
        if not bad.any():
            return None
        return bad.to_numpy(), lambda value: (
            f"{output}: the value {shown(value)} in column {name!r} {why}; round or cast "
            "it first (e.g. in a with_columns step)")

    return [check]


def iceberg_frame(data: pl.DataFrame) -> pl.DataFrame:
    """``data`` with its columns in types Iceberg holds exactly (after ``reject``)."""
    casts = []
    for name, dtype in data.schema.items():
        if dtype in _WIDER_INT:
            casts.append(pl.col(name).cast(_WIDER_INT[dtype]))
        elif isinstance(dtype, pl.Datetime) and dtype.time_unit != "us":
            casts.append(pl.col(name).cast(pl.Datetime("us", dtype.time_zone)))
        elif isinstance(dtype, pl.Categorical | pl.Enum):
            casts.append(pl.col(name).cast(pl.String))
    nulls = [n for n, d in data.schema.items() if d == pl.Null]
    out = data.with_columns(casts) if casts else data
    # a column of only nulls has no type yet: it is left out (read back as null)
    return out.drop(nulls) if nulls else out


def arrow_table(data: pl.DataFrame, table_schema: pa.Schema | None) -> pa.Table:
    """The Arrow table to write: text as plain strings, columns the table holds in the
    table's own (promoted) type."""
    arrow = data.to_arrow()
    fields = []
    for field in arrow.schema:
        typ = field.type
        if pa.types.is_large_string(typ) or pa.types.is_string_view(typ):
            typ = pa.string()
        elif pa.types.is_large_binary(typ) or pa.types.is_binary_view(typ):
            typ = pa.binary()
        if table_schema is not None and field.name in table_schema.names:
            have = table_schema.field(field.name).type
            if _promotes(typ, have):
                typ = have
        fields.append(pa.field(field.name, typ, nullable=True))
    return arrow.cast(pa.schema(fields))


def _promotes(got: pa.DataType, have: pa.DataType) -> bool:
    return (got == have or (pa.types.is_int32(got) and pa.types.is_int64(have))
            or (pa.types.is_float32(got) and pa.types.is_float64(have)))


def conflict_check(output: str, table_schema: pa.Schema | None) -> ColumnCheck:
    """Rejects the values of a column whose type the table's column cannot take."""

    def check(name: str, series: pl.Series) -> tuple[np.ndarray, Callable[[Any], str]] | None:
        if table_schema is None or name not in table_schema.names:
            return None
        if series.dtype == pl.Null or series.null_count() == len(series):
            return None
        frame = iceberg_frame(pl.DataFrame({name: series.head(0)}))
        if name not in frame.columns:
            return None
        got = arrow_table(frame, table_schema).schema.field(name).type
        have = table_schema.field(name).type
        if _same_kind(got, have):
            return None
        return series.is_not_null().to_numpy(), lambda value: (
            f"{output} holds column {name!r} as {have}, which cannot take the {got} value "
            f"{shown(value)}; give the column one type before this output (e.g. a cast in "
            "a with_columns step), or write to a new table")

    return check


def _same_kind(got: pa.DataType, have: pa.DataType) -> bool:
    if _promotes(got, have):
        return True
    text = (pa.string(), pa.large_string(), pa.string_view())
    if got in text and have in text:
        return True
    if pa.types.is_timestamp(got) and pa.types.is_timestamp(have):
        return (got.tz is None) == (have.tz is None)
    if pa.types.is_nested(got) or pa.types.is_nested(have):
        return got.equals(have, check_metadata=False) or (
            pa.types.is_nested(got) and pa.types.is_nested(have))
    return False
