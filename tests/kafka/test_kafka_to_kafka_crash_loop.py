"""Offsets restored exactly after SIGKILL, Kafka -> Kafka (issue 10, item 9): a bounded Kafka
source (``stop_at: end``) through a watermark, a keyed dedup and 10-second windows into
exactly-once Kafka sinks, killed with SIGKILL at seeded random points -- inside checkpoints,
inside the sink's transaction, mid-batch -- and restarted until it finishes. Each output topic
then holds exactly what a clean run's holds, record for record and in order per partition,
and the consumer group's committed offsets are the input's end.

Read back with read_committed keeping each checkpoint's last attempt
(``connectors/kafka/reader.py``): tansu returns the records of aborted transactions too;
with ``SURESTREAM_TEST_KAFKA`` naming a real cluster the plain read_committed view is
compared."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import yaml
from confluent_kafka import Consumer, TopicPartition
from live_source_helpers import create_topic, produce

from surestream.connectors.kafka.broker import TEST_CLUSTER_ENV
from surestream.connectors.kafka.reader import committed_messages, read_all
from surestream.runners.local import faults

REAL_KAFKA = bool(os.environ.get(TEST_CLUSTER_ENV))
PARTITIONS = 3
RECORDS = 600
SEED = 10
#: the outputs with a key: the same key always lands in the same partition, so each
#: partition's content is compared record for record in offset order
KEYED = ("trades", "windows")
#: restarts the crash loop may take before it must have finished
MAX_LIVES = 12


def input_records() -> list[tuple[int, bytes]]:
    """Trades over 3 partitions, 1 s of event time apart, every 9th one sent twice (a
    duplicate for the dedup), every 41st not JSON (an error record)."""
    out: list[tuple[int, bytes]] = []
    for i in range(RECORDS):
        part = i % PARTITIONS
        if i % 41 == 7:
            out.append((part, b'{"trade_id": '))
            continue
        value = json.dumps({"trade_id": i, "ts": 1_000 * i, "symbol": "ABC"[i % 3],
                            "qty": i % 5 + 1}).encode()
        out.append((part, value))
        if i % 9 == 4:
            out.append((part, value))
    return out


def make_spec(folder: Path, bootstrap: str, source_topic: str, topics: dict[str, str],
              group: str) -> Path:
    sink = {"type": "kafka", "bootstrap": bootstrap, "delivery": "exactly_once"}
    doc = {
        "pipeline": "k2k-crash-loop",
        "source": {"type": "kafka", "bootstrap": bootstrap, "topics": [source_topic],
                   "stop_at": "end", "group_id": group},
        "streams": {
            "trades": {"from": "source", "steps": [
                {"type": "watermark", "timestamp_column": "ts",
                 "max_out_of_orderness_ms": 3_000},
                {"type": "keyed_dedup", "key_fields": ["trade_id"],
                 "time_window_ms": 60_000}]},
            "windows": {"from": "trades", "steps": [
                {"type": "window", "kind": "tumbling", "size_ms": 10_000,
                 "key_fields": ["symbol"],
                 "aggregations": {"qty": "sum(qty)", "n": "count()"}}]},
        },
        "outputs": {
            "trades": {**sink, "topic": topics["trades"], "key_fields": ["symbol"]},
            "windows": {**sink, "topic": topics["windows"], "key_fields": ["symbol"]},
            "late_window": {**sink, "topic": topics["late_window"]},
            "errors": {**sink, "topic": topics["errors"]},
        },
        "runtime": {"batch_size": 25},
        "checkpoint": {"dir": str(folder / "checkpoints"), "interval_records": 50},
    }
    spec = folder / "spec.yaml"
    spec.write_text(yaml.safe_dump(doc))
    return spec


def run(spec: Path, fault: str | None = None, counts: Path | None = None) -> int:
    env = {k: v for k, v in os.environ.items() if k not in (faults.ENV, faults.COUNTS_ENV)}
    if fault:
        env[faults.ENV] = fault
    if counts:
        env[faults.COUNTS_ENV] = str(counts)
    proc = subprocess.run([sys.executable, "-m", "surestream", "run", str(spec)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode in (0, -9), proc.stderr[-2000:]
    return proc.returncode


def in_offset_order(bootstrap: str, topic: str) -> dict[int, list[tuple[bytes | None, bytes]]]:
    kept = {id(m): m for m in committed_messages(read_all(bootstrap, topic),
                                                 last_attempt_only=not REAL_KAFKA)}
    out: dict[int, list[tuple[bytes | None, bytes]]] = {}
    for m in sorted(kept.values(), key=lambda m: (m.partition, m.offset)):
        out.setdefault(m.partition, []).append((m.key, m.value))
    return out


def in_commit_order(bootstrap: str, topic: str) -> list[tuple[bytes | None, bytes]]:
    """The topic's records in the order their checkpoints committed them."""
    return [(m.key, m.value) for m in committed_messages(
        read_all(bootstrap, topic), last_attempt_only=not REAL_KAFKA)]


def committed_offsets(bootstrap: str, topic: str, group: str) -> dict[int, int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        got = c.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=10)
    finally:
        c.close()
    return {tp.partition: tp.offset for tp in got}


def test_kafka_to_kafka_killed_at_random_points_writes_what_a_clean_run_writes(
        tmp_path, kafka_bootstrap, kafka_topic) -> None:
    source = kafka_topic("k2k-in")
    create_topic(kafka_bootstrap, source, PARTITIONS)
    records = input_records()
    produce(kafka_bootstrap, source, records, linger_ms=20)
    ends = {p: sum(1 for part, _ in records if part == p) for p in range(PARTITIONS)}

    tags = ("trades", "windows", "late_window", "errors")
    runs = {name: {tag: kafka_topic(f"k2k-{name}-{tag}") for tag in tags}
            for name in ("clean", "crashed")}
    for topics in runs.values():
        for t in topics.values():
            create_topic(kafka_bootstrap, t, PARTITIONS)
    specs, groups = {}, {}
    for name, topics in runs.items():
        (tmp_path / name).mkdir()
        groups[name] = kafka_topic(f"k2k-group-{name}")
        specs[name] = make_spec(tmp_path / name, kafka_bootstrap, source, topics, groups[name])

    # the clean run, counting how often it passes each kill point
    counts_file = tmp_path / "counts.json"
    assert run(specs["clean"], counts=counts_file) == 0
    counts = json.loads(counts_file.read_text())
    points = [p for p in faults.ALL_POINTS if counts.get(p, 0) > 0]
    assert set(faults.SINK_POINTS) <= set(points)  # the Kafka sink's own points are reached

    # the crash loop: each life killed at a seeded random point and hit, until one finishes
    rng = random.Random(SEED)
    kills = []
    for _ in range(MAX_LIVES):
        point = points[len(kills) % len(points)] if len(kills) < len(points) \
            else rng.choice(points)
        fault = f"{point}:{rng.randint(1, max(1, counts[point] // 2))}"
        if run(specs["crashed"], fault) == 0:
            break
        kills.append(fault)
    else:
        assert run(specs["crashed"]) == 0
    assert len(kills) >= len(points) // 2, kills  # killed many times, at many points

    for tag in tags:
        assert in_commit_order(kafka_bootstrap, runs["crashed"][tag]) == \
            in_commit_order(kafka_bootstrap, runs["clean"][tag]), f"{tag} after {kills}"
    for tag in tags:
        if tag not in KEYED:  # no key: the producer picks any partition, so only the
            continue          # commit order above is the run's own
        clean = in_offset_order(kafka_bootstrap, runs["clean"][tag])
        crashed = in_offset_order(kafka_bootstrap, runs["crashed"][tag])
        assert crashed == clean, f"{tag} differs per partition after kills {kills}"

    # the outcome itself: every distinct good trade once, the bad ones as errors
    trades = [json.loads(v) for part in in_offset_order(
        kafka_bootstrap, runs["clean"]["trades"]).values() for _, v in part]
    good = [i for i in range(RECORDS) if i % 41 != 7]
    assert sorted(r["trade_id"] for r in trades) == good
    errors = sum(len(p) for p in in_offset_order(kafka_bootstrap,
                                                 runs["clean"]["errors"]).values())
    assert errors == RECORDS - len(good)
    windows = [json.loads(v) for part in in_offset_order(
        kafka_bootstrap, runs["clean"]["windows"]).values() for _, v in part]
    assert sum(w["n"] for w in windows) == len(good)

    # the group's committed offsets are the input's end, for the crashed run too
    assert committed_offsets(kafka_bootstrap, source, groups["crashed"]) == ends
    assert committed_offsets(kafka_bootstrap, source, groups["clean"]) == ends
