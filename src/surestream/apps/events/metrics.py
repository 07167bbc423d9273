"""What an event producer has done: records sent and failed, bytes, delivery latency.

Counted from delivery reports, so "sent" means acknowledged by the broker (as the preset's
``acks`` defines it), never merely queued. A record refused before it reached the broker
(an invalid event, one over the size limit) counts as failed too: the error rate is what
a service's alert should watch.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: the latencies kept for percentiles: the most recent ones
LATENCY_WINDOW = 10_000


@dataclass
class ProducerMetrics:
    records_sent: int = 0
    records_failed: int = 0
    records_invalid: int = 0          # of the failed: refused by validate()
    bytes_sent: int = 0
    errors: dict[str, int] = field(default_factory=dict)   # reason -> count
    _latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))

    def delivered(self, size: int, latency_ms: float) -> None:
        self.records_sent += 1
        self.bytes_sent += size
        self._latencies_ms.append(latency_ms)

    def failed(self, reason: str, *, invalid: bool = False) -> None:
        self.records_failed += 1
        self.records_invalid += invalid
        self.errors[reason] = self.errors.get(reason, 0) + 1

    @property
    def record_error_rate(self) -> float:
        """Failed records over all records attempted (0.0 before the first)."""
        attempted = self.records_sent + self.records_failed
        return self.records_failed / attempted if attempted else 0.0

    def as_dict(self) -> dict[str, Any]:
        lat = np.array(self._latencies_ms) if self._latencies_ms else None
        return {
            "records_sent": self.records_sent,
            "records_failed": self.records_failed,
            "records_invalid": self.records_invalid,
            "record_error_rate": self.record_error_rate,
            "bytes_sent": self.bytes_sent,
            "latency_ms_avg": float(lat.mean()) if lat is not None else None,
            "latency_ms_p99": float(np.percentile(lat, 99)) if lat is not None else None,
            "latency_ms_max": float(lat.max()) if lat is not None else None,
            "errors": dict(self.errors),
        }
