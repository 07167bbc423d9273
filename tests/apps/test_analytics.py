"""The trading analytics (the plan's API) against small hand-made warehouses with known answers.

Symbols come from the packaged reference universe (BBL and BGD: Information Technology,
BHC: Financials) plus ZZZZ, which the universe does not know. The tape's latest event is
T0 + 9 min on 2026-03-10 (UTC), so "the last 24 hours" by default means after
T0 + 9 min - 24 h. Every expected number below is worked out by hand in its comment.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

from surestream.apps.trading.analytics import QUERIES, TradingAnalytics, part_files
from surestream.cli.query import format_cell

TODAY = date(2026, 3, 10)
T0 = int(datetime(2026, 3, 10, 14, 30, tzinfo=UTC).timestamp() * 1000)
MIN, HOUR, DAY = 60_000, 3_600_000, 86_400_000
SECTORS = {"BBL": "Information Technology", "BGD": "Information Technology",
           "BHC": "Financials", "ZZZZ": None}

#: (trade_id, symbol, side, quantity, price, account, timestamp_ms, status)
TRADES = [
    ("t0", "BBL", "BUY", 50, 9.0, "ACC3", T0 - 25 * HOUR, "FILLED"),  # before the 24 h
    ("t1", "BBL", "BUY", 100, 10.0, "ACC1", T0, "FILLED"),
    ("t2", "BBL", "BUY", 100, 12.0, "ACC1", T0 + 1 * MIN, "FILLED"),
    ("t3", "BBL", "SELL", 50, 13.0, "ACC1", T0 + 2 * MIN, "FILLED"),
    ("t4", "BHC", "BUY", 10, 200.0, "ACC2", T0 + 3 * MIN, "FILLED"),
    ("t5", "BHC", "SELL", 10, 210.0, "ACC2", T0 + 4 * MIN, "FILLED"),  # ACC2 BHC: flat
    ("t6", "BGD", "BUY", 20, 50.0, "ACC1", T0 + 5 * MIN, "FILLED"),
    ("t7", "BGD", "SELL", 5, 55.0, "ACC2", T0 + 6 * MIN, "FILLED"),
    ("t8", "ZZZZ", "BUY", 1, 1.0, "ACC3", T0 + 7 * MIN, "FILLED"),
    ("t9", "BBL", "BUY", 1000, 11.0, "ACC1", T0 + 8 * MIN, "PARTIALLY_FILLED"),  # not FILLED
    ("t10", "BGD", "SELL", 10, 60.0, "ACC1", T0 + 9 * MIN, "filled"),  # FILLED, any case
    ("t11", "BBL", "BUY", 10, 10.0, "ACC4", T0 - 30 * HOUR, "FILLED"),
    ("t12", "BHC", "SELL", 100, 5.0, "ACC4", T0 - 30 * HOUR + MIN, "FILLED"),
]
LATEST = T0 + 9 * MIN


def trade_frame(rows: list[tuple], enriched: bool = False) -> pl.DataFrame:
    frame = pl.DataFrame(
        [{"trade_id": t, "order_id": f"o-{t}", "symbol": s, "side": side, "quantity": q,
          "price": p, "status": st, "exchange": "NYSE", "trader_id": f"tr-{a}",
          "account_id": a, "timestamp_ms": ts, "event_type": "EXECUTION"}
         for t, s, side, q, p, a, ts, st in rows],
        schema_overrides={"quantity": pl.Int64, "timestamp_ms": pl.Int64})
    if not enriched:
        return frame
    return frame.with_columns(
        company_name=pl.col("symbol") + " Inc.",
        sector=pl.col("symbol").replace_strict(SECTORS, return_dtype=pl.String),
        industry=pl.lit("Some Industry"), market_cap_tier=pl.lit("MID"),
        listed_exchange=pl.lit("NYSE"))


def aggregate(symbol: str, start: int, volume: float, revision: int = 0,
              size: str = "1m") -> dict:
    """One aggregate row in the aggregation job's shape (window_size in the hive path)."""
    span = {"1m": MIN, "5m": 5 * MIN, "15m": 15 * MIN}[size]
    return {"symbol": symbol, "window_start": start, "window_end": start + span,
            "total_volume": float(volume), "total_value": volume * 10.0, "vwap": 10.0,
            "trade_count": 1, "buy_count": 1, "sell_count": 0, "buy_sell_ratio": float("inf"),
            "high_price": 11.0, "low_price": 9.0, "open_price": 9.5, "close_price": 10.5,
            "computed_at": start + span + 5_000, "revision": revision}


def day_start(back: int) -> int:
    """14:30 UTC ``back`` days before TODAY."""
    return T0 - back * DAY


def aggregate_rows() -> list[tuple[str, dict]]:
    """(window size, row). BBL's 1-minute history, by days before today:

    * 1..5: 100 a day (day 1 also has an earlier revision of 999 that must not count);
    * 6: BBL does not trade, BHC does: a trading day on which BBL's volume is 0;
    * 10 and 20: 200; 40 and 60: 400; 91: 10**6 (outside the 90 days).
    Today: the T0 window (revision 0: 100, revision 1: 150) and T0 + 1 min (50): 200. A
    5-minute window of 10**6 today is not a 1-minute aggregate.
    """
    rows = [("1m", aggregate("BBL", day_start(back), 100)) for back in range(1, 6)]
    rows += [("1m", aggregate("BBL", day_start(1) + MIN, 999, revision=0))]
    rows += [("1m", aggregate("BBL", day_start(1) + MIN, 0, revision=1))]
    rows += [("1m", aggregate("BHC", day_start(6), 40))]
    rows += [("1m", aggregate("BBL", day_start(back), 200)) for back in (10, 20)]
    rows += [("1m", aggregate("BBL", day_start(back), 400)) for back in (40, 60)]
    rows += [("1m", aggregate("BBL", day_start(91), 10**6))]
    rows += [("1m", aggregate("BBL", T0, 100, revision=0)),
             ("1m", aggregate("BBL", T0, 150, revision=1)),
             ("1m", aggregate("BBL", T0 + MIN, 50)),
             ("5m", aggregate("BBL", T0, 10**6, size="5m"))]
    return rows


#: (symbol, detected_at_ms, severity, direction, pct_change)
ALERTS = [("BBL", T0, "HIGH", "UP", 6.0), ("BHC", T0 + MIN, "MEDIUM", "DOWN", 2.5),
          ("BGD", T0 + 2 * MIN, "HIGH", "DOWN", 7.0),
          ("BBL", T0 + 3 * MIN, "CRITICAL", "UP", 12.0)]


def write_part(dataset: Path, frame: pl.DataFrame, checkpoint: int) -> None:
    dataset.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(dataset / f"part-{checkpoint:010d}.parquet")


def write_aggregates(wh: Path, rows: list[tuple[str, dict]]) -> None:
    """Hive-partitioned by window_size and date, one part per partition and checkpoint."""
    for i, (size, row) in enumerate(rows):
        day = datetime.fromtimestamp(row["window_start"] / 1000, UTC).date()
        write_part(wh / "trade_aggregates" / f"window_size={size}" / f"date={day}",
                   pl.DataFrame([row]), i)


def build_warehouse(root: Path) -> Path:
    """Every dataset, split over several part files the way checkpoints split them."""
    wh = root / "warehouse"
    for name, enriched in (("processed_trades_filled", False), ("enriched_trades", True)):
        write_part(wh / name, trade_frame(TRADES[:4], enriched), 1)
        write_part(wh / name, trade_frame(TRADES[4:], enriched), 2)
    # a staged (uncommitted) part and a temp file: never part of the answer
    huge = [("t99", "BBL", "BUY", 10**6, 1.0, "ACC1", T0, "FILLED")]
    write_part(wh / "processed_trades_filled" / ".staging", trade_frame(huge), 3)
    trade_frame(huge).write_parquet(
        wh / "processed_trades_filled" / ".part-0000000003.parquet.tmp")
    write_aggregates(wh, aggregate_rows())
    alerts = pl.DataFrame([{"alert_type": "PRICE_MOVE", "symbol": s, "direction": d,
                            "baseline_price": 100.0, "current_price": 100.0 + c,
                            "pct_change": c, "window_start_ms": ts - MIN, "detected_at_ms": ts,
                            "severity": sev} for s, ts, sev, d, c in ALERTS])
    write_part(wh / "price_alerts", alerts.head(2), 1)
    write_part(wh / "price_alerts", alerts.tail(2), 2)
    (wh / "processed_trades_new").mkdir()  # present but empty
    return wh


@pytest.fixture()
def warehouse(tmp_path: Path) -> Path:
    return build_warehouse(tmp_path)


@pytest.fixture()
def analytics(warehouse: Path):
    with TradingAnalytics(warehouse=warehouse) as a:
        yield a


def by(frame: pl.DataFrame, key: str) -> dict:
    return {r[key]: r for r in frame.to_dicts()}


# ---- reading the warehouse -----------------------------------------------------------------

def test_only_committed_parts_are_read(warehouse, analytics):
    names = [p.name for p in part_files(warehouse / "processed_trades_filled")]
    assert names == ["part-0000000001.parquet", "part-0000000002.parquet"]
    count = analytics.con.execute("SELECT count(*) FROM processed_trades_filled").fetchall()
    assert count == [(len(TRADES),)]
    assert "processed_trades_new" not in analytics.available
    assert {"enriched_trades", "trade_aggregates", "price_alerts"} <= analytics.available


def test_duckdb_settings_and_read_only_database(tmp_path):
    db = tmp_path / "trading.duckdb"
    with duckdb.connect(str(db)) as con:  # a DuckDB sink's output, no warehouse folder
        con.register("rows", trade_frame(TRADES))
        con.execute("CREATE TABLE processed_trades_filled AS SELECT * FROM rows")
    with TradingAnalytics(db, read_only=True, memory_limit="256MB", threads=1) as a:
        (settings,) = a.con.execute("SELECT current_setting('memory_limit'), "
                                    "current_setting('threads')").fetchall()
        assert settings[1] == 1
        assert settings[0].startswith(("244", "256"))  # DuckDB prints MiB
        assert a.portfolio_analysis("ACC2")["symbol"].to_list() == ["BGD"]
    with pytest.raises(ValueError, match="threads"):
        TradingAnalytics(threads=0)
    with pytest.raises(ValueError, match="read_only"):
        TradingAnalytics(read_only=True)


# ---- top_traded_symbols --------------------------------------------------------------------

def test_top_traded_symbols_last_24_hours_by_volume(analytics):
    top = analytics.top_traded_symbols()
    assert top.columns == ["symbol", "trade_count", "total_volume", "total_notional", "vwap",
                           "low", "high", "price_range_pct"]
    # BBL t1-t3 (t0 is 25 h before the latest trade, t9 only partially filled): 250;
    # BGD t6, t7, t10 ("filled" counts): 35; BHC t4, t5: 20; ZZZZ: 1
    assert top["symbol"].to_list() == ["BBL", "BGD", "BHC", "ZZZZ"]
    bbl, bgd = by(top, "symbol")["BBL"], by(top, "symbol")["BGD"]
    assert (bbl["trade_count"], bbl["total_volume"]) == (3, 250.0)
    assert bbl["total_notional"] == pytest.approx(1000 + 1200 + 650)
    assert bbl["vwap"] == pytest.approx(11.4)  # 2850 / 250
    assert (bbl["low"], bbl["high"]) == (10.0, 13.0)
    assert bbl["price_range_pct"] == pytest.approx(30.0)  # (13 - 10) / 10
    assert bgd["vwap"] == pytest.approx(53.5714)  # 1875 / 35 = 53.571428...
    assert bgd["price_range_pct"] == pytest.approx(20.0)
    assert by(top, "symbol")["ZZZZ"]["price_range_pct"] == 0.0


def test_top_traded_symbols_top_n_and_period(analytics):
    assert analytics.top_traded_symbols(top_n=2)["symbol"].to_list() == ["BBL", "BGD"]
    longer = by(analytics.top_traded_symbols(since_hours=26), "symbol")["BBL"]  # t0 too
    assert (longer["trade_count"], longer["total_volume"], longer["low"]) == (4, 300.0, 9.0)
    assert longer["price_range_pct"] == pytest.approx(44.44)  # (13 - 9) / 9 = 44.44 %
    for bad in (0, -1, True, 2.5, "3"):
        with pytest.raises(ValueError, match="top_n"):
            analytics.top_traded_symbols(top_n=bad)
    for bad in (0, -2, float("nan"), "24"):
        with pytest.raises(ValueError, match="since_hours"):
            analytics.top_traded_symbols(since_hours=bad)


def test_top_traded_symbols_relative_to_now(analytics):
    # the hour up to T0 + 3 min: t1, t2, t3 (BBL) and t4 (BHC); later trades are not yet
    now = datetime(2026, 3, 10, 14, 33, tzinfo=UTC)
    top = analytics.top_traded_symbols(since_hours=1, now=now)
    assert top["symbol"].to_list() == ["BBL", "BHC"]
    assert by(top, "symbol")["BHC"]["total_volume"] == 10.0
    assert analytics.top_traded_symbols(now=T0 + 3 * MIN).equals(
        analytics.top_traded_symbols(now=now.replace(tzinfo=None)))  # naive = UTC
    assert analytics.top_traded_symbols(now=T0 + 100 * DAY).height == 0


# ---- portfolio_analysis --------------------------------------------------------------------

def test_portfolio_analysis_positions_and_cost(analytics):
    book = analytics.portfolio_analysis("ACC1")
    assert book.columns == ["account_id", "symbol", "trade_count", "total_bought",
                            "total_sold", "net_position", "net_cost", "avg_cost_basis"]
    rows = by(book, "symbol")
    # BBL: bought 100@10 + 100@12, sold 50@13 (t9 is not FILLED): 150 for 2200 - 650
    bbl = rows["BBL"]
    assert (bbl["total_bought"], bbl["total_sold"], bbl["net_position"]) == (200, 50, 150)
    assert bbl["net_cost"] == pytest.approx(1550.0)
    assert bbl["avg_cost_basis"] == pytest.approx(10.3333)  # 1550 / 150, 4 dp
    # BGD: bought 20@50, sold 10@60 (status "filled"): 10 for 1000 - 600
    assert (rows["BGD"]["net_position"], rows["BGD"]["net_cost"]) == (10, 400.0)
    assert rows["BGD"]["avg_cost_basis"] == 40.0
    assert book["symbol"].to_list() == ["BBL", "BGD"]  # |1550| > |400|


def test_portfolio_analysis_drops_flat_and_orders_by_absolute_cost(analytics):
    # ACC2: BHC bought 10@200 and sold 10@210 (flat: dropped); BGD sold 5@55
    acc2 = analytics.portfolio_analysis("ACC2")
    assert acc2.select("symbol", "net_position", "net_cost", "avg_cost_basis").rows() == [
        ("BGD", -5.0, -275.0, 55.0)]
    # ACC4: BBL +10 for 100, BHC -100 for -500: |-500| first, though it is the smaller
    acc4 = analytics.portfolio_analysis("ACC4")
    assert acc4.select("symbol", "net_cost").rows() == [("BHC", -500.0), ("BBL", 100.0)]
    assert acc4["avg_cost_basis"].to_list() == [5.0, 10.0]
    assert analytics.portfolio_analysis("NOBODY").height == 0


def test_user_values_are_bound_never_sql(analytics):
    attack = "x' OR 1=1 --"
    assert analytics.portfolio_analysis(attack).height == 0
    assert analytics.final_windows(symbol=attack).height == 0
    assert analytics.compare_volume_to_historical(attack)["today_volume"].to_list() == [0.0]
    with pytest.raises(ValueError, match="size"):
        analytics.final_windows(size="1m'; DROP VIEW trades; --")
    assert analytics.portfolio_analysis("ACC1").height == 2  # the views are all still there


# ---- compare_volume_to_historical ----------------------------------------------------------

def test_compare_volume_to_historical(analytics):
    vol = analytics.compare_volume_to_historical("BBL")
    assert vol.columns == ["symbol", "date", "today_volume", "avg_7d", "avg_30d", "avg_90d",
                           "pct_vs_30d_avg", "days_7d", "days_30d", "days_90d"]
    row = vol.to_dicts()[0]
    assert (row["symbol"], row["date"]) == ("BBL", TODAY)
    assert row["today_volume"] == 200.0  # 150 (T0's latest revision) + 50; not the 5m one
    # trading days before today: 1-6 within 7 days (day 6: BBL 0), + 10, 20 within 30,
    # + 40, 60 within 90 (day 91 is outside)
    assert (row["days_7d"], row["days_30d"], row["days_90d"]) == (6, 8, 10)
    assert row["avg_7d"] == pytest.approx(500 / 6)
    assert row["avg_30d"] == pytest.approx(900 / 8)  # 112.5
    assert row["avg_90d"] == pytest.approx(1700 / 10)
    assert row["pct_vs_30d_avg"] == pytest.approx(77.78)  # (200 - 112.5) / 112.5


def test_compare_volume_to_historical_relative_to_now(analytics):
    # up to T0: today's T0 window only (150); two days back: day 2's 100, against days 3-6
    at_t0 = analytics.compare_volume_to_historical("BBL", now=T0).to_dicts()[0]
    assert at_t0["today_volume"] == 150.0
    earlier = analytics.compare_volume_to_historical("BBL", now=T0 - 2 * DAY).to_dicts()[0]
    assert earlier["date"] == TODAY - timedelta(days=2)
    assert earlier["today_volume"] == 100.0
    assert (earlier["days_7d"], earlier["avg_7d"]) == (4, pytest.approx(300 / 4))


def test_compare_volume_for_a_symbol_without_history(analytics):
    row = analytics.compare_volume_to_historical("ZZZZ").to_dicts()[0]
    assert (row["today_volume"], row["avg_30d"], row["pct_vs_30d_avg"]) == (0.0, 0.0, None)


# ---- sector_performance --------------------------------------------------------------------

def test_sector_performance_from_enriched_trades(analytics):
    sectors = analytics.sector_performance()
    assert sectors.columns == ["sector", "symbol_count", "trade_count", "total_volume",
                               "total_notional", "avg_price_change_pct"]
    assert sectors["sector"].to_list() == ["Information Technology", "Financials", "UNKNOWN"]
    tech = by(sectors, "sector")["Information Technology"]
    # BBL t1-t3: 250 for 2850, 10 -> 13 (+30 %); BGD t6, t7, t10: 35 for 1875, 50 -> 60 (+20 %)
    assert (tech["symbol_count"], tech["trade_count"], tech["total_volume"]) == (2, 6, 285.0)
    assert tech["total_notional"] == pytest.approx(4725.0)
    assert tech["avg_price_change_pct"] == pytest.approx(25.0)
    fin = by(sectors, "sector")["Financials"]
    assert (fin["total_notional"], fin["avg_price_change_pct"]) == (4100.0, 5.0)
    # the hour up to T0 + 3 min: BBL t1-t3 and BHC t4
    hour = analytics.sector_performance(since_hours=1, now=T0 + 3 * MIN)
    assert hour.select("sector", "trade_count").rows() == [("Information Technology", 3),
                                                          ("Financials", 1)]


def test_sector_performance_with_loaded_reference_data(analytics, tmp_path):
    ref = tmp_path / "ref.parquet"
    pl.DataFrame({"symbol": ["BBL", "BGD", "BHC"], "sector": ["Tech A", "Tech B", "Fin"],
                  "company_name": ["a", "b", "c"]}).write_parquet(ref)
    assert analytics.load_reference_data(ref) == 3
    sectors = analytics.sector_performance()
    # Fin 4100, Tech A 2850, Tech B 1875; ZZZZ is not in the file
    assert sectors["sector"].to_list() == ["Fin", "Tech A", "Tech B", "UNKNOWN"]
    with pytest.raises(ValueError, match="not found"):
        analytics.load_reference_data(tmp_path / "missing.parquet")


def test_sector_performance_from_packaged_reference_without_enriched(warehouse):
    shutil.rmtree(warehouse / "enriched_trades")
    with TradingAnalytics(warehouse) as plain:  # a folder as `database`: the warehouse
        assert plain.sector_performance()["sector"].to_list() == [
            "Information Technology", "Financials", "UNKNOWN"]


# ---- other questions -----------------------------------------------------------------------

def test_final_windows_take_the_latest_revision(analytics):
    final = analytics.final_windows(symbol="BBL").filter(pl.col("window_start") >= T0)
    assert final.select("window_start", "revision", "total_volume").rows() == [
        (T0, 1, 150.0), (T0 + MIN, 0, 50.0)]
    assert analytics.final_windows(size="5m")["total_volume"].to_list() == [10.0**6]
    assert analytics.final_windows(size="15m").height == 0
    with pytest.raises(ValueError, match="1m, 5m, 15m"):
        analytics.final_windows(size="2m")


def test_alerts_by_severity(analytics):
    alerts = analytics.alerts_by_severity()
    assert alerts["severity"].to_list() == ["CRITICAL", "HIGH", "MEDIUM"]
    high = by(alerts, "severity")["HIGH"]
    assert (high["alerts"], high["symbols"], high["up"], high["down"]) == (2, 2, 1, 1)
    assert high["avg_abs_change_pct"] == pytest.approx(6.5)
    assert (high["first_alert_ts"], high["last_alert_ts"]) == (T0, T0 + 2 * MIN)


def test_top_symbols_by_value_for_the_demo_report(analytics):
    top = analytics.top_symbols(limit=2)
    assert top["symbol"].to_list() == ["BBL", "BHC"]  # all time, any status: 14,400 / 4,600


def test_missing_warehouse_contents_answer_empty(tmp_path):
    required = {"portfolio-analysis": {"account_id": "ACC1"},
                "compare-volume-to-historical": {"symbol": "BBL"}}
    with TradingAnalytics(warehouse=tmp_path) as empty:
        for name in QUERIES:
            frame = empty.query(name, **required.get(name, {}))
            assert frame.height == 0, name
            assert frame.width > 0, name
        assert empty.available == set()


def test_query_registry(analytics):
    assert list(QUERIES)[:4] == ["top-traded-symbols", "portfolio-analysis",
                                 "compare-volume-to-historical", "sector-performance"]
    assert analytics.query("top-traded-symbols", top_n=1)["symbol"].to_list() == ["BBL"]
    with pytest.raises(ValueError, match="does not take"):
        analytics.query("alerts", symbol="BBL")
    with pytest.raises(ValueError, match="needs account_id"):
        analytics.query("portfolio-analysis")
    with pytest.raises(ValueError, match="unknown query"):
        analytics.query("nope")


def test_table_cells_are_readable():
    assert format_cell(1234567, "volume") == "1,234,567"
    assert format_cell(4100.0, "value") == "4,100.00"
    assert format_cell(0.5, "ratio_7d") == "0.5000"
    assert format_cell(None, "cost_basis") == "-"
    assert format_cell(T0, "window_start") == "2026-03-10 14:30:00"
    assert format_cell(T0 + 5, "alert_ts") == "2026-03-10 14:30:00.005"


# ---- the command line ----------------------------------------------------------------------

def query_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "surestream.cli.query", *args],
                          capture_output=True, text=True, timeout=120)


def test_cli_each_plan_query_with_its_parameters(warehouse, analytics):
    wh = ["--warehouse", str(warehouse), "--format", "json"]
    r = query_cli("top-traded-symbols", *wh, "--top-n", "2", "--since-hours", "26")
    assert r.returncode == 0, r.stderr
    assert [(row["symbol"], row["total_volume"]) for row in json.loads(r.stdout)] == [
        ("BBL", 300.0), ("BGD", 35.0)]
    r = query_cli("portfolio-analysis", *wh, "--account-id", "ACC4")
    assert [row["symbol"] for row in json.loads(r.stdout)] == ["BHC", "BBL"]
    r = query_cli("compare-volume-to-historical", *wh, "--symbol", "BBL")
    assert json.loads(r.stdout)[0]["pct_vs_30d_avg"] == pytest.approx(77.78)
    assert json.loads(r.stdout)[0]["date"] == "2026-03-10"
    r = query_cli("sector-performance", *wh, "--since-hours", "1",
                  "--now", "2026-03-10T14:33:00Z")
    assert [row["trade_count"] for row in json.loads(r.stdout)] == [3, 1]
    r = query_cli("compare-volume-to-historical", *wh, "--symbol", "BBL", "--now", str(T0))
    assert json.loads(r.stdout)[0]["today_volume"] == 150.0


def test_cli_now_means_the_wall_clock(tmp_path):
    """Trades 50 and 60 hours before the wall clock: within 24 hours of the latest of them,
    but not within 24 hours of now."""
    wall = int(datetime.now(UTC).timestamp() * 1000)
    wh = tmp_path / "warehouse"
    write_part(wh / "processed_trades_filled", trade_frame([
        ("a", "BBL", "BUY", 5, 10.0, "ACC1", wall - 60 * HOUR, "FILLED"),
        ("b", "BHC", "BUY", 7, 10.0, "ACC1", wall - 50 * HOUR, "FILLED")]), 1)
    base = ["top-traded-symbols", "--warehouse", str(wh), "--format", "json"]
    assert [row["symbol"] for row in json.loads(query_cli(*base).stdout)] == ["BHC", "BBL"]
    assert json.loads(query_cli(*base, "--now").stdout) == []
    r = query_cli(*base, "--now", "--since-hours", "55")
    assert [row["symbol"] for row in json.loads(r.stdout)] == ["BHC"]


def test_cli_table_and_csv(warehouse):
    r = query_cli("top-traded-symbols", "--warehouse", str(warehouse), "--top-n", "1")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["symbol", "trade_count", "total_volume", "total_notional",
                                "vwap", "low", "high", "price_range_pct"]
    assert lines[2].split() == ["BBL", "3", "250.00", "2,850.00", "11.40", "10.00", "13.00",
                                "30.00"]
    assert lines[-1] == "(1 row)"
    r = query_cli("alerts", "--warehouse", str(warehouse), "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [row["severity"] for row in rows] == ["CRITICAL", "HIGH", "MEDIUM"]


def test_cli_usage_errors(warehouse, tmp_path):
    wh = ["--warehouse", str(warehouse)]
    r = query_cli("nope", *wh)
    assert r.returncode == 2
    assert "unknown query 'nope'" in r.stderr and "top-traded-symbols" in r.stderr
    r = query_cli("alerts", "--warehouse", str(tmp_path / "missing"))
    assert r.returncode == 2 and "not found" in r.stderr
    r = query_cli("alerts", *wh, "--symbol", "BBL")
    assert r.returncode == 2 and "does not take --symbol" in r.stderr
    r = query_cli("portfolio-analysis", *wh)
    assert r.returncode == 2 and "needs --account-id" in r.stderr
    r = query_cli("top-traded-symbols", *wh, "--since-hours", "-1")
    assert r.returncode == 2 and "since_hours" in r.stderr
    r = query_cli("top-traded-symbols", *wh, "--now", "yesterday")
    assert r.returncode == 2 and "--now 'yesterday'" in r.stderr
