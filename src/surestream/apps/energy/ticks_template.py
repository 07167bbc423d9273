"""The ``vendor_ticks`` template: high-frequency vendor price ticks, hardened.

``vendor_ticks(**params)`` returns the pipeline spec (a plain dict, valid for
``surestream validate``); the shipped ``apps/templates/vendor_ticks.yaml`` is its output with
the defaults. The pipeline:

1. event time ``event_time``, watermark with 30 s bounded out-of-orderness and an idle
   timeout (a silent vendor -- a silent partition of a live topic -- stops holding the
   watermark back after ``idle_timeout_ms``);
2. ticks more than 30 s behind go to ``quarantine.late_vendor_ticks`` with the watermark,
   the lateness and the original timestamp, partitioned by processing date and vendor;
3. dedup on ``[vendor, symbol, tick_id]`` within 1 min keeping the first, state TTL 5 min;
4. curated ticks to ``curated.vendor_ticks``, exactly once (Iceberg, write-audit-publish,
   in an embedded SQLite catalog under ``out_dir`` by default);
5. per-symbol one-minute bars (open, high, low, close, volume, ticks, VWAP) to
   ``curated.tick_bars_1m``.

Malformed lines (not JSON, no readable event time) go to ``<out_dir>/errors.jsonl`` with
their reason.
"""

from __future__ import annotations

from typing import Any

PIPELINE = "vendor-ticks"
KEY = ["vendor", "symbol", "tick_id"]
#: the ISO-8601 UTC timestamps with milliseconds the vendors send (``...T14:00:00.123Z``)
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
CURATED_TABLE = "curated.vendor_ticks"
BARS_TABLE = "curated.tick_bars_1m"
QUARANTINE_TABLE = "quarantine.late_vendor_ticks"


def _timestamp(column: str) -> str:
    return f"STRPTIME({column}, '{TIME_FORMAT}')"


def vendor_ticks(*, watermark_max_out_of_order_ms: int = 30_000,
                 dedup_window_ms: int = 60_000,
                 state_ttl_ms: int = 300_000,
                 idle_timeout_ms: int = 60_000,
                 bar_ms: int = 60_000,
                 input_path: str = "data/ticks/ticks.jsonl",
                 out_dir: str = "out/ticks",
                 kafka_bootstrap: str | None = None,
                 kafka_topic: str = "vendor.ticks",
                 kafka_live: bool = False,
                 checkpoint_interval_ms: int = 10_000) -> dict[str, Any]:
    """The ``vendor_ticks`` spec. ``input_path`` (JSON lines; a glob reads one partition
    per file) is the source unless ``kafka_bootstrap`` is given: then the topic
    ``kafka_topic`` is, read to the end offsets it has at start -- or, with ``kafka_live``,
    until the run is stopped: then a vendor whose partition falls silent stops holding the
    watermark back after ``idle_timeout_ms``. Relative paths resolve against the spec
    file's folder (or the folder a program builds the spec in)."""
    def catalog() -> dict[str, str]:  # a fresh dict per output: no YAML anchors
        return {"uri": f"sqlite:///{out_dir}/warehouse/catalog.db",
                "warehouse": f"{out_dir}/warehouse"}

    if kafka_bootstrap:
        source: dict[str, Any] = {"type": "kafka", "bootstrap": kafka_bootstrap,
                                  "topics": [kafka_topic], "group_id": PIPELINE,
                                  "start": "earliest", "format": "json"}
        if not kafka_live:
            source["stop_at"] = "end"
    else:
        source = {"type": "file", "path": input_path, "format": "jsonl"}
    return {
        "pipeline": PIPELINE,
        "source": source,
        "streams": {
            "ticks": {"from": "source", "steps": [
                {"type": "watermark", "name": "event_time_watermark",
                 "timestamp_column": "event_time",
                 "max_out_of_orderness_ms": watermark_max_out_of_order_ms,
                 "idle_source_timeout_ms": idle_timeout_ms},
                {"type": "late_data_side_output", "name": "quarantine_late",
                 "output_tag": "late",
                 "metadata": {"include_watermark": True, "include_lateness_ms": True,
                              "include_original_timestamp": True}},
                {"type": "keyed_dedup", "name": "dedup_ticks", "key_fields": list(KEY),
                 "time_window_ms": dedup_window_ms, "strategy": "first",
                 "state_ttl_ms": state_ttl_ms},
                {"type": "with_columns", "name": "tick_timestamps",
                 "columns": {"event_time": _timestamp("event_time"),
                             "published_at": _timestamp("published_at")}},
            ]},
            "bars_1m": {"from": "ticks", "steps": [
                {"type": "window", "name": "bars_1m", "key_fields": ["symbol"],
                 "kind": "tumbling", "size_ms": bar_ms, "late_output_tag": "late_bars",
                 "aggregations": {"ticks": "count()", "volume": "sum(size)",
                                  "open": "first(price)", "high": "max(price)",
                                  "low": "min(price)", "close": "last(price)",
                                  "vwap": "vwap(price, size)"}},
            ]},
            "late_vendor_ticks": {"from": "late", "steps": [
                {"type": "with_columns", "name": "late_tick_timestamps",
                 "columns": {"event_time": _timestamp("event_time"),
                             "published_at": _timestamp("published_at")}},
                {"type": "processing_time", "name": "stamp_processing_date",
                 "column": "processing_date", "unit": "date"},
                {"type": "processing_time", "name": "stamp_ingested_at",
                 "column": "ingested_at", "unit": "timestamp"},
            ]},
        },
        "outputs": {
            "ticks": {"type": "iceberg", "catalog": catalog(), "table": CURATED_TABLE,
                      "partition_by": ["day(event_time)", "vendor"],
                      "write_audit_publish": True,
                      "audit": {"not_null": [*KEY, "event_time", "price"], "unique": list(KEY)},
                      "key": list(KEY)},
            "bars_1m": {"type": "iceberg", "catalog": catalog(), "table": BARS_TABLE,
                        "partition_by": ["symbol"], "key": ["symbol", "window_start"]},
            "late_vendor_ticks": {"type": "iceberg", "catalog": catalog(),
                                  "table": QUARANTINE_TABLE,
                                  "partition_by": ["processing_date", "vendor"],
                                  "processing_time_columns": ["processing_date",
                                                              "ingested_at"]},
            # a bar never gets a late tick (late ticks are quarantined before the window):
            # this file stays empty, and the demo checks that it does
            "late_bars": {"type": "file", "path": f"{out_dir}/late_bars.jsonl"},
            "errors": {"type": "file", "path": f"{out_dir}/errors.jsonl"},
        },
        "checkpoint": {"dir": f"{out_dir}/checkpoints",
                       "interval_ms": checkpoint_interval_ms},
    }


YAML_HEADER = """\
# vendor_ticks: high-frequency vendor price ticks, hardened (issue 13). Generated from
# surestream.apps.energy.ticks_template:vendor_ticks() with its defaults: edit a copy, or
# call the factory with your feed profile (watermark_max_out_of_order_ms, dedup_window_ms,
# state_ttl_ms, idle_timeout_ms, input_path, out_dir). docs/energy.md, "Vendor ticks".
"""


def vendor_ticks_yaml(**params: Any) -> str:
    """The spec as the shipped ``apps/templates/vendor_ticks.yaml`` holds it (defaults), or
    with ``params``: a short header, then ``yaml.safe_dump`` of ``vendor_ticks(**params)``."""
    import yaml

    return YAML_HEADER + yaml.safe_dump(vendor_ticks(**params), sort_keys=False)
