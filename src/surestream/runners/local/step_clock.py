"""Processing time for a live run: read once per step, journaled, replayed.

In a live run, processing-time idleness (SEMANTICS §2), processing-time timers (§6), the
``processing_time`` step's stamps and the ``recorded_at_ms`` of error records all read
the clock. A ``StepClock`` gives them all one reading per step (``tick``), which the
journal records; a replay ``set``s the recorded readings, so every operator sees the time
the live run saw. The reading comes from the wall clock, or from the clock injected in
tests.
"""

from __future__ import annotations

from surestream.semantics.watermarks import Clock


class StepClock:
    """A clock that holds one reading until the next ``tick`` (or ``set``)."""

    def __init__(self, source: Clock) -> None:
        self.source = source
        self.now = int(source())

    def tick(self) -> int:
        """Read the source clock: the time of the step (or checkpoint) that begins."""
        self.now = int(self.source())
        return self.now

    def set(self, now: int) -> None:
        """A replay: the time the live run read here."""
        self.now = int(now)

    def __call__(self) -> int:
        return self.now
