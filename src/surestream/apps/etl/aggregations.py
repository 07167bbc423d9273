"""The framework's aggregation strings: ``"page_views:count,clicks:sum"``.

Each ``column:function`` pair names an input column and the function over it; the result
column keeps the column's name (as surestream's own shorthand does, PIPELINE_SPEC.md).
The translation writes them out in the explicit form a reader checks at a glance:
``{page_views: "count()", clicks: "sum(clicks)"}``. ``count`` counts the records of the
group (Spark's ``count(column)`` skips nulls of the column; docs/etl.md says so).
A function surestream lacks (``stddev``, ``approx_count_distinct``, ...) is refused.

The object form names result columns: ``{"txn_count": "count()", "total": "sum(amount)"}``
(a value without parentheses, ``{"clicks": "sum"}``, is the shorthand's pair).
"""

from __future__ import annotations

import re

#: the framework's function names -> surestream's
FUNCTIONS = {"count": "count", "sum": "sum", "avg": "avg", "mean": "avg", "average": "avg",
             "min": "min", "max": "max", "first": "first", "last": "last"}
_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CALL = re.compile(r"^\s*([A-Za-z_]+)\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)?\s*\)\s*$")


def parse_aggregations(value: str | dict[str, str]) -> dict[str, str]:
    """``"page_views:count,clicks:sum"`` (or a mapping column -> function) ->
    ``{page_views: "count()", clicks: "sum(clicks)"}``; ValueError naming the pair."""
    pairs = _pairs(value)
    if not pairs:
        raise ValueError("no aggregation: give column:function pairs, e.g. "
                         "\"page_views:count,clicks:sum\"")
    out: dict[str, str] = {}
    for column, function in pairs:
        call = _CALL.match(function)
        if call:  # object form: result column -> function(input column)
            function, source = call.group(1), call.group(2)
        else:
            source = column
        if not _COLUMN.match(column):
            raise ValueError(f"{column!r} is not a column name (letters, digits, _)")
        fn = FUNCTIONS.get(function.lower())
        if fn is None:
            raise ValueError(f"{column}:{function}: surestream has no aggregation "
                             f"{function!r}; the functions are "
                             f"{', '.join(sorted(FUNCTIONS))}")
        if fn != "count" and source is None:
            raise ValueError(f"{column}: {function}() needs its column, e.g. {fn}(amount)")
        if column in out:
            raise ValueError(f"{column!r} is aggregated twice; each result column keeps "
                             "its input column's name, so give each column once")
        out[column] = "count()" if fn == "count" else f"{fn}({source})"
    return out


def _pairs(value: str | dict[str, str]) -> list[tuple[str, str]]:
    if isinstance(value, dict):
        return [(str(k).strip(), str(v).strip()) for k, v in value.items()]
    pairs = []
    for part in value.split(","):
        if not part.strip():
            continue
        column, sep, function = part.partition(":")
        if not sep or not column.strip() or not function.strip():
            raise ValueError(f"{part.strip()!r} is not column:function (e.g. clicks:sum)")
        pairs.append((column.strip(), function.strip()))
    return pairs
