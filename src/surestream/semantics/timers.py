"""Timer queues of keyed process functions (one per time domain).

As in Flink, a key has at most one timer per timestamp: registering it again is a no-op,
and deleting it removes it. Timers fire in timestamp order; ties between keys go by the
order in which the timers were registered (a counter that is part of the checkpoint), so
the firing order is a function of the input alone.

The queue is a heap with lazy deletion: ``_orders`` is the truth (``(key, ts) -> order``),
heap entries whose order no longer matches are skipped when they reach the top. That
keeps register/delete O(log n) and makes registrations undoable through the state
``Journal`` (which only needs to restore ``_orders``).
"""

from __future__ import annotations

import heapq
from typing import Any

from surestream.semantics.state import Journal, Key


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
