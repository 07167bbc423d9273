"""Keep-earliest and keep-latest deduplication (SEMANTICS §4): per key and window, the
record with the smallest / largest event time, emitted once the watermark passes the window.

This is the seeds' ``ROW_NUMBER() OVER (PARTITION BY id ORDER BY event_time) = 1`` (and its
``DESC`` twin) made incremental: a stream never knows that no earlier record will come, so
the choice is final only when the watermark passes the window -- exactly when keep-last
emits. Everything else is keep-last's (``dedup_last``): windows open with a key's first
record (t0 by arrival, as for ``first`` and ``last``), ``ts < t0 + window`` stays in the
window, state expires at ``W >= t0 + state_ttl``, the output watermark is held below the
held records, snapshots are the same plain data. Only the rule that picks the held record
differs, so the three strategies cannot drift apart.

Ties are broken by arrival, as the window aggregations ``first(x)`` / ``last(x)`` do:
``earliest`` keeps the first to arrive among equal smallest event times, ``latest`` the
last to arrive among equal largest ones (the order ``(event_time, arrival)`` ascending,
resp. descending). So ``latest`` on in-order input is ``last``.
"""

from __future__ import annotations

from surestream.semantics.dedup_last import KeepLastDedup


class KeepEarliestDedup(KeepLastDedup):
    """Holds the record with the smallest event time of each key's window (ties: the
    first to arrive); emits it when W >= t0 + window - 1."""

    def _replaces(self, held_ts: int, ts: int) -> bool:
        return ts < held_ts


class KeepLatestDedup(KeepLastDedup):
    """Holds the record with the largest event time of each key's window (ties: the last
    to arrive); emits it when W >= t0 + window - 1."""

    def _replaces(self, held_ts: int, ts: int) -> bool:
        return ts >= held_ts
