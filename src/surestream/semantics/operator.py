"""What every executable operator looks like to a runner.

An operator takes one batch and returns its outputs by tag: ``MAIN`` flows to the next step
of the stream, every other tag to that tag's output (late records, errors, routes). The
watermark travels inside the batches (``Batch.wm`` / ``Batch.wm_end``), so an operator that
holds records back (windows, timers, keep-last dedup) releases them when a later batch --
possibly an empty one -- carries the watermark past them. End of input is an empty batch
with ``wm_end = POS_INF``.

Operators are pure: no I/O, no wall clock unless one is injected. ``snapshot``/``restore``
give their whole state as plain picklable Python values (checkpoints, issue 3).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from surestream.model.batch import Batch

MAIN = "main"
ERRORS = "errors"

Outputs = dict[str, Batch]


@runtime_checkable
class Operator(Protocol):
    """One step of a stream, run batch by batch."""

    name: str

    def process(self, batch: Batch) -> Outputs:
        """Consume ``batch``; return what it emits, by tag (``MAIN`` = downstream)."""
        ...

    def output_tags(self) -> set[str]:
        """Every tag other than ``MAIN`` this operator may emit to (for validation)."""
        ...

    def snapshot(self) -> Any:
        """The operator's state as plain picklable values."""
        ...

    def restore(self, state: Any) -> None:
        """Load a state taken by ``snapshot``."""
        ...


class Stateless:
    """Mixin for operators with no state to checkpoint."""

    def snapshot(self) -> Any:
        return None

    def restore(self, state: Any) -> None:  # noqa: ARG002 - nothing to restore
        return None
