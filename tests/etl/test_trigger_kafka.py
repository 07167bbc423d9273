"""``once`` and ``available_now`` over a Kafka source without ``stop_at``, against the
real broker (issue 14, item 3): each run reads up to the end offsets found when it began,
in one trigger or as many as ``max_records_per_trigger`` allow, checkpoints after each and
stops; run again, it reads only what was produced since. A partition at its trigger's end
is not ended: the watermark waits for its next records, so nothing read by a later run is
late because an earlier run stopped."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from trigger_helpers import committed, wait_for, window_totals

from surestream.model.loader import build_spec
from surestream.runners.local.runner import LocalRunner


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(topic, partitions, 1)]).values():
        f.result(30)


def produce(bootstrap: str, topic: str, ids: range, partitions: int) -> None:
    """Events ``ids`` (1 s apart, 3 keys) round-robin over the partitions, many a batch
    (tansu's reported end is then short of the true one: the source finds the true end)."""
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    for i in ids:
        p.produce(topic, partition=i % partitions, value=json.dumps(
            {"id": i, "key": f"k{i % 3}", "ts": i * 1000, "v": i % 7}).encode())
    assert p.flush(30) == 0


def spec(tmp: Path, bootstrap: str, topic: str, trigger: Any) -> dict[str, Any]:
    return {
        "pipeline": "ktrig",
        "source": {"type": "kafka", "bootstrap": bootstrap, "topics": [topic]},
        "steps": [{"type": "watermark", "name": "wm", "timestamp_column": "ts",
                   "max_out_of_orderness_ms": 2000},
                  {"type": "window", "name": "w", "kind": "tumbling", "size_ms": 10_000,
                   "key_fields": ["key"], "aggregations": {"n": "count()", "v": "sum(v)"}}],
        "outputs": {"main": {"type": "file", "path": str(tmp / "out" / "main.jsonl")},
                    "late_window": {"type": "file", "path": str(tmp / "out" / "late.jsonl")},
                    "errors": {"type": "file", "path": str(tmp / "out" / "errors.jsonl")}},
        "checkpoint": {"dir": str(tmp / "cp")},
        "runtime": {"batch_size": 16, "interleave_records": 8},
        "trigger": trigger}


def run(doc: dict[str, Any]):
    return LocalRunner(build_spec(doc)).run()


def expected(ids: range, closed_below_ms: int) -> dict:
    out: dict = {}
    for i in ids:
        k = (f"k{i % 3}", (i * 1000) // 10_000 * 10_000)
        if k[1] + 10_000 <= closed_below_ms:
            n, v = out.get(k, (0, 0))
            out[k] = (n + 1, v + i % 7)
    return out


def test_once_reads_to_the_end_seen_at_start_then_only_what_came_since(
        kafka_bootstrap, kafka_topic, tmp_path) -> None:
    topic = kafka_topic("events")
    create_topic(kafka_bootstrap, topic, 2)
    produce(kafka_bootstrap, topic, range(0, 95), 2)
    first = run(spec(tmp_path, kafka_bootstrap, topic, "once"))
    assert not first.interrupted
    assert first.records_in == 95 and first.checkpoints == 1
    # the watermark follows the slower partition: 93 s - 2 s; windows up to 90 s final
    assert window_totals(committed(tmp_path)) == expected(range(95), 90_000)
    produce(kafka_bootstrap, topic, range(95, 200), 2)
    second = run(spec(tmp_path, kafka_bootstrap, topic, "once"))
    assert second.restored_from == 1 and second.checkpoints == 1
    assert second.records_in == 200
    assert window_totals(committed(tmp_path)) == expected(range(200), 190_000)
    assert committed(tmp_path, "late.jsonl") == []  # the first run's stop ended nothing


def test_available_now_splits_by_max_records_and_stops(
        kafka_bootstrap, kafka_topic, tmp_path) -> None:
    topic = kafka_topic("events")
    create_topic(kafka_bootstrap, topic, 3)
    produce(kafka_bootstrap, topic, range(0, 100), 3)
    trigger = {"available_now": True, "max_records_per_trigger": 30}
    result = run(spec(tmp_path, kafka_bootstrap, topic, trigger))
    assert not result.interrupted
    assert result.records_in == 100
    assert result.checkpoints == 4  # 30, 60, 90, 100
    assert window_totals(committed(tmp_path)) == expected(range(100), 90_000)
    produce(kafka_bootstrap, topic, range(100, 150), 3)
    again = run(spec(tmp_path, kafka_bootstrap, topic, trigger))
    assert again.records_in == 150 and again.checkpoints == 2  # 30, 20
    assert window_totals(committed(tmp_path)) == expected(range(150), 140_000)
    assert committed(tmp_path, "late.jsonl") == []


def test_processing_time_reads_what_arrived_at_each_trigger_until_stopped(
        kafka_bootstrap, kafka_topic, tmp_path) -> None:
    """A run in a thread: records produced while it runs are read by a later trigger;
    asked to stop, it stops with everything committed."""
    topic = kafka_topic("events")
    create_topic(kafka_bootstrap, topic, 2)
    produce(kafka_bootstrap, topic, range(0, 60), 2)
    doc = spec(tmp_path, kafka_bootstrap, topic, {"processing_time": "100ms"})
    doc["steps"] = doc["steps"][:1]  # the records themselves
    del doc["outputs"]["late_window"]
    runner = LocalRunner(build_spec(doc))
    outcome: list = []
    thread = threading.Thread(target=lambda: outcome.append(runner.run()))
    thread.start()
    try:
        wait_for(lambda: len(committed(tmp_path)) == 60, None, "the first records")
        produce(kafka_bootstrap, topic, range(60, 100), 2)
        wait_for(lambda: len(committed(tmp_path)) == 100, None, "the records sent later")
    finally:
        runner.request_stop()
        thread.join(120)
    assert outcome and outcome[0].interrupted and outcome[0].resume_from is not None
    assert sorted(r["id"] for r in committed(tmp_path)) == list(range(100))
    # a later run resumes from the stop's checkpoint: nothing is read twice
    produce(kafka_bootstrap, topic, range(100, 110), 2)
    doc["trigger"] = "once"
    again = run(doc)
    assert again.checkpoints == 1
    assert sorted(r["id"] for r in committed(tmp_path)) == list(range(110))
