"""Price alerts: a keyed process function over trades and market-data ticks per symbol.

Per symbol, a detection window opens at the first price (the baseline) and lasts
``window_ms`` (5 minutes) of event time. A price that moves ``threshold_pct`` (2 %) or more
away from the baseline raises an alert -- unless the symbol alerted less than
``cooldown_ms`` (60 s) before -- and the baseline resets to that price. Severity: MEDIUM from
2 %, HIGH from 5 %, CRITICAL from 10 %; direction UP or DOWN. A symbol's state expires after
``state_ttl_ms`` (10 minutes) of event time without a price (an event-time timer), so a
replay keeps and forgets exactly the same state.

Prices are judged in **event-time order**, not in arrival order: each price waits in state
until the watermark passes its timestamp (an event-time timer), and the prices of one
millisecond are judged in arrival order. Arrival order is not time order: records arrive up
to the watermark delay out of order, and the union of the trades and ticks files is read in
turns of ``runtime.interleave_records`` records per file, so one file runs ahead of the
other in event time (minutes, in the demo). Since a price at or behind the watermark is
quarantined before this step, every price that counts is judged, and an alert is emitted
once the watermark reaches its time.
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

    def process_element(self, record: dict[str, Any], ctx: Any) -> None:
        """Hold the price until the watermark passes its time (see ``on_timer``)."""
        price = record.get(self.p["price_field"])
        if price is None or price <= 0:
            return
        t = ctx.timestamp
        # trades and ticks share one schema (the ticks' trade_id is null): the value, not
        # the key, tells them apart
        source = "trade" if record.get("trade_id") is not None else "tick"
        pending = ctx.map_state("pending")  # timestamp -> [(price, source)] in arrival order
        waiting = pending.get(t)
        if waiting is None:
            ctx.timers.register_event_time_timer(t)
        pending.put(t, [*(waiting or []), (price, source)])

    def on_timer(self, timestamp: int, ctx: Any) -> Iterator[dict[str, Any]]:
        """The watermark passed ``timestamp``: expire the symbol's state if it has been
        silent for ``state_ttl_ms``, then judge the prices of that millisecond.

        A symbol has one expiry timer, moved lazily: when it fires and the symbol has had
        a price since, it is set again for ``state_ttl_ms`` after that price. (A key has
        one timer per millisecond, so one timer may be both an expiry and prices' turn.)"""
        ttl = self.p["state_ttl_ms"]
        last_seen = ctx.value_state("last_seen")
        expiry = ctx.value_state("expiry_at")
        seen = last_seen.value()
        if seen is not None and seen + ttl <= timestamp:
            for name in ("baseline", "last_alert", "last_seen", "expiry_at"):
                ctx.value_state(name).clear()
        elif expiry.value() == timestamp:  # seen since the timer was set: look again later
            expiry.update(seen + ttl)
            ctx.timers.register_event_time_timer(seen + ttl)
        pending = ctx.map_state("pending")
        waiting = pending.get(timestamp)
        if waiting is None:
            return
        pending.remove(timestamp)
        last_seen.update(timestamp)  # prices come in time order here
        if expiry.value() is None:
            expiry.update(timestamp + ttl)
            ctx.timers.register_event_time_timer(timestamp + ttl)
        for price, source in waiting:
            alert = self._judge(price, source, timestamp, ctx)
            if alert is not None:
                yield alert

    def _judge(self, price: float, source: str, t: int, ctx: Any) -> dict[str, Any] | None:
        """One price against the baseline: the alert it raises, or None."""
        baseline = ctx.value_state("baseline")  # (price, window start)
        last_alert = ctx.value_state("last_alert")
        base = baseline.value()
        if base is None or t >= base[1] + self.p["window_ms"]:
            baseline.update((price, t))  # a new detection window
            return None
        change_pct = (price - base[0]) / base[0] * 100.0
        if abs(change_pct) < self.p["threshold_pct"]:
            return None
        previous = last_alert.value()
        if previous is not None and t < previous + self.p["cooldown_ms"]:
            return None
        last_alert.update(t)
        baseline.update((price, t))  # the baseline resets after an alert
        return {
            "symbol": ctx.key[0],
            "alert_ts": t,
            "window_start": base[1],
            "baseline_price": base[0],
            "price": price,
            "change_pct": round(change_pct, 6),
            "direction": "UP" if change_pct > 0 else "DOWN",
            "severity": severity_of(change_pct, self.p["severities"]),
            "source": source,
        }
