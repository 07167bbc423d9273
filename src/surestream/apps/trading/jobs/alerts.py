"""Price alerts: a keyed process function over trades and market-data ticks per symbol.

Per symbol, a detection window opens at the first price seen (the baseline) and lasts
``window_ms`` (5 minutes) of event time. A price that moves ``threshold_pct`` (2 %) or more
away from the baseline raises an alert -- unless the symbol alerted less than
``cooldown_ms`` (60 s) before -- and the baseline resets to that price. Severity: MEDIUM from
2 %, HIGH from 5 %, CRITICAL from 10 %; direction UP or DOWN. A symbol's state expires after
``state_ttl_ms`` (10 minutes) of event time without a price (an event-time timer), so a
replay keeps and forgets exactly the same state.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from surestream.semantics.process import KeyedProcessFunction

DEFAULTS: dict[str, Any] = {
    "price_field": "price",
    "timestamp_field": "timestamp_ms",
    "window_ms": 300_000,
    "threshold_pct": 2.0,
    "cooldown_ms": 60_000,
    "state_ttl_ms": 600_000,
    "severities": {"MEDIUM": 2.0, "HIGH": 5.0, "CRITICAL": 10.0},
}


def severity_of(change_pct: float, severities: dict[str, float]) -> str | None:
    """The highest severity whose threshold |change| reaches, or None."""
    reached = [(limit, name) for name, limit in severities.items() if abs(change_pct) >= limit]
    return max(reached)[1] if reached else None


class PriceAlerts(KeyedProcessFunction):
    """Keyed by symbol; emits one alert record per qualifying move."""

    def open(self, params: dict[str, Any]) -> None:
        self.p = {**DEFAULTS, **(params or {})}

    def process_element(self, record: dict[str, Any], ctx: Any) -> Iterator[dict[str, Any]]:
        price = record.get(self.p["price_field"])
        if price is None or price <= 0:
            return
        t = ctx.timestamp
        baseline = ctx.value_state("baseline")  # (price, window start)
        last_alert = ctx.value_state("last_alert")
        last_seen = ctx.value_state("last_seen")
        last_seen.update(t)
        ctx.timers.register_event_time_timer(t + self.p["state_ttl_ms"])
        base = baseline.value()
        if base is None or t >= base[1] + self.p["window_ms"]:
            baseline.update((price, t))  # a new detection window
            return
        change_pct = (price - base[0]) / base[0] * 100.0
        if abs(change_pct) < self.p["threshold_pct"]:
            return
        previous = last_alert.value()
        if previous is not None and t < previous + self.p["cooldown_ms"]:
            return
        last_alert.update(t)
        baseline.update((price, t))  # the baseline resets after an alert
        yield {
            "symbol": ctx.key[0],
            "alert_ts": t,
            "window_start": base[1],
            "baseline_price": base[0],
            "price": price,
            "change_pct": round(change_pct, 6),
            "direction": "UP" if change_pct > 0 else "DOWN",
            "severity": severity_of(change_pct, self.p["severities"]),
            "source": record.get("event_type") or ("trade" if "trade_id" in record else "tick"),
        }

    def on_timer(self, timestamp: int, ctx: Any) -> None:
        seen = ctx.value_state("last_seen").value()
        if seen is not None and seen + self.p["state_ttl_ms"] <= timestamp:
            for name in ("baseline", "last_alert", "last_seen"):
                ctx.value_state(name).clear()
