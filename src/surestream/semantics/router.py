"""The ``route`` step: send each record to the tag named by one field's value.

``{type: route, field: status, routes: {NEW: main, FILLED: filled}, default: unroutable}``
-- records routed to ``main`` continue down the stream, the others leave on their tag.
A value not in ``routes`` (a null, or a missing field, counts as such a value) goes to
``default``, or, without one, to ``errors`` with the reason ``no route for status=<value>``:
nothing is dropped silently.

Values are compared by their text form (polars' cast to string: ``200``, ``true``, ``1.5``),
because spec keys are strings whatever the column type. The step is vectorized: one
``replace_strict`` over the column, then one ``filter`` per tag, which keeps input order.
"""

from __future__ import annotations

import polars as pl

from surestream.model.batch import Batch
from surestream.model.steps import RouteStep
from surestream.semantics.errors import UNROUTABLE, error_batch
from surestream.semantics.operator import ERRORS, MAIN, Outputs


class RouteOperator:
    """Split a batch by a field's value.

    Every route tag (and ``default``) is emitted on every batch, empty or not: a tag may
    feed another stream, which needs the watermark (``wm_end``) to move on. ``errors``
    is emitted only when a record had no route. The only state is the ``errors`` counter.
    """

    def __init__(self, step: RouteStep, pipeline: str) -> None:
        if ERRORS in step.routes.values() or step.default == ERRORS:
            raise ValueError(
                f"route step {step.name!r}: the tag {ERRORS!r} is reserved for error records "
                "(pipeline, operator, error_type, ...); route to a tag of your own instead"
            )
        self.name = step.name
        self.pipeline = pipeline
        self.field = step.field
        self.routes = dict(step.routes)
        self.default = step.default
        self._tags = list(dict.fromkeys([MAIN, *self.routes.values(),
                                         *([self.default] if self.default else [])]))
        self.counters = {"errors": 0}

    def output_tags(self) -> set[str]:
        tags = set(self._tags) - {MAIN}
        return tags if self.default else tags | {ERRORS}

    def process(self, batch: Batch) -> Outputs:
        values = self._values(batch)
        tags = values.replace_strict(self.routes, default=self.default, return_dtype=pl.String)
        tag_array = tags.to_numpy()
        outputs: Outputs = {tag: batch.filter(tag_array == tag) for tag in self._tags}
        if self.default is None:
            unroutable = tags.is_null().to_numpy()
            if unroutable.any():
                outputs[ERRORS] = self._errors(batch.filter(unroutable), values.filter(unroutable))
                self.counters["errors"] += len(outputs[ERRORS])
        return outputs

    def snapshot(self) -> dict[str, int]:
        return dict(self.counters)

    def restore(self, state: dict[str, int]) -> None:
        self.counters = dict(state)

    def _values(self, batch: Batch) -> pl.Series:
        """The routing field as text; a batch without the column has nulls (in another cut
        the column might exist with nulls: both must route the same)."""
        if self.field in batch.data.columns:
            return batch.data[self.field].cast(pl.String)
        return pl.Series(self.field, [None] * len(batch), dtype=pl.String)

    def _errors(self, rejected: Batch, values: pl.Series) -> Batch:
        messages = [f"no route for {self.field}={'null' if v is None else v}"
                    for v in values.to_list()]
        return error_batch(
            rejected.data, pipeline=self.pipeline, operator=self.name, error_type=UNROUTABLE,
            message=messages, wm=rejected.wm, seq=rejected.seq, wm_end=rejected.wm_end,
            ts=rejected.ts,
        )


def build_route_operator(step: RouteStep, pipeline: str) -> RouteOperator:
    """The executable operator for a ``route`` step."""
    return RouteOperator(step, pipeline)
