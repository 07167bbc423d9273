"""Window aggregations as configuration: ``count()``, ``sum(quantity)``, ``vwap(price, quantity)``.

Accepted forms (PIPELINE_SPEC.md):

- a mapping ``{output: "function(column)"}`` -- ``trade_count: count()``;
- the ETL shorthand string ``"clicks:count,revenue:sum"`` meaning
  ``{clicks: count(clicks), revenue: sum(revenue)}``;
- in Python, an ``AggregateFunction`` object (create/add/merge/result) as a value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

#: Built-in functions and how many input columns each takes.
BUILTIN_ARITY: dict[str, int] = {
    "count": 0, "sum": 1, "avg": 1, "min": 1, "max": 1, "first": 1, "last": 1,
    # volume-weighted average: sum(value * weight) / sum(weight); null when sum(weight) == 0
    "vwap": 2,
}

#: what a spec file may write for ``aggregations`` (the JSON Schema editors see): a mapping
#: of output column to ``function(column)``, or the shorthand string
AGGREGATIONS_JSON_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "object", "minProperties": 1,
         "additionalProperties": {"type": "string", "pattern": r"^\s*[A-Za-z_]\w*\s*\(.*\)\s*$"}},
        {"type": "string", "pattern": r"^\s*[A-Za-z_][\w.]*\s*:\s*[A-Za-z_]+\s*(,.*)?$"},
    ]}

_CALL = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*\(\s*([^()]*?)\s*\)\s*$")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


@runtime_checkable
class AggregateFunction(Protocol):
    """A user aggregate, as Flink's AggregateFunction: accumulators must be picklable."""

    def create(self) -> Any: ...
    def add(self, acc: Any, record: dict[str, Any]) -> Any: ...
    def merge(self, a: Any, b: Any) -> Any: ...
    def result(self, acc: Any) -> Any: ...


@dataclass(frozen=True)
class AggregationSpec:
    """One output column of a window: a built-in over columns, or a user function."""

    function: str  # built-in name, or "udf"
    columns: tuple[str, ...] = ()
    udf: AggregateFunction | None = None

    def __str__(self) -> str:
        if self.udf is not None:
            return f"udf({type(self.udf).__name__})"
        return f"{self.function}({', '.join(self.columns)})"


def parse_call(text: str) -> AggregationSpec:
    """Parse ``"sum(quantity)"``; raise ValueError naming what is wrong."""
    m = _CALL.match(text)
    if not m:
        raise ValueError(f"{text!r} is not of the form function(column), e.g. sum(quantity)")
    fn, args = m.group(1).lower(), m.group(2)
    if fn not in BUILTIN_ARITY:
        raise ValueError(f"unknown aggregation {fn!r}; known: {', '.join(BUILTIN_ARITY)}")
    columns = tuple(a.strip() for a in args.split(",")) if args.strip() else ()
    for c in columns:
        if not _IDENT.match(c):
            raise ValueError(f"{c!r} in {text!r} is not a column name")
    if len(columns) != BUILTIN_ARITY[fn]:
        raise ValueError(f"{fn}() takes {BUILTIN_ARITY[fn]} column(s), "
                         f"got {len(columns)} in {text!r}")
    return AggregationSpec(fn, columns)


def parse_shorthand(text: str) -> dict[str, AggregationSpec]:
    """``"clicks:count,revenue:sum"`` -> ``{clicks: count(clicks), revenue: sum(revenue)}``."""
    out: dict[str, AggregationSpec] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        col, sep, fn = part.partition(":")
        col, fn = col.strip(), fn.strip().lower()
        if not sep or not col or not fn:
            raise ValueError(f"{part.strip()!r} is not column:function (e.g. revenue:sum)")
        if fn not in BUILTIN_ARITY or BUILTIN_ARITY[fn] > 1:
            raise ValueError(f"{fn!r} in {part.strip()!r} is not a one-column aggregation")
        out[col] = AggregationSpec(fn, (col,) if BUILTIN_ARITY[fn] == 1 else ())
    if not out:
        raise ValueError("empty aggregation shorthand")
    return out


def parse_aggregations(value: Any) -> dict[str, AggregationSpec]:
    """Normalise any accepted form to ``{output column: AggregationSpec}``."""
    if isinstance(value, str):
        return parse_shorthand(value)
    if not isinstance(value, dict):
        raise ValueError("aggregations must be a mapping {output: function(column)} or a "
                         "shorthand string 'col:fn,col:fn'")
    out: dict[str, AggregationSpec] = {}
    for name, spec in value.items():
        if isinstance(spec, AggregationSpec):
            out[name] = spec
        elif isinstance(spec, str):
            try:
                out[name] = parse_call(spec)
            except ValueError as e:
                raise ValueError(f"aggregation {name!r}: {e}") from None
        elif isinstance(spec, AggregateFunction):
            out[name] = AggregationSpec("udf", (), spec)
        else:
            raise ValueError(f"aggregation {name!r}: expected 'function(column)' or an object "
                             f"with create/add/merge/result, got {type(spec).__name__}")
    return out
