"""The built-in data-quality rules as polars expressions: which rows fail, and why.

Each built-in rule (``not_null``, ``range``, ``regex``, ``in_set``, ``unique`` within a batch)
is two expressions over the batch's frame, evaluated column-wise, never record by record:

- ``failure``: a boolean per row, true where the row fails (never null);
- ``reason``: a text per row, read only for the failing rows that need one (quarantined
  records, the example of an abort), e.g. ``amount 12000 > max 10000``.

Null handling: ``range``, ``regex`` and ``in_set`` pass a null (and a missing column, which
is null in every row): "is it there" is ``not_null``'s question, so a rule answers one
question and a record missing a value fails exactly the rule that says it must not. A
``unique`` rule passes a record with a null in any of its columns (no value to repeat).

``range`` compares numbers: a number column as is, a text column through its number value
(``"12.5"`` is 12.5); a value that is not a number (``"abc"``) fails with that reason rather
than passing unseen. ``regex`` looks for the pattern in the value's text (search, as SQL's
``RLIKE``; anchor it with ``^...$`` for a whole match).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import polars as pl

from surestream.model.quality_rules import QualityRule

#: at most this many of an ``in_set`` rule's values are named in a reason
SHOWN_VALUES = 10


def _present(frame: pl.DataFrame, column: str) -> bool:
    return column in frame.columns


def _text(frame: pl.DataFrame, column: str) -> pl.Expr:
    """A column's values as text, for reasons (which are built for failing rows only: a
    nested value -- a list, a struct -- is written as JSON one value at a time)."""
    if frame.schema[column].is_nested():
        return pl.col(column).map_elements(_json_text, return_dtype=pl.String,
                                           skip_nulls=False)
    return pl.col(column).cast(pl.String, strict=False).fill_null("?")


def _json_text(value: Any) -> str:
    if isinstance(value, pl.Series):  # polars hands a list value over as a Series
        value = value.to_list()
    return json.dumps(value, default=str, separators=(",", ":"))


def _numbers(frame: pl.DataFrame, column: str) -> tuple[pl.Expr, pl.Expr]:
    """(the column's number value, true where a present value is no number)."""
    col = pl.col(column)
    dtype = frame.schema[column]
    if dtype.is_numeric():
        return col, pl.lit(False)
    if dtype == pl.Boolean or dtype.is_nested() or dtype == pl.Null:
        return pl.lit(None, dtype=pl.Float64), col.is_not_null()
    value = col.cast(pl.String, strict=False).str.strip_chars().cast(pl.Float64, strict=False)
    return value, col.is_not_null() & value.is_null()


def _any(exprs: Sequence[pl.Expr]) -> pl.Expr:
    return pl.any_horizontal(exprs) if exprs else pl.lit(False)


def _first_reason(parts: Sequence[tuple[pl.Expr, pl.Expr]]) -> pl.Expr:
    """The reason of the first part whose condition holds (parts: (condition, reason))."""
    if not parts:
        return pl.lit(None, dtype=pl.String)
    chain = pl.when(parts[0][0]).then(parts[0][1])
    for cond, reason in parts[1:]:
        chain = chain.when(cond).then(reason)
    return chain.otherwise(pl.lit(None, dtype=pl.String))


def not_null(frame: pl.DataFrame, rule: QualityRule) -> tuple[pl.Expr, pl.Expr]:
    parts = []
    for c in rule.checked_columns:
        if _present(frame, c):
            parts.append((pl.col(c).is_null(), pl.lit(f"{c} is null")))
        else:
            parts.append((pl.lit(True), pl.lit(f"{c} is missing")))
    return _any([cond for cond, _ in parts]), _first_reason(parts)


def range_rule(frame: pl.DataFrame, rule: QualityRule) -> tuple[pl.Expr, pl.Expr]:
    parts = []
    for c in rule.checked_columns:
        if not _present(frame, c):
            continue
        value, not_number = _numbers(frame, c)
        shown = _text(frame, c)
        parts.append((not_number, pl.format("{} '{}' is not a number", pl.lit(c), shown)))
        if rule.min is not None:
            parts.append(((value < rule.min).fill_null(False),
                          pl.format("{} {} < min {}", pl.lit(c), shown, pl.lit(str(rule.min)))))
        if rule.max is not None:
            parts.append(((value > rule.max).fill_null(False),
                          pl.format("{} {} > max {}", pl.lit(c), shown, pl.lit(str(rule.max)))))
    return _any([cond for cond, _ in parts]), _first_reason(parts)


def regex_rule(frame: pl.DataFrame, rule: QualityRule) -> tuple[pl.Expr, pl.Expr]:
    parts = []
    pattern = str(rule.pattern)
    for c in rule.checked_columns:
        if not _present(frame, c):
            continue
        col = pl.col(c)
        if frame.schema[c].is_nested():
            cond = col.is_not_null()
        else:
            text = col if frame.schema[c] == pl.String else col.cast(pl.String, strict=False)
            cond = (col.is_not_null() & ~text.str.contains(pattern).fill_null(False))
        parts.append((cond, pl.format("{} '{}' does not match {}", pl.lit(c), _text(frame, c),
                                      pl.lit(pattern))))
    return _any([cond for cond, _ in parts]), _first_reason(parts)


def _in_values(frame: pl.DataFrame, column: str, values: list[Any]) -> pl.Expr:
    """Whether each value is one of ``values``: compared in the column's type when every
    value converts to it exactly (``2`` for a float column is 2.0), else as text (``"1"``
    for an integer column matches 1). A nested column (lists, structs) that polars cannot
    compare is compared as JSON text, one value at a time (the only per-record path)."""
    col = pl.col(column)
    dtype = frame.schema[column]
    try:
        given = pl.Series(values, strict=False)
        candidate = given.cast(dtype, strict=True)
        if not given.equals(candidate.cast(given.dtype, strict=False)):
            raise ValueError("a value changes in the column's type (1.5 -> 1)")
        expr = col.is_in(candidate.implode())
        frame.head(1).select(expr)  # types polars cannot compare fail here
        return expr
    except Exception:  # noqa: BLE001 - the values are not of the column's type
        pass
    if dtype.is_nested():
        wanted = {_json_text(v) for v in values}
        return col.map_elements(lambda v: _json_text(v) in wanted, return_dtype=pl.Boolean)
    texts = pl.Series([_plain_text(v) for v in values], dtype=pl.String)
    return col.cast(pl.String, strict=False).is_in(texts.implode())


def _plain_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def in_set_rule(frame: pl.DataFrame, rule: QualityRule) -> tuple[pl.Expr, pl.Expr]:
    values = list(rule.values or [])
    shown = ", ".join(repr(v) for v in values[:SHOWN_VALUES])
    if len(values) > SHOWN_VALUES:
        shown += f", ... ({len(values)} values)"
    parts = []
    for c in rule.checked_columns:
        if not _present(frame, c):
            continue
        col = pl.col(c)
        cond = col.is_not_null() & ~_in_values(frame, c, values).fill_null(False)
        parts.append((cond, pl.format("{} '{}' is not in [{}]", pl.lit(c), _text(frame, c),
                                      pl.lit(shown))))
    return _any([cond for cond, _ in parts]), _first_reason(parts)


def key_has_null(frame: pl.DataFrame, columns: Sequence[str]) -> pl.Expr:
    """True where any of ``columns`` is null or missing (such a record has no value)."""
    return _any([pl.col(c).is_null() if _present(frame, c) else pl.lit(True)
                 for c in columns])


def key_text(columns: Sequence[str], frame: pl.DataFrame) -> pl.Expr:
    """``user_id 7`` or ``(a, b) (1, x)``: a key and its value, for a reason."""
    present = [c for c in columns if _present(frame, c)]
    if len(columns) == 1 and present:
        return pl.format("{} {}", pl.lit(columns[0]), _text(frame, columns[0]))
    values = pl.concat_str([_text(frame, c) for c in present], separator=", ") \
        if present else pl.lit("")
    return pl.format("({}) ({})", pl.lit(", ".join(columns)), values)


def unique_in_batch(frame: pl.DataFrame, rule: QualityRule) -> tuple[pl.Expr, pl.Expr]:
    """The second and later records of a value within this batch fail."""
    cols = rule.checked_columns
    if not all(_present(frame, c) for c in cols):
        return pl.lit(False), pl.lit(None, dtype=pl.String)
    key = pl.struct([pl.col(c) for c in cols])
    cond = ~key.is_first_distinct() & ~key_has_null(frame, cols)
    return cond, pl.format("{} already seen in this batch", key_text(cols, frame))


#: rule kind -> its expressions, for the rules decided by the frame alone
BUILT_IN = {"not_null": not_null, "range": range_rule, "regex": regex_rule,
            "in_set": in_set_rule}
