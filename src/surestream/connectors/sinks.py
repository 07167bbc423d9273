"""Sinks by spec: where a tag's records land. Every sink follows ``sink_protocol.Sink``."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from surestream.connectors.duckdb_sink import DuckDBTableSink
from surestream.connectors.file_sinks import (
    JSON_FLOAT_ADVICE,
    JSON_TYPE_ADVICE,
    LineFileSink,
    ParquetDatasetSink,
    refused_by_json,
)
from surestream.connectors.sink_protocol import (
    Guarantee,
    Rejection,
    Sink,
    blank_refused_columns,
    non_finite_check,
    reject_rows,
    type_check,
)
from surestream.model.output_modes import complete_tags, replaces
from surestream.model.spec import (
    ClickHouseSink,
    DeltaSink,
    DuckDBSink,
    FileSink,
    IcebergSink,
    KafkaSink,
    MemorySink,
    PostgresSink,
    StdoutSink,
)
from surestream.model.steps import LateDataStep, WindowStep
from surestream.model.stream_graph import step_side_tags


class MemoryCollector:
    """Keeps committed records in memory: the test sink (``RunResult.rows(tag)``).

    Records become visible at commit, like every other sink, so a test sees exactly what a
    file would hold. With ``replace`` each checkpoint's records replace what it holds (the
    sink of an ``output_mode: complete`` result, like a table in ``mode: replace``)."""

    guarantee: Guarantee = "exactly_once"

    def __init__(self, replace: bool = False) -> None:
        self.replace = replace
        self.frames: list[pl.DataFrame] = []
        self._open: list[pl.DataFrame] = []
        self._staged: dict[int, list[pl.DataFrame]] = {}
        self.records = 0

    def open(self, fresh: bool) -> None:
        if fresh:
            self.frames, self.records = [], 0

    def reject(self, data: pl.DataFrame) -> Rejection | None:  # noqa: ARG002
        return None  # memory holds any value as it is

    def write(self, data: pl.DataFrame) -> None:
        if data.height:
            self._open.append(data)

    def pre_commit(self, checkpoint_id: int) -> dict[str, Any]:
        self._staged[checkpoint_id], self._open = self._open, []
        return {"checkpoint": checkpoint_id}

    def commit(self, committable: dict[str, Any]) -> None:
        frames = self._staged.pop(committable["checkpoint"], [])
        if self.replace:
            self.frames, self.records = [], 0
        self.frames.extend(frames)
        self.records += sum(f.height for f in frames)

    def recover(self, committable: dict[str, Any] | None, checkpoint_id: int) -> None:
        self._open = []  # the open transaction never happened; nor did newer checkpoints
        self._staged = {n: f for n, f in self._staged.items() if n <= checkpoint_id}
        if committable is not None:
            self.commit(committable)

    def close(self) -> None:
        return None

    def frame(self) -> pl.DataFrame:
        return pl.concat(self.frames, how="diagonal_relaxed") if self.frames else pl.DataFrame()

    def rows(self) -> list[dict[str, Any]]:
        return self.frame().to_dicts()


class StdoutLines:
    """Records printed as JSON lines at commit; a crash after printing cannot unprint, so
    a replay may print some again (at-least-once)."""

    guarantee: Guarantee = "at_least_once"

    def __init__(self) -> None:
        self._inner = MemoryCollector()
        self.records = 0

    def open(self, fresh: bool) -> None:
        return None

    def reject(self, data: pl.DataFrame) -> Rejection | None:
        """As a JSON lines file: no binary data or objects, no NaN or infinity."""
        if not data.height:
            return None
        output = "standard output (JSON lines)"
        return reject_rows(data, [type_check(refused_by_json, output, JSON_TYPE_ADVICE),
                                  non_finite_check(output, JSON_FLOAT_ADVICE)])

    def write(self, data: pl.DataFrame) -> None:
        self._inner.write(blank_refused_columns(data, refused_by_json))

    def pre_commit(self, checkpoint_id: int) -> dict[str, Any]:
        return self._inner.pre_commit(checkpoint_id)

    def commit(self, committable: dict[str, Any]) -> None:
        before = len(self._inner.frames)
        self._inner.commit(committable)
        for frame in self._inner.frames[before:]:
            sys.stdout.write(frame.write_ndjson())
            self.records += frame.height
        self._inner.frames.clear()
        sys.stdout.flush()

    def recover(self, committable: dict[str, Any] | None, checkpoint_id: int) -> None:
        return None  # what was printed stays printed

    def close(self) -> None:
        return None


@dataclass(frozen=True)
class SinkContext:
    """What a sink may need beyond its spec entry: whose output it is, what its records
    are (for a Kafka topic's default headers), and a folder to stage checkpoints in."""

    pipeline: str
    tag: str
    staging: Path  # this output's own folder, beside the checkpoint folder
    kind: str = "records"  # "records" | "errors" | "late"
    complete: bool = False  # its records are an output_mode complete result table


def sink_context(spec: Any, tag: str, error_tags: list[str]) -> SinkContext:
    """The context of output ``tag`` of pipeline ``spec`` (a ``PipelineSpec``)."""
    late = {t for stream in spec.all_streams.values() for step in stream.steps
            if isinstance(step, LateDataStep | WindowStep) for t in step_side_tags(step)}
    kind = "errors" if tag in error_tags else "late" if tag in late else "records"
    cp = spec.checkpoint_dir()
    return SinkContext(spec.pipeline, tag, cp.parent / f"{cp.name}-sink-staging" / tag, kind,
                       complete=tag in complete_tags(spec))


def open_sink(spec: Any, resolve: Callable[[str], Path],
              context: SinkContext | None = None) -> Sink:
    """The sink for one ``outputs`` entry (``context``: needed by a Kafka output)."""
    if isinstance(spec, KafkaSink):
        from surestream.connectors.kafka.broker import resolve_bootstrap
        from surestream.connectors.kafka.sink import KafkaTopicSink

        if context is None:
            raise ValueError("a Kafka output needs its SinkContext (pipeline, tag, staging)")
        return KafkaTopicSink(
            spec, bootstrap=resolve_bootstrap(spec.bootstrap,
                                              f"outputs.{context.tag}.bootstrap"),
            pipeline=context.pipeline, tag=context.tag, staging=context.staging,
            kind=context.kind)  # type: ignore[arg-type]
    if isinstance(spec, PostgresSink):
        from surestream.connectors.tables.postgres import PostgresTableSink

        if context is None:
            raise ValueError("a PostgreSQL output needs its SinkContext (pipeline, tag)")
        return PostgresTableSink(spec, pipeline=context.pipeline, tag=context.tag)
    if isinstance(spec, FileSink):
        path = resolve(spec.path)
        if spec.format == "parquet":
            return ParquetDatasetSink(path, spec.partition_by)
        return LineFileSink(path, spec.format)
    if isinstance(spec, DuckDBSink):
        return DuckDBTableSink(resolve(spec.path), spec.table, replace=spec.mode == "replace")
    if isinstance(spec, IcebergSink):
        from surestream.connectors.tables.iceberg import IcebergTableSink

        pipeline, tag = (context.pipeline, context.tag) if context else ("pipeline", "main")
        return IcebergTableSink(spec, resolve, pipeline, tag)
    if isinstance(spec, DeltaSink):
        from surestream.connectors.tables.delta import DeltaTableSink

        if context is None:
            raise ValueError("a Delta output needs its SinkContext (pipeline, tag, staging)")
        uri = spec.path if "://" in spec.path else str(resolve(spec.path))
        return DeltaTableSink(uri, spec.partition_by, spec.app_id or
                              f"surestream-{context.pipeline}-{context.tag}",
                              context.staging, spec.storage_options)
    if isinstance(spec, ClickHouseSink):
        from surestream.connectors.tables.clickhouse import ClickHouseTableSink

        if context is None:
            raise ValueError("a ClickHouse output needs its SinkContext (staging)")
        return ClickHouseTableSink(spec, context.staging)
    if isinstance(spec, MemorySink):
        return MemoryCollector(replace=replaces(spec, context is not None and context.complete))
    if isinstance(spec, StdoutSink):
        return StdoutLines()
    raise ValueError(f"unsupported sink {spec!r}")
