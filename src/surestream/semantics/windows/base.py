"""What tumbling, sliding and session window operators share: the watermark timeline of a
batch, refusing records whose values an aggregation cannot use or on which a user aggregate
function raises, the late output, and assembling the outputs by tag."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from surestream.model.batch import NEG_INF, Batch, concat
from surestream.model.steps import WindowStep
from surestream.semantics.aggregate_inputs import CHECKED_FUNCTIONS, unusable_rows
from surestream.semantics.aggregates import AggregateSet, UdafCallError
from surestream.semantics.errors import INVALID_VALUE, describe_exception, error_batch
from surestream.semantics.operator import ERRORS, MAIN, Outputs
from surestream.semantics.windows.keys import KeyColumns
from surestream.semantics.windows.output import FiringBuffer, empty_output, late_output


@dataclass(frozen=True, slots=True)
class Timeline:
    """The watermark around each record of a batch, as positions -1..n-1.

    Position -1 is "before the first record". ``before[i]`` is the watermark in force when
    record i arrives; ``after[p + 1]`` the watermark right after position p (so ``after[0]``
    is ``before[0]`` and ``after[n]`` is the batch's ``wm_end``); ``emit_wm[p + 1]`` and
    ``emit_seq[p + 1]`` are what a firing at position p carries. The watermark never goes
    down: a batch whose ``wm`` is below the operator's is read as the operator's.
    """

    before: np.ndarray
    after: np.ndarray
    emit_wm: np.ndarray
    emit_seq: np.ndarray

    @property
    def end(self) -> int:
        return int(self.after[-1])

    @staticmethod
    def of(batch: Batch, current_wm: int, last_seq: int) -> Timeline:
        wm = np.maximum.accumulate(np.concatenate(
            [np.array([current_wm], dtype=np.int64), np.asarray(batch.wm, dtype=np.int64)]))
        end = max(int(wm[-1]), int(batch.wm_end))
        return Timeline(
            before=wm[1:],
            after=np.append(wm[1:], np.int64(end)),
            emit_wm=wm,
            emit_seq=np.concatenate([np.array([last_seq], dtype=np.int64),
                                     np.asarray(batch.seq, dtype=np.int64)]),
        )


class WindowOperatorBase:
    """Configuration, watermark and output plumbing common to every window operator."""

    sessions = False
    #: the layout of ``snapshot()`` (checkpointing.py refuses a checkpoint of another):
    #: 2 since ``sum`` over integers keeps exact integer sums instead of a float64 total;
    #: 3 since ``min``/``max``/``first``/``last`` keep integers, booleans and decimals as
    #: they are instead of as float64
    STATE_FORMAT = 3

    def __init__(self, step: WindowStep, pipeline: str) -> None:
        self.name = step.name
        self.step = step
        self.pipeline = pipeline
        self.late_tag = step.late_output_tag
        self.lateness = step.allowed_lateness_ms
        self.keys = KeyColumns(step.key_fields)
        self.aggs = AggregateSet(step.aggregations)
        self.wm = NEG_INF
        self.last_seq = -1
        self.counters = {"late": 0, "errors": 0}
        self._checks_values = any(spec.udf is None and spec.function in CHECKED_FUNCTIONS
                                  for spec in step.aggregations.values())

    def output_tags(self) -> set[str]:
        return {self.late_tag}

    def _check(self, batch: Batch) -> None:
        if len(batch):
            if batch.ts is None:
                raise ValueError(f"window {self.name!r} got records without event time: put a "
                                 "watermark step before it")
            self.keys.observe(batch.data)

    def _refuse_unusable(self, batch: Batch) -> tuple[np.ndarray | None, Batch | None]:
        """The records an aggregation cannot use (a mask, None when there are none), and
        their error records.

        Refused records are added to no window, so they are not late either. They stay in
        the batch, skipped, rather than being filtered out: the watermark they move and the
        points where windows fire are then those of the input, whatever the batch cut --
        one bad value costs one record."""
        if not self._checks_values or not len(batch):
            return None, None
        rows, reasons = unusable_rows(batch.data, self.step.aggregations)
        if not len(rows):
            return None, None
        self.counters["errors"] += len(rows)
        errors = error_batch(batch.data[rows], pipeline=self.pipeline, operator=self.name,
                             error_type=INVALID_VALUE, message=reasons, wm=batch.wm[rows],
                             seq=batch.seq[rows], wm_end=batch.wm_end, ts=batch.ts[rows])
        refused = np.zeros(len(batch), dtype=bool)
        refused[rows] = True
        return refused, errors

    def _udaf_errors(self, batch: Batch, failures: dict[int, UdafCallError]) -> Batch:
        """The error records of the rows of ``batch`` a user aggregate function failed on
        (counted): the user's exception type, the call that raised, the traceback."""
        rows = np.array(sorted(failures), dtype=np.int64)
        self.counters["errors"] += len(rows)
        errors = [failures[r] for r in rows.tolist()]
        described = [describe_exception(e.cause) for e in errors]
        return error_batch(
            batch.data[rows], pipeline=self.pipeline, operator=self.name,
            error_type=[kind for kind, _, _ in described],
            message=[f"window {self.name!r}: {e}; the record is added to no window"
                     for e in errors],
            traceback=[trace for _, _, trace in described],
            wm=batch.wm[rows], seq=batch.seq[rows], wm_end=batch.wm_end, ts=batch.ts[rows])

    def _add_errors(self, out: Outputs, *errors: Batch | None) -> Outputs:
        """Put the error batches into ``out`` as one, in input order (``seq``; the order
        given for equal ``seq``), so the errors output does not depend on the cut."""
        parts = [e for e in errors if e is not None and len(e)]
        if ERRORS in out:
            parts.insert(0, out.pop(ERRORS))
        if not parts:
            return out
        merged = concat(parts)
        if len(parts) > 1:
            merged = merged.take(np.argsort(merged.seq, kind="stable"))
        out[ERRORS] = merged
        return out

    def _outputs(self, batch: Batch, timeline: Timeline, firings: FiringBuffer,
                 late_rows: np.ndarray) -> Outputs:
        """Build the outputs and move the operator's watermark/sequence to the batch's end.
        A firing whose user ``result`` raised goes to ``errors`` (``FiringBuffer.build``)."""
        end = timeline.end
        failed = None
        if len(firings):
            main, failed = firings.build(timeline.emit_wm, timeline.emit_seq, end)
        else:
            main = empty_output(self.keys, self.aggs, self.sessions, end)
        out: Outputs = {MAIN: main}
        if failed is not None:
            self.counters["errors"] += len(failed)
            out[ERRORS] = failed
        if len(late_rows):
            self.counters["late"] += len(late_rows)
            out[self.late_tag] = late_output(batch, late_rows, timeline.before[late_rows],
                                             wm_end=end, pipeline=self.pipeline,
                                             operator=self.name)
        self.wm = end
        if len(batch):
            self.last_seq = int(batch.seq[-1])
        return out
