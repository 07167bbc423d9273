"""When the simulated market trades: one or more trading days, each inside its session.

Primary events are numbered ``g = 0, 1, 2, ...`` in arrival order (``injection``). With
``days`` trading days, day ``d`` holds the ``per_day = ceil(events / days)`` primaries
``d * per_day ..`` and event ``g`` has the nominal time::

    open(d) + lead_ms + floor((g - d * per_day) * spacing_ms)        d = g // per_day

``open(0)`` is the simulation's ``base_ts_ms``; later days open at the same time of day on
the following business days (Monday to Friday: a weekend is skipped, as on an exchange).
``lead_ms`` -- the longest lag of a late event -- keeps the first events that far after
the open, so that an event sent late, or out of order, is still timestamped inside the
session. ``lead_ms`` plus a day's span ``per_day * spacing_ms`` must fit in the 6.5-hour
session, so every event's time lies in its day's trading hours. Nominal times increase
with ``g`` (a day's last event is before the next day's open), which is what the
injector's disorder, lateness and duplicate bounds rely on.

With one day the mapping is the plain ``base + lead + floor(g * spacing)`` of one session.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

DAY_MS = 86_400_000
#: a US equity session, 09:30-16:00 New York
SESSION_MS = 6 * 3_600_000 + 30 * 60_000
_ONE_DAY = np.int64(2**62)  # "no day boundary": per_day for a single day


@dataclass(frozen=True)
class Sessions:
    """The nominal-time schedule of primary events over ``days`` trading days."""

    base_ts_ms: int
    spacing_ms: float
    days: int = 1
    events: int = 0
    lead_ms: int = 0

    @property
    def per_day(self) -> int:
        """Primary events per trading day (the last day may get fewer)."""
        if self.days <= 1:
            return int(_ONE_DAY)
        return max(1, math.ceil(self.events / self.days))

    def problems(self) -> list[str]:
        """What is wrong with the schedule, each saying what is allowed."""
        out = []
        if self.days < 1:
            out.append(f"days must be >= 1, got {self.days}")
            return out
        span = self.lead_ms + math.ceil(self.events / self.days) * self.spacing_ms
        if span > SESSION_MS:
            out.append(f"{math.ceil(self.events / self.days):,} events a day at "
                       f"event_spacing_ms {self.spacing_ms}, after {self.lead_ms / 60_000:g} "
                       f"min for late events, span {span / 3_600_000:.1f} h, more than the "
                       f"6.5 h trading session: lower events or event_spacing_ms, or raise "
                       f"days")
        return out

    def day_open(self, day: np.ndarray) -> np.ndarray:
        """The session open (epoch ms) of trading days ``day`` (0 = the first)."""
        day = np.asarray(day, dtype=np.int64)
        first = np.datetime64(self.base_ts_ms // DAY_MS, "D")
        # day 0 is the base's own date (even a weekend); then the next business days
        later = np.busday_offset(first, np.maximum(day, 1), roll="backward")
        offset = np.where(day <= 0, 0, (later - first).astype(np.int64))
        return self.base_ts_ms + offset * DAY_MS

    def day_of(self, g: np.ndarray) -> np.ndarray:
        """The trading day of primary events ``g``."""
        return np.asarray(g, dtype=np.int64) // self.per_day

    def nominal(self, g: np.ndarray) -> np.ndarray:
        """The nominal event time of primary events ``g``."""
        g = np.asarray(g, dtype=np.int64)
        day = self.day_of(g)
        local = g - day * self.per_day
        return self.first_event(day) + np.floor(local * self.spacing_ms).astype(np.int64)

    def first_event(self, day: np.ndarray) -> np.ndarray:
        """The nominal time of trading days ``day``'s first event: ``lead_ms`` after the open."""
        return self.day_open(day) + self.lead_ms

    def last_at_or_before(self, t: np.ndarray) -> np.ndarray:
        """The largest primary index whose nominal time is ``<= t`` (elementwise; -1 or
        less before the first event)."""
        t = np.asarray(t, dtype=np.int64)
        if self.days <= 1:
            day = np.zeros(len(t), dtype=np.int64)
        else:
            last_day = int(max((t.max(initial=self.base_ts_ms) - self.base_ts_ms) // DAY_MS,
                               0)) + 1
            starts = self.first_event(np.arange(last_day + 1))
            day = np.maximum(np.searchsorted(starts, t, side="right") - 1, 0)
        start = self.first_event(day)
        j = np.ceil((t - start + 1) / self.spacing_ms).astype(np.int64) - 1
        for _ in range(2):  # float rounding in the division: settle by one step each way
            j = np.where(start + np.floor((j + 1) * self.spacing_ms) <= t, j + 1, j)
            j = np.where(start + np.floor(j * self.spacing_ms) > t, j - 1, j)
        if self.days > 1:  # after a day's last event and before the next open: that event
            j = np.minimum(j, self.per_day - 1)
        return day * self.per_day + j
