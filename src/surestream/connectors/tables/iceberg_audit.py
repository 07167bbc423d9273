"""The audit step of write-audit-publish: data-quality rules run on a checkpoint's staged
data (read back from the staged snapshot's own data files) before it is published.

Each failed rule gives one line naming the rule, the column and how many rows broke it,
with one such value, so the error (or the quarantined rows' ``_audit_failures``) says
what to fix.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from surestream.connectors.sink_protocol import shown
from surestream.model.table_audit import AuditRules


def _broken(data: pl.DataFrame, mask: pl.Series, rule: str, column: str | None) -> str | None:
    mask = mask.fill_null(False)
    count = int(mask.sum())
    if not count:
        return None
    where = f" in column {column!r}" if column else ""
    example = data.filter(mask).row(0, named=True)
    value = example.get(column) if column else example
    return f"{rule}{where}: {count:,} row(s) break it, e.g. {shown(value)}"


def _missing(data: pl.DataFrame, column: str, rule: str) -> str | None:
    if column in data.columns:
        return None
    return f"{rule}: the staged data has no column {column!r}"


def audit(data: pl.DataFrame, rules: AuditRules) -> list[str]:
    """The rules ``data`` breaks (empty: it passes)."""
    failures: list[str] = []

    def add(found: str | None) -> None:
        if found is not None:
            failures.append(found)

    if rules.min_rows is not None and data.height < rules.min_rows:
        failures.append(f"min_rows: {data.height:,} rows staged, at least "
                        f"{rules.min_rows:,} required")
    for column in rules.not_null:
        add(_missing(data, column, "not_null")
            or _broken(data, data.get_column(column).is_null(), "not_null", column))
    if rules.unique:
        gone = [c for c in rules.unique if c not in data.columns]
        if gone:
            add(_missing(data, gone[0], "unique"))
        else:
            dup = data.select(pl.struct(rules.unique).is_duplicated()).to_series()
            add(_broken(data, dup, f"unique({', '.join(rules.unique)})", None))
    for column, bounds in rules.ranges.items():
        if (why := _missing(data, column, "ranges")) is not None:
            add(why)
            continue
        col = data.get_column(column)
        low = col < bounds.min if bounds.min is not None else pl.Series([False] * data.height)
        high = col > bounds.max if bounds.max is not None else pl.Series([False] * data.height)
        add(_broken(data, low | high, f"ranges [{bounds.min}, {bounds.max}]", column))
    for column, values in rules.accepted_values.items():
        if (why := _missing(data, column, "accepted_values")) is not None:
            add(why)
            continue
        col = data.get_column(column)
        add(_broken(data, ~col.is_in(values) & col.is_not_null(),
                    f"accepted_values {values}", column))
    for expression in rules.expressions:
        add(_expression(data, expression))
    return failures


def _expression(data: pl.DataFrame, expression: str) -> str | None:
    try:
        holds: Any = data.select(pl.sql_expr(expression).alias("ok")).to_series()
    except Exception as e:  # a rule that does not evaluate is a failed rule, named
        return f"expression {expression!r} cannot be evaluated on the staged data: {e}"
    return _broken(data, ~holds, f"expression {expression!r}", None)
