"""The watermark step: event time from a column, then the per-record watermark.

A record whose timestamp is missing, unparseable or outside the step's valid range
(``min_timestamp`` .. ``max_timestamp``) does not take part in event time: it goes to the
errors output with the reason (SEMANTICS §1) and moves no watermark.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from surestream.model.batch import Batch
from surestream.model.steps import WatermarkStep
from surestream.semantics.errors import MISSING_TIMESTAMP, TIMESTAMP_OUT_OF_RANGE, error_batch
from surestream.semantics.event_time import extract_event_time
from surestream.semantics.operator import ERRORS, MAIN, Outputs
from surestream.semantics.watermarks import Clock, WatermarkTracker


class WatermarkOperator:
    """Assigns ``ts`` and ``wm`` to every record of a source's batches."""

    def __init__(self, step: WatermarkStep, pipeline: str, clock: Clock | None = None) -> None:
        self.step = step
        self.name = step.name
        self.pipeline = pipeline
        self.tracker = WatermarkTracker(step.max_out_of_orderness_ms,
                                        step.idle_source_timeout_ms, clock)
        self.valid_range = step.valid_range_ms
        self.counters = {"errors": 0}

    @property
    def watermark(self) -> int:
        return self.tracker.current

    def output_tags(self) -> set[str]:
        return set()

    def declare_partitions(self, ids: list[int]) -> None:
        self.tracker.declare_partitions(ids)

    def process(self, batch: Batch) -> Outputs:
        times = extract_event_time(batch.data, self.step.timestamp_column,
                                   self.step.timestamp_unit, self.valid_range)
        ok = times.ok
        ended = batch.ended
        out: Outputs = {}
        if not ok.all():
            bad = ~ok
            rows = np.flatnonzero(bad)
            self.counters["errors"] += len(rows)
            # renumber partition ends into the kept rows' positions
            kept_before = np.cumsum(ok)
            ended = tuple((int(kept_before[i]) - 1 if i >= 0 else -1, p) for i, p in ended)
            errors_at = self.tracker.current
            outside = times.out_of_range
            kinds = [TIMESTAMP_OUT_OF_RANGE if outside is not None and outside[i]
                     else MISSING_TIMESTAMP for i in rows.tolist()]
            out[ERRORS] = error_batch(
                batch.data.filter(bad) if batch.data.width else [{}] * len(rows),
                pipeline=self.pipeline, operator=self.name, error_type=kinds,
                message=[times.reasons[i] for i in rows],
                wm=np.full(len(rows), errors_at, dtype=np.int64), seq=batch.seq[bad],
                wm_end=errors_at)
            batch = batch.filter(ok)
            ts = times.ts[ok]
        else:
            ts = times.ts
        wm, wm_end = self.tracker.advance(ts, batch.partition, ended)
        out[MAIN] = batch.with_time(ts, wm, wm_end)
        return out

    def snapshot(self) -> Any:
        return {"tracker": self.tracker.snapshot(), "counters": dict(self.counters)}

    def restore(self, state: Any) -> None:
        self.tracker.restore(state["tracker"])
        self.counters = dict(state["counters"])
