"""Reading an Iceberg table back as a polars frame, through pyiceberg's Arrow scan (no
DuckDB extension needed): for ``surestream query``, ``verify`` and the analytics."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from surestream.connectors.tables.iceberg_catalog import open_catalog


def read_table(catalog: dict[str, Any], table: str, resolve: Callable[[str], Path],
               snapshot_id: int | None = None) -> pl.DataFrame:
    """The rows of ``table`` on ``main`` (or at ``snapshot_id``); an empty frame when the
    table does not exist."""
    from pyiceberg.exceptions import NoSuchTableError

    try:
        handle = open_catalog(catalog, resolve).load_table(table)
    except NoSuchTableError:
        return pl.DataFrame()
    scan = handle.scan(snapshot_id=snapshot_id) if snapshot_id is not None else handle.scan()
    frame = pl.from_arrow(scan.to_arrow())
    return frame if isinstance(frame, pl.DataFrame) else frame.to_frame()


def canonical_order(frame: pl.DataFrame) -> pl.DataFrame:
    """A table's rows in one order whatever the files and commits they came in (an Iceberg
    table has no row order): sorted by every column that sorts."""
    columns = [c for c, t in frame.schema.items() if not t.is_nested() and t != pl.Null]
    return frame.sort(columns, nulls_last=True) if columns and frame.height else frame
