"""Publishing the simulated payment events to a Kafka topic, at once or paced live.

Each event goes as its JSON line (the bytes ``payments.jsonl`` would hold), keyed by its
``transaction_id`` (default) or ``sender_account``: with the transaction id as the key a
network retry lands in the partition of its original, so per-key order survives; with the
sender a burst stays in one partition. The producer is idempotent (``acks=all``): a retry
of the producer itself never repeats or reorders a record, so the topic holds exactly the
simulated stream.

``rate`` paces the sends: event ``i`` is handed to the producer no earlier than ``i /
rate`` seconds after the start, in ticks of ``TICK_S`` (a live feed at ``rate`` events/s);
without it everything is sent as fast as the producer takes it. Each message's timestamp
is its produce time (``CreateTime``), the start of its end-to-end latency.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

#: the key fields a publisher can key messages by
KEY_FIELDS = ("transaction_id", "sender_account")
#: the pacing tick (s): sends due are made, then the producer is polled
TICK_S = 0.005
_POLL_EVERY = 2_000


@dataclass
class Published:
    """What was handed to the broker, acknowledged, or failed."""

    sent: int = 0
    acked: int = 0
    failures: int = 0
    failed: list[str] = field(default_factory=list)  # the first few reasons
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.failures == 0 and self.acked == self.sent


class PaymentPublisher:
    """An idempotent producer of payment lines to one topic (see the module docstring)."""

    def __init__(self, bootstrap: str, topic: str, key: str = "transaction_id",
                 options: dict[str, Any] | None = None) -> None:
        from confluent_kafka import Producer

        if key not in KEY_FIELDS:
            raise ValueError(f"key must be one of {', '.join(KEY_FIELDS)}, got {key!r}")
        self.topic = topic
        self.result = Published()
        self._key = re.compile(rb'"' + key.encode() + rb'":"([^"]*)"')
        self._since_poll = 0
        self._producer = Producer({
            "bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
            "linger.ms": 5, "compression.type": "lz4",
            "queue.buffering.max.messages": 1_000_000, **(options or {})})

    def send(self, line: bytes) -> None:
        """Queue one event line (no newline)."""
        found = self._key.search(line)
        key = found.group(1) if found else None
        while True:
            try:
                self._producer.produce(self.topic, line, key, on_delivery=self._delivered)
                break
            except BufferError:  # the local queue is full: let deliveries drain it
                self._producer.poll(0.01)
        self.result.sent += 1
        self._since_poll += 1
        if self._since_poll >= _POLL_EVERY:
            self._producer.poll(0)
            self._since_poll = 0

    def publish(self, lines: Iterable[bytes], rate: float | None = None,
                stop: Callable[[], bool] = lambda: False) -> Published:
        """Send every line (paced at ``rate`` per second when given) until ``stop()``;
        then wait for the acknowledgements. The tally."""
        started = time.perf_counter()
        it = iter(lines)
        if rate is None:
            for line in it:
                self.send(line)
                if stop():
                    break
        else:
            done = False
            while not done and not stop():
                due = int(rate * (time.perf_counter() - started)) + 1
                while self.result.sent < due:
                    line = next(it, None)
                    if line is None:
                        done = True
                        break
                    self.send(line)
                self._producer.poll(0)
                if not done:
                    time.sleep(TICK_S)
        self.flush()
        self.result.seconds = time.perf_counter() - started
        return self.result

    def flush(self, timeout_s: float = 120.0) -> Published:
        left = self._producer.flush(timeout_s)
        if left:
            self.result.failures += left
            self.result.failed.append(f"{left} records not acknowledged in {timeout_s:g} s")
        return self.result

    def _delivered(self, err: Any, msg: Any) -> None:
        if err is not None:
            self.result.failures += 1
            if len(self.result.failed) < 10:
                self.result.failed.append(f"{msg.topic()}[{msg.partition()}]: {err}")
            return
        self.result.acked += 1


def ensure_topic(bootstrap: str, topic: str, partitions: int = 1,
                 timeout_s: float = 30.0) -> int:
    """Create ``topic`` with ``partitions`` when it is missing; its partition count."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    found = admin.list_topics(timeout=timeout_s).topics
    if topic in found and found[topic].partitions:
        return len(found[topic].partitions)
    future = admin.create_topics([NewTopic(topic, partitions, 1)])[topic]
    try:
        future.result(timeout_s)
    except Exception as e:  # created meanwhile by someone else: fine
        if "TOPIC_ALREADY_EXISTS" not in str(e):
            raise
    return partitions
