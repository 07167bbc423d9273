"""``map`` and ``filter``: user functions applied one record (a dict) at a time.

A map function returns a dict (one record), ``None`` (drop it) or a list/iterable of dicts
(fan-out); a filter function returns something truthy to keep the record. Each produced
record keeps the ``ts``/``wm``/``seq`` of the input it came from, so the watermark and
ordering semantics downstream are those of the input.

An exception in user code does not stop the pipeline (SEMANTICS §6): the input record goes
to ``errors`` with the operator name, the exception type, message and traceback, and the
next record is processed. A map whose result is not a dict / None / iterable of dicts is
reported the same way (as a ``TypeError``). Outputs of a failing call are discarded whole.

In a YAML spec the function is named ``"package.module:attribute"``; ``resolve_callable``
(``surestream.model.user_code``, re-exported here) imports it, says which part of that path
failed, and refuses the standard library (a spec is code: see that module).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from surestream.model.batch import Batch
from surestream.model.declared_schema import conform_record, polars_types
from surestream.model.steps import FilterStep, MapStep
from surestream.model.user_code import (  # noqa: F401 - re-exported for the operators
    UserCodeError,
    UserCodeNotFoundError,
    resolve_callable,
    resolve_object,
)
from surestream.semantics.errors import ErrorCollector
from surestream.semantics.operator import ERRORS, MAIN, Outputs
from surestream.semantics.records import RecordBuffer, iter_records


class _RecordFunctionOperator:
    """Shared part of map and filter: user code per record, failures reported and counted.

    The only state is the ``errors`` counter (checkpointed so that metrics survive a
    restart); the user function itself must keep no state.
    """

    def __init__(self, name: str, pipeline: str, function: Any) -> None:
        self.name = name
        self.pipeline = pipeline
        self.function = resolve_callable(function)
        self.counters = {"errors": 0}

    def output_tags(self) -> set[str]:
        return {ERRORS}

    def snapshot(self) -> dict[str, int]:
        return dict(self.counters)

    def restore(self, state: dict[str, int]) -> None:
        self.counters = dict(state)

    def _report(self, errors: ErrorCollector, batch: Batch, i: int, exc: Exception) -> None:
        """Send input row ``i`` -- as it came, even if user code mutated its dict -- to errors."""
        errors.add_exception(
            batch.data.row(i, named=True), exc, wm=int(batch.wm[i]), seq=int(batch.seq[i]),
            ts=None if batch.ts is None else int(batch.ts[i]),
        )


class MapOperator(_RecordFunctionOperator):
    """record -> record | None | [records], keeping each input's time and position.

    With a declared ``output_schema`` each result record is conformed to it
    (``model.declared_schema``): a value of another type makes the input an error."""

    output_schema: dict[str, str] | None = None

    def process(self, batch: Batch) -> Outputs:
        out = RecordBuffer()
        errors = ErrorCollector(self.pipeline, self.name)
        ts = batch.ts
        for i, record in enumerate(batch.rows()):
            try:
                produced = list(iter_records(self.function(record), "a map function"))
                if self.output_schema is not None:
                    produced = [conform_record(r, self.output_schema) for r in produced]
            except Exception as exc:  # user code may raise anything
                self._report(errors, batch, i, exc)
                continue
            t = None if ts is None else int(ts[i])
            w, s = int(batch.wm[i]), int(batch.seq[i])
            for result in produced:
                out.append(result, t, w, s)
        with_ts = ts is not None
        declared = None if self.output_schema is None else polars_types(self.output_schema)
        outputs: Outputs = {MAIN: out.to_batch(batch.wm_end, operator=self.name,
                                               with_ts=with_ts, hint=batch.data.schema,
                                               schema=declared)}
        self.counters["errors"] += errors.emit_into(outputs, batch.wm_end, with_ts=with_ts)
        return outputs


class FilterOperator(_RecordFunctionOperator):
    """Keep the records for which the predicate is truthy; columns and types are untouched."""

    def process(self, batch: Batch) -> Outputs:
        keep = np.zeros(len(batch), dtype=bool)
        errors = ErrorCollector(self.pipeline, self.name)
        for i, record in enumerate(batch.rows()):
            try:
                keep[i] = bool(self.function(record))
            except Exception as exc:  # user code may raise anything
                self._report(errors, batch, i, exc)
        outputs: Outputs = {MAIN: batch.filter(keep)}
        self.counters["errors"] += errors.emit_into(outputs, batch.wm_end,
                                                    with_ts=batch.ts is not None)
        return outputs


def build_map_operator(step: MapStep, pipeline: str) -> MapOperator:
    """The executable operator for a ``map`` step."""
    op = MapOperator(step.name, pipeline, step.function)
    op.output_schema = step.output_schema
    return op


def build_filter_operator(step: FilterStep, pipeline: str) -> FilterOperator:
    """The executable operator for a ``filter`` step."""
    return FilterOperator(step.name, pipeline, step.function)
