"""Reading a finished run's outputs back for its report: how many records each holds, and
the few columns the charts and the error table need.

Only what is committed is read: a JSON-lines or CSV output file is appended to at commit
only, a Parquet dataset's committed parts are its ``part-*.parquet`` files outside
``.staging`` (``file_sinks.dataset_parts``), a DuckDB table holds committed rows. Counting
reads no records where the format allows it (Parquet footers, line counts). Outputs on
other systems (Kafka topics, Iceberg, Delta, ClickHouse, PostgreSQL) and in-process ones
(memory, standard output) are not read back: the report shows their counters only, and
says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb
import orjson
import polars as pl
import pyarrow.parquet as pq

from surestream.connectors.file_sinks import dataset_parts
from surestream.ops.report.spec_view import OutputView

#: error rows read per error output for the reasons table (counts use every row)
ERROR_ROWS_READ = 200_000


@dataclass(frozen=True)
class ReadBack:
    """An output's committed record count, or why the report could not read it."""

    tag: str
    rows: int | None
    note: str | None = None


def count_rows(out: OutputView) -> ReadBack:
    if out.path is None:
        return ReadBack(out.tag, None, f"{out.type} output: not read back")
    try:
        if out.type == "duckdb":
            return ReadBack(out.tag, _duckdb_count(out))
        if out.format == "parquet":
            parts = dataset_parts(out.path)
            return ReadBack(out.tag, sum(pq.ParquetFile(p).metadata.num_rows for p in parts))
        if not out.path.exists():
            return ReadBack(out.tag, 0, "no file (nothing committed)")
        if out.format == "csv":
            return ReadBack(out.tag, pl.scan_csv(out.path).select(pl.len()).collect().item())
        with open(out.path, "rb") as f:
            return ReadBack(out.tag, sum(1 for line in f if line.strip()))
    except (OSError, ValueError, pl.exceptions.PolarsError, duckdb.Error) as e:
        return ReadBack(out.tag, None, f"cannot read {out.where()}: {e}")


def _duckdb_count(out: OutputView) -> int:
    assert out.path is not None
    if not out.path.exists():
        return 0
    con = duckdb.connect(str(out.path), read_only=True)
    try:
        name = '"' + (out.table or "").replace('"', '""') + '"'
        tables = {r[0] for r in con.execute("select table_name from information_schema."
                                            "tables").fetchall()}
        if out.table not in tables:
            return 0
        return int(con.execute(f"select count(*) from {name}").fetchone()[0])
    finally:
        con.close()


def read_columns(out: OutputView, wanted: list[str],
                 limit: int | None = None) -> dict[str, list[Any]] | None:
    """The ``wanted`` columns an output has (each a list, record order), at most ``limit``
    records; None when the output is not read back (see the module docstring)."""
    if out.path is None or out.type != "file":
        return None
    try:
        if out.format == "parquet":
            parts = dataset_parts(out.path)
            if not parts:
                return {}
            frame = pl.concat([pl.read_parquet(p, columns=[
                c for c in wanted if c in pq.read_schema(p).names]) for p in parts],
                how="diagonal_relaxed")
            frame = frame.head(limit) if limit is not None else frame
            return {c: frame[c].to_list() for c in frame.columns}
        if not out.path.exists():
            return {}
        if out.format == "csv":
            frame = pl.read_csv(out.path, infer_schema_length=None, n_rows=limit)
            return {c: frame[c].to_list() for c in wanted if c in frame.columns}
        columns: dict[str, list[Any]] = {c: [] for c in wanted}
        with open(out.path, "rb") as f:
            for n, line in enumerate(f):
                if limit is not None and n >= limit:
                    break
                if not line.strip():
                    continue
                record = orjson.loads(line)
                for c in wanted:
                    columns[c].append(record.get(c) if isinstance(record, dict) else None)
        return {c: v for c, v in columns.items() if any(x is not None for x in v)}
    except (OSError, ValueError, pl.exceptions.PolarsError, orjson.JSONDecodeError):
        return None
