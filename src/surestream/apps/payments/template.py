"""The payment processor as a template: ``payments(**params) -> dict`` (a pipeline spec).

    raw payments --watermark (event_time, 1 h)--> late (> 1 h) -> quarantine table
                 --event columns (amount_cents, event_time_ms, event_date)
                 --keyed_dedup (transaction_id, earliest event time)--> transactions
                   dropped duplicates                     -> duplicate_payments
                   per transaction seen twice or more     -> deduplication_audit
    transactions -> payment_transactions                      (deduplicated)
                 -> fraud indicators (velocity, risk, score)  -> payment_transactions_fraud
                 -> 1-minute windows per currency             -> payment_metrics

The audit comes from the dedup step itself (``occurrences_output_tag``): as it releases a
transaction's window it knows how many occurrences the window had and the earliest event
time, so the audit costs one record per duplicated transaction (2 % of the traffic),
not a session window over every payment.

Every table is written exactly once: to PostgreSQL when ``postgres`` (a DSN) is given,
else to the embedded DuckDB file ``duckdb_path`` -- the same table names either way
(docs/payments.md). The shipped YAML ``apps/templates/payments.yaml`` is this factory's
output with its defaults.
"""

from __future__ import annotations

from typing import Any

from surestream.apps.payments.kafka_source import checkpoint_location, kafka_source

#: the tables (output tag -> table name)
TABLES = {
    "transactions": "payment_transactions",
    "fraud": "payment_transactions_fraud",
    "metrics": "payment_metrics",
    "audit": "deduplication_audit",
    "late_payments": "quarantine_late_payments",
    "duplicate_payments": "duplicate_payments",
}
#: tags that a correct run leaves empty (windows after the late split and the held dedup
#: output see no late record): files beside the errors
EMPTY_BY_DESIGN = ("late_metrics",)
FRAUD_FUNCTION = "surestream.apps.payments.fraud:FraudIndicators"
COLUMNS_FUNCTION = "surestream.apps.payments.columns:event_columns"
AUDIT_FUNCTION = "surestream.apps.payments.columns:audit_columns"


def payments(*, input_path: str = "data/payments.jsonl", out_dir: str = "out/payments",
             postgres: str | None = None, duckdb_path: str | None = None,
             source: str = "file",
             kafka_bootstrap: str | None = None, kafka_topic: str | None = None,
             kafka_live: bool = False,
             pipeline: str = "payments",
             watermark_max_out_of_order_ms: int = 3_600_000,
             dedup_window_ms: int = 3_600_000, state_ttl_ms: int = 3_600_000,
             dedup_strategy: str = "earliest",
             velocity_window_ms: int = 600_000, velocity_threshold: int = 5,
             high_risk_above: float = 5000, medium_risk_above: float = 1000,
             metrics_window_ms: int = 60_000,
             checkpoint_dir: str | None = None, checkpoint_interval_ms: int = 5_000,
             batch_size: int = 65_536) -> dict[str, Any]:
    """The payment processor's spec (see the module docstring).

    ``input_path``: the JSON-lines file (or glob) of payment events, unless
    ``kafka_bootstrap`` and ``kafka_topic`` name a Kafka topic to read instead (to its end
    offsets at start). ``source="kafka"``: read Kafka with the connection settings from
    the environment (``kafka_source.py``: ``KAFKA_BOOTSTRAP_SERVERS``,
    ``KAFKA_TOPIC_PAYMENTS``, ``CHECKPOINT_LOCATION`` placeholders, so one spec serves every
    environment; ``kafka_live``: run until stopped). ``postgres``: a libpq DSN; without it
    the tables go to ``duckdb_path`` (default ``<out_dir>/payments.duckdb``). Durations in ms."""
    if source not in ("file", "kafka"):
        raise ValueError(f"source must be 'file' or 'kafka', got {source!r}")
    if source == "kafka" or (kafka_bootstrap and kafka_topic):
        source_spec = kafka_source(pipeline, kafka_bootstrap, kafka_topic, live=kafka_live)
        if source == "kafka":
            checkpoint_dir = checkpoint_dir or checkpoint_location(out_dir)
    else:
        source_spec = {"type": "file", "path": input_path, "format": "jsonl"}
    steps = [
        {"type": "watermark", "name": "payment_event_time", "timestamp_column": "event_time",
         "max_out_of_orderness_ms": watermark_max_out_of_order_ms},
        {"type": "late_data_side_output", "name": "quarantine_late_payments",
         "output_tag": "late_payments"},
        {"type": "map_batches", "name": "event_columns", "function": COLUMNS_FUNCTION},
    ]
    dedup = [
        {"type": "keyed_dedup", "name": "dedup_by_transaction_id",
         "key_fields": ["transaction_id"], "time_window_ms": dedup_window_ms,
         "strategy": dedup_strategy, "state_ttl_ms": state_ttl_ms,
         "duplicates_output_tag": "duplicate_payments",
         "occurrences_output_tag": "payment_occurrences"},
    ]
    fraud_params = {"window_ms": velocity_window_ms, "velocity_threshold": velocity_threshold,
                    "high_above": high_risk_above, "medium_above": medium_risk_above}
    streams: dict[str, Any] = {
        "received": {"from": "source", "steps": steps},
        "transactions": {"from": "received", "steps": dedup},
        "fraud": {"from": "transactions", "steps": [
            {"type": "process", "name": "fraud_indicators", "key_fields": ["sender_account"],
             "function": FRAUD_FUNCTION, "params": fraud_params}]},
        "metrics": {"from": "transactions", "steps": [
            {"type": "window", "name": "payment_metrics_1m", "key_fields": ["currency"],
             "kind": "tumbling", "size_ms": metrics_window_ms,
             "late_output_tag": "late_metrics",
             "aggregations": {"unique_transactions": "count()",
                              "amount_cents": "sum(amount_cents)",
                              "amount_avg": "avg(amount)", "amount_min": "min(amount)",
                              "amount_max": "max(amount)"}}]},
        "audit": {"from": "payment_occurrences", "steps": [
            {"type": "map_batches", "name": "audit_columns", "function": AUDIT_FUNCTION}]},
    }
    outputs = {tag: _table(table, out_dir, postgres, duckdb_path)
               for tag, table in TABLES.items()}
    for tag in EMPTY_BY_DESIGN:
        outputs[tag] = {"type": "file", "path": f"{out_dir}/{tag}.jsonl"}
    outputs["errors"] = {"type": "file", "path": f"{out_dir}/errors.jsonl"}
    return {
        "pipeline": pipeline,
        "source": source_spec,
        "streams": streams,
        "outputs": outputs,
        "checkpoint": {"dir": checkpoint_dir or f"{out_dir}/checkpoints",
                       "interval_ms": checkpoint_interval_ms},
        "runtime": {"batch_size": batch_size},
    }


def _table(table: str, out_dir: str, postgres: str | None,
           duckdb_path: str | None) -> dict[str, Any]:
    if postgres:
        return {"type": "postgres", "dsn": postgres, "table": table}
    return {"type": "duckdb", "path": duckdb_path or f"{out_dir}/payments.duckdb",
            "table": table}
