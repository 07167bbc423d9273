"""The ``hardened_iso_streaming`` template: real-time ISO LMP into curated tables, exactly once.

``hardened_iso_streaming(**params)`` returns a pipeline spec dict (valid for ``surestream
validate``); its defaults are the hardening plan's seed parameters. The pipeline
(docs/energy.md, "The pipeline"):

1. ``event_timestamp`` is the event time; the watermark trails the newest event time seen
   by 10 minutes (bounded out-of-orderness); a source partition silent for 1 minute of
   wall time (a live feed) stops holding the watermark back (``idle_source_timeout_ms``).
2. Messages at or behind the watermark go to ``quarantine.late_iso_lmp`` (Iceberg,
   partitioned by processing date and ISO) with the watermark, their lateness and their
   original timestamp: counted, never dropped.
3. Re-sent messages are dropped: dedup on ``[iso, node, interval_start, message_id]``
   within 10 minutes of event time, keeping the first; state lives 1 hour of event time.
4. Corrections: per iso/node/interval_start the newest version wins. The Iceberg sink
   appends (it has no merge by key: its ``key`` only declares what ``verify`` checks is
   unique), so the stream resolves them before the table: a ``last`` dedup per
   iso/node/interval_start holds each price until the watermark passes its interval and
   emits the last version received -- the newest, as an ISO publishes versions in order.
   A correction that comes after that is late, and quarantined like any late message.
   ``curated.rt_lmp_5m`` thus holds one row per key, final, written with
   write-audit-publish.
5. ClickHouse (when a connection is given) takes every on-time version at once into a
   ``ReplacingMergeTree(event_version)`` keyed by iso, node, interval_start: read with
   ``FINAL`` it shows the newest version, minutes before Iceberg has it, and ends equal to
   the Iceberg table.
6. Hourly per-node aggregates (1 h tumbling windows per iso, node over the final prices:
   avg/min/max lmp and the interval count) into ``curated.rt_lmp_hourly``.
"""

from __future__ import annotations

from typing import Any

INTERVAL_MS = 300_000
#: the feed's fields and their types (a value that does not fit goes to `errors`)
FEED_SCHEMA: dict[str, str] = {
    "iso": "string", "node": "string", "interval_start": "string",
    "interval_end": "string", "event_timestamp": "string", "lmp": "float",
    "energy": "float", "congestion": "float", "loss": "float", "message_id": "string",
    "event_version": "int", "published_at": "string",
}
KEY = ["iso", "node", "interval_start"]
MESSAGE_KEY = [*KEY, "message_id"]
_TS = "STRPTIME({0}, '%Y-%m-%dT%H:%M:%SZ')"
TIMESTAMP_COLUMNS = ("interval_start", "interval_end", "event_timestamp", "published_at")


def _under(folder: str, name: str) -> str:
    """``folder/name``, or ``name`` alone for the spec's own folder (``.`` or empty)."""
    return name if folder in ("", ".") else f"{folder.rstrip('/')}/{name}"


def _timestamps(columns: tuple[str, ...] = TIMESTAMP_COLUMNS) -> dict[str, str]:
    return {c: _TS.format(c) for c in columns}


def hardened_iso_streaming(
        *,
        input_path: str = "data/iso/lmp.jsonl",
        out_dir: str = "out/iso",
        watermark_max_out_of_order_ms: int = 600_000,
        idle_timeout_ms: int = 60_000,
        dedup_window_ms: int = 600_000,
        state_ttl_ms: int = 3_600_000,
        clickhouse: dict[str, Any] | None = None,
        kafka: dict[str, Any] | None = None,
        catalog: dict[str, Any] | None = None,
        checkpoint_interval_records: int | None = 2_000,
        checkpoint_interval_ms: int | None = 60_000,
        batch_size: int = 65_536,
        pipeline: str = "hardened-iso-streaming",
) -> dict[str, Any]:
    """The spec dict of the hardened ISO LMP pipeline (module docstring).

    ``input_path``: the feed (JSON lines, a file or a glob; one partition per file).
    ``out_dir``: the warehouse (embedded SQLite catalog), checkpoints and error files.
    ``clickhouse``: ``{host, port, database?, table?, user?, password?}`` adds the
    ClickHouse output; None leaves it out. ``kafka``: ``{topic | topics, bootstrap?,
    group_id?, stop_at?}`` reads an ISO poller's topic(s) instead of ``input_path`` (live
    unless ``stop_at: end``; each partition has its own watermark, and one silent for
    ``idle_timeout_ms`` stops holding the others back). ``catalog``: pyiceberg catalog
    properties instead of the embedded one."""
    warehouse = _under(out_dir, "warehouse")
    catalog = catalog or {"uri": f"sqlite:///{warehouse}/catalog.db", "warehouse": warehouse}
    streams: dict[str, Any] = {
        "validated": {"from": "source", "steps": [
            {"type": "watermark", "name": "add_event_time_watermark",
             "timestamp_column": "event_timestamp",
             "max_out_of_orderness_ms": watermark_max_out_of_order_ms,
             "idle_source_timeout_ms": idle_timeout_ms,
             "strategy": "bounded_out_of_orderness"},
            {"type": "late_data_side_output", "name": "quarantine_late", "output_tag": "late",
             "metadata": {"include_watermark": True, "include_lateness_ms": True,
                          "include_original_timestamp": True}},
            {"type": "keyed_dedup", "name": "dedup_messages", "key_fields": MESSAGE_KEY,
             "time_window_ms": dedup_window_ms, "strategy": "first",
             "state_ttl_ms": state_ttl_ms},
        ]},
        "final_versions": {"from": "validated", "steps": [
            {"type": "keyed_dedup", "name": "newest_version", "key_fields": KEY,
             "time_window_ms": INTERVAL_MS, "strategy": "last",
             "state_ttl_ms": max(state_ttl_ms, INTERVAL_MS)},
        ]},
        "rt_lmp_5m": {"from": "final_versions", "steps": [
            {"type": "with_columns", "name": "curated_timestamps", "columns": _timestamps()},
        ]},
        "rt_lmp_hourly": {"from": "final_versions", "steps": [
            {"type": "window", "name": "hourly_per_node", "key_fields": ["iso", "node"],
             "kind": "tumbling", "size_ms": 3_600_000, "late_output_tag": "late_hourly",
             "aggregations": {"avg_lmp": "avg(lmp)", "min_lmp": "min(lmp)",
                              "max_lmp": "max(lmp)", "interval_count": "count()"}},
            {"type": "with_columns", "name": "hourly_timestamps",
             "columns": {"window_start": "CAST(window_start * 1000 AS TIMESTAMP)",
                         "window_end": "CAST(window_end * 1000 AS TIMESTAMP)"}},
        ]},
        "late_iso_lmp": {"from": "late", "steps": [
            {"type": "with_columns", "name": "late_timestamps",
             "columns": _timestamps(("interval_start", "interval_end", "published_at"))},
            {"type": "processing_time", "name": "stamp_processing_date",
             "column": "processing_date", "unit": "date"},
            {"type": "processing_time", "name": "stamp_ingested_at", "column": "ingested_at",
             "unit": "timestamp"},
        ]},
    }
    outputs: dict[str, Any] = {
        "rt_lmp_5m": {
            "type": "iceberg", "catalog": catalog, "table": "curated.rt_lmp_5m",
            "partition_by": ["day(interval_start)", "iso"], "write_audit_publish": True,
            "audit": {"not_null": [*KEY, "lmp", "event_version"], "unique": KEY,
                      "ranges": {"lmp": {"min": -2000, "max": 10000}}},
            "key": KEY},
        "rt_lmp_hourly": {
            "type": "iceberg", "catalog": catalog, "table": "curated.rt_lmp_hourly",
            "partition_by": ["iso"], "write_audit_publish": True,
            "audit": {"not_null": ["iso", "node", "window_start", "avg_lmp"],
                      "unique": ["iso", "node", "window_start"]},
            "key": ["iso", "node", "window_start"]},
        "late_iso_lmp": {
            "type": "iceberg", "catalog": catalog, "table": "quarantine.late_iso_lmp",
            "partition_by": ["processing_date", "iso"],
            "processing_time_columns": ["processing_date", "ingested_at"]},
        "late_hourly": {"type": "file", "path": _under(out_dir, "late_hourly.jsonl"),
                        "format": "jsonl"},
        "errors": {"type": "file", "path": _under(out_dir, "errors.jsonl"), "format": "jsonl"},
    }
    if clickhouse is not None:
        streams["rt_lmp_5m_clickhouse"] = {"from": "validated", "steps": [
            {"type": "with_columns", "name": "clickhouse_columns",
             "columns": {**_timestamps(),
                         "event_version": "CAST(event_version AS UINTEGER)"}},
        ]}
        outputs["rt_lmp_5m_clickhouse"] = {
            "type": "clickhouse", "host": clickhouse.get("host", "127.0.0.1"),
            "port": int(clickhouse.get("port", 9000)),
            "database": clickhouse.get("database", "default"),
            "table": clickhouse.get("table", "rt_lmp_5m"),
            "key_columns": KEY, "version_column": "event_version",
            "partition_by": "toYYYYMMDD(interval_start)",
            **{k: clickhouse[k] for k in ("user", "password") if k in clickhouse},
            "key": KEY}
    checkpoint: dict[str, Any] = {"dir": _under(out_dir, "checkpoints")}
    if checkpoint_interval_records is not None:
        checkpoint["interval_records"] = checkpoint_interval_records
    if checkpoint_interval_ms is not None:
        checkpoint["interval_ms"] = checkpoint_interval_ms
    source: dict[str, Any] = {"type": "file", "path": input_path, "format": "jsonl",
                              "schema": dict(FEED_SCHEMA)}
    if kafka is not None:
        topics = kafka.get("topics") or [kafka.get("topic", "iso.rt_lmp")]
        source = {"type": "kafka", "topics": list(topics),
                  "group_id": kafka.get("group_id", pipeline), "start": "earliest",
                  "format": "json", "schema": dict(FEED_SCHEMA),
                  "options": {"fetch.wait.max.ms": 10, **kafka.get("options", {})}}
        for key in ("bootstrap", "stop_at"):
            if kafka.get(key) is not None:
                source[key] = kafka[key]
    return {
        "pipeline": pipeline,
        "source": source,
        "streams": streams,
        "outputs": outputs,
        "checkpoint": checkpoint,
        "runtime": {"batch_size": batch_size},
    }
