"""The ``processing_time`` step: a wall-clock column that replays identically (SEMANTICS §1).

Processing time enters a curated output only as declared metadata, and then it must be
reproducible: the value is taken once per checkpoint interval and stored with the
checkpoint. The operator holds one stamp: the clock's reading when the run started, then a
fresh reading each time a checkpoint snapshots it. Every record between two checkpoints
gets the stamp of the first; a run restored from checkpoint N stamps the records it
processes again with the value stored in N -- the same value the interrupted run gave
them, whatever the wall clock says now.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from surestream.model.batch import Batch
from surestream.model.steps import ProcessingTimeStep
from surestream.semantics.operator import MAIN, Outputs
from surestream.semantics.process import wall_clock_ms
from surestream.semantics.watermarks import Clock


class ProcessingTimeOperator:
    """Adds ``step.column``: the stamp of the current checkpoint interval."""

    def __init__(self, step: ProcessingTimeStep, pipeline: str,
                 clock: Clock | None = None) -> None:
        self.name = step.name
        self.pipeline = pipeline
        self.column = step.column
        self.unit = step.unit
        self.clock: Clock = clock or wall_clock_ms
        self.stamp: int | None = None  # taken at the first batch of a fresh run

    def output_tags(self) -> set[str]:
        return set()

    def process(self, batch: Batch) -> Outputs:
        if self.stamp is None:
            self.stamp = int(self.clock())
        if not len(batch):
            return {MAIN: batch}
        value = pl.lit(self.stamp, dtype=pl.Int64)
        if self.unit in ("timestamp", "date"):
            value = value.cast(pl.Datetime("ms")).dt.replace_time_zone("UTC")
        if self.unit == "date":  # the UTC day of the stamp: a replay after midnight keeps it
            value = value.dt.date()
        return {MAIN: batch.with_data(batch.data.with_columns(value.alias(self.column)))}

    def snapshot(self) -> Any:
        """The stamp of the interval this checkpoint opens, read from the clock now and
        stored with the checkpoint (the runner calls this once per checkpoint)."""
        self.stamp = int(self.clock())
        return {"stamp": self.stamp}

    def restore(self, state: Any) -> None:
        self.stamp = int(state["stamp"])
