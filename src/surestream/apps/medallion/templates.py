"""The medallion's three hops, each a surestream spec made by a factory (as the seed
templates are): ``bronze(**params)``, ``silver(**params)``, ``gold(**params)`` return spec
dicts valid for ``surestream validate``. Each hop is exactly once on its own: its source
positions (file lines, Kafka offsets, the table's last snapshot read) and its Iceberg
writes commit together at each checkpoint (docs/medallion.md).

* **bronze**: landing files (``landing.received_lines``) or the three Kafka topics
  (``format: raw``) -> ``bronze.events``: ``raw`` (the line or message, as received), the
  ingestion metadata (``ingest_source`` file or topic, ``ingest_partition``,
  ``ingest_offset`` line index or offset, ``ingested_at`` = processing time, one value per
  checkpoint interval) and the envelope as received text (``bronze_columns``). Nothing is
  dropped: a malformed line lands too.
* **silver**: ``bronze.events`` as a table source -> schema validation (``validation``) ->
  a ``data_quality`` step (rule ``known_event_type``: in_set, quarantine) -> valid events,
  deduplicated by event_id (keep the first), into ``silver.events``; schema-invalid and
  quarantined ones (one union, the same columns: ``validation.dq_as_dead_letter``) into
  ``silver.dlq_events`` (with the reason) and to the platform's ``dlq-events`` (a JSONL
  file, or the Kafka topic) as ``{original_message, error, timestamp}``.
* **gold**: ``silver.events`` as a table source -> 5-minute tumbling windows per
  event_type and source: ``event_count``, ``measure_sum``, ``measure_avg`` ->
  ``gold.event_metrics_5m``.

Event time (silver, gold) is the event's ``timestamp``. A table's rows come in the order
they were written, and bronze interleaves its three feeds in turns of
``runtime.interleave_records`` lines, so event time in bronze is out of order by up to the
span a turn covers: ``watermark_max_out_of_order_ms`` must cover it (the demo sets it to
the simulated span: a backfill). A record behind the watermark all the same goes to the
hop's ``*_late`` output, never lost, and the reconciliation fails on it.
"""

from __future__ import annotations

from typing import Any

from surestream.apps.medallion.schemas import DLQ_TOPIC, FEED_TOPICS, USER_EVENT_TYPES

BRONZE_TABLE = "bronze.events"
SILVER_TABLE = "silver.events"
DLQ_TABLE = "silver.dlq_events"
GOLD_TABLE = "gold.event_metrics_5m"
WINDOW_MS = 300_000
_APP = "surestream.apps.medallion"


def _under(folder: str, name: str) -> str:
    """``folder/name``, or ``name`` alone for the spec's own folder (``.`` or empty)."""
    return name if folder in ("", ".") else f"{folder.rstrip('/')}/{name}"


def default_catalog(out_dir: str) -> dict[str, Any]:
    """The embedded SQLite catalog in ``out_dir/warehouse`` (relative to the spec)."""
    warehouse = _under(out_dir, "warehouse")
    return {"uri": f"sqlite:///{warehouse}/catalog.db", "warehouse": warehouse}


def table_source(catalog: dict[str, Any], table: str) -> dict[str, Any]:
    """An Iceberg table read from its first snapshot to its last one at start."""
    return {"type": "iceberg", "catalog": catalog, "table": table, "start": "earliest",
            "stop_at": "end"}


def _checkpoint(out_dir: str, hop: str, records: int | None, ms: int | None,
                ) -> dict[str, Any]:
    checkpoint: dict[str, Any] = {"dir": _under(out_dir, f"checkpoints/{hop}")}
    if records is not None:
        checkpoint["interval_records"] = records
    if ms is not None:
        checkpoint["interval_ms"] = ms
    return checkpoint


def bronze(*, input_paths: list[str] | None = None, out_dir: str = "out/medallion",
           kafka: dict[str, Any] | None = None, catalog: dict[str, Any] | None = None,
           checkpoint_interval_records: int | None = 1_000,
           checkpoint_interval_ms: int | None = 60_000, batch_size: int = 65_536,
           pipeline: str = "medallion-bronze") -> dict[str, Any]:
    """The bronze hop (module docstring). ``input_paths``: the landing files (absolute, or
    relative to the working folder: the landing reader is a Python function).
    ``kafka``: ``{bootstrap?, topics?}`` reads the feeds' topics (to their end at start)
    instead."""
    catalog = catalog or default_catalog(out_dir)
    if kafka is not None:
        source: dict[str, Any] = {
            "type": "kafka", "topics": list(kafka.get("topics") or FEED_TOPICS.values()),
            "group_id": pipeline, "start": "earliest", "stop_at": "end", "format": "raw",
            "metadata": ["topic", "partition", "offset"],
            "options": {"fetch.wait.max.ms": 10}}
        if kafka.get("bootstrap"):
            source["bootstrap"] = kafka["bootstrap"]
    else:
        paths = input_paths or [f"data/{t}.jsonl" for t in FEED_TOPICS.values()]
        source = {"type": "generator", "function": f"{_APP}.landing:received_lines",
                  "params": {"paths": list(paths)}}
    return {
        "pipeline": pipeline,
        "source": source,
        "streams": {"bronze_events": {"from": "source", "steps": [
            {"type": "map_batches", "name": "bronze_columns",
             "function": f"{_APP}.bronze_columns:bronze_columns"},
            {"type": "processing_time", "name": "stamp_ingested_at", "column": "ingested_at",
             "unit": "timestamp"},
        ]}},
        "outputs": {
            "bronze_events": {
                "type": "iceberg", "catalog": catalog, "table": BRONZE_TABLE,
                "partition_by": ["ingest_source"], "write_audit_publish": True,
                "audit": {"not_null": ["raw", "ingest_source", "ingest_offset"],
                          "unique": ["ingest_source", "ingest_partition", "ingest_offset"]},
                "processing_time_columns": ["ingested_at"],
                "key": ["ingest_source", "ingest_partition", "ingest_offset"]},
            "errors": {"type": "file", "path": _under(out_dir, "bronze-errors.jsonl")},
        },
        "checkpoint": _checkpoint(out_dir, "bronze", checkpoint_interval_records,
                                  checkpoint_interval_ms),
        "runtime": {"batch_size": batch_size},
    }


def silver(*, out_dir: str = "out/medallion", catalog: dict[str, Any] | None = None,
           source: dict[str, Any] | None = None,
           watermark_max_out_of_order_ms: int = 3_600_000,
           dedup_window_ms: int = 3_600_000, state_ttl_ms: int = 7_200_000,
           dlq_kafka: dict[str, Any] | None = None,
           checkpoint_interval_records: int | None = 1_000,
           checkpoint_interval_ms: int | None = 60_000, batch_size: int = 65_536,
           pipeline: str = "medallion-silver") -> dict[str, Any]:
    """The silver hop (module docstring). ``source``: instead of the bronze table (tests).
    ``dlq_kafka``: ``{bootstrap?, topic?}`` sends the DLQ messages to a topic
    (``dlq-events``) instead of ``out_dir/dlq-events.jsonl``."""
    catalog = catalog or default_catalog(out_dir)
    if dlq_kafka is not None:
        dlq_sink: dict[str, Any] = {"type": "kafka", "topic": dlq_kafka.get("topic", DLQ_TOPIC),
                                    "delivery": "exactly_once", "fresh_start": "append",
                                    "processing_time_columns": ["timestamp"]}
        if dlq_kafka.get("bootstrap"):
            dlq_sink["bootstrap"] = dlq_kafka["bootstrap"]
    else:
        dlq_sink = {"type": "file", "path": _under(out_dir, f"{DLQ_TOPIC}.jsonl"),
                    "processing_time_columns": ["timestamp"]}
    return {
        "pipeline": pipeline,
        "source": source or table_source(catalog, BRONZE_TABLE),
        "streams": {
            "validated": {"from": "source", "steps": [
                {"type": "map_batches", "name": "validate_schema",
                 "function": f"{_APP}.validation:validate_events"},
                {"type": "route", "name": "valid_or_dlq", "field": "silver_status",
                 "routes": {"valid": "main", "invalid": "invalid"}},
            ]},
            "silver_events": {"from": "validated", "steps": [
                {"type": "data_quality", "name": "silver_rules",
                 "quarantine_output_tag": "dq_failed", "rules": [
                     {"name": "known_event_type", "rule": "in_set", "column": "event_type",
                      "values": [*USER_EVENT_TYPES, "transaction", "metric"],
                      "severity": "error", "on_failure": "quarantine"}]},
                {"type": "watermark", "name": "event_time", "timestamp_column": "event_time_ms",
                 "max_out_of_orderness_ms": watermark_max_out_of_order_ms},
                {"type": "late_data_side_output", "name": "late_events",
                 "output_tag": "silver_late"},
                {"type": "keyed_dedup", "name": "dedup_event_id", "key_fields": ["event_id"],
                 "time_window_ms": dedup_window_ms, "strategy": "first",
                 "state_ttl_ms": state_ttl_ms},
                {"type": "map_batches", "name": "silver_columns",
                 "function": f"{_APP}.shaping:silver_columns"},
            ]},
            "dq_rejects": {"from": "dq_failed", "steps": [
                {"type": "map_batches", "name": "dq_as_dead_letter",
                 "function": f"{_APP}.validation:dq_as_dead_letter"},
            ]},
            "dlq_table": {"from": ["invalid", "dq_rejects"], "steps": [
                {"type": "processing_time", "name": "stamp_dead_lettered_at",
                 "column": "dead_lettered_at", "unit": "timestamp"},
                {"type": "map_batches", "name": "dlq_columns",
                 "function": f"{_APP}.shaping:dlq_columns"},
            ]},
            "dlq_messages": {"from": ["invalid", "dq_rejects"], "steps": [
                {"type": "processing_time", "name": "stamp_dlq_timestamp", "column": "timestamp",
                 "unit": "timestamp"},
                {"type": "map_batches", "name": "dlq_message",
                 "function": f"{_APP}.shaping:dlq_message"},
            ]},
        },
        "outputs": {
            "silver_events": {
                "type": "iceberg", "catalog": catalog, "table": SILVER_TABLE,
                "partition_by": ["feed"], "write_audit_publish": True,
                "audit": {"not_null": ["event_id", "event_type", "source", "event_time_ms"],
                          "unique": ["event_id"]},
                "key": ["event_id"]},
            "dlq_table": {
                "type": "iceberg", "catalog": catalog, "table": DLQ_TABLE,
                "partition_by": ["dlq_reason"], "write_audit_publish": True,
                "audit": {"not_null": ["dlq_reason", "error", "raw"]},
                "processing_time_columns": ["dead_lettered_at"],
                "key": ["bronze_source", "bronze_partition", "bronze_offset"]},
            "dlq_messages": dlq_sink,
            "silver_late": {"type": "file", "path": _under(out_dir, "silver-late.jsonl")},
            "errors": {"type": "file", "path": _under(out_dir, "silver-errors.jsonl")},
        },
        "checkpoint": _checkpoint(out_dir, "silver", checkpoint_interval_records,
                                  checkpoint_interval_ms),
        "runtime": {"batch_size": batch_size},
    }


def gold(*, out_dir: str = "out/medallion", catalog: dict[str, Any] | None = None,
         source: dict[str, Any] | None = None,
         watermark_max_out_of_order_ms: int = 3_600_000,
         checkpoint_interval_records: int | None = 1_000,
         checkpoint_interval_ms: int | None = 60_000, batch_size: int = 65_536,
         pipeline: str = "medallion-gold") -> dict[str, Any]:
    """The gold hop (module docstring). ``source``: instead of the silver table (tests)."""
    catalog = catalog or default_catalog(out_dir)
    return {
        "pipeline": pipeline,
        "source": source or table_source(catalog, SILVER_TABLE),
        "streams": {"event_metrics_5m": {"from": "source", "steps": [
            {"type": "watermark", "name": "event_time", "timestamp_column": "event_time_ms",
             "max_out_of_orderness_ms": watermark_max_out_of_order_ms},
            {"type": "window", "name": "per_type_source_5m",
             "key_fields": ["event_type", "source"], "kind": "tumbling", "size_ms": WINDOW_MS,
             "late_output_tag": "gold_late",
             "aggregations": {"event_count": "count()", "measure_sum": "sum(measure)",
                              "measure_avg": "avg(measure)"}},
            {"type": "with_columns", "name": "window_timestamps",
             "columns": {"window_start": "CAST(window_start * 1000 AS TIMESTAMP)",
                         "window_end": "CAST(window_end * 1000 AS TIMESTAMP)"}},
        ]}},
        "outputs": {
            "event_metrics_5m": {
                "type": "iceberg", "catalog": catalog, "table": GOLD_TABLE,
                "partition_by": ["day(window_start)"], "write_audit_publish": True,
                "audit": {"not_null": ["event_type", "source", "window_start",
                                       "event_count"],
                          "unique": ["event_type", "source", "window_start"]},
                "key": ["event_type", "source", "window_start"]},
            "gold_late": {"type": "file", "path": _under(out_dir, "gold-late.jsonl")},
            "errors": {"type": "file", "path": _under(out_dir, "gold-errors.jsonl")},
        },
        "checkpoint": _checkpoint(out_dir, "gold", checkpoint_interval_records,
                                  checkpoint_interval_ms),
        "runtime": {"batch_size": batch_size},
    }
