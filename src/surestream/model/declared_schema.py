"""A user function's declared ``output_schema``: what its results must look like.

A ``map`` or ``map_batches`` step may change the columns, which the local runner infers
from the records. The Flink runner cannot: Flink SQL needs every column's type before the
job starts, so a step that changes the schema declares it (``output_schema: {column:
int|float|string|bool}``, the source ``schema``'s types). Declared, the schema holds on
*both* runners with the same code, so their outputs are the same:

- a ``map`` result record passes on the declared columns in their order; a key it lacks is
  null, a key not declared is dropped, and a value not of its column's type (``int``: an
  integer, not a bool; ``float``: a number, made a float; ``string``: a str; ``bool``: a
  bool) makes the *input* record an error (``TypeError``, naming the column), as a wrong
  return value does;
- a ``map_batches`` result frame is ``select``-ed to the declared columns and cast to their
  types, strictly (a missing column or a value that does not cast fails the call, and the
  failing records are found by bisection, ``semantics.row_isolation``).

Stdlib only at import (polars is imported inside ``conform_frame``): the Flink job driver
ships this module to PyFlink's Python workers, where surestream is not installed.
"""

from __future__ import annotations

from typing import Any

#: spec type -> the Python types a record value of it may have (bool is not an int here)
_ACCEPTS: dict[str, tuple[type, ...]] = {"int": (int,), "float": (int, float),
                                         "string": (str,), "bool": (bool,)}


def conform_record(record: dict[str, Any], schema: dict[str, str]) -> dict[str, Any]:
    """``record`` as the declared columns, in order; raises ``TypeError`` naming the column
    whose value is not of its declared type."""
    out: dict[str, Any] = {}
    for column, kind in schema.items():
        value = record.get(column)
        if value is not None:
            wrong_bool = isinstance(value, bool) and kind != "bool"
            if wrong_bool or not isinstance(value, _ACCEPTS[kind]):
                raise TypeError(f"output column {column!r} is declared {kind} in "
                                f"output_schema, got {type(value).__name__} {value!r}")
            if kind == "float":
                value = float(value)
        out[column] = value
    return out


def polars_types(schema: dict[str, str]) -> dict[str, Any]:
    """The polars dtypes of a declared schema."""
    import polars as pl

    kinds = {"int": pl.Int64, "float": pl.Float64, "string": pl.String, "bool": pl.Boolean}
    return {column: kinds[kind] for column, kind in schema.items()}


def conform_frame(result: Any, height: int, schema: dict[str, str] | None,
                  step: str) -> Any:
    """A ``map_batches`` result checked (a DataFrame with one row per input row) and, with a
    declared ``schema``, its declared columns cast to their types (strict)."""
    import polars as pl

    if not isinstance(result, pl.DataFrame) or result.height != height:
        raise ValueError(f"{step} must return a DataFrame with one row per input row, in "
                         f"order: got {getattr(result, 'height', type(result).__name__)} "
                         f"for {height}")
    if schema is None:
        return result
    return result.select(list(schema)).cast(polars_types(schema), strict=True)
