"""The trading warehouse analytics against a small hand-made warehouse with known answers.

Symbols come from the packaged reference universe (BBL and BGD: Information Technology,
BHC: Financials) plus ZZZZ, which the universe does not know. "Today" is 2026-03-10 (UTC);
one BBL buy the day before must count for positions but not for today's volume.
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

import polars as pl
import pytest

from surestream.apps.trading.analytics import QUERIES, TradingAnalytics, part_files
from surestream.cli.query import format_cell

TODAY = date(2026, 3, 10)
T0 = int(datetime(2026, 3, 10, 14, 30, tzinfo=UTC).timestamp() * 1000)
MIN = 60_000
SECTORS = {"BBL": "Information Technology", "BGD": "Information Technology",
           "BHC": "Financials", "ZZZZ": None}

#: (trade_id, symbol, side, quantity, price, account, timestamp_ms)
TRADES = [
    ("t0", "BBL", "BUY", 50, 9.0, "ACC3", T0 - 24 * 60 * MIN),  # yesterday
    ("t1", "BBL", "BUY", 100, 10.0, "ACC1", T0),
    ("t2", "BBL", "BUY", 100, 12.0, "ACC1", T0 + 1 * MIN),
    ("t3", "BBL", "SELL", 50, 13.0, "ACC1", T0 + 2 * MIN),
    ("t4", "BHC", "BUY", 10, 200.0, "ACC2", T0 + 3 * MIN),
    ("t5", "BHC", "SELL", 10, 210.0, "ACC2", T0 + 4 * MIN),
    ("t6", "BGD", "BUY", 20, 50.0, "ACC1", T0 + 5 * MIN),
    ("t7", "BGD", "SELL", 5, 55.0, "ACC2", T0 + 6 * MIN),
    ("t8", "ZZZZ", "BUY", 1, 1.0, "ACC3", T0 + 7 * MIN),
]


def trade_frame(rows: list[tuple], enriched: bool = False) -> pl.DataFrame:
    frame = pl.DataFrame(
        [{"trade_id": t, "order_id": f"o-{t}", "symbol": s, "side": side, "quantity": q,
          "price": p, "status": "FILLED", "exchange": "NYSE", "trader_id": f"tr-{a}",
          "account_id": a, "timestamp_ms": ts, "event_type": "trade"}
         for t, s, side, q, p, a, ts in rows],
        schema_overrides={"quantity": pl.Int64, "timestamp_ms": pl.Int64})
    if not enriched:
        return frame
    return frame.with_columns(
        company_name=pl.col("symbol") + " Inc.",
        sector=pl.col("symbol").replace_strict(SECTORS, return_dtype=pl.String),
        industry=pl.lit("Some Industry"), market_cap_tier=pl.lit("MID"),
        ref_exchange=pl.when(pl.col("symbol") == "ZZZZ").then(pl.lit("UNKNOWN"))
        .otherwise(pl.lit("NYSE")))


def window(symbol: str, start: int, revision: int, volume: int, size: str = "1m",
           span: int = MIN) -> dict:
    return {"symbol": symbol, "window_start": start, "window_end": start + span,
            "revision": revision, "total_volume": volume, "total_value": volume * 10.0,
            "vwap": 10.0, "trade_count": revision + 1, "buy_count": 1, "sell_count": revision,
            "buy_sell_ratio": None if revision == 0 else 1.0 / revision, "high": 11.0,
            "low": 9.0, "open": 9.5, "close": 10.5, "window_size": size}


def history_rows() -> list[dict]:
    """BBL: 100/day for the 7 days before today, 200 for days 8-30, 400 for 31-90, plus
    rows outside the 90-day range (today, tomorrow, day 91) that must not count.
    BHC: 40/day for 10 days. BGD and ZZZZ: none."""
    rows = []
    for back in range(1, 91):
        rows.append(("BBL", TODAY - timedelta(days=back),
                     100.0 if back <= 7 else 200.0 if back <= 30 else 400.0))
    rows += [("BBL", TODAY, 1e9), ("BBL", TODAY + timedelta(days=1), 1e9),
             ("BBL", TODAY - timedelta(days=91), 1e9)]
    rows += [("BHC", TODAY - timedelta(days=back), 40.0) for back in range(1, 11)]
    return [{"symbol": s, "date": d, "volume": v} for s, d, v in rows]


#: (symbol, detected_at_ms, severity, direction, signed change in %)
ALERTS = [("BBL", T0, "HIGH", "UP", 6.0), ("BHC", T0 + MIN, "MEDIUM", "DOWN", -2.5),
          ("BGD", T0 + 2 * MIN, "HIGH", "DOWN", -7.0),
          ("BBL", T0 + 3 * MIN, "CRITICAL", "UP", 12.0)]


def write_part(dataset: Path, frame: pl.DataFrame, checkpoint: int) -> None:
    dataset.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(dataset / f"part-{checkpoint:010d}.parquet")


def build_warehouse(root: Path) -> Path:
    """Every dataset, split over several part files the way checkpoints split them."""
    wh = root / "warehouse"
    for name, enriched in (("processed_trades_filled", False), ("enriched_trades", True)):
        write_part(wh / name, trade_frame(TRADES[:4], enriched), 1)
        write_part(wh / name, trade_frame(TRADES[4:], enriched), 2)
    # a staged (uncommitted) part and a temp file: never part of the answer
    write_part(wh / "processed_trades_filled" / ".staging",
               trade_frame([("t99", "BBL", "BUY", 10**6, 1.0, "ACC1", T0)]), 3)
    trade_frame([("t98", "BBL", "BUY", 10**6, 1.0, "ACC1", T0)]).write_parquet(
        wh / "processed_trades_filled" / ".part-0000000003.parquet.tmp")
    # windows: revisions arrive over checkpoints, one out of file order
    write_part(wh / "trade_aggregates_1m", pl.DataFrame(
        [window("BBL", T0, 0, 100), window("BHC", T0, 1, 15)]), 1)
    write_part(wh / "trade_aggregates_1m", pl.DataFrame(
        [window("BBL", T0, 1, 200), window("BHC", T0, 0, 10), window("BHC", T0, 2, 20),
         window("BBL", T0 + MIN, 0, 50)]), 2)
    # an older 5m writer without buy_sell_ratio
    write_part(wh / "trade_aggregates_5m", pl.DataFrame(
        [window("BBL", T0, 0, 300, "5m", 5 * MIN)]).drop("buy_sell_ratio"), 1)
    alerts = pl.DataFrame([{"alert_type": "PRICE_MOVEMENT", "symbol": s, "direction": d,
                            "baseline_price": 100.0, "current_price": 100.0 + c,
                            "pct_change": abs(c), "window_start_ms": ts - MIN,
                            "detected_at_ms": ts, "severity": sev}
                           for s, ts, sev, d, c in ALERTS])
    # hive-partitioned folders, as later writers may lay datasets out
    write_part(wh / "price_alerts" / "day=1", alerts.head(2), 1)
    write_part(wh / "price_alerts" / "day=2", alerts.tail(2), 2)
    write_part(wh / "daily_volume_history", pl.DataFrame(history_rows()), 1)
    (wh / "processed_trades_new").mkdir()  # present but empty
    return wh


@pytest.fixture()
def warehouse(tmp_path: Path) -> Path:
    return build_warehouse(tmp_path)


@pytest.fixture()
def analytics(warehouse: Path):
    with TradingAnalytics(warehouse) as a:
        yield a


def by(frame: pl.DataFrame, *keys: str) -> dict:
    """Rows keyed by the given columns."""
    rows = frame.to_dicts()
    return {tuple(r[k] for k in keys) if len(keys) > 1 else r[keys[0]]: r for r in rows}


# ---- the API -------------------------------------------------------------------------------

def test_only_committed_parts_are_read(warehouse, analytics):
    names = [p.name for p in part_files(warehouse / "processed_trades_filled")]
    assert names == ["part-0000000001.parquet", "part-0000000002.parquet"]
    assert analytics.con.execute("SELECT count(*) FROM processed_trades_filled").fetchone() == (9,)
    assert "processed_trades_new" not in analytics.available
    assert "enriched_trades" in analytics.available


def test_top_symbols_by_value(analytics):
    top = analytics.top_symbols()
    assert top["symbol"].to_list() == ["BHC", "BBL", "BGD", "ZZZZ"]
    bbl = by(top, "symbol")["BBL"]
    assert (bbl["trades"], bbl["volume"]) == (4, 300)
    assert bbl["value"] == pytest.approx(450 + 1000 + 1200 + 650)
    assert bbl["vwap"] == pytest.approx(3300 / 300)
    assert by(top, "symbol")["BHC"]["vwap"] == pytest.approx(205.0)
    assert analytics.top_symbols(limit=2)["symbol"].to_list() == ["BHC", "BBL"]


def test_top_symbols_one_side(analytics):
    buys = analytics.top_symbols(side="buy")
    assert buys["symbol"].to_list() == ["BBL", "BHC", "BGD", "ZZZZ"]
    assert by(buys, "symbol")["BBL"]["volume"] == 250
    assert by(buys, "symbol")["BBL"]["vwap"] == pytest.approx(2650 / 250)
    sells = analytics.top_symbols(side="SELL")
    assert sells["symbol"].to_list() == ["BHC", "BBL", "BGD"]


def test_top_symbols_rejects_bad_options(analytics):
    for bad in (0, -1, True, 2.5, "3"):
        with pytest.raises(ValueError, match="limit"):
            analytics.top_symbols(limit=bad)
    with pytest.raises(ValueError, match="side"):
        analytics.top_symbols(side="BUY' OR '1'='1")


def test_top_symbols_falls_back_to_processed_fills(warehouse, analytics):
    with_enriched = analytics.top_symbols()
    shutil.rmtree(warehouse / "enriched_trades")
    with TradingAnalytics(warehouse) as plain:
        assert plain.top_symbols().equals(with_enriched)


def test_portfolio_positions_and_cost_basis(analytics):
    book = by(analytics.portfolio(), "account_id", "symbol")
    assert sorted(book) == [("ACC1", "BBL"), ("ACC1", "BGD"), ("ACC2", "BGD"),
                            ("ACC2", "BHC"), ("ACC3", "BBL"), ("ACC3", "ZZZZ")]
    bbl = book["ACC1", "BBL"]
    assert (bbl["trades"], bbl["bought"], bbl["sold"], bbl["net_position"]) == (3, 200, 50, 150)
    assert bbl["avg_buy_price"] == pytest.approx(11.0)  # (100*10 + 100*12) / 200
    assert bbl["cost_basis"] == pytest.approx(1650.0)  # 150 * 11
    assert bbl["avg_sell_price"] == pytest.approx(13.0)
    assert bbl["realized_notional"] == pytest.approx(650.0)
    flat = book["ACC2", "BHC"]
    assert (flat["net_position"], flat["cost_basis"]) == (0, pytest.approx(0.0))
    assert flat["realized_notional"] == pytest.approx(2100.0)
    short = book["ACC2", "BGD"]
    assert (short["bought"], short["sold"], short["net_position"]) == (0, 5, -5)
    assert short["avg_buy_price"] is None and short["cost_basis"] is None
    assert book["ACC1", "BGD"]["realized_notional"] == 0.0


def test_portfolio_one_account(analytics):
    mine = analytics.portfolio(account_id="ACC3")
    assert mine["account_id"].unique().to_list() == ["ACC3"]
    assert by(mine, "symbol")["BBL"]["cost_basis"] == pytest.approx(450.0)
    assert analytics.portfolio(account_id="NOBODY").height == 0


def test_injection_attempts_match_nothing(analytics):
    attack = "x' OR 1=1 --"
    assert analytics.portfolio(account_id=attack).height == 0
    assert analytics.final_windows(symbol=attack).height == 0
    assert analytics.volume_vs_history(symbol=attack).height == 0
    with pytest.raises(ValueError, match="size"):
        analytics.final_windows(size="1m; DROP VIEW fills; --")
    assert analytics.portfolio().height == 6  # the views are all still there


def test_volume_vs_history(analytics):
    vol = analytics.volume_vs_history()
    assert vol["symbol"].to_list() == ["BBL", "BHC", "BGD", "ZZZZ"]  # ratio_30d desc
    assert set(vol["date"].to_list()) == {TODAY}
    bbl = by(vol, "symbol")["BBL"]
    assert bbl["today_volume"] == 250  # yesterday's buy is not today's
    avg_30 = (7 * 100 + 23 * 200) / 30
    avg_90 = (7 * 100 + 23 * 200 + 60 * 400) / 90
    assert bbl["avg_7d"] == pytest.approx(100.0)
    assert bbl["avg_30d"] == pytest.approx(avg_30)
    assert bbl["avg_90d"] == pytest.approx(avg_90)
    assert bbl["ratio_7d"] == pytest.approx(2.5)
    assert bbl["ratio_30d"] == pytest.approx(250 / avg_30)
    assert bbl["ratio_90d"] == pytest.approx(250 / avg_90)
    assert bbl["history_days"] == 90
    bhc = by(vol, "symbol")["BHC"]
    assert (bhc["today_volume"], bhc["history_days"]) == (20, 10)
    assert bhc["ratio_7d"] == bhc["ratio_90d"] == pytest.approx(0.5)
    bgd = by(vol, "symbol")["BGD"]
    assert bgd["avg_7d"] is None and bgd["ratio_30d"] is None and bgd["history_days"] == 0


def test_volume_vs_history_one_symbol(analytics):
    one = analytics.volume_vs_history(symbol="BHC")
    assert one["symbol"].to_list() == ["BHC"]
    assert one["date"].to_list() == [TODAY]  # today is the whole tape's latest day


def test_sector_performance(analytics):
    sectors = analytics.sector_performance()
    assert sectors["sector"].to_list() == ["Information Technology", "Financials", "UNKNOWN"]
    tech = by(sectors, "sector")["Information Technology"]
    assert (tech["symbols"], tech["trades"], tech["volume"]) == (2, 6, 325)
    assert tech["value"] == pytest.approx(3300 + 1275)
    # BBL 9 -> 13 (+44.44 %), BGD 50 -> 55 (+10 %)
    assert tech["avg_change_pct"] == pytest.approx(((13 - 9) / 9 * 100 + 10.0) / 2)
    fin = by(sectors, "sector")["Financials"]
    assert (fin["symbols"], fin["avg_change_pct"]) == (1, pytest.approx(5.0))
    assert by(sectors, "sector")["UNKNOWN"]["avg_change_pct"] == pytest.approx(0.0)


def test_sector_performance_from_reference_without_enriched(warehouse, analytics):
    expected = analytics.sector_performance()
    shutil.rmtree(warehouse / "enriched_trades")
    with TradingAnalytics(warehouse) as plain:
        assert plain.sector_performance().equals(expected)


def test_final_windows_take_the_highest_revision(analytics):
    final = analytics.final_windows()
    assert [(r["symbol"], r["window_start"], r["revision"], r["total_volume"])
            for r in final.to_dicts()] == [("BBL", T0, 1, 200), ("BHC", T0, 2, 20),
                                           ("BBL", T0 + MIN, 0, 50)]
    assert analytics.final_windows(symbol="BBL")["total_volume"].to_list() == [200, 50]


def test_final_windows_other_sizes(analytics):
    five = analytics.final_windows(size="5m")
    assert five["total_volume"].to_list() == [300]
    assert five["buy_sell_ratio"].to_list() == [None]  # added for the older writer
    assert analytics.final_windows(size="15m").height == 0
    with pytest.raises(ValueError, match="1m, 5m, 15m"):
        analytics.final_windows(size="2m")


def test_alerts_by_severity(analytics):
    alerts = analytics.alerts_by_severity()
    assert alerts["severity"].to_list() == ["CRITICAL", "HIGH", "MEDIUM"]
    high = by(alerts, "severity")["HIGH"]
    assert (high["alerts"], high["symbols"], high["up"], high["down"]) == (2, 2, 1, 1)
    assert high["avg_abs_change_pct"] == pytest.approx(6.5)
    assert high["max_abs_change_pct"] == pytest.approx(7.0)
    assert (high["first_alert_ts"], high["last_alert_ts"]) == (T0, T0 + 2 * MIN)


def test_missing_warehouse_contents_answer_empty(tmp_path):
    with TradingAnalytics(tmp_path) as empty:
        for name in QUERIES:
            frame = empty.query(name)
            assert frame.height == 0, name
            assert frame.width > 0, name
        assert empty.available == set()


def test_query_registry(analytics):
    assert set(QUERIES) == {"top-symbols", "portfolio", "volume-history",
                            "sector-performance", "windows", "alerts"}
    assert analytics.query("top-symbols", limit=1)["symbol"].to_list() == ["BHC"]
    assert analytics.query("windows", size="1m", symbol="BHC").height == 1
    with pytest.raises(ValueError, match="does not take"):
        analytics.query("alerts", symbol="BBL")
    with pytest.raises(ValueError, match="unknown query"):
        analytics.query("nope")


def test_table_cells_are_readable():
    assert format_cell(1234567, "volume") == "1,234,567"
    assert format_cell(4100.0, "value") == "4,100.00"
    assert format_cell(0.5, "ratio_7d") == "0.5000"
    assert format_cell(0.0, "cost_basis") == "0.00"
    assert format_cell(-1234.5, "cost_basis") == "-1,234.50"
    assert format_cell(None, "cost_basis") == "-"
    assert format_cell(T0, "window_start") == "2026-03-10 14:30:00"
    assert format_cell(T0 + 5, "alert_ts") == "2026-03-10 14:30:00.005"


# ---- the command line ----------------------------------------------------------------------

def query_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "surestream.cli.query", *args],
                          capture_output=True, text=True, timeout=120)


def test_cli_table(warehouse):
    r = query_cli("top-symbols", "--warehouse", str(warehouse), "--limit", "3")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["symbol", "trades", "volume", "value", "vwap"]
    assert set(lines[1]) <= {"-", " "}
    assert lines[2].split() == ["BHC", "2", "20", "4,100.00", "205.00"]
    assert lines[3].split() == ["BBL", "4", "300", "3,300.00", "11.00"]
    assert len({len(line) for line in lines[:2]}) == 1  # header and rule align
    assert lines[-1] == "(3 rows)"
    r = query_cli("windows", "--warehouse", str(warehouse), "--symbol", "BHC")
    assert r.returncode == 0, r.stderr
    assert "2026-03-10 14:30:00" in r.stdout and "(1 row)" in r.stdout


def test_cli_json(warehouse, analytics):
    r = query_cli("portfolio", "--warehouse", str(warehouse), "--account", "ACC1",
                  "--format", "json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert rows == analytics.portfolio(account_id="ACC1").to_dicts()
    r = query_cli("volume-history", "--warehouse", str(warehouse), "--format", "json")
    assert json.loads(r.stdout)[0]["date"] == "2026-03-10"


def test_cli_csv(warehouse):
    r = query_cli("alerts", "--warehouse", str(warehouse), "--format", "csv")
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [row["severity"] for row in rows] == ["CRITICAL", "HIGH", "MEDIUM"]
    assert rows[1]["alerts"] == "2"


def test_cli_usage_errors(warehouse, tmp_path):
    r = query_cli("nope", "--warehouse", str(warehouse))
    assert r.returncode == 2
    assert "unknown query 'nope'" in r.stderr and "top-symbols" in r.stderr
    r = query_cli("alerts", "--warehouse", str(tmp_path / "missing"))
    assert r.returncode == 2 and "not found" in r.stderr
    r = query_cli("alerts", "--warehouse", str(warehouse), "--symbol", "BBL")
    assert r.returncode == 2 and "does not take --symbol" in r.stderr
    r = query_cli("windows", "--warehouse", str(warehouse), "--size", "2m")
    assert r.returncode == 2 and "size must be one of" in r.stderr
