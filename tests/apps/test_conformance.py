"""The demo's outputs against the trading plan (issue "The trading platform, true to its
plan"): every planned field name and type, the planned rounding, and each analytics query's
columns and ordering. The expectations are the plan's, written here from its text -- not
read from our outputs -- so a renamed or retyped field fails this test.
(docs/trading.md, "Conformance to the plan", is the same list with where each is met.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from surestream.apps.trading.analytics import TradingAnalytics
from surestream.connectors.file_sinks import read_parquet_dataset

F64, I64, STR = pl.Float64, pl.Int64, pl.String

#: dataset -> the plan's fields and their types (more columns may follow: ours, documented)
PLANNED: dict[str, dict[str, Any]] = {
    "trade_aggregates": {
        "symbol": STR, "window_start": I64, "window_end": I64, "window_size": STR,
        "total_volume": F64, "total_value": F64, "vwap": F64, "trade_count": I64,
        "buy_count": I64, "sell_count": I64, "buy_sell_ratio": F64, "high_price": F64,
        "low_price": F64, "open_price": F64, "close_price": F64, "computed_at": pl.Datetime},
    "price_alerts": {
        "alert_type": STR, "symbol": STR, "direction": STR, "baseline_price": F64,
        "current_price": F64, "pct_change": F64, "window_start_ms": I64,
        "detected_at_ms": I64, "severity": STR},
    "orderbook_metrics": {
        "symbol": STR, "timestamp_ms": I64, "best_bid": F64, "best_ask": F64,
        "mid_price": F64, "spread": F64, "spread_bps": F64,
        **{f"{side}_depth_{n}": F64 for side in ("bid", "ask") for n in (5, 10, 20)},
        **{f"imbalance_{n}": F64 for n in (5, 10, 20)}},
    "enriched_trades": {
        "trade_id": STR, "order_id": STR, "symbol": STR, "side": STR, "quantity": I64,
        "price": F64, "status": STR, "company_name": STR, "sector": STR, "industry": STR,
        "market_cap_tier": STR, "listed_exchange": STR, "enriched_at_ms": I64},
    **{f"processed_trades_{s}": {
        "trade_id": STR, "order_id": STR, "symbol": STR, "side": STR, "quantity": I64,
        "price": F64, "status": STR, "exchange": STR, "trader_id": STR, "account_id": STR,
        "timestamp_ms": I64, "event_type": STR}
        for s in ("new", "filled", "cancelled", "rejected")},
}
#: the plan's rounding: column -> decimals
ROUNDED = {"trade_aggregates": {"vwap": 4, "buy_sell_ratio": 4},
           "price_alerts": {"pct_change": 2},
           "orderbook_metrics": {"mid_price": 4, "spread": 4, "spread_bps": 2,
                                 "imbalance_5": 4, "imbalance_10": 4, "imbalance_20": 4}}
DLQ_FIELDS = ["original_value", "error_type", "error_message", "stacktrace", "timestamp_ms"]


@pytest.fixture(scope="module")
def warehouse(trading_demo: dict[str, Any]) -> Path:
    """The warehouse of the demo run (40,000 events, 3 days) shared with test_demo.py."""
    done = trading_demo["proc"]
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return trading_demo["warehouse"]


@pytest.mark.parametrize("dataset", sorted(PLANNED))
def test_every_planned_field_has_its_name_and_type(warehouse: Path, dataset: str) -> None:
    frame = read_parquet_dataset(warehouse / dataset)
    assert frame.height > 0
    for column, dtype in PLANNED[dataset].items():
        assert column in frame.columns, f"{dataset}: the plan's field {column!r} is missing"
        assert isinstance(frame.schema[column], dtype), \
            f"{dataset}.{column} is {frame.schema[column]}, the plan says {dtype}"


@pytest.mark.parametrize("dataset", sorted(ROUNDED))
def test_the_plans_rounding(warehouse: Path, dataset: str) -> None:
    frame = read_parquet_dataset(warehouse / dataset)
    for column, decimals in ROUNDED[dataset].items():
        values = frame[column].drop_nulls()
        finite = values.filter(values.is_finite())
        assert (finite.round(decimals) == finite).all(), f"{dataset}.{column}"


def test_aggregates_carry_all_three_sizes_and_ratio_is_inf_without_sells(
        warehouse: Path) -> None:
    frame = read_parquet_dataset(warehouse / "trade_aggregates")
    assert set(frame["window_size"].unique()) == {"1m", "5m", "15m"}
    no_sells = frame.filter(pl.col("sell_count") == 0)
    assert no_sells.height > 0 and no_sells["buy_sell_ratio"].is_infinite().all()
    assert read_parquet_dataset(warehouse / "processed_trades_new").height > 0
    one_minute = frame.filter(pl.col("window_size") == "1m").sort("revision").group_by(
        "symbol", "window_start").last()
    # every unique trade the router placed, unknown statuses included, is in a 1m window
    # or (too late even for the allowed lateness) in the 1m window's late output
    routed = sum(read_parquet_dataset(warehouse / name).height for name in (
        "processed_trades_new", "processed_trades_filled", "processed_trades_cancelled",
        "processed_trades_rejected", "dlq_trades_unroutable"))
    late = read_parquet_dataset(warehouse / "quarantine_aggregation_late_1m").height
    assert int(one_minute["trade_count"].sum()) + late == routed


def test_routed_statuses_are_upper_case_and_late_trades_are_flagged(warehouse: Path) -> None:
    for s in ("new", "filled", "cancelled", "rejected"):
        frame = read_parquet_dataset(warehouse / f"processed_trades_{s}")
        assert (frame["status"] == frame["status"].str.to_uppercase()).all()
        assert frame.schema["is_late"] == pl.Boolean
    flagged = sum(int(read_parquet_dataset(warehouse / f"processed_trades_{s}")["is_late"]
                      .sum()) for s in ("new", "filled", "cancelled", "rejected"))
    assert flagged > 0


def test_dead_letters_have_the_plans_fields(warehouse: Path) -> None:
    lines = (warehouse / "dlq_deserialization.jsonl").read_text().splitlines()
    assert lines
    for line in lines:
        record = json.loads(line)
        assert list(record) == DLQ_FIELDS
        assert len(record["original_value"]) <= 10_000
        assert record["error_type"][0].isupper()  # an exception class, e.g. JSONDecodeError


@pytest.fixture(scope="module")
def analytics(warehouse: Path) -> TradingAnalytics:
    return TradingAnalytics(warehouse=warehouse)


def test_top_traded_symbols_columns_and_order(analytics: TradingAnalytics) -> None:
    top = analytics.top_traded_symbols(top_n=20, since_hours=24)
    assert top.columns == ["symbol", "trade_count", "total_volume", "total_notional", "vwap",
                           "low", "high", "price_range_pct"]
    assert 0 < top.height <= 20
    assert top["total_volume"].to_list() == sorted(top["total_volume"], reverse=True)


def test_portfolio_analysis_columns_and_order(analytics: TradingAnalytics,
                                              warehouse: Path) -> None:
    account = read_parquet_dataset(warehouse / "processed_trades_filled")["account_id"][0]
    book = analytics.portfolio_analysis(account)
    for column in ("symbol", "net_position", "net_cost", "avg_cost_basis"):
        assert column in book.columns
    assert book.height > 0 and (book["net_position"] != 0).all()
    magnitude = book["net_cost"].abs().to_list()
    assert magnitude == sorted(magnitude, reverse=True)
    for row in book.iter_rows(named=True):
        assert row["avg_cost_basis"] == pytest.approx(row["net_cost"] / row["net_position"],
                                                      abs=1e-4)


def test_volume_history_compares_stored_days(analytics: TradingAnalytics,
                                             warehouse: Path) -> None:
    symbol = read_parquet_dataset(warehouse / "processed_trades_filled")["symbol"][0]
    history = analytics.compare_volume_to_historical(symbol)
    for column in ("today_volume", "avg_7d", "avg_30d", "avg_90d", "pct_vs_30d_avg"):
        assert column in history.columns
    assert history["days_30d"][0] >= 1  # three simulated days: two before "today"
    assert history["avg_30d"][0] is not None and history["pct_vs_30d_avg"][0] is not None


def test_sector_performance_has_a_row_per_sector(analytics: TradingAnalytics) -> None:
    sectors = analytics.sector_performance(since_hours=24)
    assert "sector" in sectors.columns and sectors.height >= 2
    assert sectors["sector"].n_unique() == sectors.height
