"""Reading a topic back whole: what the demo checks its output topics with.

A ``read_committed`` consumer assigned every partition from its start reads until each
partition has reported its end and then nothing more arrives for ``quiet_s`` (the
embedded broker reports a partition's end from its last *batch*, so the end alone is not
trusted). Each message is decoded as JSON and its key compared with the field the plan
keys it by.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson


@dataclass
class TopicContent:
    topic: str
    records: int = 0
    per_partition: Counter[int] = field(default_factory=Counter)
    #: messages whose key is not the text of the field they are keyed by
    wrong_keys: int = 0
    #: key -> partitions it was found in (a key must stay in one partition)
    key_partitions: dict[bytes, set[int]] = field(default_factory=dict)

    @property
    def keys_in_several_partitions(self) -> int:
        return sum(len(p) > 1 for p in self.key_partitions.values())


def read_topic(bootstrap: str, topic: str, key_field: str = "", *, quiet_s: float = 1.0,
               timeout_s: float = 120.0) -> TopicContent:
    """Every committed record of ``topic``; with ``key_field``, each key checked against
    the record's ``key_field`` (as text)."""
    from confluent_kafka import Consumer, KafkaError, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "surestream-readback",
                         "enable.auto.commit": False, "enable.partition.eof": True,
                         "isolation.level": "read_committed", "fetch.wait.max.ms": 10})
    content = TopicContent(topic)
    try:
        meta = consumer.list_topics(topic, timeout=30).topics[topic]
        parts = sorted(meta.partitions)
        consumer.assign([TopicPartition(topic, p, 0) for p in parts])  # 0: from the start
        at_end: set[int] = set()
        deadline = time.monotonic() + timeout_s
        last_record = time.monotonic()
        while time.monotonic() < deadline:
            messages = consumer.consume(10_000, 0.2)
            for m in messages:
                err = m.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        at_end.add(m.partition())
                        continue
                    raise RuntimeError(f"reading {topic}: {err}")
                _count(content, m, key_field)
                last_record = time.monotonic()
            if len(at_end) == len(parts) and time.monotonic() - last_record >= quiet_s:
                return content
        raise TimeoutError(f"reading {topic}: not at its end after {timeout_s:g} s "
                           f"({content.records:,} records read)")
    finally:
        consumer.close()


def _count(content: TopicContent, message: Any, key_field: str) -> None:
    content.records += 1
    content.per_partition[message.partition()] += 1
    if not key_field:
        return
    key = message.key()
    content.key_partitions.setdefault(key, set()).add(message.partition())
    try:
        value = orjson.loads(message.value())
        expected = value.get(key_field)
    except (orjson.JSONDecodeError, AttributeError):
        expected = None
    if expected is None or key != str(expected).encode():
        content.wrong_keys += 1
