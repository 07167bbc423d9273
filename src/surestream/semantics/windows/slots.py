"""Slot ids for live windows: small integers that index every accumulator array.

Freed slots are reused (lowest first), so the arrays stay as large as the number of
windows alive at once, not the number ever opened. Slot numbers never reach an output:
firings are ordered by window and key, so a restored operator may renumber them.
"""

from __future__ import annotations

import heapq

import numpy as np


class SlotPool:
    """Hands out slot ids; ``capacity`` only grows (doubling), for amortized O(1) growth."""

    def __init__(self) -> None:
        self.capacity = 0
        self._next = 0  # slots below this have been handed out at least once
        self._free: list[int] = []  # a heap

    def allocate(self, count: int) -> np.ndarray:
        """``count`` slot ids; call ``grow`` on your arrays if ``capacity`` changed."""
        reused = [heapq.heappop(self._free) for _ in range(min(count, len(self._free)))]
        fresh = count - len(reused)
        out = np.array(reused + list(range(self._next, self._next + fresh)), dtype=np.int64)
        self._next += fresh
        if self._next > self.capacity:
            self.capacity = max(self._next, 2 * self.capacity, 64)
        return out

    def release(self, slots: np.ndarray | list[int]) -> None:
        for s in np.asarray(slots, dtype=np.int64).tolist():
            heapq.heappush(self._free, s)
