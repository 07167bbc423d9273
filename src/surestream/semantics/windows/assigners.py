"""Window assignment (SEMANTICS §5), vectorized over a batch's event times.

The formulas are Flink's (``TimeWindow.getWindowStartWithOffset``, Tumbling/Sliding/
EventTimeSessionWindows): starts may be negative, and a sliding record's windows are listed
newest start first -- the order in which Flink adds the record to them, which is also the
order of the immediate firings a late-but-allowed record causes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from surestream.model.batch import POS_INF


def floor_mod(a: np.ndarray | int, b: int) -> np.ndarray | int:
    """``a mod b`` with the sign of ``b`` (Java's ``Math.floorMod``), for b > 0."""
    return np.mod(a, b)


def saturating_add(a: np.ndarray, b: int) -> np.ndarray:
    """``a + b`` for b >= 0, capped at ``POS_INF`` (Flink's cleanup-time overflow rule)."""
    a = np.asarray(a, dtype=np.int64)
    return np.where(a > POS_INF - b, POS_INF, a + b)


@dataclass(frozen=True, slots=True)
class Assignment:
    """The (record, window) pairs of a batch, record-major: pair ``j`` puts row ``rows[j]``
    into ``[starts[j], starts[j] + size)``; ``order[j]`` is the window's rank among the
    record's windows (0 = newest start)."""

    rows: np.ndarray
    starts: np.ndarray
    order: np.ndarray


def tumbling_starts(ts: np.ndarray, size: int, offset: int = 0) -> np.ndarray:
    """Start of the tumbling window of each timestamp: ``ts - floor_mod(ts - offset, size)``."""
    ts = np.asarray(ts, dtype=np.int64)
    return ts - floor_mod(ts - offset, size)


def sliding_assignment(ts: np.ndarray, size: int, slide: int, offset: int = 0) -> Assignment:
    """Every ``[s, s + size)`` with ``s ≡ offset (mod slide)`` and ``s <= ts < s + size``,
    newest start first for each record."""
    ts = np.asarray(ts, dtype=np.int64)
    n = len(ts)
    per_record = -(-size // slide)  # the most windows a record can be in
    last = tumbling_starts(ts, slide, offset)
    k = np.arange(per_record, dtype=np.int64)
    starts = last[:, None] - k[None, :] * slide
    keep = (starts > (ts - size)[:, None]).ravel()
    return Assignment(
        rows=np.repeat(np.arange(n, dtype=np.int64), per_record)[keep],
        starts=starts.ravel()[keep],
        order=np.tile(k, n)[keep],
    )


def tumbling_assignment(ts: np.ndarray, size: int, offset: int = 0) -> Assignment:
    """One window per record."""
    n = len(ts)
    return Assignment(
        rows=np.arange(n, dtype=np.int64),
        starts=tumbling_starts(ts, size, offset),
        order=np.zeros(n, dtype=np.int64),
    )


def session_window(ts: int, gap: int) -> tuple[int, int]:
    """A record's own session window ``[ts, ts + gap)``, before merging."""
    return ts, ts + gap if ts <= POS_INF - gap else POS_INF
