"""The ``with_columns`` step: SQL expressions evaluated column-wise over a batch.

Columns are typed, so an expression either fits a batch or does not (an unknown column, a
string times a number): when it does not, every record of that batch goes to the errors
output with the reason, and the pipeline goes on -- nothing is dropped silently.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from surestream.model.batch import Batch
from surestream.model.steps import WithColumnsStep
from surestream.semantics.errors import error_batch
from surestream.semantics.operator import ERRORS, MAIN, Outputs, Stateless

EXPRESSION_ERROR = "expression_error"


class WithColumnsOperator(Stateless):
    def __init__(self, step: WithColumnsStep, pipeline: str) -> None:
        self.step = step
        self.name = step.name
        self.pipeline = pipeline
        self.exprs = [(name, pl.sql_expr(expr)) for name, expr in step.columns.items()]
        self.counters = {"errors": 0}

    def output_tags(self) -> set[str]:
        return set()

    def process(self, batch: Batch) -> Outputs:
        if not len(batch):
            return {MAIN: batch}
        data = batch.data
        try:
            for name, expr in self.exprs:
                data = data.with_columns(expr.alias(name))
        except Exception as e:  # noqa: BLE001 - the data does not fit the expression
            self.counters["errors"] += len(batch)
            reason = f"{type(e).__name__}: {str(e).splitlines()[0]}"
            return {MAIN: batch.filter(np.zeros(len(batch), dtype=bool)),
                    ERRORS: error_batch(batch.data, pipeline=self.pipeline, operator=self.name,
                                        error_type=EXPRESSION_ERROR, message=reason,
                                        wm=batch.wm, seq=batch.seq, wm_end=batch.wm_end,
                                        ts=batch.ts)}
        return {MAIN: batch.with_data(data)}

    def snapshot(self) -> Any:
        return {"counters": dict(self.counters)}

    def restore(self, state: Any) -> None:
        if state:
            self.counters = dict(state["counters"])
