"""Reading an output topic back: every message, to the end, as ``read_committed`` sees it.

Used by ``RunResult.rows(tag)`` (``connectors/readback.py``), ``surestream verify`` and the
tests. Messages surestream produced are put back in commit order -- by run, checkpoint and
``surestream.index`` (the topic's partitions alone have no order between them) -- and
others follow in partition and offset order.

**Brokers that do not filter aborted transactions.** Apache Kafka hides the records of an
aborted transaction from ``read_committed`` consumers. tansu (the embedded broker) does
not: a crash in the middle of a checkpoint's transaction leaves that attempt's records
readable, and the restarted run produces the checkpoint again in a new attempt. With
``last_attempt_only`` (the default) the reader keeps, for each run and checkpoint, only the
records of its highest ``surestream.attempt``. That is exactly the committed attempt:
attempts of one checkpoint are sequential (each new one starts after ``init_transactions``
fenced the one before), their numbers are counted durably, and once a checkpoint's
transaction has committed nothing is ever produced for it again. On Apache Kafka the
filter removes nothing (aborted records never arrive), so it is safe everywhere; the tests
read with ``last_attempt_only=False`` when ``SURESTREAM_TEST_KAFKA`` names a real cluster,
which is then the plain ``read_committed`` check.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaError, TopicPartition

from surestream.connectors.kafka.messages import (
    ATTEMPT_HEADER,
    CHECKPOINT_HEADER,
    INDEX_HEADER,
    RUN_HEADER,
)


@dataclass
class TopicMessage:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int
    headers: dict[str, bytes] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        value = self.headers.get(name)
        return None if value is None else value.decode()

    def record(self) -> Any:
        """The value as the JSON it holds."""
        return None if self.value is None else orjson.loads(self.value)


def read_all(bootstrap: str, topic: str, *, timeout_s: float = 60.0,
             isolation: str = "read_committed") -> list[TopicMessage]:
    """Every message of ``topic`` from the start to its end, in partition/offset order."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "surestream-reader",
                         "enable.auto.commit": False, "isolation.level": isolation,
                         "enable.partition.eof": True, "fetch.wait.max.ms": 10,
                         "auto.offset.reset": "earliest"})
    try:
        meta = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
        if meta is None or meta.error is not None:
            raise ValueError(f"Kafka topic {topic} does not exist on {bootstrap}")
        partitions = sorted(meta.partitions)
        ends = {}
        starts = []
        for p in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p),
                                                       timeout=timeout_s)
            if high > low:
                ends[p] = high
                starts.append(TopicPartition(topic, p, low))
        messages: list[TopicMessage] = []
        if not starts:
            return messages
        consumer.assign(starts)
        pending = set(ends)
        deadline = time.monotonic() + timeout_s
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading Kafka topic {topic} to its end took more than "
                                   f"{timeout_s:g} s (partitions {sorted(pending)} left)")
            for m in consumer.consume(1000, 0.2):
                err = m.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        if m.offset() >= ends[m.partition()]:
                            pending.discard(m.partition())
                        continue
                    raise RuntimeError(f"reading Kafka topic {topic}: {err.str()}")
                messages.append(TopicMessage(m.partition(), m.offset(), m.key(), m.value(),
                                             m.timestamp()[1], dict(m.headers() or [])))
        messages.sort(key=lambda x: (x.partition, x.offset))
        return messages
    finally:
        consumer.close()


def committed_messages(messages: list[TopicMessage], *,
                       last_attempt_only: bool = True) -> list[TopicMessage]:
    """``messages`` in commit order, each checkpoint's earlier attempts left out when
    ``last_attempt_only`` (the broker does not filter aborted transactions; see above)."""
    ours: list[TopicMessage] = []
    others: list[TopicMessage] = []
    last: dict[tuple[str, int], int] = {}
    for m in messages:
        run, cp = m.header(RUN_HEADER), m.header(CHECKPOINT_HEADER)
        if run is None or cp is None:
            others.append(m)
            continue
        ours.append(m)
        attempt = m.header(ATTEMPT_HEADER)
        if attempt is not None:
            key = (run, int(cp))
            last[key] = max(last.get(key, 0), int(attempt))
    if last_attempt_only:
        ours = [m for m in ours if m.header(ATTEMPT_HEADER) is None
                or int(m.header(ATTEMPT_HEADER)) == last[(m.header(RUN_HEADER),
                                                          int(m.header(CHECKPOINT_HEADER)))]]
    first_seen: dict[str, int] = {}
    for m in ours:
        run = m.header(RUN_HEADER)
        first_seen[run] = min(first_seen.get(run, m.timestamp_ms), m.timestamp_ms)
    ours.sort(key=lambda m: (first_seen[m.header(RUN_HEADER)], m.header(RUN_HEADER),
                             int(m.header(CHECKPOINT_HEADER)), int(m.header(INDEX_HEADER) or 0)))
    return [*ours, *others]


def read_committed_records(bootstrap: str, topic: str, *, last_attempt_only: bool = True,
                           timeout_s: float = 60.0) -> list[Any]:
    """The records (JSON values) an output topic holds, in commit order."""
    return [m.record() for m in committed_messages(read_all(bootstrap, topic,
                                                            timeout_s=timeout_s),
                                                   last_attempt_only=last_attempt_only)]
