"""Helpers of the Kafka source tests: topics, producing, specs, reading outputs back."""

from __future__ import annotations

import json
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(topic, partitions, 1)]).values():
        f.result(30)


def add_partitions(bootstrap: str, topic: str, total: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_partitions([NewPartitions(topic, total)]).values():
        f.result(30)


def produce(bootstrap: str, topic: str, values: list[tuple[int, bytes | None]],
            linger_ms: int = 5, **headers: bytes) -> None:
    """``values``: (partition, value) pairs, sent in order; several records a batch."""
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": linger_ms})
    for i, (part, value) in enumerate(values):
        p.produce(topic, value=value, key=f"k{i}".encode(), partition=part,
                  headers=list(headers.items()) or None)
    assert p.flush(30) == 0


def trades(n: int, partitions: int, start: int = 0) -> list[tuple[int, bytes]]:
    """``n`` trades (ids from ``start``), round-robin over partitions, event time 1 s
    apart, two symbols."""
    return [((start + i) % partitions,
             json.dumps({"trade_id": start + i, "ts": 1_000 * (start + i),
                         "symbol": "AB"[(start + i) % 2], "qty": (start + i) % 7 + 1}).encode())
            for i in range(n)]


def kafka_spec(bootstrap: str, topics: list[str], **source: Any) -> dict[str, Any]:
    """A source with a watermark and 10-second windows summing qty per symbol."""
    return {
        "pipeline": "ksrc",
        "source": {"type": "kafka", "bootstrap": bootstrap, "topics": topics, **source},
        "steps": [
            {"type": "watermark", "timestamp_column": "ts", "max_out_of_orderness_ms": 2000},
            {"type": "window", "kind": "tumbling", "size_ms": 10_000, "key_fields": ["symbol"],
             "aggregations": {"qty": "sum(qty)", "n": "count()"}}],
    }
