"""The snapshot -> metrics mapping (``ops/metrics_families``) from hand-made snapshots.

The Kafka probes are added by the Kafka reader and sink (their shapes are the shared
contract, HELPERS.md); here snapshots carry them or not, and the metrics must follow: the
probes' figures under the contract's names and labels when present, nothing when absent.
"""

from __future__ import annotations

from typing import Any

from metrics_scrape import matching, parse, value
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from surestream.ops.metrics import SnapshotCollector
from surestream.ops.metrics_families import snapshot_families


def hist(buckets: list[float], counts: list[int], total: float) -> dict[str, Any]:
    return {"buckets": buckets, "counts": counts, "sum": total, "count": sum(counts)}


def snapshot(**extra: Any) -> dict[str, Any]:
    """A small run: a Kafka source of two partitions, a watermark, a dedup, two outputs."""
    snap = {
        "pipeline": "orders", "run_id": "r1", "pid": 1, "state": "running", "live": True,
        "started_at_ms": 1_000_000, "now_ms": 1_060_000, "uptime_s": 60.0,
        "records_in": 500, "records_per_s": 10.0, "watermark": 90_000,
        "watermark_lag_ms": 3_000, "counters": {"late": 2, "duplicates": 7, "errors": 1},
        "operators": [
            {"name": "wm", "stream": "main", "kind": "watermark", "records_in": 499,
             "records_out": 498, "emitted": {"errors": 1}, "seconds": 0.1,
             "records_per_s": 1.0, "counters": {"errors": 1}, "state": {},
             "watermark": 90_000, "watermark_lag_ms": 3_000},
            {"name": "late", "stream": "main", "kind": "late_data_side_output",
             "records_in": 498, "records_out": 496, "emitted": {"late": 2}, "seconds": 0.1,
             "records_per_s": 1.0, "counters": {"late": 2}, "state": {}},
            {"name": "dd", "stream": "main", "kind": "keyed_dedup", "records_in": 496,
             "records_out": 489, "emitted": {}, "seconds": 0.2, "records_per_s": 1.0,
             "counters": {"duplicates": 7, "errors": 0}, "state": {"keys": 480, "bytes": 9000}},
        ],
        "partitions": [
            {"index": 0, "source": "src", "partition": "orders-0", "position": 300,
             "ended": False, "watermark": 90_000, "lag_ms": 0, "operator": "wm"},
            {"index": 1, "source": "src", "partition": "orders-1", "position": 200,
             "ended": False, "watermark": 85_000, "lag_ms": 5_000, "operator": "wm"},
        ],
        "outputs": [
            {"tag": "main", "type": "kafka", "written": 489, "committed": 400,
             "records_per_s": 1.0, "errors_output": False},
            {"tag": "errors", "type": "file", "written": 1, "committed": 1,
             "records_per_s": 0.0, "errors_output": True},
        ],
        "checkpoints": {"taken": 3, "failures": 1, "last_success_ms": 1_050_000,
                        "last_failure": "OSError: disk full",
                        "history": [
                            {"id": 2, "at_ms": 1_040_000, "duration_ms": 12.5,
                             "bytes_written": 100, "bytes_total": 1_000, "ok": True},
                            {"id": 3, "at_ms": 1_050_000, "duration_ms": 20.0,
                             "bytes_written": 50, "bytes_total": 1_200, "ok": True},
                            {"id": 4, "at_ms": 1_055_000, "ok": False, "error": "x"}]},
        "errors": {"by_reason": {"wm|missing_timestamp": 1}, "latest": []},
        "histograms": {
            "operator_seconds": {"wm": hist([0.1, 1.0], [3, 1, 1], 2.5)},
            "checkpoint_seconds": hist([0.01, 0.1], [0, 3, 0], 0.05),
            "latency_event_time_seconds": hist([1.0], [4, 1], 6.0),
            "latency_ingestion_seconds": hist([1.0], [5, 0], 1.0)},
    }
    snap.update(extra)
    return snap


def metrics(snap: dict[str, Any], now_s: float = 1_060.0) -> list:
    registry = CollectorRegistry()
    registry.register(type("C", (), {"collect": lambda self: snapshot_families(snap, now_s)})())
    return parse(generate_latest(registry).decode())


def with_kafka(snap: dict[str, Any]) -> dict[str, Any]:
    for i, p in enumerate(snap["partitions"]):
        p["kafka"] = {"topic": "orders", "partition": i, "group": "g1",
                      "position": p["position"], "end_offset": p["position"] + 10 * i,
                      "lag": 10 * i, "consumed": p["position"]}
    snap["partitions"].append(  # a partition whose end offset is not known yet: no lag
        {"index": 2, "source": "src", "partition": "other-0", "position": 0, "ended": False,
         "kafka": {"topic": "other", "partition": 0, "group": "g1", "position": 0,
                   "end_offset": None, "lag": None, "consumed": 0}})
    snap["outputs"][0]["sink"] = {"topic": "out", "produced": 480, "failed": 2,
                                  "latency": hist([0.01, 0.1], [400, 70, 10], 3.0)}
    return snap


KAFKA_METRICS = ("surestream_source_lag_records", "surestream_kafka_consumed_records_total",
                 "surestream_kafka_produced_records_total",
                 "surestream_kafka_producer_latency_seconds_count")


def test_kafka_probes_become_source_lag_and_topic_metrics():
    m = metrics(with_kafka(snapshot()))
    assert value(m, "surestream_source_lag_records", source="src", partition="0",
                 topic="orders", group="g1", pipeline="orders") == 0
    assert value(m, "surestream_source_lag_records", partition="1", topic="orders") == 10
    assert not matching(m, "surestream_source_lag_records", topic="other")  # lag unknown
    assert value(m, "surestream_kafka_consumed_records_total", topic="orders",
                 group="g1") == 500
    assert value(m, "surestream_kafka_consumed_records_total", topic="other") == 0
    assert value(m, "surestream_kafka_produced_records_total", topic="out",
                 status="delivered") == 480
    assert value(m, "surestream_kafka_produced_records_total", topic="out",
                 status="failed") == 2
    assert value(m, "surestream_kafka_producer_latency_seconds_count", topic="out") == 480
    assert value(m, "surestream_kafka_producer_latency_seconds_bucket", topic="out",
                 le="0.1") == 470


def test_without_kafka_probes_no_kafka_metrics_at_all():
    m = metrics(snapshot())
    for name in KAFKA_METRICS:
        assert not matching(m, name), name


def test_histograms_are_cumulative_with_sum_and_count():
    m = metrics(snapshot())
    buckets = [(s[1]["le"], s[2]) for s in
               matching(m, "surestream_operator_processing_seconds_bucket", operator="wm")]
    assert buckets == [("0.1", 3), ("1.0", 4), ("+Inf", 5)]
    assert value(m, "surestream_operator_processing_seconds_sum", operator="wm") == 2.5
    assert value(m, "surestream_e2e_latency_seconds_count", **{"from": "event_time"}) == 5
    assert value(m, "surestream_e2e_latency_seconds_bucket", le="1.0",
                 **{"from": "ingestion"}) == 5


def test_checkpoint_metrics_take_the_last_successful_checkpoint():
    m = metrics(snapshot(), now_s=1_062.5)
    assert value(m, "surestream_checkpoints_total") == 3
    assert value(m, "surestream_checkpoint_failures_total") == 1
    assert value(m, "flink_checkpoint_duration_ms") == 20.0  # id 3: id 4 failed
    assert value(m, "surestream_checkpoint_size_bytes") == 1_200
    assert value(m, "surestream_checkpoint_written_bytes") == 50
    assert value(m, "surestream_checkpoint_last_success_timestamp_seconds") == 1_050
    assert value(m, "surestream_seconds_since_last_checkpoint") == 12.5
    assert value(m, "surestream_checkpoint_duration_seconds_count") == 3


def test_before_the_first_checkpoint_the_time_counts_from_the_start():
    snap = snapshot(checkpoints={"taken": 0, "failures": 0, "last_success_ms": None,
                                 "last_failure": None, "history": []})
    m = metrics(snap, now_s=1_030.0)
    assert value(m, "surestream_seconds_since_last_checkpoint") == 30
    assert not matching(m, "flink_checkpoint_duration_ms")
    assert not matching(m, "surestream_checkpoint_last_success_timestamp_seconds")


def test_alerts_by_severity_and_errors_by_reason():
    snap = snapshot()
    snap["outputs"][0]["by_severity"] = {"HIGH": 2, "MEDIUM": 5}
    m = metrics(snap)
    assert value(m, "surestream_alerts_fired_total", output="main", severity="HIGH") == 2
    assert value(m, "surestream_alerts_fired_total", output="main", severity="MEDIUM") == 5
    assert len(matching(m, "surestream_alerts_fired_total")) == 2
    assert value(m, "surestream_errors_total", operator="wm",
                 error_type="missing_timestamp") == 1
    assert value(m, "surestream_dlq_records_total", output="errors") == 1
    assert not matching(m, "surestream_dlq_records_total", output="main")


def test_flink_aliases_carry_exactly_the_plans_names_and_types():
    text = generate_latest(_registry(snapshot())).decode()
    types = {f.name: f.type for f in text_string_to_metric_families(text)}
    assert types["flink_watermark_lag_ms"] == "gauge"
    assert types["flink_late_records"] == "counter"  # exposed as flink_late_records_total
    assert types["flink_dedup_duplicates_dropped"] == "unknown"
    assert types["flink_checkpoint_duration_ms"] == "gauge"
    assert "\nflink_dedup_duplicates_dropped{" in text
    assert "# TYPE flink_dedup_duplicates_dropped untyped" in text
    assert "flink_dedup_duplicates_dropped_total" not in text
    m = parse(text)
    assert value(m, "flink_dedup_duplicates_dropped", operator="dd") == 7
    assert value(m, "flink_late_records_total", operator="late") == 2
    assert value(m, "surestream_late_records_total", operator="late") == 2
    assert value(m, "surestream_duplicates_dropped_total", operator="dd") == 7
    assert value(m, "flink_watermark_lag_ms", operator="wm") == 3_000
    assert value(m, "surestream_partition_watermark_lag_ms", partition="orders-1") == 5_000


def test_every_series_is_labelled_by_pipeline():
    m = metrics(with_kafka(snapshot()))
    assert m and all(labels.get("pipeline") == "orders" for _, labels, _ in m)


def _registry(snap: dict[str, Any]) -> CollectorRegistry:
    telemetry = type("T", (), {"snapshot": snap, "pipeline": snap.get("pipeline", "p")})()
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(telemetry, clock=lambda: 1_060.0))
    return registry


def test_before_the_first_snapshot_only_up_is_zero():
    m = parse(generate_latest(_registry({})).decode())
    assert [(name, value) for name, _, value in m] == [("surestream_up", 0)]
    finished = parse(generate_latest(_registry(snapshot(state="finished"))).decode())
    assert value(finished, "surestream_up") == 0
    assert value(finished, "surestream_run_info", state="finished") == 1
