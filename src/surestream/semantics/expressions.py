"""Column-wise transformations of a whole batch: ``with_columns``, ``where``, ``map_batches``.

Each takes the batch's frame and gives back one with the same rows in the same order (or,
for ``where``, a subset), so event time, watermark and sequence stay attached to their
records. One bad value costs one record, whatever the batch size:

- a batch the transformation fits is one vectorized call (the fast path);
- when the call fails, the failing records are isolated by bisection
  (``row_isolation``): each record that fails *alone* goes to the errors output with the
  reason (``CAST('abc' AS INT)`` names the column and the value), the others flow on in
  order. So a record fails if and only if it fails alone, and results do not depend on
  ``batch_size``;
- a SQL expression that fails on no rows at all (an unknown column, a condition that is
  not a boolean) does not fit any record: every record of the batch goes to errors at once,
  without bisecting.

SQL ``CAST`` is strict, as SQL says: a value that does not convert is an error, never a
null. ``TRY_CAST`` is the way to ask for a null instead (docs/concepts.md).

``CURRENT_DATE``, ``CURRENT_TIMESTAMP`` and ``NOW()`` in ``with_columns`` and ``where`` take
one value per checkpoint interval, stored with the checkpoint (``sql_processing_time``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl

from surestream.model.batch import Batch
from surestream.model.declared_schema import conform_frame
from surestream.model.steps import MapBatchesStep, WhereStep, WithColumnsStep
from surestream.semantics.errors import (
    EXPRESSION_ERROR,
    USER_FUNCTION_ERROR,
    describe_exception,
    error_batch,
)
from surestream.semantics.operator import ERRORS, MAIN, Outputs
from surestream.semantics.process import wall_clock_ms
from surestream.semantics.row_isolation import isolate_failures
from surestream.semantics.sql_processing_time import StampedSql
from surestream.semantics.user_functions import resolve_callable
from surestream.semantics.watermarks import Clock


class FrameTransformOperator:
    """Shared part: apply ``transform`` to the frame; records it fails on go to errors."""

    error_type = EXPRESSION_ERROR
    #: A SQL expression that fails on an empty frame fails on every record (the failure is
    #: in the schema, not in a value); a user function may fail on no rows for reasons of
    #: its own, so ``map_batches`` always bisects.
    empty_frame_decides = True

    def __init__(self, name: str, pipeline: str,
                 transform: Callable[[pl.DataFrame], pl.DataFrame]) -> None:
        self.name = name
        self.pipeline = pipeline
        self.transform = transform
        self.counters = {"errors": 0}
        #: the step's SQL, when it has any (its processing-time stamp is checkpointed)
        self.sql: StampedSql | None = None

    def output_tags(self) -> set[str]:
        return set()

    def evaluate(self, frame: pl.DataFrame) -> tuple[pl.DataFrame, np.ndarray | None]:
        """The new frame for every row of ``frame``, and which rows to keep (``None``: all).
        Raises when the data does not fit."""
        data = self.transform(frame)
        if not isinstance(data, pl.DataFrame) or data.height != frame.height:
            raise ValueError(f"{self.name} must return a DataFrame with one row per input "
                             f"row, in order: got {getattr(data, 'height', type(data).__name__)}"
                             f" for {frame.height}")
        return data, None

    def process(self, batch: Batch) -> Outputs:
        if self.sql is not None:
            self.sql.begin_batch()
        if not len(batch):
            return {MAIN: batch}
        try:
            data, keep = self.evaluate(batch.data)
        except Exception:  # noqa: BLE001, S110 - the data does not fit: find which records
            pass
        else:
            out = batch.with_data(data)
            return {MAIN: out if keep is None else out.filter(keep)}
        # outside the handler, so that a row's error does not chain the whole batch's
        return self._isolate(batch)

    def _isolate(self, batch: Batch) -> Outputs:
        """Outputs of a batch the one call failed on: the records that fail alone go to
        errors, the others flow on in order."""
        n = len(batch)
        schema_failure = self._failure_on_no_rows(batch.data) if self.empty_frame_decides \
            else None
        if schema_failure is not None:  # (its message and traceback hold no row)
            return {MAIN: batch.filter(np.zeros(n, dtype=bool)),
                    ERRORS: self._errors(batch, np.arange(n), [schema_failure] * n)}
        isolated = isolate_failures(
            n, lambda lo, hi: self.evaluate(batch.data.slice(lo, hi - lo)), whole_failed=True)
        rows = np.array([row for row, _ in isolated.failures], dtype=np.int64)
        good = np.ones(n, dtype=bool)
        good[rows] = False
        main = batch.filter(good)
        if isolated.results:
            frames = [frame for _, _, (frame, _) in isolated.results]
            main = main.with_data(pl.concat(frames, how="diagonal_relaxed"))
            if any(keep is not None for _, _, (_, keep) in isolated.results):
                main = main.filter(np.concatenate([
                    np.ones(hi - lo, dtype=bool) if keep is None else keep
                    for lo, hi, (_, keep) in isolated.results]))
        return {MAIN: main, ERRORS: self._errors(batch, rows, [e for _, e in isolated.failures])}

    def _failure_on_no_rows(self, frame: pl.DataFrame) -> Exception | None:
        """How the step fails on the frame's columns alone (no rows), if it does."""
        try:
            self.evaluate(frame.clear())
        except Exception as e:  # noqa: BLE001 - a failure of the schema, not of a value
            return e
        return None

    def _errors(self, batch: Batch, rows: np.ndarray, failures: list[Exception]) -> Batch:
        """One error record per failed row, with the reason it failed alone."""
        self.counters["errors"] += len(rows)
        described = [describe_exception(e) for e in failures]
        return error_batch(batch.data[rows], pipeline=self.pipeline, operator=self.name,
                           error_type=self.error_type,
                           message=[f"{kind}: {text.splitlines()[0] if text else ''}"
                                    for kind, text, _ in described],
                           traceback=[trace for _, _, trace in described],
                           exception=[kind for kind, _, _ in described],
                           wm=batch.wm[rows], seq=batch.seq[rows], wm_end=batch.wm_end,
                           ts=None if batch.ts is None else batch.ts[rows])

    def snapshot(self) -> Any:
        return {"counters": dict(self.counters),
                **(self.sql.snapshot() if self.sql is not None else {})}

    def restore(self, state: Any) -> None:
        if state:
            self.counters = dict(state["counters"])
        if self.sql is not None:
            self.sql.restore(state or {})


def build_with_columns_operator(step: WithColumnsStep, pipeline: str,
                                clock: Clock | None = None) -> FrameTransformOperator:
    """Columns computed in order, so a later expression may use an earlier one."""
    sql = StampedSql(list(step.columns.values()), clock or wall_clock_ms)
    names = list(step.columns)

    def transform(frame: pl.DataFrame) -> pl.DataFrame:
        for name, expr in zip(names, sql.exprs(), strict=True):
            frame = frame.with_columns(expr.alias(name))
        return frame

    op = FrameTransformOperator(step.name, pipeline, transform)
    op.sql = sql
    return op


class WhereOperator(FrameTransformOperator):
    """Keeps the rows whose condition is true; counts the others as filtered."""

    def __init__(self, step: WhereStep, pipeline: str, clock: Clock | None = None) -> None:
        super().__init__(step.name, pipeline, lambda frame: frame)
        self.sql = StampedSql([step.condition], clock or wall_clock_ms)
        self.counters["filtered"] = 0

    def evaluate(self, frame: pl.DataFrame) -> tuple[pl.DataFrame, np.ndarray | None]:
        condition = self.sql.exprs()[0]  # type: ignore[union-attr] - set in __init__
        keep = frame.select(condition.fill_null(False)).to_series()
        if keep.dtype != pl.Boolean:
            raise TypeError(f"condition of {self.name} gives {keep.dtype}, not a boolean")
        mask = keep.to_numpy()
        self.counters["filtered"] += int(len(mask) - mask.sum())
        return frame, mask


def build_map_batches_operator(step: MapBatchesStep, pipeline: str) -> FrameTransformOperator:
    """The user's function over the frame; a declared ``output_schema`` is applied inside
    the call (``model.declared_schema``), so a row that does not fit it is isolated as an
    error like a row the function fails on."""
    function = resolve_callable(step.function)
    if step.output_schema is not None:
        schema = step.output_schema

        def transform(frame: pl.DataFrame) -> pl.DataFrame:
            return conform_frame(function(frame), frame.height, schema, step.name)
    else:
        transform = function
    op = FrameTransformOperator(step.name, pipeline, transform)
    op.error_type = USER_FUNCTION_ERROR
    op.empty_frame_decides = False
    return op
