"""The progress line of ``surestream run`` on a terminal: rate, watermark, late, dups, errors."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from typing import TextIO

from surestream.model.batch import NEG_INF, POS_INF
from surestream.runners.local.runner import Progress


def format_watermark(wm: int) -> str:
    if wm == NEG_INF:
        return "-inf"
    if wm == POS_INF:
        return "+inf (end of input)"
    return datetime.fromtimestamp(wm / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def progress_text(p: Progress) -> str:
    c = p.counters
    lag = f" (lag {p.watermark_lag_ms / 1000:,.1f} s)" if p.watermark_lag_ms is not None else ""
    return (f"{p.records_in:>12,} records  {p.records_per_s:>11,.0f} rec/s  "
            f"watermark {format_watermark(p.watermark)}{lag}  late {c.get('late', 0):,}  "
            f"duplicates {c.get('duplicates', 0):,}  errors {c.get('errors', 0):,}")


class ProgressLine:
    """Rewrites one line at most every ``interval`` seconds; silent when not a terminal."""

    def __init__(self, stream: TextIO = sys.stderr, interval: float = 0.25) -> None:
        self.stream = stream
        self.interval = interval
        self.enabled = stream.isatty()
        self._last = 0.0

    def __call__(self, p: Progress) -> None:
        now = time.monotonic()
        if self.enabled and now - self._last >= self.interval:
            self._last = now
            self.stream.write("\r" + progress_text(p)[:200])
            self.stream.flush()

    def done(self, p: Progress) -> None:
        if self.enabled:
            self.stream.write("\r" + " " * 200 + "\r")
        self.stream.write(progress_text(p) + "\n")
        self.stream.flush()
