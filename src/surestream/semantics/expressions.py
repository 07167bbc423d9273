"""Column-wise transformations of a whole batch: ``with_columns``, ``where``, ``map_batches``.

Both take the batch's frame and give back one with the same rows in the same order, so
event time, watermark and sequence stay attached to their records. Columns are typed, so a
transformation either fits a batch or does not (an unknown column, a string times a
number, an exception in the user's function): when it does not, every record of that
batch goes to the errors output with the reason, and the pipeline goes on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl

from surestream.model.batch import Batch
from surestream.model.steps import MapBatchesStep, WhereStep, WithColumnsStep
from surestream.semantics.errors import describe_exception, error_batch
from surestream.semantics.operator import ERRORS, MAIN, Outputs
from surestream.semantics.user_functions import resolve_callable

EXPRESSION_ERROR = "expression_error"


class FrameTransformOperator:
    """Shared part: apply ``transform`` to the frame; a failure sends the batch to errors."""

    error_type = EXPRESSION_ERROR

    def __init__(self, name: str, pipeline: str,
                 transform: Callable[[pl.DataFrame], pl.DataFrame]) -> None:
        self.name = name
        self.pipeline = pipeline
        self.transform = transform
        self.counters = {"errors": 0}

    def output_tags(self) -> set[str]:
        return set()

    def apply(self, batch: Batch) -> Batch:
        """The transformed batch; raises when the data does not fit."""
        data = self.transform(batch.data)
        if not isinstance(data, pl.DataFrame) or data.height != len(batch):
            raise ValueError(f"{self.name} must return a DataFrame with the batch's "
                             f"{len(batch)} rows, got "
                             f"{getattr(data, 'height', type(data).__name__)}")
        return batch.with_data(data)

    def process(self, batch: Batch) -> Outputs:
        if not len(batch):
            return {MAIN: batch}
        try:
            out = self.apply(batch)
        except Exception as e:  # noqa: BLE001 - the data does not fit the transformation
            self.counters["errors"] += len(batch)
            error_type, message, trace = describe_exception(e)
            return {MAIN: batch.filter(np.zeros(len(batch), dtype=bool)),
                    ERRORS: error_batch(batch.data, pipeline=self.pipeline, operator=self.name,
                                        error_type=self.error_type,
                                        message=f"{error_type}: {message.splitlines()[0]}",
                                        traceback=trace, wm=batch.wm, seq=batch.seq,
                                        wm_end=batch.wm_end, ts=batch.ts)}
        return {MAIN: out}

    def snapshot(self) -> Any:
        return {"counters": dict(self.counters)}

    def restore(self, state: Any) -> None:
        if state:
            self.counters = dict(state["counters"])


def build_with_columns_operator(step: WithColumnsStep, pipeline: str) -> FrameTransformOperator:
    """Columns computed in order, so a later expression may use an earlier one."""
    exprs = [pl.sql_expr(expr).alias(name) for name, expr in step.columns.items()]

    def transform(frame: pl.DataFrame) -> pl.DataFrame:
        for expr in exprs:
            frame = frame.with_columns(expr)
        return frame

    return FrameTransformOperator(step.name, pipeline, transform)


class WhereOperator(FrameTransformOperator):
    """Keeps the rows whose condition is true; counts the others as filtered."""

    def __init__(self, step: WhereStep, pipeline: str) -> None:
        super().__init__(step.name, pipeline, lambda frame: frame)
        self.condition = pl.sql_expr(step.condition)
        self.counters["filtered"] = 0

    def apply(self, batch: Batch) -> Batch:
        keep = batch.data.select(self.condition.fill_null(False)).to_series()
        if keep.dtype != pl.Boolean:
            raise TypeError(f"condition of {self.name} gives {keep.dtype}, not a boolean")
        mask = keep.to_numpy()
        self.counters["filtered"] += int(len(mask) - mask.sum())
        return batch.filter(mask)


def build_map_batches_operator(step: MapBatchesStep, pipeline: str) -> FrameTransformOperator:
    op = FrameTransformOperator(step.name, pipeline, resolve_callable(step.function))
    op.error_type = "user_function_error"
    return op
