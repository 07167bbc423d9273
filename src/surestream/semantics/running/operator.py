"""The running-aggregate operator: the ``aggregate`` step (a running result per key, with
an optional event-time state timeout) and tumbling/sliding windows in ``update`` or
``complete`` output mode (a running result per key and window).

One batch, all in columns:

1. records an aggregation cannot use go to errors (as in the window operators); for
   windows, each record is assigned its windows and the pairs whose window is late
   (Flink's rule, SEMANTICS §5) are dropped -- a record left with none goes to the late
   output;
2. with a state timeout, each record's *segment* (``segments.py``): 0 continues its key's
   state, a higher one is a fresh result after a timeout;
3. every group touched by the batch puts its state row in front of its records, and the
   running values are cumulative operations over (group, segment) (``accumulators.py``):
   the rows after each record, and, as each group's last row, its new state;
4. groups that are final -- a segment followed by a fresh one, a key whose last record is
   more than the timeout behind the batch's final watermark, a window past its cleanup
   time -- leave the state: ``append`` emits them (at the point where the watermark
   passed them, in a fixed order), ``complete`` keeps their results in its table,
   ``update`` has emitted them already.

``update`` emits the rows of step 3 (one per record and window, ``version`` = records
aggregated so far); ``complete`` emits nothing from ``process`` but the whole table from
``complete_table``, which the runner calls before every checkpoint.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from surestream.model.batch import NEG_INF, Batch
from surestream.model.steps import VERSION_COLUMN, AggregateStep, WindowStep
from surestream.semantics.aggregate_inputs import CHECKED_FUNCTIONS, unusable_rows
from surestream.semantics.errors import INVALID_VALUE, error_batch
from surestream.semantics.operator import ERRORS, MAIN, Outputs
from surestream.semantics.running.accumulators import LAST, TS, Accumulators, N
from surestream.semantics.running.segments import SEG, timeout_segments
from surestream.semantics.windows.assigners import (
    saturating_add,
    sliding_assignment,
    tumbling_assignment,
)
from surestream.semantics.windows.base import Timeline
from surestream.semantics.windows.output import late_output

ALL = "__ss_all"  # the one group of a step without key fields
ORD = "__ss_ord"  # a pair's number in the batch (-1: a state row)
WINDOW_START, WINDOW_END = "window_start", "window_end"
_POS, _DUE = "__ss_pos", "__ss_due"


class RunningAggregateOperator:
    """A running result per group (key fields, plus the window for windows)."""

    #: the layout of ``snapshot()``
    STATE_FORMAT = 1

    def __init__(self, step: AggregateStep | WindowStep, pipeline: str) -> None:
        self.name, self.step, self.pipeline = step.name, step, pipeline
        self.mode = step.output_mode
        self.keys = list(step.key_fields)
        self.window = step if isinstance(step, WindowStep) else None
        if self.window is not None and self.window.kind == "session":
            raise ValueError(f"window {step.name!r}: output_mode {self.mode} is for tumbling "
                             "and sliding windows")
        self.group = self.keys + ([WINDOW_START] if self.window is not None else [])
        self.gcols = self.group or [ALL]
        self.timeout = getattr(step, "state_timeout_ms", None)
        self.late_tag = self.window.late_output_tag if self.window is not None else None
        self.acc = Accumulators(step.aggregations, step.name)
        self._checks_values = any(spec.udf is None and spec.function in CHECKED_FUNCTIONS
                                  for spec in step.aggregations.values())
        self.state: pl.DataFrame | None = None  # gcols + the accumulators' state columns
        self.finished: pl.DataFrame | None = None  # complete: results of final groups
        self.wm = NEG_INF
        self.last_seq = -1
        self.counters = {"errors": 0, "late": 0, "finalized": 0}

    def output_tags(self) -> set[str]:
        return {self.late_tag} if self.late_tag else set()

    # -- one batch ------------------------------------------------------------------------
    def process(self, batch: Batch) -> Outputs:
        timeline = Timeline.of(batch, self.wm, self.last_seq)
        out: Outputs = {}
        skip = self._refuse_unusable(batch, out)
        rows, starts, late = self._pairs(batch, timeline, skip)
        if late is not None and len(late):
            self.counters["late"] += len(late)
            out[self.late_tag] = late_output(batch, late, timeline.before[late],
                                             wm_end=timeline.end, pipeline=self.pipeline,
                                             operator=self.name)
        updates, finals = self._accumulate(batch, timeline, rows, starts)
        if self.mode == "update":
            out[MAIN] = self._update_rows(batch, timeline, rows, starts, updates)
        elif self.mode == "append":
            out[MAIN] = self._final_rows(finals, timeline)
        else:
            self._keep_finished(finals)
            out[MAIN] = self._empty(timeline.end)
        self.wm = timeline.end
        if len(batch):
            self.last_seq = int(batch.seq[-1])
        return out

    def _refuse_unusable(self, batch: Batch, out: Outputs) -> np.ndarray | None:
        """Records an aggregation cannot use go to errors (counted) and join no group."""
        if self.window is not None and len(batch) and batch.ts is None:
            raise ValueError(f"window {self.name!r} got records without event time: put a "
                             "watermark step before it")
        if not self._checks_values or not len(batch):
            return None
        bad, reasons = unusable_rows(batch.data, self.step.aggregations)
        if not len(bad):
            return None
        self.counters["errors"] += len(bad)
        out[ERRORS] = error_batch(batch.data[bad], pipeline=self.pipeline, operator=self.name,
                                  error_type=INVALID_VALUE, message=reasons,
                                  wm=batch.wm[bad], seq=batch.seq[bad], wm_end=batch.wm_end,
                                  ts=None if batch.ts is None else batch.ts[bad])
        skip = np.zeros(len(batch), dtype=bool)
        skip[bad] = True
        return skip

    def _pairs(self, batch: Batch, timeline: Timeline, skip: np.ndarray | None
               ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """(record of each pair, its window start or None, the late records or None)."""
        n = len(batch)
        if self.window is None:
            rows = np.arange(n, dtype=np.int64)
            return (rows if skip is None else rows[~skip]), None, None
        w = self.window
        size = int(w.size_ms)
        a = tumbling_assignment(batch.ts, size, w.offset_ms) if w.kind == "tumbling" else \
            sliding_assignment(batch.ts, size, int(w.slide_ms), w.offset_ms)
        cleanup = saturating_add(a.starts + (size - 1), w.allowed_lateness_ms)
        kept = cleanup > timeline.before[a.rows]
        if skip is not None:
            kept &= ~skip[a.rows]
        added = np.zeros(n, dtype=bool)
        added[a.rows[kept]] = True
        late = np.flatnonzero(~added if skip is None else ~added & ~skip)
        return a.rows[kept], a.starts[kept], late

    def _accumulate(self, batch: Batch, timeline: Timeline, rows: np.ndarray,
                    starts: np.ndarray | None) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Steps 2-4: the running rows of the pairs (in pair order) and the groups that
        became final (their state rows, with ``_POS``: where the watermark passed them)."""
        finals: list[pl.DataFrame] = []
        updates = pl.DataFrame()
        if len(rows):
            pairs = self._pair_frame(batch, rows, starts)
            touched, rest = self._split_state(pairs)
            if self.timeout is not None:
                prior = pl.Series(LAST, [None] * pairs.height, dtype=pl.Int64) \
                    if touched is None else pairs.select(self.gcols).join(
                        touched.select([*self.gcols, LAST]), on=self.gcols, how="left",
                        nulls_equal=True, maintain_order="left").get_column(LAST)
                seg = timeout_segments(pairs, self.gcols, prior, timeline.before[rows],
                                       self.timeout)
            else:
                seg = np.zeros(len(rows), dtype=np.int64)
            pairs = pairs.with_columns(pl.Series(SEG, seg, dtype=pl.Int64))
            parts = [pairs] if touched is None else [
                touched.with_columns(pl.lit(0, pl.Int64).alias(SEG),
                                     pl.lit(-1, pl.Int64).alias(ORD)), pairs]
            combined = pl.concat(parts, how="diagonal_relaxed")
            self.acc.check_integer_sums(combined)
            combined = self.acc.cumulate(combined, [*self.gcols, SEG])
            updates = combined.filter(pl.col(ORD) >= 0)
            ends = combined.group_by([*self.gcols, SEG], maintain_order=True).last()
            last_seg = pl.col(SEG) == pl.col(SEG).max().over(self.gcols)
            finals.append(ends.filter(~last_seg))
            live = ends.filter(last_seg)
            self.state = live if rest is None else pl.concat([rest, live],
                                                             how="diagonal_relaxed")
            self.state = self.state.select([*self.gcols, *self.acc.state_columns])
        if self.state is not None and self.state.height:
            due = self._final_at(timeline.end)
            if due is not None:
                finals.append(self.state.filter(due))
                self.state = self.state.filter(~due)
        finals = [f.select([*self.gcols, *self.acc.state_columns]) for f in finals
                  if f.height]
        final = pl.concat(finals, how="diagonal_relaxed") if finals else None
        self.counters["finalized"] += 0 if final is None else final.height
        return updates, self._placed(final, timeline)

    def _pair_frame(self, batch: Batch, rows: np.ndarray, starts: np.ndarray | None
                    ) -> pl.DataFrame:
        """One row per pair: the group columns, the pair number and the state deltas."""
        data = batch.data
        ts = batch.ts if batch.ts is not None else batch.seq  # no watermark: by arrival
        deltas = pl.DataFrame(self.acc.deltas(data, np.asarray(ts, dtype=np.int64)))
        keys = [pl.col(k) if k in data.columns else pl.lit(None).alias(k) for k in self.keys]
        frame = pl.concat([data.select(keys) if keys else
                           pl.DataFrame({ALL: np.zeros(data.height, dtype=np.int64)}),
                           deltas], how="horizontal")
        frame = frame[rows] if len(rows) != data.height or starts is not None else frame
        if starts is not None:
            frame = frame.with_columns(pl.Series(WINDOW_START, starts, dtype=pl.Int64))
        return frame.with_columns(pl.Series(ORD, np.arange(len(rows), dtype=np.int64)))

    def _split_state(self, pairs: pl.DataFrame
                     ) -> tuple[pl.DataFrame | None, pl.DataFrame | None]:
        """The state rows of the groups in ``pairs``, and the others."""
        if self.state is None or not self.state.height:
            return None, None
        groups = pairs.select(self.gcols).unique()
        touched = self.state.join(groups, on=self.gcols, how="semi", nulls_equal=True)
        rest = self.state.join(groups, on=self.gcols, how="anti", nulls_equal=True)
        return (touched if touched.height else None), (rest if rest.height else None)

    def _final_at(self, wm: int) -> pl.Series | None:
        """Which state rows are final once the watermark is ``wm``."""
        if self.window is not None:
            cleanup = self._cleanup(self.state.get_column(WINDOW_START).to_numpy())
            return pl.Series(cleanup <= wm)
        if self.timeout is None:
            return None
        last = self.state.get_column(LAST).to_numpy()
        return pl.Series(last < wm - self.timeout) if wm > NEG_INF + self.timeout else None

    def _cleanup(self, starts: np.ndarray) -> np.ndarray:
        w = self.window
        return saturating_add(starts + (int(w.size_ms) - 1), w.allowed_lateness_ms)

    def _placed(self, final: pl.DataFrame | None, timeline: Timeline) -> pl.DataFrame | None:
        """The final groups with where (``_POS``, -1..n-1) and when (``_DUE``) the watermark
        passed them, in emission order: by position, then that time, then group."""
        if final is None:
            return None
        if self.window is not None:
            due = self._cleanup(final.get_column(WINDOW_START).to_numpy())
        else:
            due = final.get_column(LAST).to_numpy() + self.timeout
        pos = np.searchsorted(timeline.after, due, side="right") - 1
        final = final.with_columns(pl.Series(_POS, pos, dtype=pl.Int64),
                                   pl.Series(_DUE, due, dtype=pl.Int64))
        return final.sort([_POS, _DUE, *self.gcols], nulls_last=False, maintain_order=True)

    # -- outputs --------------------------------------------------------------------------
    def _result_columns(self, frame: pl.DataFrame) -> pl.DataFrame:
        """The rows users see: key fields, window, aggregations, ``version``."""
        cols: list[Any] = [pl.col(k) for k in self.keys]
        if self.window is not None:
            cols += [pl.col(WINDOW_START),
                     (pl.col(WINDOW_START) + int(self.window.size_ms)).alias(WINDOW_END)]
        return frame.select([*cols, *self.acc.results(), pl.col(N).alias(VERSION_COLUMN)])

    def _ts_of(self, frame: pl.DataFrame) -> np.ndarray:
        """A result row's event time: its window's last millisecond, else its group's last
        event time."""
        if self.window is not None:
            return frame.get_column(WINDOW_START).to_numpy() + (int(self.window.size_ms) - 1)
        return frame.get_column(LAST).to_numpy()

    def _update_rows(self, batch: Batch, timeline: Timeline, rows: np.ndarray,
                     starts: np.ndarray | None, updates: pl.DataFrame) -> Batch:
        if not updates.height:
            return self._empty(timeline.end)
        ts = (starts + (int(self.window.size_ms) - 1)) if self.window is not None else (
            batch.ts[rows] if batch.ts is not None else batch.seq[rows])
        return Batch(data=self._result_columns(updates), ts=np.asarray(ts, dtype=np.int64),
                     wm=np.ascontiguousarray(timeline.before[rows]),
                     seq=np.ascontiguousarray(batch.seq[rows]), wm_end=timeline.end)

    def _final_rows(self, finals: pl.DataFrame | None, timeline: Timeline) -> Batch:
        if finals is None:
            return self._empty(timeline.end)
        p = finals.get_column(_POS).to_numpy() + 1
        return Batch(data=self._result_columns(finals), ts=self._ts_of(finals),
                     wm=np.ascontiguousarray(timeline.emit_wm[p], dtype=np.int64),
                     seq=np.ascontiguousarray(timeline.emit_seq[p], dtype=np.int64),
                     wm_end=timeline.end)

    def _keep_finished(self, finals: pl.DataFrame | None) -> None:
        """complete: a final group's result stays in the table (its state goes); a fresh
        result of the same group replaces it there."""
        if finals is None:
            return
        done = self._result_frame(finals.group_by(self.gcols, maintain_order=True).last())
        if self.finished is not None and self.finished.height:
            kept = self.finished.join(done.select(self.gcols), on=self.gcols, how="anti",
                                      nulls_equal=True)
            done = pl.concat([kept, done], how="diagonal_relaxed")
        self.finished = done

    def _result_frame(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Results with the group columns the table is keyed by (and the event time)."""
        extra = [ALL] if not self.group else []
        return pl.concat([frame.select(extra), self._result_columns(frame),
                          pl.DataFrame({TS: self._ts_of(frame)})], how="horizontal")

    def complete_table(self, wm_end: int) -> Batch:
        """``complete``: every group's current result -- live ones and final ones -- sorted
        by group; the runner emits it before every checkpoint (each checkpoint a trigger)."""
        parts = []
        if self.state is not None and self.state.height:
            parts.append(self._result_frame(self.state))
        if self.finished is not None and self.finished.height:
            finished = self.finished
            if parts:
                finished = finished.join(parts[0].select(self.gcols), on=self.gcols,
                                         how="anti", nulls_equal=True)
            parts.append(finished)
        wm = max(self.wm, wm_end)
        if not parts:
            return self._empty(wm)
        table = pl.concat(parts, how="diagonal_relaxed").sort(self.gcols, nulls_last=False)
        ts = table.get_column(TS).to_numpy()
        table = table.drop([TS, *([ALL] if not self.group else [])])
        n = table.height
        return Batch(data=table, ts=np.asarray(ts, dtype=np.int64),
                     wm=np.full(n, self.wm, dtype=np.int64),
                     seq=np.full(n, self.last_seq, dtype=np.int64), wm_end=wm)

    def _empty(self, wm_end: int) -> Batch:
        """No rows, with the result columns when their types are known."""
        if self.state is not None:
            frame = self._result_columns(self.state.head(0))
            return Batch(data=frame, ts=np.zeros(0, dtype=np.int64),
                         wm=np.zeros(0, dtype=np.int64), seq=np.zeros(0, dtype=np.int64),
                         wm_end=wm_end)
        return Batch.empty(wm_end)

    # -- gauges and checkpoints -----------------------------------------------------------
    def state_gauges(self) -> dict[str, int]:
        """Groups with live state (keys; for windows also key+windows), results kept for
        a complete table, and the bytes of both tables."""
        live = 0 if self.state is None else self.state.height
        kept = 0 if self.finished is None else self.finished.height
        size = sum(int(f.estimated_size()) for f in (self.state, self.finished)
                   if f is not None)
        gauges = {"keys": live, "bytes": size}
        if self.window is not None:
            gauges["windows"] = live
            gauges["keys"] = 0 if not live else (
                self.state.select(self.keys).n_unique() if self.keys else 1)
        if self.mode == "complete":
            gauges["results"] = kept
        return gauges

    def snapshot(self) -> dict[str, Any]:
        return {"format": self.STATE_FORMAT, "mode": self.mode, "wm": self.wm,
                "last_seq": self.last_seq, "counters": dict(self.counters),
                "sum_modes": {str(k): v for k, v in self.acc.sum_modes.items()},
                "state": self.state, "finished": self.finished}

    def restore(self, state: dict[str, Any]) -> None:
        if state.get("format") != self.STATE_FORMAT:
            raise ValueError(f"step {self.name!r}: checkpoint state format "
                             f"{state.get('format')!r}, expected {self.STATE_FORMAT}")
        if state.get("mode") != self.mode:
            raise ValueError(f"step {self.name!r}: the checkpoint was taken in output_mode "
                             f"{state.get('mode')}, the pipeline has {self.mode}")
        self.wm, self.last_seq = int(state["wm"]), int(state["last_seq"])
        self.counters = {"errors": 0, "late": 0, "finalized": 0, **state["counters"]}
        self.acc.sum_modes = {int(k): v for k, v in state["sum_modes"].items()}
        self.state, self.finished = state["state"], state["finished"]


def build_aggregate_operator(step: AggregateStep | WindowStep, pipeline: str
                             ) -> RunningAggregateOperator:
    """The operator of an ``aggregate`` step, or of a window in update/complete mode."""
    internal = sorted(n for n in set(step.key_fields) | set(step.aggregations)
                      if n.startswith("__ss_"))
    if internal:
        raise ValueError(f"step {step.name!r}: {internal} start with '__ss_', which the "
                         "operator keeps for its own working columns; rename them first")
    return RunningAggregateOperator(step, pipeline)
