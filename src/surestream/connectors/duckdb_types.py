"""Column types of a DuckDB table against the records bound for it.

(Results are always fetched to their end: DuckDB 2 refuses any other work on a connection
that holds a half-read result.)

A table's columns take their types from the first records committed. Later records may
differ: a field first seen later (a new column), a column that held only nulls so far
(DuckDB type ``"NULL"``, which no value can be cast to), or a user function whose output
type varies. Left to ``insert ... by name``, the first two fail every commit -- on every
restart, forever, since the staged checkpoint is replayed -- and the third is worse: DuckDB
casts on insert, so a ``2.5`` lands in a ``BIGINT`` column as ``2`` and the text ``'12'`` as
the number 12, silently.

So the sink (``duckdb_sink.py``) adds a new column, gives a ``"NULL"`` column the type of
its first values, and lets a value into a column of another type only when the cast keeps
it exactly (same kind of value, and casting back gives it again); other values go to the
errors output before they are written (``Sink.reject``). Types are compared as DuckDB
names them, so what DuckDB would do on insert is what is checked.
"""

from __future__ import annotations

import duckdb
import numpy as np
import polars as pl

#: the type DuckDB gives a column that held only nulls (no value casts to it)
NULL_TYPE = '"NULL"'

_NUMBERS = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
            "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE"}


def value_kind(duckdb_type: str) -> str:
    """What kind of value a type holds: numbers of any width, text, a naive timestamp of
    any unit; otherwise the type itself (a date, a list of ..., a struct ...). A value never
    changes kind to fit a column (the text '12' is not the number 12)."""
    if duckdb_type in _NUMBERS or duckdb_type.startswith("DECIMAL"):
        return "number"
    if duckdb_type == "VARCHAR" or duckdb_type.startswith("ENUM"):
        return "text"
    if duckdb_type.startswith("TIMESTAMP") and "TIME ZONE" not in duckdb_type:
        return "timestamp"
    return duckdb_type


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def frame_types(con: duckdb.DuckDBPyConnection, data: pl.DataFrame) -> dict[str, str]:
    """The DuckDB type each column of ``data`` would get (opaque objects left out: no
    database holds them, ``reject`` sends them to errors)."""
    plain = data.select([c for c, t in data.schema.items() if t != pl.Object]).head(0)
    relation = con.from_arrow(plain.to_arrow())
    return {c: str(t) for c, t in zip(relation.columns, relation.types, strict=True)}


def table_types(con: duckdb.DuckDBPyConnection, source: str) -> dict[str, str]:
    """Column -> DuckDB type of a table (quoted name) or a query, in column order."""
    return {row[0]: row[1] for row in con.execute(f"describe {source}").fetchall()}


def changing_condition(column: str, have: str, got: str) -> str:
    """SQL: true where a value of type ``got`` would not land in a ``have`` column as
    itself -- the cast fails, or casting back does not give the value again."""
    c = quoted(column)
    return (f"{c} is not null and (try_cast({c} as {have}) is null or "
            f"try_cast(try_cast({c} as {have}) as {got}) is distinct from {c})")


def changed_by_cast(con: duckdb.DuckDBPyConnection, series: pl.Series, have: str,
                    got: str) -> np.ndarray:
    """Mask of the values of ``series`` (DuckDB type ``got``) that a column of type
    ``have`` cannot hold as they are."""
    if value_kind(have) != value_kind(got):
        return series.is_not_null().to_numpy()
    frame = pl.DataFrame({"v": series}).with_row_index("__ss_row")
    relation = con.from_arrow(frame.to_arrow())
    rows = relation.filter(changing_condition("v", have, got)).project("__ss_row").fetchall()
    mask = np.zeros(len(series), dtype=bool)
    mask[[r for (r,) in rows]] = True
    return mask


def first_changed(con: duckdb.DuckDBPyConnection, source: str, column: str, have: str,
                  got: str) -> tuple[object] | None:
    """``(value,)`` for a value of ``column`` in the query ``source`` that a ``have`` column
    cannot hold as it is, or None when every value fits (a different kind never fits)."""
    c = quoted(column)
    if value_kind(have) != value_kind(got):
        condition = f"{c} is not null"
    else:
        condition = changing_condition(column, have, got)
    rows = con.execute(f"select {c} from ({source}) where {condition} limit 1").fetchall()
    return rows[0] if rows else None
