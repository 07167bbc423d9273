"""Which values a numeric aggregation can use, and which records it must refuse.

``sum``, ``avg`` and ``vwap`` need numbers. Their input column may still hold something else:
a column of text (a CSV field that is text, a value produced by ``with_columns``), a
date, a nested object. The rule, per value (never per batch, so the batch size changes
nothing):

- numbers (integers, floats, decimals) and booleans (1/0) are used as they are, NaN and
  infinities included -- they are numbers, and IEEE arithmetic says what they do;
- text is read as a decimal number after trimming spaces (``"12.5"``, ``" 7 "``,
  ``"1e3"``); text that is not a finite number (``"n/a"``, ``""``, ``"NaN"``, ``"inf"``) is
  not used: a missing-value marker is not a number, whatever its spelling;
- any other type (dates, durations, structs, lists, binary) is not a number;
- null is "no value", as in SQL: skipped, never an error.

``min``/``max`` keep the column's own type (over text they compare text) but need values
that can be ordered: a nested value (struct, list) or an opaque object is refused.
``first``/``last`` keep any value and ``count`` counts, so they refuse nothing.

A record with a value that is not used goes to the errors output with the reason (the
function, the column and the value) and is added to no window at all: a window result
counts exactly the records it says it counts.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from surestream.model.aggregations import AggregationSpec

#: Built-in aggregations whose every input column must hold numbers.
NUMERIC_FUNCTIONS = frozenset({"sum", "avg", "vwap"})
#: Built-in aggregations that compare values.
ORDERING_FUNCTIONS = frozenset({"min", "max"})
#: Built-in aggregations that may refuse a value (the others take anything).
CHECKED_FUNCTIONS = NUMERIC_FUNCTIONS | ORDERING_FUNCTIONS

_TEXT = (pl.String, pl.Categorical, pl.Enum)


def _is_text(dtype: pl.DataType) -> bool:
    return isinstance(dtype, _TEXT) or dtype in _TEXT


def _parsed_text(series: pl.Series) -> pl.Series:
    """Text read as float64: null where it is not a finite decimal number."""
    parsed = series.cast(pl.String).str.strip_chars().cast(pl.Float64, strict=False)
    return parsed.set(~parsed.is_finite().fill_null(False), None)


def float_values(series: pl.Series) -> tuple[np.ndarray, np.ndarray | None]:
    """float64 values of a column and a validity mask (``None`` when every value counts).

    Numbers are cast; text is parsed by the rule above (a value that does not parse is
    invalid, so it is skipped -- ``unusable_rows`` has sent its record to errors before)."""
    if series.dtype.is_numeric() or series.dtype == pl.Boolean:
        values = series.cast(pl.Float64)
    elif _is_text(series.dtype):
        values = _parsed_text(series)
    else:
        values = pl.Series(series.name, [None] * len(series), dtype=pl.Float64)
    valid = None if values.null_count() == 0 else values.is_not_null().to_numpy()
    return values.to_numpy().astype(np.float64, copy=False), valid


def not_numbers(series: pl.Series) -> np.ndarray | None:
    """Rows whose value is present but is not a number (``None`` when there is none)."""
    dtype = series.dtype
    if dtype.is_numeric() or dtype == pl.Boolean or dtype == pl.Null:
        return None  # the hot path: typed columns are checked by their type alone
    bad = series.is_not_null()  # any other type: every value present is not a number
    if _is_text(dtype):
        bad &= _parsed_text(series).is_null()
    return bad.to_numpy() if bad.any() else None


def not_orderable(series: pl.Series) -> np.ndarray | None:
    """Rows whose value is present but cannot be compared (nested values, objects)."""
    dtype = series.dtype
    if not (dtype.is_nested() or dtype == pl.Object):
        return None
    bad = series.is_not_null()
    return bad.to_numpy() if bad.any() else None


def unusable_rows(data: pl.DataFrame, aggregations: dict[str, AggregationSpec]
                  ) -> tuple[np.ndarray, list[str]]:
    """The rows a window must refuse, ascending, each with the reason of its first bad
    value (aggregations in spec order). Columns missing from ``data`` are left to the
    accumulators, which name them."""
    reasons: dict[int, str] = {}
    for spec in aggregations.values():
        if spec.udf is not None or spec.function not in CHECKED_FUNCTIONS:
            continue
        numeric = spec.function in NUMERIC_FUNCTIONS
        for column in spec.columns:
            if column not in data.columns:
                continue
            series = data.get_column(column)
            bad = not_numbers(series) if numeric else not_orderable(series)
            if bad is None:
                continue
            needs = "a number" if numeric else "values that can be ordered"
            rows = np.flatnonzero(bad)
            for row, value in zip(rows.tolist(), series.gather(rows).to_list(), strict=True):
                if row not in reasons:
                    reasons[row] = (f"{spec} needs {needs} in column {column!r}, got "
                                    f"{_shown(value)} ({series.dtype})")
    rows = sorted(reasons)
    return np.array(rows, dtype=np.int64), [reasons[r] for r in rows]


def _shown(value: object, limit: int = 200) -> str:
    """A value for an error message, cut so one huge value cannot flood the errors output."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
