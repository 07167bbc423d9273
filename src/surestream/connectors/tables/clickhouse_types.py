"""Which polars values a ClickHouse column holds as they are, and as what type.

Chosen for the oldest server the sink supports (18.16, Debian's package), whose types are
narrower than today's -- no DateTime64, no Bool, no LowCardinality:

=====================  =================================  ==============================
polars                 ClickHouse                         rejected values
=====================  =================================  ==============================
Int8..Int64, UInt8..   the same width and sign            --
Float32, Float64       Float32, Float64                   -- (NaN and infinities kept)
String, Categorical    String                             --
Date                   Date                               before 1970-01-01, after
                                                          2105-12-31
Datetime (any unit)    DateTime('UTC') (seconds)          a part below the second; before
                                                          1970 or after 2106-02-07
=====================  =================================  ==============================

Everything else -- booleans (ClickHouse 18 has none: ``UInt8`` 0/1 would read back as a
number), binary, decimals, times of day, durations, lists, structs, objects -- is
rejected with advice, never converted. Columns are ``Nullable(T)`` except the key and
version columns, which ClickHouse cannot order by when nullable: a null there is rejected.
A datetime is written as its instant (seconds since the epoch, UTC); a naive one is taken
as UTC, and reads back as a UTC datetime.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from surestream.connectors.sink_protocol import refuses_objects

TYPE_ADVICE = ("cast the column to a type ClickHouse holds first (e.g. in a with_columns "
               "step: a boolean to UInt8, a decimal to Float64 or String), or leave it out "
               "of this output")

_SCALARS: list[tuple[pl.DataType, str]] = [
    (pl.Int8, "Int8"), (pl.Int16, "Int16"), (pl.Int32, "Int32"), (pl.Int64, "Int64"),
    (pl.UInt8, "UInt8"), (pl.UInt16, "UInt16"), (pl.UInt32, "UInt32"), (pl.UInt64, "UInt64"),
    (pl.Float32, "Float32"), (pl.Float64, "Float64"), (pl.String, "String"),
    (pl.Date, "Date"),
]
DATETIME = "DateTime('UTC')"
#: the polars type each ClickHouse type reads back as (for checking a value fits)
POLARS_OF = {ch: pl_type for pl_type, ch in _SCALARS} | {
    DATETIME: pl.Datetime("us", "UTC"), "DateTime": pl.Datetime("us")}

MIN_DATE, MAX_DATE = dt.date(1970, 1, 1), dt.date(2105, 12, 31)
MAX_EPOCH_S = 2**32 - 1


def clickhouse_type(dtype: pl.DataType) -> str | None:
    """The ClickHouse type (not nullable) that holds ``dtype``'s values, or None."""
    for pl_type, ch in _SCALARS:
        if dtype == pl_type:
            return ch
    if isinstance(dtype, pl.Categorical | pl.Enum):
        return "String"
    if isinstance(dtype, pl.Datetime):
        return DATETIME
    return None


def refused_by_clickhouse(dtype: pl.DataType) -> str | None:
    """What a column type is when the sink has no ClickHouse type for it, else None."""
    if dtype == pl.Null or clickhouse_type(dtype) is not None:
        return None
    objects = refuses_objects(dtype)
    if objects:
        return objects
    if dtype == pl.Boolean:
        return "a boolean (ClickHouse 18 has no boolean type)"
    return f"a {dtype} value (no ClickHouse type is written for it)"


def loses_in_clickhouse(series: pl.Series) -> pl.Series | None:
    """The rows whose value the column's ClickHouse type would change, or None."""
    if isinstance(series.dtype, pl.Datetime):
        unit = {"ns": 1_000_000_000, "us": 1_000_000, "ms": 1_000}[series.dtype.time_unit]
        ticks = series.dt.epoch(series.dtype.time_unit)
        return (ticks % unit != 0) | (ticks < 0) | (ticks > MAX_EPOCH_S * unit)
    if series.dtype == pl.Date:
        return (series < MIN_DATE) | (series > MAX_DATE)
    return None


def base_type(column_type: str) -> str:
    """``Nullable(Int64)`` -> ``Int64``."""
    if column_type.startswith("Nullable(") and column_type.endswith(")"):
        return column_type[len("Nullable("):-1]
    return column_type
