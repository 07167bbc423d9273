"""The five trading jobs in the Python API -- the same pipelines as the YAML files beside
this module (``tests/apps/test_trading_pipelines.py`` checks that both build the same spec).

Paths are relative to the workspace the job runs in (``data/`` in, ``warehouse/`` out), as
in the YAML: run with ``LocalRunner(spec)`` after setting ``spec.base_dir``.
"""

from __future__ import annotations

from surestream.api import Pipeline, Stream, jsonl, parquet
from surestream.apps.trading.jobs.alerts import PriceAlerts
from surestream.apps.trading.jobs.orderbook import book_metrics

WATERMARK_MS = 5_000
DEDUP_WINDOW_MS, DEDUP_TTL_MS = 600_000, 3_600_000
EXECUTED = "status IN ('FILLED', 'PARTIALLY_FILLED')"
DATE_OF = "CAST(CAST({} * 1000 AS TIMESTAMP) AS DATE)"
ALERT_PARAMS = {"window_ms": 300_000, "threshold_pct": 2.0, "cooldown_ms": 60_000,
                "state_ttl_ms": 600_000,
                "severities": {"MEDIUM": 2.0, "HIGH": 5.0, "CRITICAL": 10.0}}


def _pipeline(name: str) -> Pipeline:
    return Pipeline(f"trading-{name}", checkpoint_dir=f".surestream/checkpoints/trading-{name}",
                    checkpoint_interval_ms=5_000)


def _dedup(stream: Stream) -> Stream:
    return stream.dedup(["trade_id"], time_window_ms=DEDUP_WINDOW_MS,
                        state_ttl_ms=DEDUP_TTL_MS, name="dedup_trades")


def router() -> Pipeline:
    p = _pipeline("router")
    s = (p.read_files("data/raw.trades.jsonl")
         .watermark("timestamp_ms", max_out_of_orderness_ms=WATERMARK_MS, name="trade_time")
         .with_columns({"date": DATE_OF.format("timestamp_ms")}, name="trade_date")
         .late_data("quarantine.trades.late", name="quarantine_late_trades"))
    _dedup(s).route("status", {
        "NEW": "processed.trades.new", "FILLED": "processed.trades.filled",
        "PARTIALLY_FILLED": "processed.trades.filled",
        "CANCELLED": "processed.trades.cancelled", "REJECTED": "processed.trades.rejected",
    }, default="dlq.trades.unroutable", name="route_by_status")
    for tag, folder, parts in (
            ("processed.trades.new", "processed_trades_new", ["date"]),
            ("processed.trades.filled", "processed_trades_filled", ["date", "symbol"]),
            ("processed.trades.cancelled", "processed_trades_cancelled", ["date"]),
            ("processed.trades.rejected", "processed_trades_rejected", ["date"]),
            ("dlq.trades.unroutable", "dlq_trades_unroutable", ["date"])):
        p.output(tag, parquet(f"warehouse/{folder}", key=["trade_id"], partition_by=parts))
    p.output("quarantine.trades.late",
             parquet("warehouse/quarantine_trades_late", partition_by=["date"]))
    p.output("main", jsonl("warehouse/router_unused.jsonl"))
    p.output("errors", jsonl("warehouse/dlq_deserialization.jsonl"))
    return p


AGGREGATIONS = {
    "total_volume": "sum(quantity)", "total_value": "sum(value)",
    "vwap": "vwap(price, quantity)", "trade_count": "count()", "buy_count": "sum(is_buy)",
    "sell_count": "sum(is_sell)", "high": "max(price)", "low": "min(price)",
    "open": "first(price)", "close": "last(price)",
}


def aggregation() -> Pipeline:
    p = _pipeline("aggregation")
    executed = (p.read_files("data/raw.trades.jsonl", stream="executed")
                .watermark("timestamp_ms", max_out_of_orderness_ms=WATERMARK_MS,
                           name="trade_time"))
    (_dedup(executed)
     .where(EXECUTED, name="executed_only")
     .with_columns({"value": "price * quantity",
                    "is_buy": "CASE WHEN side = 'BUY' THEN 1 ELSE 0 END",
                    "is_sell": "CASE WHEN side = 'SELL' THEN 1 ELSE 0 END"},
                   name="trade_measures"))
    for size, ms in (("1m", 60_000), ("5m", 300_000), ("15m", 900_000)):
        (executed.branch(f"agg_{size}")
         .window(f"ohlcv_{size}", key_fields=["symbol"], kind="tumbling", size_ms=ms,
                 allowed_lateness_ms=30_000, late_output_tag=f"late_{size}",
                 aggregations=AGGREGATIONS)
         .with_columns({
             "buy_count": "CAST(buy_count AS BIGINT)",
             "sell_count": "CAST(sell_count AS BIGINT)",
             "buy_sell_ratio": "CASE WHEN sell_count = 0 THEN NULL "
                               "ELSE buy_count / sell_count END",
             "window_size": f"'{size}'",
             "total_volume": "CAST(total_volume AS BIGINT)",
             "date": DATE_OF.format("window_start")}, name=f"ratio_{size}")
         .to(parquet(f"warehouse/trade_aggregates_{size}", partition_by=["date"])))
        p.output(f"late_{size}", parquet(f"warehouse/quarantine_aggregation_late_{size}"))
    p.output("errors", jsonl("warehouse/aggregation_errors.jsonl"))
    return p


def alerts() -> Pipeline:
    p = _pipeline("alerts")
    (p.read_files(["data/raw.trades.jsonl", "data/raw.marketdata.jsonl"],
                  schema={"symbol": "string", "price": "float", "timestamp_ms": "int",
                          "trade_id": "string", "status": "string"})
     .watermark("timestamp_ms", max_out_of_orderness_ms=WATERMARK_MS,
                idle_source_timeout_ms=60_000, name="price_time")
     .late_data("quarantine.prices.late", name="quarantine_late_prices")
     .where("trade_id IS NULL OR UPPER(status) IN ('FILLED', 'PARTIALLY_FILLED')",
            name="traded_prices_only")
     .process(PriceAlerts, key_fields=["symbol"], params=ALERT_PARAMS, name="price_alerts")
     .with_columns({"date": DATE_OF.format("detected_at_ms")}, name="alert_date")
     .to(parquet("warehouse/price_alerts", key=["symbol", "detected_at_ms"],
                 partition_by=["date"])))
    p.output("quarantine.prices.late", parquet("warehouse/quarantine_prices_late"))
    p.output("errors", jsonl("warehouse/alerts_errors.jsonl"))
    return p


def orderbook() -> Pipeline:
    p = _pipeline("orderbook")
    (p.read_files("data/raw.orderbook.jsonl")
     .watermark("timestamp_ms", max_out_of_orderness_ms=WATERMARK_MS, name="book_time")
     .late_data("quarantine.orderbook.late", name="quarantine_late_books")
     .map_batches(book_metrics, name="book_metrics")
     .with_columns({"date": DATE_OF.format("timestamp_ms")}, name="book_date")
     .to(parquet("warehouse/orderbook_metrics", partition_by=["date"])))
    p.output("quarantine.orderbook.late", parquet("warehouse/quarantine_orderbook_late"))
    p.output("errors", jsonl("warehouse/orderbook_errors.jsonl"))
    return p


def enrichment() -> Pipeline:
    p = _pipeline("enrichment")
    trades = p.read_files("data/raw.trades.jsonl", source="trades", stream="enriched")
    reference = p.read_files("data/reference_updates.jsonl", source="reference_updates",
                             stream="reference")
    (_dedup(trades
            .watermark("timestamp_ms", max_out_of_orderness_ms=WATERMARK_MS,
                       name="trade_time")
            .late_data("quarantine.enrichment.late", name="quarantine_late_trades"))
     .where(EXECUTED, name="executed_only")
     .enrich(key_fields=["symbol"],
             fields=["company_name", "sector", "industry", "market_cap_tier", "ref_exchange"],
             reference={"path": "data/reference/symbols.parquet", "format": "parquet"},
             updates=reference, unknown_value="UNKNOWN", name="reference_data")
     .with_columns({"date": DATE_OF.format("timestamp_ms")}, name="trade_date")
     .to(parquet("warehouse/enriched_trades", key=["trade_id"],
                 partition_by=["date", "symbol"])))
    p.output("quarantine.enrichment.late", parquet("warehouse/quarantine_enrichment_late"))
    p.output("errors", jsonl("warehouse/enrichment_errors.jsonl"))
    return p


PIPELINES = {"router": router, "aggregation": aggregation, "alerts": alerts,
             "orderbook": orderbook, "enrichment": enrichment}
