"""Reading an output's committed records back after a run (``RunResult.rows(tag)``).

When a run ends, ``committed_output(sink)`` notes what each output holds at that moment --
a memory output's frames, or where a file, dataset or table is and its size, time and
record count -- without reading it (an output may be large). ``rows()`` reads it when
asked, in the order the records were committed:

- JSON lines: each line as the JSON value it is (integers stay integers);
- CSV: the rows with their types inferred from the whole file (CSV keeps text only);
- a Parquet dataset: the part files of the run, partition by partition, in commit order;
- a DuckDB table: its rows in insertion order;
- a table sink's table (connectors/tables/): what its ``read_committed`` reads, now;
- a Kafka topic: this run's records (``surestream.run`` header), read to the topic's end
  with ``read_committed``, in commit order (``connectors/kafka/reader.py``);
- a table sink with its own reader (Delta: the table as of the version the run left;
  ClickHouse: the table read with ``FINAL``), through the sink's ``committed_reader()``;
- standard output keeps nothing: its records were printed.

An output is read back only while it is still what the run left: if another run has
written it since (a later run of the same pipeline rewrites its outputs), reading raises
``OutputChangedError`` instead of handing over that other run's records as this run's.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import orjson
import polars as pl

from surestream.connectors.duckdb_sink import DuckDBTableSink
from surestream.connectors.duckdb_util import fetch_frame
from surestream.connectors.file_sinks import LineFileSink, ParquetDatasetSink, dataset_parts
from surestream.connectors.sinks import MemoryCollector, StdoutLines


class OutputChangedError(RuntimeError):
    """An output was written again after the run whose records were asked for."""


class OutputNotKeptError(ValueError):
    """An output that keeps no records to read back (standard output)."""


def _stamp(path: Path) -> tuple[int, int] | None:
    """(size, modification time in ns) of a file; None when it does not exist."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_size, st.st_mtime_ns


@dataclass(frozen=True)
class CommittedOutput:
    """What one output held when the run ended, readable with ``rows()``."""

    tag: str
    kind: str  # "memory" | "jsonl" | "csv" | "parquet" | "duckdb" | "stdout"
    records: int
    path: Path | None = None
    table: str | None = None
    #: (size, mtime) of the file, or of each part file of a dataset, as the run left it
    stamps: tuple[tuple[str, tuple[int, int] | None], ...] = ()
    frames: tuple[pl.DataFrame, ...] = ()
    #: a Kafka output: where it is, and the id its run's messages carry
    bootstrap: str | None = None
    topic: str | None = None
    run_id: str | None = None
    #: a table sink's own reader of its committed rows (``read_committed``)
    reader: Callable[[], pl.DataFrame] | None = None

    def describe(self) -> str:
        if self.kind == "table":
            return f"output {self.tag!r} ({self.table})"
        if self.kind == "duckdb":
            return f"DuckDB table {self.table!r} in {self.path}"
        if self.kind in ("memory", "stdout"):
            return f"{self.kind} output {self.tag!r}"
        if self.kind == "kafka":
            return f"output {self.tag!r} (Kafka topic {self.topic})"
        if self.kind == "table":
            return f"output {self.tag!r} ({self.table})"
        return f"{self.kind} output {self.tag!r} ({self.path})"

    def _check_unchanged(self) -> None:
        if self.kind == "parquet":
            now = tuple((str(p), _stamp(p)) for p in dataset_parts(self.path))
        else:
            now = ((str(self.path), _stamp(self.path)),)
        if now != self.stamps:
            raise OutputChangedError(
                f"{self.describe()} was written again after this run ended (by another run "
                "of the pipeline?), so it no longer holds this run's records; read them "
                "right after the run, or from the result of the run that wrote them")

    def _frame(self) -> pl.DataFrame:
        if self.kind == "memory":
            return pl.concat(self.frames, how="diagonal_relaxed") if self.frames \
                else pl.DataFrame()
        if self.kind == "stdout":
            raise OutputNotKeptError(
                f"output {self.tag!r} is standard output: its records were printed, not "
                "kept; send the tag to memory() or a file to read them back")
        if self.kind == "kafka":
            return pl.DataFrame(self._kafka_records()) if self.records else pl.DataFrame()
        if self.kind == "table":
            return self.reader() if self.reader is not None else pl.DataFrame()
        self._check_unchanged()
        if self.kind == "parquet":
            frames = [pl.read_parquet(p) for p, _ in self.stamps]
            return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()
        if self.kind == "duckdb":
            if not self.records:
                return pl.DataFrame()
            con = duckdb.connect(str(self.path), read_only=True)
            try:
                name = '"' + (self.table or "").replace('"', '""') + '"'
                return fetch_frame(con, f"select * from {name}")
            finally:
                con.close()
        data = self._bytes()
        if not data.strip():
            return pl.DataFrame()
        return pl.read_csv(data, infer_schema_length=None)

    def _bytes(self) -> bytes:
        with open(self.path, "rb") as f:
            return f.read()

    def _kafka_records(self) -> list[dict[str, Any]]:
        from surestream.connectors.kafka.messages import RUN_HEADER
        from surestream.connectors.kafka.reader import committed_messages, read_all

        messages = committed_messages(read_all(self.bootstrap or "", self.topic or ""))
        return [m.record() for m in messages if m.header(RUN_HEADER) == self.run_id]

    def rows(self) -> list[dict[str, Any]]:
        """The committed records, oldest first, as dicts."""
        if self.kind == "kafka":
            return self._kafka_records()
        if self.kind != "jsonl":
            return self._frame().to_dicts()
        self._check_unchanged()
        return [orjson.loads(line) for line in self._bytes().splitlines() if line.strip()]


def committed_output(tag: str, sink: Any) -> CommittedOutput:
    """Note what ``sink`` holds now (at the end of a run), to be read back later."""
    records = int(getattr(sink, "records", 0))
    if isinstance(sink, MemoryCollector):
        return CommittedOutput(tag, "memory", records, frames=tuple(sink.frames))
    if isinstance(sink, StdoutLines):
        return CommittedOutput(tag, "stdout", records)
    if isinstance(sink, LineFileSink):
        return CommittedOutput(tag, sink.fmt, records, sink.path,
                               stamps=((str(sink.path), _stamp(sink.path)),))
    if isinstance(sink, ParquetDatasetSink):
        return CommittedOutput(tag, "parquet", records, sink.path,
                               stamps=tuple((str(p), _stamp(p))
                                            for p in dataset_parts(sink.path)))
    if isinstance(sink, DuckDBTableSink):
        return CommittedOutput(tag, "duckdb", records, sink.path, sink.table,
                               stamps=((str(sink.path), _stamp(sink.path)),))
    reader = getattr(sink, "committed_reader", None)
    if reader is not None:  # a table sink (connectors/tables): reads its own state back
        return CommittedOutput(tag, "table", records, table=sink.output, reader=reader())
    from surestream.connectors.kafka.sink import KafkaTopicSink

    if isinstance(sink, KafkaTopicSink):
        return CommittedOutput(tag, "kafka", records, bootstrap=sink.bootstrap,
                               topic=sink.topic, run_id=sink.run_id)
    raise TypeError(f"output {tag!r}: no way to read back a {type(sink).__name__}")
