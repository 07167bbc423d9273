"""Timer queues of keyed process functions (one per time domain).

As in Flink, a key has at most one timer per timestamp: registering it again is a no-op,
and deleting it removes it. Timers fire in timestamp order; ties between keys go by the
order in which the timers were registered (a counter that is part of the checkpoint), so
the firing order is a function of the input alone.

The queue is a heap with lazy deletion: ``_orders`` is the truth (``(key, ts) -> order``),
heap entries whose order no longer matches are skipped when they reach the top. That
keeps register/delete O(log n) and makes registrations undoable through the state
``Journal`` (which only needs to restore ``_orders``).

A timer's timestamp must lie in ``TIMER_MIN_MS .. TIMER_MAX_MS`` (``checked_timestamp``):
registering one outside fails the user call, so its input goes to errors instead of the
timer never firing (beyond int64 max the end-of-input watermark never reaches it) or
stamping what ``on_timer`` emits with a time no later step can compute with.
"""

from __future__ import annotations

import heapq
from operator import index as as_int
from typing import Any

from surestream.model.time_range import MAX_DURATION_MS
from surestream.semantics.state import Journal, Key

#: The earliest and latest timer timestamp (ms). Every valid event time lies in between
#: (the watermark step's range ends are limited to +-MAX_DURATION_MS), so no arithmetic on
#: the time of a timer's output can overflow. No watermark but the final one (+infinity,
#: at the end of input) reaches ``TIMER_MAX_MS``: a timer there fires at the end of input.
TIMER_MIN_MS = -MAX_DURATION_MS
TIMER_MAX_MS = MAX_DURATION_MS


class TimerOutOfRangeError(ValueError):
    """A timer registered outside ``TIMER_MIN_MS .. TIMER_MAX_MS``."""


def checked_timestamp(value: Any, domain: str) -> int:
    """``value`` as a timer timestamp (an integer, ms), or raise naming what is wrong.

    ``domain`` is ``"event-time"`` or ``"processing-time"``, for the message."""
    ts = as_int(value)  # a float or a string is refused (TypeError), as before
    if TIMER_MIN_MS <= ts <= TIMER_MAX_MS:
        return ts
    raise TimerOutOfRangeError(
        f"{domain} timer at {ts} ms is outside the valid range {TIMER_MIN_MS} .. "
        f"{TIMER_MAX_MS} ms (+-10^15 ms, about 31,700 years around 1970; every valid event "
        f"time is inside): it would never fire, or stamp its output with an impossible time. "
        f"To act at the end of input, register a timer at ctx.timers.MAX_TIMESTAMP "
        f"({TIMER_MAX_MS}): only the end of input reaches it")


class TimerQueue:
    """Pending timers of one domain, ordered by ``(timestamp, registration order)``."""

    def __init__(self) -> None:
        self._orders: dict[tuple[Key, int], int] = {}
        self._heap: list[tuple[int, int, Key]] = []
        self._counter = 0

    def __len__(self) -> int:
        return len(self._orders)

    def register(self, key: Key, ts: int, journal: Journal) -> None:
        if (key, ts) in self._orders:
            return
        order = self._counter
        self._counter += 1
        journal.set(self._orders, (key, ts), order)
        heapq.heappush(self._heap, (ts, order, key))

    def delete(self, key: Key, ts: int, journal: Journal) -> None:
        journal.delete(self._orders, (key, ts))

    def pop_due(self, time: int) -> tuple[int, Key] | None:
        """Remove and return the first timer with ``ts <= time``, or ``None``.

        Called between user calls only, so a popped timer is gone for good (its firing is
        not undone if ``on_timer`` fails: the failure is reported instead).
        """
        heap = self._heap
        while heap and heap[0][0] <= time:
            ts, order, key = heapq.heappop(heap)
            if self._orders.get((key, ts)) == order:
                del self._orders[(key, ts)]
                return ts, key
        return None

    def snapshot(self) -> dict[str, Any]:
        timers = sorted((ts, order, key) for (key, ts), order in self._orders.items())
        return {"timers": timers, "counter": self._counter}

    def restore(self, state: dict[str, Any]) -> None:
        self._heap = [tuple(t) for t in state["timers"]]  # sorted, hence a valid heap
        self._orders = {(key, ts): order for ts, order, key in self._heap}
        self._counter = state["counter"]
