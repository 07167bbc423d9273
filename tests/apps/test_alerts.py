"""The price-alerts job (trading job 3): its rules by hand, and its fast scan against a
straightforward reference.

The first part runs the real spec (``examples/trading/alerts.yaml``) over small hand-written
inputs; every expected alert is computed by hand in the comments. The second part drives
the step's operator directly with random price paths (jumps, gaps at the rule boundaries,
arrival disorder) cut into batches of several sizes, with a snapshot/restore between
batches, and compares every alert with ``reference_alerts``: the rules of docs/trading.md
written out price by price.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import surestream
from surestream.connectors.file_sinks import read_parquet_dataset
from surestream.model.batch import POS_INF, Batch
from surestream.model.loader import apply_override, build_spec, load_spec_dict
from surestream.model.steps import ProcessStep
from surestream.runners.local.runner import LocalRunner, RunResult
from surestream.semantics.process import build_process_operator

SPECS = Path(surestream.__file__).parent / "examples" / "trading"
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
S = 1_000
COLUMNS = ["alert_type", "symbol", "direction", "baseline_price", "current_price",
           "pct_change", "window_start_ms", "detected_at_ms", "severity"]


# ---- running the job -------------------------------------------------------------------

def write_lines(path: Path, rows: Iterable[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def price(symbol: str, at: int, value: float | None, trade_id: str | None = None,
          status: str | None = "FILLED") -> dict[str, Any]:
    """A trade carrying a price, ``at`` ms after T0 (the job reads symbol, price, time,
    trade id and status)."""
    return {"trade_id": trade_id or f"{symbol}-{at}", "symbol": symbol, "side": "BUY",
            "quantity": 100, "price": value, "status": status, "timestamp_ms": T0 + at}


def tick(symbol: str, at: int, value: float) -> dict[str, Any]:
    return {"symbol": symbol, "price": value, "bid": value - 0.01, "ask": value + 0.01,
            "timestamp_ms": T0 + at}


class Job:
    def __init__(self, result: RunResult, workspace: Path) -> None:
        self.result, self.workspace = result, workspace

    def frame(self, name: str) -> pl.DataFrame:
        return read_parquet_dataset(self.workspace / "warehouse" / name)

    def alerts(self) -> list[dict[str, Any]]:
        rows = self.frame("price_alerts").to_dicts()
        return sorted(rows, key=lambda a: (a["detected_at_ms"], a["symbol"]))


def run_job(ws: Path, overrides: Sequence[str], **params: Any) -> Job:
    spec_file = SPECS / "alerts.yaml"
    doc = load_spec_dict(spec_file)
    i = next(i for i, s in enumerate(doc["steps"]) if s["name"] == "price_alerts")
    for assignment in [*(f"steps[{i}].params.{k}={v}" for k, v in params.items()),
                       *overrides]:
        apply_override(doc, assignment)
    return Job(LocalRunner(build_spec(doc, ws, str(spec_file))).run(), ws)


def run_alerts(ws: Path, prices: list[dict[str, Any]], **params: Any) -> Job:
    """The alerts job over one file of prices (``params`` override the step's params)."""
    path = write_lines(ws / "in" / "prices.jsonl", prices)
    return run_job(ws, [f"source.path={path}"], **params)


def alert(symbol: str, at: int, baseline: float, value: float, severity: str,
          window_start: int = 0) -> dict[str, Any]:
    """The alert of a move from ``baseline`` to ``value`` at ``at`` (ms after T0)."""
    change = (value - baseline) / baseline * 100
    return {"alert_type": "PRICE_MOVEMENT", "symbol": symbol,
            "direction": "UP" if change > 0 else "DOWN", "baseline_price": baseline,
            "current_price": value, "pct_change": round(abs(change), 2),
            "window_start_ms": T0 + window_start, "detected_at_ms": T0 + at,
            "severity": severity}


def assert_alerts(job: Job, expected: list[dict[str, Any]]) -> None:
    got = [{k: v for k, v in a.items() if k != "date"} for a in job.alerts()]
    assert got == sorted(expected, key=lambda a: (a["detected_at_ms"], a["symbol"]))


# ---- the rules, by hand ----------------------------------------------------------------

@pytest.fixture(scope="module")
def thresholds(tmp_path_factory: pytest.TempPathFactory) -> Job:
    symbols = {"FLAT": None, "MED": 102.0, "MED2": 104.99, "HIGH": 105.0, "HIGH2": 109.99,
               "CRIT": 110.0, "DOWN": 97.0, "CRASH": 89.0}
    prices = [price(s, 0, 100.0) for s in symbols]               # the baselines
    prices += [price(s, 10 * S, p) for s, p in symbols.items() if p is not None]
    prices += [price("FLAT", 10 * S, 101.99), price("FLAT", 20 * S, 98.01),  # +-1.99 %
               price("FLAT", 30 * S, 0.0), price("FLAT", 31 * S, None),  # not prices
               price("LATE", -60 * S, 100.0)]                    # far behind: quarantined
    return run_alerts(tmp_path_factory.mktemp("thresholds"), prices)


def test_alerts_schema_is_the_plans(thresholds: Job) -> None:
    frame = thresholds.frame("price_alerts")
    assert frame.columns == [*COLUMNS, "date"]  # `date`: the dataset's partition column
    assert dict(frame.schema) == {
        "alert_type": pl.String, "symbol": pl.String, "direction": pl.String,
        "baseline_price": pl.Float64, "current_price": pl.Float64, "pct_change": pl.Float64,
        "window_start_ms": pl.Int64, "detected_at_ms": pl.Int64, "severity": pl.String,
        "date": pl.Date}


def test_alerts_severities_and_directions(thresholds: Job) -> None:
    at = 10 * S
    assert_alerts(thresholds, [
        alert("MED", at, 100.0, 102.0, "MEDIUM"),         # exactly 2 %: alerts
        alert("MED2", at, 100.0, 104.99, "MEDIUM"),       # 4.99 %
        alert("HIGH", at, 100.0, 105.0, "HIGH"),          # 5 %
        alert("HIGH2", at, 100.0, 109.99, "HIGH"),        # 9.99 %
        alert("CRIT", at, 100.0, 110.0, "CRITICAL"),      # 10 %
        alert("DOWN", at, 100.0, 97.0, "MEDIUM"),         # -3 %: pct_change 3.0, DOWN
        alert("CRASH", at, 100.0, 89.0, "CRITICAL"),      # -11 %
    ])
    crash = next(a for a in thresholds.alerts() if a["symbol"] == "CRASH")
    assert (crash["pct_change"], crash["direction"]) == (11.0, "DOWN")


def test_alerts_below_threshold_and_non_prices_no_alert(thresholds: Job) -> None:
    assert "FLAT" not in {a["symbol"] for a in thresholds.alerts()}
    assert thresholds.result.counters["errors"] == 0


def test_alerts_late_price_is_quarantined(thresholds: Job) -> None:
    late = thresholds.frame("quarantine_prices_late").to_dicts()
    assert [r["symbol"] for r in late] == ["LATE"]
    assert late[0]["lateness_ms"] == (31 * S - 5001) - (-60 * S)  # W from the newest, 31 s


def test_alerts_pct_change_is_absolute_with_two_decimals(tmp_path: Path) -> None:
    job = run_alerts(tmp_path, [price("RND", 0, 103.0), price("RND", S, 100.0)])
    # (100 - 103) / 103 = -2.912621...% -> 2.91
    assert [(a["pct_change"], a["direction"]) for a in job.alerts()] == [(2.91, "DOWN")]


def test_alerts_cooldown_and_baseline_reset(tmp_path: Path) -> None:
    job = run_alerts(tmp_path, [
        price("COOL", 0, 100.0),
        price("COOL", 10 * S, 103.0),     # +3 %: alert; the baseline becomes 103 at 10 s
        price("COOL", 40 * S, 110.0),     # +6.8 % from 103 but within 60 s: suppressed
        price("COOL", 69_999, 104.0),     # +0.97 % from 103 (the suppressed move kept it)
        price("COOL", 70 * S, 106.0),     # 60 s after the alert: +2.91 % from 103, alert
        price("COOL", 140 * S, 108.0),    # +1.89 % from 106 (+8 % from 100): no alert
        price("COOL", 150 * S, 108.2),    # +2.075 % from 106: alert
    ])
    assert_alerts(job, [
        alert("COOL", 10 * S, 100.0, 103.0, "MEDIUM"),
        alert("COOL", 70 * S, 103.0, 106.0, "MEDIUM", 10 * S),
        alert("COOL", 150 * S, 106.0, 108.2, "MEDIUM", 70 * S),
    ])


def test_alerts_window_resets_only_after_more_than_300000_ms(tmp_path: Path) -> None:
    """The plan: a new window when ts - baseline_ts > 300000. At exactly 300,000 ms the
    price is still compared with the baseline; at 300,001 it opens a new window."""
    job = run_alerts(tmp_path, [
        price("AT", 0, 100.0),
        price("AT", 300_000, 103.0),      # 300000 - 0 is not > 300000: +3 %, alert
        price("PAST", 0, 100.0),
        price("PAST", 300_001, 103.0),    # 300001 > 300000: a new window, baseline 103
        price("PAST", 310 * S, 105.1),    # +2.04 % from 103 (window of 300,001)
    ])
    assert_alerts(job, [
        alert("AT", 300_000, 100.0, 103.0, "MEDIUM"),
        alert("PAST", 310 * S, 103.0, 105.1, "MEDIUM", 300_001),
    ])


def test_alerts_state_expires_after_10_minutes_of_silence(tmp_path: Path) -> None:
    job = run_alerts(tmp_path, [
        price("EXP", 0, 100.0),
        price("KEEP", 0, 100.0),
        price("KEEP", 599_999, 103.0),    # 1 ms short of 10 minutes: +3 % from 100
        price("EXP", 600 * S, 103.0),     # 10 minutes of silence: forgotten, a fresh baseline
        price("EXP", 610 * S, 105.1),     # +2.04 % from 103
    ], window_ms=3_600_000)               # a one-hour window: only the expiry resets
    assert_alerts(job, [
        alert("EXP", 610 * S, 103.0, 105.1, "MEDIUM", 600 * S),
        alert("KEEP", 599_999, 100.0, 103.0, "MEDIUM"),
    ])


def test_alerts_expiry_forgets_the_cooldown(tmp_path: Path) -> None:
    job = run_alerts(tmp_path, [
        price("CD", 0, 100.0),
        price("CD", S, 103.0),            # alert at 1 s
        price("CD", 601 * S, 100.0),      # 10 min silent: fresh, baseline 100
        price("CD", 602 * S, 97.0),       # -3 %: alerts (the old alert's cooldown is gone)
    ], cooldown_ms=3_600_000)
    assert_alerts(job, [alert("CD", S, 100.0, 103.0, "MEDIUM"),
                        alert("CD", 602 * S, 100.0, 97.0, "MEDIUM", 601 * S)])


def test_alerts_judge_prices_in_event_time_order(tmp_path: Path) -> None:
    job = run_alerts(tmp_path, [
        price("ORD", 10 * S, 100.0),      # arrives first ...
        price("ORD", 8 * S, 103.0),       # ... but this one is first in time: the baseline
        price("ORD", 12 * S, 103.5),      # +0.49 % from 103: nothing (+3.5 % from 100)
    ])
    # in time order: 103 (8 s), 100 (10 s): -2.91 %, alert; then 103.5 within the cooldown
    assert_alerts(job, [alert("ORD", 10 * S, 103.0, 100.0, "MEDIUM", 8 * S)])


@pytest.mark.parametrize("interleave", [1, 1024])
def test_alerts_ticks_and_trades_together(tmp_path: Path, interleave: int) -> None:
    trades = write_lines(tmp_path / "in" / "trades.jsonl", [
        price("MIX", 0, 100.0, "x1"),
        price("MIX", 62 * S, 150.0, "r1", status="REJECTED"),   # never traded: ignored
        price("MIX", 63 * S, 80.0, "n1", status="NEW"),         # a limit price: ignored
        price("MIX", 64 * S, 130.0, "c1", status="CANCELLED"),
        price("MIX", 64_500, 140.0, "u1", status="EXPIRED"),
        price("MIX", 70 * S, 100.0, "x2", status="PARTIALLY_FILLED"),
    ])
    ticks = write_lines(tmp_path / "in" / "ticks.jsonl", [
        tick("MIX", 1 * S, 102.5), tick("MIX", 60 * S, 102.5), tick("MIX", 65 * S, 102.5)])
    job = run_job(tmp_path, [f"source.path=[{trades}, {ticks}]",
                             f"runtime.interleave_records={interleave}"])
    assert_alerts(job, [alert("MIX", 1 * S, 100.0, 102.5, "MEDIUM"),
                        alert("MIX", 70 * S, 102.5, 100.0, "MEDIUM", 1 * S)])
    assert job.result.operator_counters["traded_prices_only"]["filtered"] == 4
    assert job.result.counters["late"] == 0


def test_alerts_status_is_read_case_insensitively(tmp_path: Path) -> None:
    """As the router upper-cases status before routing, 'filled' is a fill here too."""
    job = run_alerts(tmp_path, [
        price("CASE", 0, 100.0, status="filled"),
        price("CASE", S, 103.0, status="Partially_Filled"),  # +3 %: alert
        price("CASE", 2 * S, 200.0, status="new"),           # a limit price: ignored
    ])
    assert_alerts(job, [alert("CASE", S, 100.0, 103.0, "MEDIUM")])
    assert job.result.operator_counters["traded_prices_only"]["filtered"] == 1


def test_alerts_spec_has_one_minute_idleness() -> None:
    doc = load_spec_dict(SPECS / "alerts.yaml")
    (watermark,) = [s for s in doc["steps"] if s["type"] == "watermark"]
    assert watermark["idle_source_timeout_ms"] == 60_000


# ---- the fast scan against a reference ---------------------------------------------------

PARAMS = {"window_ms": 300_000, "threshold_pct": 2.0, "cooldown_ms": 60_000,
          "state_ttl_ms": 600_000, "severities": {"MEDIUM": 2.0, "HIGH": 5.0, "CRITICAL": 10.0}}
DELAY = 5_000  # the watermark delay, as in the job


def reference_alerts(prices: list[tuple[str, int, float | None]],
                     params: dict[str, Any] = PARAMS) -> list[dict[str, Any]]:
    """The rules of docs/trading.md, price by price: each symbol's prices in event-time
    order (ties: arrival order), skipping non-prices."""
    state: dict[str, dict[str, Any]] = {}
    alerts = []
    ordered = sorted(range(len(prices)), key=lambda i: (prices[i][1], i))
    for symbol, t, p in (prices[i] for i in ordered):
        if p is None or not np.isfinite(p) or p <= 0:
            continue
        s = state.get(symbol)
        if s is not None and t - s["seen"] >= params["state_ttl_ms"]:
            s = None  # silent for state_ttl_ms: forgotten
        if s is None:
            state[symbol] = {"base": p, "base_ts": t, "last_alert": None, "seen": t}
            continue
        s["seen"] = t
        if t - s["base_ts"] > params["window_ms"]:
            s["base"], s["base_ts"] = p, t  # a new detection window
            continue
        change = (p - s["base"]) / s["base"] * 100.0
        if abs(change) < params["threshold_pct"]:
            continue
        if s["last_alert"] is not None and t - s["last_alert"] < params["cooldown_ms"]:
            continue
        reached = [(limit, name) for name, limit in params["severities"].items()
                   if abs(change) >= limit]
        alerts.append({"alert_type": "PRICE_MOVEMENT", "symbol": symbol,
                       "direction": "UP" if change > 0 else "DOWN", "baseline_price": s["base"],
                       "current_price": p, "pct_change": round(abs(change), 2),
                       "window_start_ms": s["base_ts"], "detected_at_ms": t,
                       "severity": max(reached)[1] if reached else None})
        s["last_alert"], s["base"], s["base_ts"] = t, p, t
    return sorted(alerts, key=lambda a: (a["detected_at_ms"], a["symbol"]))


def on_time(prices: list[tuple[str, int, float | None]]) -> tuple[list[Any], list[int]]:
    """The prices the late step lets through and the watermark before each (W = max ts so
    far - delay - 1): what reaches the alerts step."""
    kept, wms, newest = [], [], None
    for rec in prices:
        wm = -(2**63) if newest is None else newest - DELAY - 1
        newest = rec[1] if newest is None else max(newest, rec[1])
        if rec[1] > wm:
            kept.append(rec)
            wms.append(wm)
    return kept, wms


def run_operator(prices: list[Any], wms: list[int], batch_size: int,
                 restore_between: bool) -> list[tuple[dict[str, Any], int, int, int]]:
    """The job's process step over ``prices`` cut into batches; with ``restore_between``,
    each batch goes to a new operator restored from the previous one's snapshot (a crash
    and recovery at every batch boundary). Returns (alert, ts, wm, seq) in output order."""
    step = ProcessStep(name="price_alerts", key_fields=["symbol"], params=PARAMS,
                       function="surestream.apps.trading.jobs.alerts:PriceAlerts")
    op = build_process_operator(step, "test")
    out = []
    schema = {"symbol": pl.String, "price": pl.Float64}
    starts = list(range(0, len(prices), batch_size))
    for b, start in enumerate([*starts, None]):
        if start is None:  # the end of input
            batch = Batch.empty(POS_INF, schema=schema)
        else:
            chunk = prices[start:start + batch_size]
            end = start + len(chunk)
            wm_end = wms[end] if end < len(wms) else max(wms[end - 1], max(
                t for _, t, _ in prices[:end]) - DELAY - 1)
            batch = Batch.from_rows([{"symbol": s, "price": p} for s, _, p in chunk],
                                    ts=[t for _, t, _ in chunk], wm=wms[start:end],
                                    seq=range(start, end), wm_end=wm_end, schema=schema)
        if restore_between and b:
            snapshot = op.snapshot()
            op = build_process_operator(step, "test")
            op.restore(snapshot)
        main = op.process(batch)["main"]
        out += list(zip(main.data.to_dicts(), main.ts.tolist(), main.wm.tolist(),
                        main.seq.tolist(), strict=True))
    return out


def price_paths(draw: Any) -> list[tuple[str, int, float | None]]:
    """A few symbols' random walks with jumps, gaps at the rule boundaries and non-prices,
    merged in event time and then delivered up to 8 s out of order."""
    events = []
    for symbol in draw(st.lists(st.sampled_from(["A", "B", "C", "D"]), min_size=1,
                                max_size=3, unique=True)):
        t, p = draw(st.integers(0, 20_000)), 100.0
        for _ in range(draw(st.integers(1, 60))):
            t += draw(st.sampled_from([0, 1, 500, 20_000, 59_999, 60_000, 60_001,
                                       150_000, 300_000, 300_001, 599_999, 600_000]))
            kind = draw(st.sampled_from(["step", "step", "step", "jump", "none"]))
            if kind == "none":
                events.append((symbol, t, draw(st.sampled_from([None, 0.0, -1.0]))))
                continue
            move = draw(st.floats(-0.004, 0.004)) if kind == "step" else \
                draw(st.floats(-0.15, 0.15))
            p = max(0.01, round(p * (1 + move), 2))
            events.append((symbol, t, p))
    events.sort(key=lambda e: e[1])
    delays = [draw(st.integers(0, 8_000)) for _ in events]  # some beyond 5 s: late
    order = sorted(range(len(events)), key=lambda i: (events[i][1] + delays[i], i))
    return [events[i] for i in order]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_alerts_scan_matches_the_reference_for_any_batch_size(data: Any) -> None:
    prices, wms = on_time(price_paths(data.draw))
    expected = reference_alerts(prices)
    outputs = {(size, restore): run_operator(prices, wms, size, restore)
               for size, restore in ((1, False), (7, True), (64, False), (10_000, True))}
    for output in outputs.values():
        got = sorted((a for a, *_ in output), key=lambda a: (a["detected_at_ms"], a["symbol"]))
        assert got == expected
        assert output == outputs[(1, False)]  # the same records, order, ts, wm and seq
        for a, ts, wm, _ in output:  # an alert leaves when the watermark passes its price
            assert ts == a["detected_at_ms"] and wm < ts


def test_reference_and_scan_agree_on_a_hand_computed_path() -> None:
    """The reference itself, checked by hand, and the scan on the same prices."""
    prices = [("X", 0, 100.0), ("X", 30_000, 102.0),   # +2 %: alert (MEDIUM), base 102
              ("X", 60_000, 112.2),                    # +10 % but 30 s after: cooldown
              ("X", 90_000, 112.2),                    # +10 % 60 s after: CRITICAL
              ("X", 390_001, 150.0),                   # 300,001 ms later: a new window
              ("X", 990_001, 10.0)]                    # 600,000 ms of silence: fresh
    expected = [alert("X", 30_000, 100.0, 102.0, "MEDIUM"),
                alert("X", 90_000, 102.0, 112.2, "CRITICAL", 30_000)]
    for a in expected:
        a["window_start_ms"] -= T0
        a["detected_at_ms"] -= T0
    assert reference_alerts(prices) == expected
    kept, wms = on_time(prices)
    assert [a for a, *_ in run_operator(kept, wms, 2, True)] == expected
