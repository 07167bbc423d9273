"""Sinks: where a tag's records land (files, DuckDB, memory).

Every sink has the same life cycle -- ``open``, ``write`` each batch in order, ``close`` --
and declares its delivery guarantee, so that validation can refuse a promise a sink cannot
keep. (The two-phase-commit steps of the exactly-once protocol extend this, issue 3.)
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Literal

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from surestream.model.spec import DuckDBSink, FileSink, MemorySink

Guarantee = Literal["exactly_once", "idempotent", "at_least_once"]


class JsonlFileSink:
    """One JSON object per line, in the order the records were produced."""

    guarantee: Guarantee = "at_least_once"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: io.BufferedWriter | None = None
        self.records = 0

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "wb")  # noqa: SIM115 - closed in close()

    def write(self, data: pl.DataFrame) -> None:
        if data.height:
            buf = io.BytesIO()
            data.write_ndjson(buf)
            self._file.write(buf.getvalue())
            self.records += data.height

    def close(self) -> None:
        if self._file:
            self._file.close()
            self._file = None


class CsvFileSink(JsonlFileSink):
    """CSV with one header line taken from the first batch's columns."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._columns: list[str] | None = None

    def write(self, data: pl.DataFrame) -> None:
        if not data.height:
            return
        if self._columns is None:
            self._columns = data.columns
            self._file.write((",".join(self._columns) + "\n").encode())
        buf = io.BytesIO()
        data.select([c for c in self._columns if c in data.columns]) \
            .write_csv(buf, include_header=False)
        self._file.write(buf.getvalue())
        self.records += data.height


class ParquetFileSink:
    """A Parquet file; the schema is fixed by the first non-empty batch."""

    guarantee: Guarantee = "at_least_once"
    ROW_GROUP = 131072

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer: pq.ParquetWriter | None = None
        self._pending: list[pl.DataFrame] = []
        self._rows = 0
        self.records = 0

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            self.path.unlink()

    def write(self, data: pl.DataFrame) -> None:
        if data.height:
            self._pending.append(data)
            self._rows += data.height
            self.records += data.height
            if self._rows >= self.ROW_GROUP:
                self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        table = pl.concat(self._pending, how="diagonal_relaxed").to_arrow()
        self._pending, self._rows = [], 0
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, table.schema)
        else:
            table = _conform(table, self._writer.schema)
        self._writer.write_table(table)

    def close(self) -> None:
        self._flush()
        if self._writer is None:  # no record at all: still leave a valid, empty file
            pq.write_table(pa.table({}), self.path)
        else:
            self._writer.close()
        self._writer = None


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    cols = [table.column(f.name).cast(f.type) if f.name in table.column_names
            else pa.nulls(table.num_rows, f.type) for f in schema]
    return pa.Table.from_arrays(cols, schema=schema)


class DuckDBTableSink:
    """Rows appended to a DuckDB table (created from the first batch's columns)."""

    guarantee: Guarantee = "at_least_once"

    def __init__(self, path: Path, table: str) -> None:
        self.path, self.table = path, table
        self._con: duckdb.DuckDBPyConnection | None = None
        self._created = False
        self.records = 0

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._con = duckdb.connect(str(self.path))
        self._con.execute(f'DROP TABLE IF EXISTS "{self.table}"')

    def write(self, data: pl.DataFrame) -> None:
        if not data.height:
            return
        arrow = data.to_arrow()  # noqa: F841 - read by DuckDB's replacement scan
        if not self._created:
            self._con.execute(f'CREATE TABLE "{self.table}" AS SELECT * FROM arrow')
            self._created = True
        else:
            self._con.execute(f'INSERT INTO "{self.table}" BY NAME SELECT * FROM arrow')
        self.records += data.height

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None


class MemoryCollector:
    """Keeps every record in memory: the test sink (``RunResult.outputs[tag]``)."""

    guarantee: Guarantee = "exactly_once"

    def __init__(self) -> None:
        self.frames: list[pl.DataFrame] = []
        self.records = 0

    def open(self) -> None:
        self.frames = []

    def write(self, data: pl.DataFrame) -> None:
        if data.height:
            self.frames.append(data)
            self.records += data.height

    def close(self) -> None:
        return None

    def frame(self) -> pl.DataFrame:
        return pl.concat(self.frames, how="diagonal_relaxed") if self.frames else pl.DataFrame()

    def rows(self) -> list[dict[str, Any]]:
        return self.frame().to_dicts()


def open_sink(spec: Any, resolve) -> Any:
    """The sink for one ``outputs`` entry."""
    if isinstance(spec, FileSink):
        path = resolve(spec.path)
        return {"jsonl": JsonlFileSink, "csv": CsvFileSink, "parquet": ParquetFileSink}[
            spec.format](path)
    if isinstance(spec, DuckDBSink):
        return DuckDBTableSink(resolve(spec.path), spec.table)
    if isinstance(spec, MemorySink):
        return MemoryCollector()
    raise ValueError(f"unsupported sink {spec!r}")
