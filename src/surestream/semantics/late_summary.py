"""The ETL framework's late-data summary: how many late records, over which event times.

Each run prints, per late step, ``Late data: 142 record(s), event time range: 10:15:00 to
10:18:00`` -- the line the framework's users read. The figures cover the whole job, not one
process: the count and the smallest and largest late event time are part of the late
step's checkpointed state, so a run killed and resumed reports what a run without the
crash reports. Times are UTC, to the second; when the range spans more than one day each
end carries its date (``2026-01-01 23:59:00 to 2026-01-02 00:01:00``), so a range never
reads as going backwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class LateSummary:
    """Late records counted, and their event-time range (epoch ms; None before any)."""

    count: int = 0
    min_ms: int | None = None
    max_ms: int | None = None

    def add(self, ts: np.ndarray) -> None:
        """Count the late records' event times ``ts`` (vectorized)."""
        if not ts.size:
            return
        self.count += int(ts.size)
        lo, hi = int(ts.min()), int(ts.max())
        self.min_ms = lo if self.min_ms is None else min(self.min_ms, lo)
        self.max_ms = hi if self.max_ms is None else max(self.max_ms, hi)

    def to_dict(self) -> dict[str, int | None]:
        return {"count": self.count, "min_ms": self.min_ms, "max_ms": self.max_ms}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> LateSummary:
        return cls(int(state.get("count", 0)), state.get("min_ms"), state.get("max_ms"))

    def line(self) -> str:
        """``Late data: N record(s), event time range: A to B`` (UTC)."""
        head = f"Late data: {self.count:,} record(s)"
        if self.min_ms is None or self.max_ms is None:
            return head if not self.count else \
                f"{head}, event time range: unknown (counted before the range was kept)"
        return f"{head}, event time range: {format_range(self.min_ms, self.max_ms)}"


def format_range(lo_ms: int, hi_ms: int) -> str:
    """``10:15:00 to 10:18:00``, with dates when the two ends are on different UTC days."""
    lo, hi = _utc(lo_ms), _utc(hi_ms)
    if lo is None or hi is None:
        return f"{lo_ms} ms to {hi_ms} ms (epoch)"
    fmt = "%H:%M:%S" if lo.date() == hi.date() else "%Y-%m-%d %H:%M:%S"
    return f"{lo.strftime(fmt)} to {hi.strftime(fmt)}"


def _utc(ms: int) -> datetime | None:
    """``ms`` as a UTC datetime, or None outside what datetime can show."""
    try:
        return EPOCH + timedelta(milliseconds=ms)  # exact: no float seconds
    except (OverflowError, OSError, ValueError):
        return None
