"""Which events the simulator damages, and how -- chosen so the truth is exact.

Events are numbered in arrival order of the *primary* events (re-sent duplicates do not
advance time); event ``g`` has a nominal time that increases with ``g`` (``sessions``:
``base + floor(g * spacing)`` within one trading day, several days each inside its session). Every
damage is defined so that a pipeline's counters must equal the injected counts:

* **on time**: ``timestamp_ms`` is ``nominal - U[0, out_of_order_ms]``; the largest
  timestamp seen before it in its stream is at most a previous nominal time, so it is
  never more than ``out_of_order_ms`` behind: not late for a watermark delay
  ``>= out_of_order_ms``.
* **late**: ``nominal - U[late_behind_ms]`` and, checked here, more than
  ``LATE_THRESHOLD_MS`` (30 s) behind the largest well-formed timestamp before it in its
  stream -- late for any watermark delay ``<= 30 s``. A candidate that is not (the first
  seconds of a stream) is sent on time instead.
* **malformed**: the event's JSON cut short (never valid JSON; its ids are never reused).
* **unknown status** (trades): a status outside ``STATUSES``; never late or malformed.
* **duplicate** (trades): an exact byte copy of an on-time, well-formed, known-status
  trade, re-sent after the primary event ``dup_after`` whose nominal time is at most the
  original's timestamp + ``out_of_order_ms``: on time too, so a dedup step sees it.

Late, malformed and unknown-status events are disjoint, and never duplicated, so each
lands in exactly one of a pipeline's outputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from surestream.apps.trading.sessions import Sessions

LATE_THRESHOLD_MS = 30_000
STREAMS = ("raw.trades", "raw.marketdata", "raw.orderbook")
TRADES, MARKETDATA, ORDERBOOK = 0, 1, 2
_NO_TS = -(2**62)  # "nothing seen yet": below any timestamp, and no overflow on subtraction


@dataclass(frozen=True)
class Faults:
    """The damage plan for one chunk of primary events (arrays of the chunk's length)."""

    timestamp_ms: np.ndarray
    malformed: np.ndarray
    late: np.ndarray
    unknown_status: np.ndarray
    duplicate: np.ndarray
    dup_after: np.ndarray   # global primary index the duplicate is re-sent after


@dataclass
class Injector:
    """Chooses faults chunk by chunk; remembers each stream's largest timestamp."""

    sessions: Sessions
    out_of_order_ms: int
    late_behind_ms: tuple[int, int]
    late_rate: float
    malformed_rate: float
    unknown_status_rate: float
    duplicate_rate: float

    def __post_init__(self) -> None:
        self.max_ts = [_NO_TS] * len(STREAMS)

    def nominal(self, g: np.ndarray) -> np.ndarray:
        """The nominal event time of primary events ``g`` (``sessions``)."""
        return self.sessions.nominal(g)

    def last_at_or_before(self, t: np.ndarray) -> np.ndarray:
        """The largest primary index whose nominal time is ``<= t`` (elementwise)."""
        return self.sessions.last_at_or_before(t)

    def plan(self, first: int, kind: np.ndarray, rng: np.random.Generator) -> Faults:
        """Faults for primary events ``first, first + 1, ...`` of stream ``kind``."""
        n = len(kind)
        g = first + np.arange(n, dtype=np.int64)
        nominal = self.nominal(g)
        u = rng.random((5, n))
        # a day's first event is sessions.lead_ms = late_behind_ms[1] after the open, so
        # neither lag below reaches before the open: every time is inside trading hours
        on_time = nominal - rng.integers(0, self.out_of_order_ms + 1, n)
        behind = rng.integers(self.late_behind_ms[0], self.late_behind_ms[1] + 1, n)
        malformed = u[0] < self.malformed_rate
        late = (u[1] < self.late_rate) & ~malformed
        ts = np.where(late, nominal - behind, on_time)
        for k in range(len(STREAMS)):
            self._confirm_late(np.flatnonzero(kind == k), k, ts, on_time, late, malformed)
        trade = kind == TRADES
        unknown = trade & (u[2] < self.unknown_status_rate) & ~malformed & ~late
        dup = trade & (u[3] < self.duplicate_rate) & ~malformed & ~late & ~unknown
        last = self.last_at_or_before(ts + self.out_of_order_ms)  # >= g: ts >= nominal - ooo
        dup_after = g + np.floor(u[4] * (last - g + 1)).astype(np.int64)
        return Faults(ts, malformed, late, unknown, dup, dup_after)

    def _confirm_late(self, idx: np.ndarray, k: int, ts: np.ndarray, on_time: np.ndarray,
                      late: np.ndarray, malformed: np.ndarray) -> None:
        """Keep a late candidate only if it is > 30 s behind its stream; else on time.

        The running maximum here counts on-time events only, a lower bound of what a
        pipeline sees (which also counts candidates turned on time), so a kept late event
        is late there too."""
        counts = ~late[idx] & ~malformed[idx]
        seen = np.maximum.accumulate(np.r_[self.max_ts[k], np.where(counts, ts[idx], _NO_TS)])
        weak = late[idx] & (seen[:-1] - ts[idx] <= LATE_THRESHOLD_MS)
        late[idx[weak]] = False
        ts[idx[weak]] = on_time[idx[weak]]
        well = ~late[idx] & ~malformed[idx]
        if well.any():
            self.max_ts[k] = max(self.max_ts[k], int(ts[idx][well].max()))
