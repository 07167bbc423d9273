"""Price alerts: a scan over each symbol's prices in event-time order.

Per symbol, a detection window opens at the first price (the baseline, at ``baseline_ts``).
A price at ``ts`` with ``ts - baseline_ts > window_ms`` (5 minutes) opens a new window
instead: it becomes the baseline. Otherwise a price that moves ``threshold_pct`` (2 %) or
more away from the baseline raises an alert -- unless the symbol alerted less than
``cooldown_ms`` (60 s) before -- and the baseline resets to that price. Severity: MEDIUM
from 2 %, HIGH from 5 %, CRITICAL from 10 % (of the unrounded change); direction UP or DOWN.
A symbol silent for ``state_ttl_ms`` (10 minutes) of event time is forgotten: its next
price starts afresh (no baseline, no cooldown). A price that is null, zero, negative or not
finite is not a price and is skipped.

Prices are judged in **event-time order**, not in arrival order (ties: arrival order):
the step runs over runs (``surestream.semantics.key_runs``), which holds each price until
the watermark passes its time, then hands each symbol's released prices to
``process_run`` as arrays. The scan jumps from one state change to the next (a new
window, an alert, an expiry) with numpy over the run, so a price costs no Python call.
Its state per symbol is four numbers -- ``(baseline_price, baseline_ts, last_alert_ts,
last_seen_ts)`` -- carried from one run to the next, so the alerts do not depend on how the
prices are cut into batches, and a checkpoint holds them as plain data.

An alert (the plan's schema): ``alert_type`` (always ``PRICE_MOVEMENT``), ``symbol``,
``direction``, ``baseline_price``, ``current_price``, ``pct_change`` (|change| in %, 2
decimals), ``window_start_ms`` (the baseline's event time), ``detected_at_ms`` (the event
time of the price that triggered it: replays give the same value), ``severity``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from surestream.semantics.key_runs import KeyRun, RunResult

ALERT_TYPE = "PRICE_MOVEMENT"

DEFAULTS: dict[str, Any] = {
    "price_field": "price",
    "window_ms": 300_000,
    "threshold_pct": 2.0,
    "cooldown_ms": 60_000,
    "state_ttl_ms": 600_000,
    "severities": {"MEDIUM": 2.0, "HIGH": 5.0, "CRITICAL": 10.0},
}

#: A symbol's state: (baseline price, baseline ts, last alert ts or None, last price ts).
State = tuple[float, int, int | None, int]


def severity_of(change_pct: float, severities: dict[str, float]) -> str | None:
    """The highest severity whose threshold |change| reaches, or None."""
    reached = [(limit, name) for name, limit in severities.items() if abs(change_pct) >= limit]
    return max(reached)[1] if reached else None


class PriceAlerts:
    """Keyed by symbol; emits one alert record per qualifying move."""

    def open(self, params: dict[str, Any]) -> None:
        self.p = {**DEFAULTS, **(params or {})}

    def process_run(self, run: KeyRun, state: list[Any] | None) -> RunResult:
        """Judge the symbol's released prices in order, from ``state``; see the module."""
        prices = run.rows.get_column(self.p["price_field"]).cast(pl.Float64).to_numpy()
        valid = np.isfinite(prices) & (prices > 0)  # null is NaN here
        index = np.flatnonzero(valid)
        p, t = prices[index], run.ts[index]
        if not len(p):
            return RunResult(state, [], None if state is None else state[3] + self._ttl)
        scan = _Scan(self.p, p, t, None if state is None else tuple(state))
        emitted = [(int(index[j]), self._alert(run.key[0], scan, j, base_price, base_ts))
                   for j, base_price, base_ts in scan.run()]
        return RunResult(list(scan.state()), emitted, int(t[-1]) + self._ttl)

    @property
    def _ttl(self) -> int:
        return int(self.p["state_ttl_ms"])

    def _alert(self, symbol: Any, scan: _Scan, j: int, base_price: float,
               base_ts: int) -> dict[str, Any]:
        price = float(scan.p[j])
        change_pct = (price - base_price) / base_price * 100.0
        return {
            "alert_type": ALERT_TYPE,
            "symbol": symbol,
            "direction": "UP" if change_pct > 0 else "DOWN",
            "baseline_price": base_price,
            "current_price": price,
            "pct_change": round(abs(change_pct), 2),
            "window_start_ms": base_ts,
            "detected_at_ms": int(scan.t[j]),
            "severity": severity_of(change_pct, self.p["severities"]),
        }


class _Scan:
    """One symbol's prices ``p`` at ``t`` (event-time order) judged from a state.

    Between two state changes nothing but ``last_seen`` moves, so each step finds the next
    change with array operations: the next expiry (a gap of ``state_ttl_ms`` or more), the
    window's end (``t - baseline_ts > window_ms``) and, before both, the first price far
    enough from the baseline outside the cooldown.
    """

    def __init__(self, params: dict[str, Any], p: np.ndarray, t: np.ndarray,
                 state: tuple[Any, ...] | None) -> None:
        self.p, self.t = p, t
        self.window = int(params["window_ms"])
        self.threshold = float(params["threshold_pct"])
        self.cooldown = int(params["cooldown_ms"])
        self.ttl = int(params["state_ttl_ms"])
        self.base: tuple[float, int] | None = None
        self.last_alert: int | None = None
        self.last_seen: int | None = None
        if state is not None:
            base_price, base_ts, self.last_alert, self.last_seen = state
            self.base = (float(base_price), int(base_ts))
        # positions where the gap to the previous price expires the state
        self.expiries = np.flatnonzero(np.diff(t) >= self.ttl) + 1

    def state(self) -> State:
        assert self.base is not None and self.last_seen is not None
        return (self.base[0], self.base[1], self.last_alert, self.last_seen)

    def run(self) -> list[tuple[int, float, int]]:
        """Advance over every price; the alerts as (position, baseline price, baseline ts)."""
        p, t, n = self.p, self.t, len(self.p)
        alerts: list[tuple[int, float, int]] = []
        pos = 0
        while pos < n:
            seen = self.last_seen if pos == 0 else int(t[pos - 1])
            if self.base is None or (seen is not None and int(t[pos]) - seen >= self.ttl):
                self.base, self.last_alert = (float(p[pos]), int(t[pos])), None  # afresh
                pos += 1
                continue
            k = int(np.searchsorted(self.expiries, pos, side="right"))
            segment_end = int(self.expiries[k]) if k < len(self.expiries) else n
            base_price, base_ts = self.base
            past = np.flatnonzero(t[pos:segment_end] - base_ts > self.window)
            window_end = pos + int(past[0]) if len(past) else segment_end
            change = (p[pos:window_end] - base_price) / base_price * 100.0
            hit = np.abs(change) >= self.threshold
            if self.last_alert is not None:
                hit &= t[pos:window_end] >= self.last_alert + self.cooldown
            hits = np.flatnonzero(hit)
            if len(hits):
                j = pos + int(hits[0])
                alerts.append((j, base_price, base_ts))
                self.last_alert = int(t[j])
                self.base = (float(p[j]), int(t[j]))  # the baseline resets after an alert
                pos = j + 1
            elif window_end < segment_end:  # a new detection window opens at this price
                self.base = (float(p[window_end]), int(t[window_end]))
                pos = window_end + 1
            else:
                pos = segment_end  # the next price (if any) comes after an expiring gap
        self.last_seen = int(t[n - 1])
        return alerts
