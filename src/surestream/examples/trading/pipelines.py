"""The five trading jobs in the Python API -- the same pipelines as the YAML files beside
this module (``tests/apps/test_trading_pipelines.py`` checks that both build the same spec).

Paths are relative to the workspace the job runs in (``data/`` in, ``warehouse/`` out), as
in the YAML: run with ``LocalRunner(spec)`` after setting ``spec.base_dir``.
"""

from __future__ import annotations

from surestream.api import Pipeline, Stream, jsonl, parquet
from surestream.apps.trading.jobs.alerts import PriceAlerts
from surestream.apps.trading.jobs.orderbook import BookDeltas, book_metrics

WATERMARK_MS, IDLE_MS = 5_000, 60_000
BOOK_TTL_MS = 300_000
DEDUP_WINDOW_MS, DEDUP_TTL_MS = 600_000, 3_600_000
#: the reference file is re-read once a day of event time (the first trade of each day)
REFERENCE_REFRESH_MS = 86_400_000
EXECUTED = "status IN ('FILLED', 'PARTIALLY_FILLED')"
DATE_OF = "CAST(CAST({} * 1000 AS TIMESTAMP) AS DATE)"
#: the plan's dead-letter records (docs/concepts.md, 'Errors'): output field -> error field
DLQ_FIELDS = {"original_value": "raw", "error_type": "exception",
              "error_message": "error_message", "stacktrace": "traceback",
              "timestamp_ms": "recorded_at_ms"}
ALERT_PARAMS = {"window_ms": 300_000, "threshold_pct": 2.0, "cooldown_ms": 60_000,
                "state_ttl_ms": 600_000,
                "severities": {"MEDIUM": 2.0, "HIGH": 5.0, "CRITICAL": 10.0}}


def _pipeline(name: str) -> Pipeline:
    return Pipeline(f"trading-{name}", checkpoint_dir=f".surestream/checkpoints/trading-{name}",
                    checkpoint_interval_ms=5_000)


def _dead_letters(p: Pipeline, prefix: str) -> None:
    """Input that does not parse to ``dlq.deserialization``, exceptions in steps to
    ``dlq.processing-errors`` (with the operator); other errors stay on ``errors``."""
    p.output("dlq.deserialization", jsonl(f"warehouse/{prefix}dlq_deserialization.jsonl",
                                          error_kinds=["input"], error_fields=DLQ_FIELDS))
    p.output("dlq.processing-errors", jsonl(
        f"warehouse/{prefix}dlq_processing_errors.jsonl", error_kinds=["processing"],
        error_fields={**DLQ_FIELDS, "operator": "operator"}))


def _watermark(stream: Stream, name: str) -> Stream:
    return stream.watermark("timestamp_ms", max_out_of_orderness_ms=WATERMARK_MS,
                            idle_source_timeout_ms=IDLE_MS, name=name)


def _dedup(stream: Stream) -> Stream:
    return stream.dedup(["trade_id"], time_window_ms=DEDUP_WINDOW_MS,
                        state_ttl_ms=DEDUP_TTL_MS, name="dedup_trades")


def _routed(stream: Stream) -> Stream:
    """The router's view of the trades: date, status upper-cased, late ones flagged
    (``is_late``), duplicates removed -- what enrichment rebuilds too."""
    s = (_watermark(stream, "trade_time")
         .with_columns({"date": DATE_OF.format("timestamp_ms"), "status": "UPPER(status)"},
                       name="trade_date")
         .late_data(strategy="flag", flag_column="is_late", name="flag_late_trades"))
    return _dedup(s)


def router() -> Pipeline:
    p = _pipeline("router")
    _routed(p.read_files("data/raw.trades.jsonl")).route("status", {
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
    p.output("main", jsonl("warehouse/router_unused.jsonl"))
    _dead_letters(p, "")
    p.output("errors", jsonl("warehouse/router_errors.jsonl"))
    return p


AGGREGATIONS = {
    "total_volume": "sum(quantity)", "total_value": "sum(value)",
    "vwap": "vwap(price, quantity)", "trade_count": "count()", "buy_count": "sum(is_buy)",
    "sell_count": "sum(is_sell)", "high_price": "max(price)", "low_price": "min(price)",
    "open_price": "first(price)", "close_price": "last(price)",
}
WINDOW_SIZES = {"1m": 60_000, "5m": 300_000, "15m": 900_000}
#: the plan's default: every status; the option narrows it (docs/trading.md)
ALL_TRADES = "TRUE"
BUY_SELL_RATIO = ("CASE WHEN sell_count = 0 THEN CAST('inf' AS DOUBLE) "
                  "ELSE ROUND(CAST(buy_count AS DOUBLE) / sell_count, 4) END")


def aggregation() -> Pipeline:
    p = _pipeline("aggregation")
    trades = _watermark(p.read_files("data/raw.trades.jsonl", stream="trades"), "trade_time")
    (_dedup(trades)
     .where(ALL_TRADES, name="trade_scope")
     .with_columns({"value": "price * quantity",
                    "is_buy": "CASE WHEN side = 'BUY' THEN 1 ELSE 0 END",
                    "is_sell": "CASE WHEN side = 'SELL' THEN 1 ELSE 0 END"},
                   name="trade_measures"))
    for size, ms in WINDOW_SIZES.items():
        trades.branch(f"agg_{size}").window(
            f"ohlcv_{size}", key_fields=["symbol"], kind="tumbling", size_ms=ms,
            allowed_lateness_ms=30_000, late_output_tag=f"late_{size}",
            aggregations=AGGREGATIONS)
    (p.union("aggregates", [f"agg_{size}" for size in WINDOW_SIZES])
     .with_columns({
         "window_size": "CASE window_end - window_start WHEN 60000 THEN '1m' "
                        "WHEN 300000 THEN '5m' ELSE '15m' END",
         "total_volume": "CAST(total_volume AS DOUBLE)",
         "vwap": "ROUND(vwap, 4)",
         "buy_count": "CAST(buy_count AS BIGINT)",
         "sell_count": "CAST(sell_count AS BIGINT)",
         "date": DATE_OF.format("window_start")}, name="aggregate_columns")
     .with_columns({"buy_sell_ratio": BUY_SELL_RATIO}, name="ratio")
     .processing_time("computed_at", unit="timestamp", name="stamp_computed_at")
     .branch("analytics.trade-aggregates")
     .to(parquet("warehouse/trade_aggregates", partition_by=["window_size", "date"],
                 key=["symbol", "window_size", "window_start", "revision"],
                 processing_time_columns=["computed_at"])))
    for size in WINDOW_SIZES:
        p.output(f"late_{size}", parquet(f"warehouse/quarantine_aggregation_late_{size}"))
    _dead_letters(p, "aggregation_")
    p.output("errors", jsonl("warehouse/aggregation_errors.jsonl"))
    return p


def alerts() -> Pipeline:
    p = _pipeline("alerts")
    (p.read_files(["data/raw.trades.jsonl", "data/raw.marketdata.jsonl"],
                  schema={"symbol": "string", "price": "float", "timestamp_ms": "int",
                          "trade_id": "string", "status": "string"})
     .watermark("timestamp_ms", max_out_of_orderness_ms=WATERMARK_MS,
                idle_source_timeout_ms=IDLE_MS, name="price_time")
     .late_data("quarantine.prices.late", name="quarantine_late_prices")
     .where("trade_id IS NULL OR UPPER(status) IN ('FILLED', 'PARTIALLY_FILLED')",
            name="traded_prices_only")
     .process(PriceAlerts, key_fields=["symbol"], params=ALERT_PARAMS, name="price_alerts")
     .with_columns({"date": DATE_OF.format("detected_at_ms")}, name="alert_date")
     .to(parquet("warehouse/price_alerts", key=["symbol", "detected_at_ms"],
                 partition_by=["date"])))
    p.output("quarantine.prices.late", parquet("warehouse/quarantine_prices_late"))
    _dead_letters(p, "alerts_")
    p.output("errors", jsonl("warehouse/alerts_errors.jsonl"))
    return p


def orderbook() -> Pipeline:
    p = _pipeline("orderbook")
    (_watermark(p.read_files("data/raw.orderbook.jsonl"), "book_time")
     .late_data("quarantine.orderbook.late", name="quarantine_late_books")
     .map_batches(book_metrics, name="book_metrics")
     .process(BookDeltas, key_fields=["symbol"], params={"ttl_ms": BOOK_TTL_MS},
              name="book_deltas")
     .with_columns({"date": DATE_OF.format("timestamp_ms")}, name="book_date")
     .to(parquet("warehouse/orderbook_metrics", partition_by=["date"])))
    p.output("quarantine.orderbook.late", parquet("warehouse/quarantine_orderbook_late"))
    _dead_letters(p, "orderbook_")
    p.output("errors", jsonl("warehouse/orderbook_errors.jsonl"))
    return p


def enrichment() -> Pipeline:
    p = _pipeline("enrichment")
    trades = p.read_files("data/raw.trades.jsonl", source="trades", stream="enriched")
    reference = p.read_files("data/reference_updates.jsonl", source="reference_updates",
                             stream="reference")
    (_routed(trades)
     .where(EXECUTED, name="filled_only")
     .enrich(key_fields=["symbol"],
             fields=["company_name", "sector", "industry", "market_cap_tier", "listed_exchange"],
             reference={"path": "data/reference/symbols.parquet", "format": "parquet"},
             updates=reference, unknown_value="UNKNOWN",
             refresh_interval_ms=REFERENCE_REFRESH_MS, name="reference_data")
     .processing_time("enriched_at_ms", unit="ms", name="stamp_enriched_at")
     .branch("enriched.trades")  # the plan's topic, as its own tag
     .to(parquet("warehouse/enriched_trades", key=["trade_id"], partition_by=["date", "symbol"],
                 processing_time_columns=["enriched_at_ms"])))
    _dead_letters(p, "enrichment_")
    p.output("errors", jsonl("warehouse/enrichment_errors.jsonl"))
    return p


PIPELINES = {"router": router, "aggregation": aggregation, "alerts": alerts,
             "orderbook": orderbook, "enrichment": enrichment}
