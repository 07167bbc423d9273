"""Which values a table column keeps exactly: the checks the table sinks share.

A table holds a column in one type. A value of another type goes in only when the
column's type keeps it exactly (an Int32 into Int64, a whole-second datetime into a
seconds column); any value the cast would change -- round, truncate, overflow, turn into
null -- is named in a ``Rejection`` (the errors output), never written changed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl

from surestream.connectors.sink_protocol import ColumnCheck, shown


def changed_by_cast(series: pl.Series, target: pl.DataType) -> np.ndarray:
    """A mask of the rows whose value ``target`` would not keep as it is: the cast fails
    (null where there was a value) or does not cast back to the same value."""
    if series.dtype == target:
        return np.zeros(len(series), dtype=bool)
    try:
        cast = series.cast(target, strict=False)
        back = cast.cast(series.dtype, strict=False)
    except Exception:  # noqa: BLE001 -- polars has no cast between the two types at all
        return series.is_not_null().to_numpy()
    lost = cast.is_null() & series.is_not_null()
    differs = (back != series).fill_null(False)
    if series.dtype.is_float():
        differs &= ~(series.is_nan() & back.is_nan()).fill_null(False)
    return (lost | differs).to_numpy()


def table_type_check(output: str, held: Callable[[str], pl.DataType | None]) -> ColumnCheck:
    """Rejects values a column of the table (``held(name)``: its type, None while the table
    has no such column) would not keep."""

    def check(name: str, series: pl.Series) -> tuple[np.ndarray, Callable[[Any], str]] | None:
        have = held(name)
        if have is None or have == series.dtype or series.dtype == pl.Null:
            return None
        mask = changed_by_cast(series, have)
        if not mask.any():
            return None
        return mask, lambda value: (
            f"{output} holds column {name!r} as {have}, which cannot hold the "
            f"{series.dtype} value {shown(value)} as it is; give the column one type before "
            "this output (e.g. a cast in a with_columns step), or write to a new table")

    return check


def value_check(output: str, bad: Callable[[pl.Series], pl.Series | None],
                what: str, advice: str) -> ColumnCheck:
    """Rejects the rows where ``bad(series)`` (a boolean series, or None: no such rows for
    this column's type) is true, saying ``what`` is wrong with the value."""

    def check(name: str, series: pl.Series) -> tuple[np.ndarray, Callable[[Any], str]] | None:
        mask = bad(series)
        if mask is None:
            return None
        mask = mask.fill_null(False)
        if not mask.any():
            return None
        return mask.to_numpy(), lambda value: (
            f"{output} cannot hold {what} in column {name!r}: {shown(value)}; {advice}")

    return check
