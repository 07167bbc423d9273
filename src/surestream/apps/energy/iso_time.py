"""UTC instants of the ISO feeds: epoch milliseconds inside, ISO-8601 ``...Z`` strings on the
wire (``2026-03-02T00:05:00Z``), as the ISOs' APIs write them."""

from __future__ import annotations

import datetime as dt

MINUTE_MS = 60_000
INTERVAL_MS = 5 * MINUTE_MS
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS


def iso_utc(ms: int) -> str:
    """``2026-03-02T00:05:00Z`` (whole seconds: the feeds carry no sub-second part)."""
    return dt.datetime.fromtimestamp(ms // 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_utc(text: str) -> int:
    """Epoch ms of ``2026-03-02`` or ``2026-03-02T00:00:00Z`` (UTC)."""
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return int(value.timestamp() * 1000)
