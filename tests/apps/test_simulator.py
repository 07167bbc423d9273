"""The market simulator: determinism, exact truth, stream schemas, the reference universe.

The truth is checked two ways: by re-deriving every count from the files with the
definitions written out here (independently of the simulator's bookkeeping), and by
running a real pipeline (watermark, late data, dedup, route by status) over the trades.
"""

from __future__ import annotations

import hashlib
import io
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import orjson
import polars as pl
import pytest

from surestream.api import Pipeline, memory
from surestream.apps.trading.reference import build_reference, load_reference, write_reference
from surestream.apps.trading.simulator import (
    CHUNK,
    MarketSimulation,
    TradeSimulation,
)
from surestream.apps.trading.trades import STATUSES, TRADE_FIELDS
from surestream.apps.trading.truth import MarketTruth
from surestream.cli.simulate import main as simulate_main

REFERENCE = Path(__file__).resolve().parents[2] / "src" / "surestream" / "data" / "reference"
STREAMS = ("raw.trades", "raw.marketdata", "raw.orderbook")
LATE_MS = 30_000
# rates above the defaults so that every kind of damage shows up many times; 150,000
# events span three chunks, so duplicates and running maxima cross chunk boundaries
SIM = MarketSimulation(events=150_000, seed=7, duplicate_rate=0.03, late_rate=0.004,
                       malformed_rate=0.002, unknown_status_rate=0.005, empty_side_rate=0.05)


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, MarketTruth]:
    folder = tmp_path_factory.mktemp("market")
    return folder, SIM.write(folder)


def read(folder: Path, stream: str) -> list[tuple[bytes, dict | None]]:
    """Each line of a stream with its decoded object (None: not valid JSON)."""
    return read_lines(folder / f"{stream}.jsonl")


def read_lines(path: Path) -> list[tuple[bytes, dict | None]]:
    out = []
    for line in path.read_bytes().splitlines():
        try:
            out.append((line, orjson.loads(line)))
        except orjson.JSONDecodeError:
            out.append((line, None))
    return out


def audit(rows: list[tuple[bytes, dict | None]]) -> dict:
    """Counts by the definitions: late = more than 30 s behind the largest well-formed
    timestamp before it; duplicate = a repeated trade_id; statuses over unique trades."""
    seen_max = None
    first: dict[str, bytes] = {}
    counts: Counter = Counter()
    statuses: Counter = Counter()
    on_time: Counter = Counter()
    worst_on_time_lag = 0
    for line, rec in rows:
        counts["events"] += 1
        if rec is None:
            counts["malformed"] += 1
            continue
        ts = rec["timestamp_ms"]
        lag = 0 if seen_max is None else seen_max - ts
        late = lag > LATE_MS
        seen_max = ts if seen_max is None else max(seen_max, ts)
        trade_id = rec.get("trade_id")
        if trade_id is not None and trade_id in first:
            counts["duplicates"] += 1
            assert line == first[trade_id], "a duplicate is a byte copy of its original"
            assert not late and rec["status"] in STATUSES
            worst_on_time_lag = max(worst_on_time_lag, lag)
            continue
        counts["unique"] += 1
        counts["late"] += late
        if not late:
            worst_on_time_lag = max(worst_on_time_lag, lag)
        if trade_id is not None:
            first[trade_id] = line
            counts["unknown_status"] += rec["status"] not in STATUSES
            statuses[rec["status"]] += 1
            if not late:
                on_time[rec["status"]] += 1
    return {"counts": counts, "statuses": dict(statuses), "on_time": dict(on_time),
            "worst_on_time_lag": worst_on_time_lag}


# -- determinism ------------------------------------------------------------------------

def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir())}


def test_same_seed_same_bytes(market, tmp_path):
    folder, _ = market
    again = SIM.write(tmp_path / "again")
    assert digest(tmp_path / "again") == digest(folder)
    assert again.to_dict() == MarketTruth.from_dict(
        orjson.loads((folder / "truth.json").read_bytes())).to_dict()


def test_a_different_seed_gives_different_bytes(tmp_path):
    a = MarketSimulation(events=5_000, seed=1).write(tmp_path / "a")
    b = MarketSimulation(events=5_000, seed=2).write(tmp_path / "b")
    assert a.events == b.events == 5_000
    for stream in STREAMS:
        assert (tmp_path / "a" / f"{stream}.jsonl").read_bytes() != \
            (tmp_path / "b" / f"{stream}.jsonl").read_bytes()


def test_streams_iterator_matches_the_files_in_arrival_order(market):
    folder, truth = market
    got: dict[str, list[bytes]] = {s: [] for s in STREAMS}
    arrival = []
    streamed = MarketTruth()
    for name, line in SIM.streams(streamed):
        got[name].append(line)
        arrival.append(name)
    for stream in STREAMS:
        assert got[stream] == (folder / f"{stream}.jsonl").read_bytes().splitlines()
    assert len(arrival) == SIM.events
    assert len(set(arrival[:200])) == 3, "streams are interleaved, not one after another"
    assert streamed.to_dict() == truth.to_dict()


def test_a_shorter_run_is_a_prefix_of_a_longer_one(market, tmp_path):
    folder, _ = market
    replace(SIM, events=70_000).write(tmp_path)
    for stream in STREAMS:
        short = (tmp_path / f"{stream}.jsonl").read_bytes()
        assert short and (folder / f"{stream}.jsonl").read_bytes().startswith(short)


class FakeClock:
    """Processing time that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.now += seconds


def test_live_pacing_releases_each_line_when_due_and_gives_the_same_bytes(tmp_path,
                                                                           monkeypatch):
    import surestream.apps.trading.simulator as simulator

    clock = FakeClock()
    monkeypatch.setattr(simulator, "time", clock)
    paced = MarketSimulation(events=600, seed=3, events_per_s=4_000)
    released = [clock.now for _ in paced.streams()]
    # line k is due k / 4,000 s after the start: never earlier, and not later either
    assert released == pytest.approx([k / 4_000 for k in range(600)])
    MarketSimulation(events=600, seed=3).write(tmp_path / "fast")
    paced.write(tmp_path / "paced")
    for stream in STREAMS:
        assert (tmp_path / "fast" / f"{stream}.jsonl").read_bytes() == \
            (tmp_path / "paced" / f"{stream}.jsonl").read_bytes()


# -- the truth equals the files -----------------------------------------------------------

def test_truth_counts_equal_the_files(market):
    folder, truth = market
    assert truth.events == SIM.events == sum(truth.streams[s].events for s in STREAMS)
    for stream in STREAMS:
        found = audit(read(folder, stream))
        t = truth.streams[stream]
        c = found["counts"]
        assert (c["events"], c["unique"], c["duplicates"], c["late"], c["malformed"],
                c["unknown_status"]) == (t.events, t.unique, t.duplicates, t.late,
                                         t.malformed, t.unknown_status), stream
        assert found["worst_on_time_lag"] <= SIM.out_of_order_ms, stream
        assert found["statuses"] == t.statuses
        assert found["on_time"] == t.on_time_statuses
        assert t.late > 0 and t.malformed > 0, f"{stream}: the injections show up"
    trades = truth.trades
    assert trades.duplicates > 1_000 and trades.unknown_status > 100
    assert trades.events == trades.unique + trades.duplicates + trades.malformed
    assert set(STATUSES) <= set(trades.statuses)
    assert sum(trades.statuses.values()) == trades.unique


def test_a_pipeline_reconciles_exactly_with_the_truth(market):
    """Watermark, quarantine late data, dedup by trade_id, route by status: each output
    and counter equals what the simulator says it injected."""
    folder, truth = market
    p = Pipeline("reconcile")
    (p.read_files(str(folder / "raw.trades.jsonl"))
     .watermark("timestamp_ms", max_out_of_orderness_ms=5_000)
     .late_data("late")
     .dedup(["trade_id"], time_window_ms=600_000, state_ttl_ms=3_600_000)
     .route("status", {s: s for s in STATUSES}, default="unknown"))
    for tag in ("main", "late", "errors", "unknown", *STATUSES):
        p.output(tag, memory())
    result = p.run()
    t = truth.trades
    assert result.counters.get("duplicates", 0) == t.duplicates
    assert result.written.get("late", 0) == t.late
    assert result.written.get("errors", 0) == t.malformed
    assert result.written.get("unknown", 0) == t.unknown_status
    for status in STATUSES:
        assert result.written.get(status, 0) == t.on_time_statuses[status], status


@pytest.mark.parametrize("delay_ms", [SIM.out_of_order_ms, LATE_MS])
@pytest.mark.parametrize("stream", STREAMS)
def test_late_is_late_for_any_watermark_delay_up_to_30_s(market, stream, delay_ms):
    folder, truth = market
    p = Pipeline("late")
    (p.read_files(str(folder / f"{stream}.jsonl"))
     .watermark("timestamp_ms", max_out_of_orderness_ms=delay_ms).late_data("late"))
    for tag in ("main", "late", "errors"):
        p.output(tag, memory())
    written = p.run().written
    s = truth.streams[stream]
    assert (written.get("late", 0), written.get("errors", 0)) == (s.late, s.malformed)


def test_a_cut_short_run_counts_only_what_it_wrote(tmp_path):
    """The line budget may end mid-chunk, with duplicates still waiting: not counted."""
    for events in (1, 37, CHUNK + 11):
        truth = MarketSimulation(events=events, seed=9, duplicate_rate=0.2).write(tmp_path)
        lines = sum(len((tmp_path / f"{s}.jsonl").read_bytes().splitlines()) for s in STREAMS)
        assert lines == truth.events == events
        assert audit(read(tmp_path, "raw.trades"))["counts"]["duplicates"] == \
            truth.trades.duplicates


# -- schemas ------------------------------------------------------------------------------

def well_formed(folder: Path, stream: str) -> list[dict]:
    return [rec for _, rec in read(folder, stream) if rec is not None]


def test_trade_schema(market):
    folder, truth = market
    trades = well_formed(folder, "raw.trades")
    types = {"quantity": int, "price": float, "timestamp_ms": int}
    symbols = set(truth.symbols)
    for t in trades:
        assert tuple(t) == TRADE_FIELDS
        for field in TRADE_FIELDS:
            assert isinstance(t[field], types.get(field, str)), (field, t)
        assert t["side"] in ("BUY", "SELL") and t["symbol"] in symbols
        assert t["quantity"] > 0 and t["price"] > 0
        assert round(t["price"], 2) == t["price"]
    orders = Counter(t["order_id"] for t in trades)
    assert max(orders.values()) > 1, "partial fills share an order"


def test_tick_schema_and_bid_below_price_below_ask(market):
    folder, _ = market
    ticks = well_formed(folder, "raw.marketdata")
    assert len(ticks) > 10_000
    for t in ticks:
        assert list(t) == ["symbol", "price", "bid", "ask", "timestamp_ms"]
        assert isinstance(t["symbol"], str) and isinstance(t["timestamp_ms"], int)
        assert all(isinstance(t[k], float) for k in ("price", "bid", "ask"))
        assert 0 < t["bid"] < t["price"] < t["ask"]


def test_order_book_schema_20_levels_best_first_or_an_empty_side(market):
    folder, _ = market
    books = well_formed(folder, "raw.orderbook")
    empty = Counter()
    for b in books:
        assert list(b) == ["symbol", "timestamp_ms", "bids", "asks"]
        for side in ("bids", "asks"):
            levels = b[side]
            assert len(levels) in (0, 20)
            empty[side] += not levels
            for level in levels:
                assert list(level) == ["price", "quantity"]
                assert isinstance(level["price"], float) and level["price"] > 0
                assert isinstance(level["quantity"], int) and level["quantity"] > 0
        bids = [x["price"] for x in b["bids"]]
        asks = [x["price"] for x in b["asks"]]
        assert bids == sorted(bids, reverse=True) and len(set(bids)) == len(bids)
        assert asks == sorted(asks) and len(set(asks)) == len(asks)
        assert not (bids and asks) or bids[0] < asks[0]
        assert bids or asks
    assert empty["bids"] > 0 and empty["asks"] > 0


# -- market behaviour -------------------------------------------------------------------------

def test_prices_jump_and_sizes_follow_the_tier(market):
    folder, _ = market
    frame = pl.DataFrame(well_formed(folder, "raw.trades")).join(
        load_reference().select("symbol", "market_cap_tier"), on="symbol")
    moves = (frame.group_by("symbol", pl.col("timestamp_ms") // 300_000)
             .agg(move=pl.col("price").max() / pl.col("price").min() - 1))
    assert moves.filter(pl.col("move") >= 0.02).height > 0
    size = dict(frame.group_by("market_cap_tier").agg(pl.col("quantity").mean()).iter_rows())
    assert size["MEGA"] > size["SMALL"]
    activity = frame.group_by("symbol").len()["len"]
    assert activity.max() > 5 * activity.min(), "volumes vary by symbol"


def test_a_chosen_set_of_symbols(tmp_path):
    names = ["ZZZ", *load_reference()["symbol"].head(3).to_list()]
    truth = MarketSimulation(events=3_000, seed=4, symbols=names).write(tmp_path)
    assert truth.symbols == names
    seen = {rec["symbol"] for s in STREAMS for rec in well_formed(tmp_path, s)}
    assert seen == set(names)


@pytest.mark.parametrize("bad", [
    {"duplicate_rate": 1.5}, {"late_behind_ms": (10_000, 60_000)}, {"out_of_order_ms": 40_000},
    {"mix": (1.0, 0.0)}, {"events_per_s": 0}, {"jump_size": (0.2, 0.1)}, {"events": -1},
    {"symbols": []}, {"event_spacing_ms": 0},
])
def test_bad_settings_are_refused_with_a_reason(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        MarketSimulation(**bad)


def test_spacing_between_events_is_configurable(tmp_path):
    truth = MarketSimulation(events=20_000, seed=5, event_spacing_ms=0.25,
                             late_rate=0.01).write(tmp_path)
    ts = np.array([r["timestamp_ms"] for r in well_formed(tmp_path, "raw.trades")])
    end = ts.max() - SIM.base_ts_ms - SIM.late_behind_ms[1]  # from the first event's time
    assert 20_000 * 0.25 * 0.9 < end <= 20_000 * 0.25  # 4 events a millisecond
    found = audit(read(tmp_path, "raw.trades"))
    assert found["counts"]["late"] == truth.trades.late
    assert found["counts"]["duplicates"] == truth.trades.duplicates


# -- the CLI ------------------------------------------------------------------------------------

def test_simulate_command_writes_files_and_prints_the_truth(tmp_path, capsys):
    code = simulate_main(["--events", "4000", "--seed", "3", "--out", str(tmp_path),
                          "--duplicate-rate", "0.05", "--late-rate", "0.01"])
    assert code == 0
    shown = capsys.readouterr().out
    assert "raw.trades" in shown and "duplicates" in shown
    truth = MarketTruth.from_dict(orjson.loads((tmp_path / "truth.json").read_bytes()))
    assert truth.events == 4_000 and truth.settings["duplicate_rate"] == 0.05
    api = MarketSimulation(events=4_000, seed=3, duplicate_rate=0.05, late_rate=0.01)
    assert truth.to_dict() == api.write(tmp_path / "api").to_dict()


def test_simulate_command_refuses_bad_rates(tmp_path, capsys):
    assert simulate_main(["--late-rate", "2", "--out", str(tmp_path)]) == 2
    assert "late_rate" in capsys.readouterr().err


# -- the reference universe -----------------------------------------------------------------

def test_reference_universe_csv_and_parquet_agree():
    csv = pl.read_csv(REFERENCE / "symbols.csv")
    parquet = pl.read_parquet(REFERENCE / "symbols.parquet")
    assert csv.equals(parquet) and parquet.equals(load_reference())
    assert csv.columns == ["symbol", "company_name", "sector", "industry",
                           "market_cap_tier", "exchange"]
    assert csv.height >= 100 and csv["sector"].n_unique() >= 10
    assert csv["symbol"].is_unique().all() and csv["company_name"].is_unique().all()
    assert csv.null_count().sum_horizontal().item() == 0


def test_reference_is_regenerated_identically(tmp_path):
    write_reference(tmp_path)
    assert (tmp_path / "symbols.csv").read_bytes() == (REFERENCE / "symbols.csv").read_bytes()
    assert pl.read_parquet(io.BytesIO((tmp_path / "symbols.parquet").read_bytes())).equals(
        build_reference())


# -- the original trade simulator --------------------------------------------------------------

def test_trade_simulation_truth_equals_its_file(tmp_path):
    """Its counts, re-derived from the file by the definitions of ``audit``."""
    sim = TradeSimulation(events=20_000, seed=5)
    truth = sim.write(str(tmp_path / "trades.jsonl"))
    found = audit(read_lines(tmp_path / "trades.jsonl"))
    c = found["counts"]
    assert (c["events"], c["unique"], c["duplicates"], c["late"], c["malformed"]) == (
        truth.events, truth.trades, truth.duplicates, truth.late, truth.malformed)
    assert truth.events == sim.events == truth.trades + truth.duplicates + truth.malformed
    assert truth.duplicates > 0 and truth.late > 0 and truth.malformed > 0
    # on-time records trail by at most the disorder, plus 1,000 events (1 ms apart) for a
    # resent duplicate: far from the 30 s that ``audit`` calls late, so the split is exact
    assert found["worst_on_time_lag"] <= sim.disorder_ms + 1_000
    assert set(found["statuses"]) <= set(STATUSES)
    assert {r["symbol"] for _, r in read_lines(tmp_path / "trades.jsonl") if r} <= \
        set(truth.symbols)


def test_trade_simulation_is_deterministic_by_seed(tmp_path):
    a, b, c = (tmp_path / f"{n}.jsonl" for n in "abc")
    assert TradeSimulation(events=5_000, seed=5).write(str(a)) == \
        TradeSimulation(events=5_000, seed=5).write(str(b))
    TradeSimulation(events=5_000, seed=6).write(str(c))
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


# -- several trading days -------------------------------------------------------------------

#: Friday 2026-01-09, 14:30 UTC (09:30 New York): three days are Friday, Monday, Tuesday
FRIDAY_OPEN = 1_767_969_000_000
SESSION_MS = 6 * 3_600_000 + 30 * 60_000
WEEK = MarketSimulation(events=120_000, seed=9, days=3, base_ts_ms=FRIDAY_OPEN,
                        event_spacing_ms=50.0, duplicate_rate=0.03, late_rate=0.004,
                        malformed_rate=0.002)


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, MarketTruth]:
    folder = tmp_path_factory.mktemp("week")
    return folder, WEEK.write(folder)


def test_days_spread_the_events_over_trading_days_inside_their_sessions(week):
    folder, truth = week
    opens = [FRIDAY_OPEN, FRIDAY_OPEN + 3 * 86_400_000, FRIDAY_OPEN + 4 * 86_400_000]
    for stream in STREAMS:
        ts = np.array([r["timestamp_ms"] for r in well_formed(folder, stream)])
        day = np.searchsorted(np.array(opens), ts, side="right") - 1
        assert (day >= 0).all(), f"{stream}: nothing before the first open"
        assert (ts - np.array(opens)[day] <= SESSION_MS).all(), f"{stream}: inside hours"
    trades = np.array([r["timestamp_ms"] for r in well_formed(folder, "raw.trades")])
    per_day = np.bincount(np.searchsorted(np.array(opens), trades, side="right") - 1)
    # 40,000 primary events a day, ~80 % trades; the last day gets what the budget leaves
    assert len(per_day) == 3 and per_day.min() > 0.9 * per_day.max()
    # each day spans its 40,000 events * 50 ms = 2,000 s, from 10 minutes after its open
    # (room for events up to 10 minutes late)
    first_day = trades[trades < opens[1]]
    assert 1_990_000 < first_day.max() - (FRIDAY_OPEN + 600_000) <= 2_000_000
    assert first_day.min() >= FRIDAY_OPEN


def test_days_keep_the_truth_exact_and_the_bytes_deterministic(week, tmp_path):
    folder, truth = week
    for stream in STREAMS:
        found = audit(read(folder, stream))
        t = truth.streams[stream]
        c = found["counts"]
        assert (c["events"], c["unique"], c["duplicates"], c["late"], c["malformed"]) == \
            (t.events, t.unique, t.duplicates, t.late, t.malformed), stream
        assert found["worst_on_time_lag"] <= WEEK.out_of_order_ms, stream
        assert t.late > 0, f"{stream}: late events are injected"
    assert truth.events == WEEK.events
    WEEK.write(tmp_path)
    assert digest(tmp_path) == digest(folder)


def test_days_refused_when_they_do_not_fit_a_session():
    with pytest.raises(ValueError, match="days must be >= 1"):
        MarketSimulation(days=0)
    with pytest.raises(ValueError, match="6.5 h trading session"):
        MarketSimulation(events=1_000_000, days=2, event_spacing_ms=100.0)


def test_simulate_command_days(tmp_path, capsys):
    assert simulate_main(["--events", "3000", "--days", "2", "--seed", "4",
                          "--out", str(tmp_path)]) == 0
    assert "over 2 trading days" in capsys.readouterr().out
    dates = {r["timestamp_ms"] // 86_400_000 for r in well_formed(tmp_path, "raw.trades")}
    assert len(dates) == 2
    assert simulate_main(["--days", "0", "--out", str(tmp_path / "x")]) == 2


def test_volume_history_compares_the_stored_aggregates_of_the_simulated_days(week, tmp_path):
    """The simulated FILLED trades as the aggregation job's 1-minute windows (hive
    partitioned), then compare_volume_to_historical: today is Tuesday, the history Friday
    and Monday (the weekend is no trading day)."""
    from surestream.apps.trading.analytics import TradingAnalytics

    folder, _ = week
    trades = (pl.DataFrame(well_formed(folder, "raw.trades"))
              .unique("trade_id", keep="first", maintain_order=True)
              .filter(pl.col("status") == "FILLED"))
    minutes = (trades.with_columns(window_start=pl.col("timestamp_ms") // 60_000 * 60_000)
               .group_by("symbol", "window_start")
               .agg(total_volume=pl.col("quantity").sum().cast(pl.Float64),
                    trade_count=pl.len())
               .with_columns(window_end=pl.col("window_start") + 60_000,
                             window_size=pl.lit("1m"),
                             date=pl.from_epoch("window_start", time_unit="ms").dt.date()))
    warehouse = tmp_path / "warehouse"
    for (size, day), part in minutes.group_by("window_size", "date"):
        out = warehouse / "trade_aggregates" / f"window_size={size}" / f"date={day}"
        out.mkdir(parents=True)
        part.drop("window_size", "date").write_parquet(out / "part-0000000001.parquet")
    symbol = trades["symbol"].mode().sort()[0]
    daily = (trades.filter(pl.col("symbol") == symbol)
             .group_by(pl.from_epoch("timestamp_ms", time_unit="ms").dt.date().alias("d"))
             .agg(pl.col("quantity").sum()).sort("d"))
    assert daily.height == 3
    friday, monday, tuesday = daily["quantity"].to_list()
    with TradingAnalytics(warehouse=warehouse) as analytics:
        row = analytics.compare_volume_to_historical(symbol).to_dicts()[0]
    assert row["date"] == daily["d"][2]
    assert row["today_volume"] == tuesday
    assert (row["days_7d"], row["days_30d"]) == (2, 2)
    assert row["avg_7d"] == pytest.approx((friday + monday) / 2)
    assert row["pct_vs_30d_avg"] == pytest.approx(
        (tuesday - (friday + monday) / 2) / ((friday + monday) / 2) * 100, abs=0.005)
