"""Sinks by spec: where a tag's records land. Every sink follows ``sink_protocol.Sink``."""

from __future__ import annotations

import sys
from collections.abc import Callable
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
from surestream.model.spec import DuckDBSink, FileSink, MemorySink, StdoutSink


class MemoryCollector:
    """Keeps committed records in memory: the test sink (``RunResult.rows(tag)``).

    Records become visible at commit, like every other sink, so a test sees exactly what a
    file would hold."""

    guarantee: Guarantee = "exactly_once"

    def __init__(self) -> None:
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


def open_sink(spec: Any, resolve: Callable[[str], Path]) -> Sink:
    """The sink for one ``outputs`` entry."""
    if isinstance(spec, FileSink):
        path = resolve(spec.path)
        if spec.format == "parquet":
            return ParquetDatasetSink(path, spec.partition_by)
        return LineFileSink(path, spec.format)
    if isinstance(spec, DuckDBSink):
        return DuckDBTableSink(resolve(spec.path), spec.table)
    if isinstance(spec, MemorySink):
        return MemoryCollector()
    if isinstance(spec, StdoutSink):
        return StdoutLines()
    raise ValueError(f"unsupported sink {spec!r}")
