"""DuckDB results as polars frames, across DuckDB versions (1.x ``fetch_arrow_table``,
2.x ``to_arrow_table``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import polars as pl


def fetch_frame(con: duckdb.DuckDBPyConnection, sql: str,
                params: Sequence[Any] | None = None) -> pl.DataFrame:
    """Run ``sql`` with bound ``params`` and return the result as a polars frame."""
    relation = con.sql(sql, params=list(params) if params else None)
    to_arrow = getattr(relation, "to_arrow_table", None) or relation.arrow
    return pl.from_arrow(to_arrow())
