"""Column types of the PostgreSQL sink: each polars type's exact PostgreSQL type, the
values a column of a given type cannot hold as they are, and the text COPY sends.

Every mapping keeps the value: integers into the smallest type holding every value of their
polars type (``UInt64`` into ``numeric(20,0)``, as no PostgreSQL integer holds 2**64-1),
floats into ``real`` / ``double precision`` (which hold NaN and the infinities too),
decimals into ``numeric(p,s)``, text into ``text``, datetimes into ``timestamp`` (no time
zone) or ``timestamptz`` (with one), durations into ``interval``. What PostgreSQL cannot
hold is rejected, never changed: text with a NUL character, time values finer than a
microsecond (PostgreSQL keeps microseconds), dates and datetimes outside the years 1 to
9999 (PostgreSQL holds more, but the COPY text this sink sends has no exact form of
them: a BC year is written `... BC` there, not `-0221`), nested values
(lists, structs: convert them to JSON text first), opaque objects.

A column that exists already (the user's table, or one made by an earlier checkpoint) may
have another type than a new frame's: a value goes in when the column keeps it exactly
(``3.0`` into ``bigint``, an ``Int32`` into ``bigint``), and is rejected otherwise
(``2.5`` into ``bigint``, a number into ``text``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl

from surestream.connectors.sink_protocol import ColumnCheck, contains_type, shown

_INTS = {"smallint": (-(2**15), 2**15 - 1), "integer": (-(2**31), 2**31 - 1),
         "bigint": (-(2**63), 2**63 - 1)}
_SCALARS: dict[type, str] = {
    pl.Int8: "smallint", pl.Int16: "smallint", pl.Int32: "integer", pl.Int64: "bigint",
    pl.UInt8: "smallint", pl.UInt16: "integer", pl.UInt32: "bigint",
    pl.UInt64: "numeric(20,0)", pl.Float32: "real", pl.Float64: "double precision",
    pl.Boolean: "boolean", pl.String: "text", pl.Categorical: "text", pl.Enum: "text",
    pl.Binary: "bytea", pl.Date: "date", pl.Time: "time without time zone",
    pl.Duration: "interval",
}
_EXACT_FLOAT = {"real": 2**24, "double precision": 2**53}


def refused_by_postgres(dtype: pl.DataType) -> str | None:
    """What a column type is when no PostgreSQL column can hold it as it is, else None."""
    if contains_type(dtype, lambda d: d == pl.Object):
        return "an opaque Python object"
    if isinstance(dtype, pl.List | pl.Array | pl.Struct):
        return "a nested value"
    return None


def postgres_type(dtype: pl.DataType) -> str | None:
    """The PostgreSQL type that holds every value of ``dtype`` exactly (None: the null
    type, which has no values yet; or a refused type)."""
    if isinstance(dtype, pl.Datetime):
        return "timestamp with time zone" if dtype.time_zone else "timestamp without time zone"
    if isinstance(dtype, pl.Decimal):
        precision = dtype.precision or 38
        return f"numeric({precision},{dtype.scale})"
    for kind, name in _SCALARS.items():
        if dtype == kind or isinstance(dtype, kind):
            return name
    return None


def _integral_in(series: pl.Series, low: int, high: int) -> np.ndarray:
    """Rows of a numeric series whose value is not an integer in [low, high]."""
    if series.dtype.is_integer():
        bad = (series < low) | (series > high)
    else:
        floats = series.cast(pl.Float64)
        bad = (~floats.is_finite()) | (floats != floats.floor()) | (floats < float(low)) \
            | (floats >= float(high) + 1)
    return bad.fill_null(False).to_numpy()


def _sub_microsecond(series: pl.Series) -> np.ndarray:
    """Rows of a time-like series with a part finer than a microsecond."""
    dtype = series.dtype
    if isinstance(dtype, pl.Datetime | pl.Duration) and dtype.time_unit != "ns":
        return np.zeros(len(series), dtype=bool)
    nanos = series.to_physical().cast(pl.Int64)
    return (nanos % 1000 != 0).fill_null(False).to_numpy()


def changed_rows(have: str, series: pl.Series) -> tuple[np.ndarray, str] | None:
    """Rows of ``series`` a PostgreSQL column of type ``have`` would not keep as they are,
    and why (None: every row is kept). Nulls are always kept."""
    dtype = series.dtype
    got = postgres_type(dtype)
    present = series.is_not_null().to_numpy()
    if isinstance(dtype, pl.Datetime | pl.Time | pl.Duration):
        finer = _sub_microsecond(series)
        if finer.any():
            return finer, "PostgreSQL keeps microseconds, and this value has nanoseconds"
    if dtype == pl.Date or isinstance(dtype, pl.Datetime):
        years = series.dt.year()
        bad = ((years < 1) | (years > 9999)).fill_null(False).to_numpy()
        if bad.any():
            return bad, ("the sink writes the years 1 to 9999 (COPY text has no exact form "
                         "of the others here)")
    if dtype == pl.String:
        bad = series.str.contains("\x00", literal=True).fill_null(False).to_numpy()
        if bad.any():
            return bad, "PostgreSQL text cannot hold the NUL character (\\x00)"
    if got == have:
        return None
    numeric = dtype.is_numeric() and not isinstance(dtype, pl.Decimal)
    if have in _INTS and numeric:
        bad = _integral_in(series, *_INTS[have])
        return (bad, f"a {have} column holds whole numbers in its range only") \
            if bad.any() else None
    if have in _EXACT_FLOAT and dtype.is_integer():
        limit = _EXACT_FLOAT[have]
        bad = _integral_in(series, -limit, limit)
        return (bad, f"{have} holds integers exactly up to {limit:,} only") \
            if bad.any() else None
    if have == "double precision" and dtype == pl.Float32:
        return None
    if have == "real" and dtype == pl.Float64:
        kept = series.cast(pl.Float32).cast(pl.Float64)
        bad = ~((kept == series) | series.is_nan() | series.is_null())
        bad_rows = bad.fill_null(False).to_numpy()
        return (bad_rows, "real (float4) would round this value") if bad_rows.any() else None
    if have in ("numeric", "numeric(20,0)") and dtype.is_integer():
        return None
    if have == "text" and got == "text":
        return None
    if have.startswith("character varying") and got == "text":
        limit = int(have.split("(", 1)[1].rstrip(")")) if "(" in have else None
        if limit is None:
            return None
        bad = (series.str.len_chars() > limit).fill_null(False).to_numpy()
        return (bad, f"{have} holds at most {limit} characters") if bad.any() else None
    return present, f"a {have} column cannot hold a {got or dtype} value as it is"


def column_check(output: str, types: dict[str, str]) -> ColumnCheck:
    """Rejects the values a column (of ``types``: column -> PostgreSQL type) would not keep;
    a column not in ``types`` yet is checked against the type it would be made with."""

    def check(name: str, series: pl.Series) -> tuple[np.ndarray, Callable[[Any], str]] | None:
        if refused_by_postgres(series.dtype) or series.null_count() == len(series):
            return None
        have = types.get(name) or postgres_type(series.dtype)
        if have is None:
            return None
        found = changed_rows(have, series)
        if found is None:
            return None
        mask, why = found
        return mask, lambda value: (
            f"{output} cannot hold the {series.dtype} value {shown(value)} in column "
            f"{name!r} ({have}): {why}; give the column one type before this output "
            "(e.g. a cast in a with_columns step), or write to a new table")

    return check


def copy_text(frame: pl.DataFrame, types: dict[str, str]) -> pl.DataFrame:
    """The frame as COPY's CSV will send it: each column in a form its PostgreSQL type
    parses back to the same value (bytes as ``\\x`` hex, durations in microseconds, floats
    bound for an integer column as integers)."""
    out = []
    for name, dtype in frame.schema.items():
        have = types[name]
        column = pl.col(name)
        if dtype == pl.Binary:
            column = pl.lit("\\x") + column.bin.encode("hex")
        elif isinstance(dtype, pl.Duration):
            column = column.dt.total_microseconds().cast(pl.String) + pl.lit(" microseconds")
        elif have in _INTS and dtype.is_float():
            column = column.cast(pl.Int64)
        elif isinstance(dtype, pl.Categorical | pl.Enum):
            column = column.cast(pl.String)
        elif isinstance(dtype, pl.Time):
            column = column.dt.strftime("%H:%M:%S%.6f")
        out.append(column.alias(name))
    return frame.select(out)
