"""Sinks by spec: where a tag's records land. Every sink follows ``sink_protocol.Sink``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from surestream.connectors.duckdb_sink import DuckDBTableSink
from surestream.connectors.file_sinks import LineFileSink, ParquetDatasetSink
from surestream.connectors.sink_protocol import Guarantee, Sink
from surestream.model.spec import DuckDBSink, FileSink, MemorySink


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
        if committable is not None:
            self.commit(committable)

    def close(self) -> None:
        return None

    def frame(self) -> pl.DataFrame:
        return pl.concat(self.frames, how="diagonal_relaxed") if self.frames else pl.DataFrame()

    def rows(self) -> list[dict[str, Any]]:
        return self.frame().to_dicts()


def open_sink(spec: Any, resolve: Callable[[str], Path]) -> Sink:
    """The sink for one ``outputs`` entry."""
    if isinstance(spec, FileSink):
        path = resolve(spec.path)
        if spec.format == "parquet":
            return ParquetDatasetSink(path)
        return LineFileSink(path, spec.format)
    if isinstance(spec, DuckDBSink):
        return DuckDBTableSink(resolve(spec.path), spec.table)
    if isinstance(spec, MemorySink):
        return MemoryCollector()
    raise ValueError(f"unsupported sink {spec!r}")
