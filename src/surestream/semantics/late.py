"""The late-data step (SEMANTICS §3): records at or behind the watermark never vanish.

A record is late when ``event_ts <= W``, W being the watermark before the record itself is
counted. The strategy decides where it goes; every strategy counts it:

==============  ============================================================
quarantine      to the late output tag, with metadata (the default)
side_output     the same (Flink's name for it)
dlq             the same record and metadata, to a dead-letter destination
log_and_drop    logged with the metadata, counted, dropped
drop            counted, dropped (must be configured explicitly)
flag            kept in the stream; a boolean column (``is_late``) says so
==============  ============================================================

``flag`` is for a stage where lateness matters downstream but not here (a router sends
every record on; the windows after it judge lateness themselves): no record leaves the
stream, each carries ``flag_column`` (true when late), and the late ones are counted as
``late_flagged`` -- not ``late``, which counts records taken out of the stream.

The metadata columns keep their documented names (``watermark_ms``, ``lateness_ms``,
``original_timestamp``, ``pipeline``, ``operator``): tools and queries read them there. A
record's own column of such a name is not overwritten: it moves aside to
``<name>__input`` (see ``move_aside``), whatever the batch held.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import polars as pl

from surestream.model.batch import POS_INF, Batch
from surestream.model.steps import LateDataStep, LateMetadata
from surestream.semantics.late_summary import LateSummary
from surestream.semantics.operator import MAIN, Outputs

log = logging.getLogger("surestream.late")

#: Metadata columns added to a late record (the window operator's late output uses them too).
LATE_METADATA_COLUMNS = ("watermark_ms", "lateness_ms", "original_timestamp", "pipeline",
                         "operator")


def lateness_ms(wm: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """``W - ts`` for late records (``ts <= W``), saturated at int64 max: the difference
    is never negative, so a negative int64 result can only be an overflow (W at +infinity
    and a timestamp before 1970, or event times beyond the watermark step's range)."""
    diff = wm - ts
    return np.where((diff < 0) & (ts <= wm), POS_INF, diff)


#: A record's own column named like a metadata column moves to ``<name>`` + this suffix.
MOVED_ASIDE_SUFFIX = "__input"


def moved_aside_name(column: str, metadata: set[str] | frozenset[str]) -> str | None:
    """Where a record's column goes in the late output, or None when it stays.

    A column is moved when it is a metadata name followed by zero or more
    ``MOVED_ASIDE_SUFFIX`` (``operator``, ``operator__input``, ...): each moves one step
    down that chain (``operator`` -> ``operator__input`` -> ``operator__input__input``).
    The rule looks at the column's name only, never at the other columns of the batch, so
    a record's late row is the same whatever batch it came in (the columns of a batch
    built from records, as after a ``map``, are those its records happen to have), and
    nothing a record holds is ever overwritten or merged into another column.
    """
    base = column
    while base.endswith(MOVED_ASIDE_SUFFIX):
        base = base[: -len(MOVED_ASIDE_SUFFIX)]
    return column + MOVED_ASIDE_SUFFIX if base in metadata else None


def move_aside(data: pl.DataFrame, metadata: set[str] | frozenset[str]) -> pl.DataFrame:
    """``data`` with every column that would collide with ``metadata`` renamed
    (``moved_aside_name``), so the metadata can be added under its documented names."""
    renames = {c: new for c in data.columns
               if (new := moved_aside_name(c, metadata)) is not None}
    if not renames:
        return data
    log.debug("late output: the records' columns %s are kept as %s (late metadata names)",
              sorted(renames), sorted(renames.values()))
    return data.rename(renames)


def annotate_late(late: Batch, *, pipeline: str, operator: str,
                  metadata: LateMetadata | None = None) -> Batch:
    """``late`` with its metadata columns: W before the record, ``W - ts``, ``ts``, who.

    The metadata always has its documented names; a record's own column of such a name is
    kept under ``<name>__input`` (``move_aside``), never overwritten."""
    meta = metadata or LateMetadata()
    if late.ts is None:
        raise ValueError(f"{operator}: late records need event time (add a watermark step)")
    cols: list[pl.Series] = []
    if meta.include_watermark:
        cols.append(pl.Series("watermark_ms", late.wm, dtype=pl.Int64))
    if meta.include_lateness_ms:
        cols.append(pl.Series("lateness_ms", lateness_ms(late.wm, late.ts), dtype=pl.Int64))
    if meta.include_original_timestamp:
        cols.append(pl.Series("original_timestamp", late.ts, dtype=pl.Int64))
    cols.append(pl.Series("pipeline", [pipeline] * len(late), dtype=pl.String))
    cols.append(pl.Series("operator", [operator] * len(late), dtype=pl.String))
    data = move_aside(late.data, frozenset(c.name for c in cols))
    return late.with_data(data.with_columns(cols))


class LateDataOperator:
    """Splits ``ts <= W`` off the stream, vectorized over the batch."""

    def __init__(self, step: LateDataStep, pipeline: str) -> None:
        self.step = step
        self.name = step.name
        self.pipeline = pipeline
        self.counters = {"late_flagged": 0} if step.strategy == "flag" else {"late": 0}
        #: every late record's count and event-time range over the whole job (checkpointed)
        self.seen = LateSummary()

    def output_tags(self) -> set[str]:
        return {self.step.output_tag} if self.step.emits_records else set()

    def process(self, batch: Batch) -> Outputs:
        if batch.ts is None:
            raise ValueError(f"{self.name}: needs event time; put a watermark step before it")
        late_mask = batch.ts <= batch.wm
        self.seen.add(batch.ts[late_mask])
        if self.step.strategy == "flag":
            self.counters["late_flagged"] += int(late_mask.sum())
            flag = pl.Series(self.step.flag_column, late_mask, dtype=pl.Boolean)
            return {MAIN: batch.with_data(batch.data.with_columns(flag))}
        n_late = int(late_mask.sum())
        if n_late == 0:
            return {MAIN: batch}
        self.counters["late"] += n_late
        out: Outputs = {MAIN: batch.filter(~late_mask)}
        late = annotate_late(batch.filter(late_mask), pipeline=self.pipeline,
                             operator=self.name, metadata=self.step.metadata)
        if self.step.emits_records:
            out[self.step.output_tag] = late
        elif self.step.strategy == "log_and_drop":
            for row in late.data.iter_rows(named=True):
                log.warning("late record dropped by %s: %s", self.name, row)
        return out

    def late_range(self) -> dict[str, int | None]:
        """For the telemetry snapshot: late records and their event-time range (ms)."""
        return self.seen.to_dict()

    def summary_lines(self) -> list[str]:
        """The ETL framework's summary line for this step, over the whole job."""
        return [self.seen.line()]

    def snapshot(self) -> Any:
        return {"counters": dict(self.counters), "seen": self.seen.to_dict()}

    def restore(self, state: Any) -> None:
        if "counters" not in state:  # a checkpoint from before the range was kept
            self.counters = dict(state)
            self.seen = LateSummary(sum(int(v) for v in state.values()))
            return
        self.counters = dict(state["counters"])
        self.seen = LateSummary.from_dict(state["seen"])


def late_mask(ts: np.ndarray, wm: np.ndarray) -> np.ndarray:
    """The §3 rule on its own: late where ``ts <= W`` (W before the record)."""
    return ts <= wm
