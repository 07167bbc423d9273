"""Verify's PostgreSQL outputs: each run writes a table of its own, read back to compare.

Runs cannot share the user's table (a fresh run rewrites what an earlier run of the same
output committed there), so every run writes ``<table>_v<8 hex>`` beside it (the hex: a
hash of the run's folder), with its own rows in ``surestream_commits``. The tables are left
in the database afterwards, as verify's Kafka topics are on the cluster: drop them when
done (``DROP TABLE <table>_v...``). A table has no row order, so the rows are compared
sorted by every column.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import polars as pl

_LIMIT = 63  # PostgreSQL's longest identifier


def is_postgres(sink: Any) -> bool:
    return getattr(sink, "type", None) == "postgres"


def run_table(folder: Path, sink: Any) -> str:
    """The table run ``folder`` writes for ``sink`` (``schema.`` kept)."""
    schema, dot, name = sink.table.rpartition(".")
    suffix = "_v" + hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:8]
    return f"{schema}{dot}{name[:_LIMIT - len(suffix)]}{suffix}"


def read_table_frame(folder: Path, sink: Any) -> pl.DataFrame:
    """The rows run ``folder`` left in its table, sorted by every column."""
    from surestream.connectors.tables.postgres import PostgresTableSink

    spec = sink.model_copy(update={"table": run_table(folder, sink)})
    frame = PostgresTableSink(spec, pipeline="", tag="").read_committed()
    return frame.sort(frame.columns, nulls_last=True) if frame.width else frame
