"""Reading a verify run's outputs and saying how two runs differ.

Every run writes each output tag under ``<run folder>/out/<tag>.<format>`` (a Kafka output:
a topic of the run's own, ``kafka_outputs.py``). Two runs are
compared output by output: JSON lines and CSV byte for byte, Parquet datasets and DuckDB
tables record by record, declared ``processing_time_columns`` and error outputs'
``recorded_at_ms`` fields left out (they hold wall clock by design). A difference is
reported with the first record that differs in each run, numbered from 1 in the output's
order, and the columns where they differ -- enough for a user to see *what* changed, not
only that something did.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from surestream.cli.verify.kafka_outputs import read_topic_frame
from surestream.cli.verify.postgres_outputs import read_table_frame
from surestream.connectors.duckdb_util import fetch_frame
from surestream.connectors.file_sinks import read_parquet_dataset
from surestream.model.error_outputs import recorded_at_fields

#: characters of a record shown in a message before it is cut
RECORD_CHARS = 300


@dataclass
class OutputData:
    """One output of one run: the exact bytes where the format has them, and the records."""

    raw: bytes | None
    frame: pl.DataFrame


@dataclass
class RecordDiff:
    """The first position where two runs' records of one output differ."""

    index: int  # 0-based position in the output
    left: dict[str, Any] | None  # None: the run has fewer records
    right: dict[str, Any] | None
    columns: list[str] = field(default_factory=list)  # columns whose values differ


@dataclass
class OutputDiff:
    tag: str
    left_records: int
    right_records: int
    first: RecordDiff | None

    def describe(self, left: str, right: str) -> str:
        """``main record 17 differs in 'price': run 1 {...} / run 2 {...}``."""
        counts = ("" if self.left_records == self.right_records else
                  f" ({left} has {self.left_records:,} records, {right} "
                  f"{self.right_records:,})")
        if self.first is None:
            return f"{self.tag} differs{counts}"
        d = self.first
        where = (f" in {', '.join(repr(c) for c in d.columns)}" if d.columns else "")
        return (f"{self.tag} record {d.index + 1} differs{where}{counts}: "
                f"{left} {show_record(d.left)} / {right} {show_record(d.right)}")


def show_record(record: dict[str, Any] | None) -> str:
    if record is None:
        return "(no such record)"
    text = json.dumps(record, default=str, ensure_ascii=False)
    return text if len(text) <= RECORD_CHARS else text[:RECORD_CHARS] + "...}"


def output_path(folder: Path, tag: str, sink: Any) -> Path:
    """Where a verify run writes ``tag`` (the same rule the run's spec is written with)."""
    kind = getattr(sink, "type", "file")
    suffix = kind if kind in ("duckdb", "delta") else getattr(sink, "format", "jsonl")
    return folder / "out" / f"{tag}.{suffix}"


def iceberg_catalog(folder: Path, tag: str) -> dict[str, str]:
    """The embedded catalog a verify run writes Iceberg output ``tag`` to."""
    out = (folder / "out").resolve()
    return {"uri": f"sqlite:///{out}/{tag}.catalog.db", "warehouse": str(out / f"{tag}.warehouse")}


def run_table(folder: Path, sink: Any) -> str:
    """A ClickHouse output's table for the run in ``folder``: ``<table>_<run>``, beside
    the configured one in its database (each run writes a table of its own)."""
    return f"{sink.table}_{re.sub(r'[^A-Za-z0-9_]', '_', folder.name)}"


def _table_frame(folder: Path, tag: str, sink: Any) -> pl.DataFrame:
    """A Delta output's rows sorted by every column (a Delta scan's order is its files',
    not the commit order), or a ClickHouse output's read with FINAL in key order."""
    if sink.type == "delta":
        from deltalake import DeltaTable

        path = str(output_path(folder, tag, sink))
        if not DeltaTable.is_deltatable(path):
            return pl.DataFrame()
        frame = pl.read_delta(path)
        try:
            return frame.sort(frame.columns)
        except pl.exceptions.PolarsError:  # a column type polars cannot sort by
            return frame
    from clickhouse_driver import Client

    client = Client(host=sink.host, port=sink.port, database=sink.database, user=sink.user,
                    password=sink.password)
    try:
        table = f"`{sink.database}`.`{run_table(folder, sink)}`"
        if not client.execute(f"EXISTS TABLE {table}")[0][0]:
            return pl.DataFrame()
        order = ", ".join(f"`{k}`" for k in sink.key_columns)
        data, types = client.execute(f"SELECT * FROM {table} FINAL ORDER BY {order}",
                                     columnar=True, with_column_types=True)
    finally:
        client.disconnect()
    return pl.DataFrame({n: list(v) for (n, _), v in zip(types, data, strict=True)}
                        if data else {n: [] for n, _ in types})


def read_output(folder: Path, tag: str, sink: Any) -> OutputData:
    """The records ``tag`` holds after a run in ``folder`` (``sink`` None: the default
    errors file)."""
    kind = getattr(sink, "type", "file")
    fmt = getattr(sink, "format", "jsonl")
    drop = [*(getattr(sink, "processing_time_columns", []) or []), *recorded_at_fields(sink)]
    if kind == "kafka":
        return OutputData(None, read_topic_frame(folder, tag, sink).drop(drop, strict=False))
    if kind == "iceberg":  # a table has no row order: compared in one canonical order
        from surestream.connectors.tables.iceberg_read import canonical_order, read_table

        frame = read_table(iceberg_catalog(folder, tag), sink.table, Path)
        return OutputData(None, canonical_order(frame.drop(drop, strict=False)))
    if kind in ("delta", "clickhouse"):
        return OutputData(None, _table_frame(folder, tag, sink).drop(drop, strict=False))
    if kind == "postgres":
        return OutputData(None, read_table_frame(folder, sink).drop(drop, strict=False))
    path = output_path(folder, tag, sink)
    if kind == "duckdb":
        frame = pl.DataFrame()
        if path.exists():
            con = duckdb.connect(str(path), read_only=True)
            try:
                frame = fetch_frame(con, f'select * from "{sink.table}"')
            except duckdb.CatalogException:
                pass
            finally:
                con.close()
        return OutputData(None, frame.drop(drop, strict=False))
    if fmt == "parquet":
        return OutputData(None, read_parquet_dataset(path).drop(drop, strict=False))
    data = path.read_bytes() if path.exists() else b""
    if not data.strip():
        frame = pl.DataFrame()
    else:
        frame = pl.read_ndjson(data) if fmt == "jsonl" else pl.read_csv(data)
    if drop:
        return OutputData(None, frame.drop(drop, strict=False))
    return OutputData(data, frame)


def compare_output(tag: str, a: OutputData, b: OutputData) -> OutputDiff | None:
    """None when the two runs hold the same output, else where they first differ."""
    if a.raw is not None and b.raw is not None:
        if a.raw == b.raw:
            return None
        return OutputDiff(tag, a.frame.height, b.frame.height, _first_line_diff(a.raw, b.raw))
    if a.frame.equals(b.frame):
        return None
    return OutputDiff(tag, a.frame.height, b.frame.height, _first_row_diff(a.frame, b.frame))


def _first_line_diff(a: bytes, b: bytes) -> RecordDiff | None:
    la, lb = a.splitlines(), b.splitlines()
    for i in range(max(len(la), len(lb))):
        x = la[i] if i < len(la) else None
        y = lb[i] if i < len(lb) else None
        if x != y:
            return _record_diff(i, _decode(x), _decode(y))
    return None  # only line endings differ


def _decode(line: bytes | None) -> dict[str, Any] | None:
    if line is None:
        return None
    try:
        value = json.loads(line)
    except ValueError:
        return {"line": line.decode("utf-8", "replace")}  # a CSV line, shown as it is
    return value if isinstance(value, dict) else {"value": value}


def _first_row_diff(a: pl.DataFrame, b: pl.DataFrame) -> RecordDiff | None:
    n = min(a.height, b.height)
    start = 0
    if a.schema == b.schema and n:
        # vectorized: the first row whose hash differs (the rows before are equal)
        try:
            unequal = (a.head(n).hash_rows() != b.head(n).hash_rows()).arg_true()
            start = int(unequal[0]) if len(unequal) else n
        except pl.exceptions.PolarsError:  # a column type without a row hash
            start = 0
    for begin in dict.fromkeys((start, 0)):  # from 0 again only after a hash collision
        for i in range(begin, max(a.height, b.height)):
            x = a.row(i, named=True) if i < a.height else None
            y = b.row(i, named=True) if i < b.height else None
            if x != y:
                return _record_diff(i, x, y)
    return None


def _record_diff(i: int, x: dict[str, Any] | None, y: dict[str, Any] | None) -> RecordDiff:
    columns = []
    if x is not None and y is not None:
        columns = [c for c in dict.fromkeys([*x, *y]) if x.get(c) != y.get(c)]
    return RecordDiff(i, x, y, columns)
