"""A producer that tells the fate of each record: where it landed, or why it did not.

confluent-kafka's ``produce`` only queues; the broker's answer comes later, in a delivery
report served by ``poll``. ``DeliveringProducer.send`` returns a ``Delivery`` that the
report fills in (partition, offset, or the error), and ``wait`` polls until every one it is
given has its answer -- so "sent" always means acknowledged, as the producer's ``acks``
defines it. A record librdkafka refuses at once (larger than ``message.max.bytes``, an
unknown partition) is a ``Delivery`` with its error straight away, not an exception: a
batch goes on past one bad record and reports each.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer


@dataclass
class Delivery:
    """One record's fate: ``ok`` with its partition and offset, or ``error``."""

    topic: str
    key: bytes | None
    size: int
    partition: int | None = None
    offset: int | None = None
    error: str | None = None
    latency_ms: float | None = None
    done: bool = False

    @property
    def ok(self) -> bool:
        return self.done and self.error is None


class DeliveringProducer:
    """A confluent-kafka ``Producer`` on ``config`` whose sends are tracked; ``on_report``
    is called with each ``Delivery`` once its fate is known (for metrics)."""

    def __init__(self, config: dict[str, Any],
                 on_report: Callable[[Delivery], None] | None = None) -> None:
        self.config = config
        self._producer = Producer(config)
        self._on_report = on_report
        #: how long a report may take: librdkafka gives up after delivery.timeout.ms
        self.report_timeout_s = int(config.get("delivery.timeout.ms", 300_000)) / 1000 + 5

    def _report(self, delivery: Delivery, error: str | None, partition: int | None = None,
                offset: int | None = None, started: float | None = None) -> None:
        if delivery.done:  # a late report after ``wait`` gave up on it: counted already
            return
        delivery.error, delivery.partition, delivery.offset = error, partition, offset
        if started is not None:
            delivery.latency_ms = (time.monotonic() - started) * 1000
        delivery.done = True
        if self._on_report is not None:
            self._on_report(delivery)

    def send(self, topic: str, value: bytes, key: bytes | None = None,
             headers: list[tuple[str, bytes]] | None = None,
             partition: int | None = None) -> Delivery:
        """Queue one record; its ``Delivery`` is filled in by a later ``poll``/``wait``."""
        delivery = Delivery(topic, key, len(value) + len(key or b""))
        started = time.monotonic()

        def reported(err: KafkaError | None, msg: Message) -> None:
            if err is not None:
                self._report(delivery, f"{err.name()}: {err.str()}", started=started)
            else:
                self._report(delivery, None, msg.partition(), msg.offset(), started)

        extra: dict[str, Any] = {} if partition is None else {"partition": partition}
        deadline = started + self.report_timeout_s
        while True:
            try:
                self._producer.produce(topic, value, key, on_delivery=reported,
                                       headers=headers, **extra)
                return delivery
            except BufferError:  # the local queue is full: let reports drain it
                if time.monotonic() > deadline:
                    self._report(delivery, "the producer's queue stayed full")
                    return delivery
                self._producer.poll(0.1)
            except KafkaException as e:
                err = e.args[0]
                self._report(delivery, f"{err.name()}: {err.str()}")
                return delivery

    def poll(self, timeout_s: float = 0.0) -> None:
        """Serve the delivery reports that have arrived."""
        self._producer.poll(timeout_s)

    def wait(self, deliveries: Iterable[Delivery], timeout_s: float | None = None) -> None:
        """Poll until every one of ``deliveries`` has its report; those still without one
        after ``timeout_s`` (default: the producer's own delivery timeout) get an error."""
        pending = [d for d in deliveries if not d.done]
        deadline = time.monotonic() + (self.report_timeout_s if timeout_s is None
                                       else timeout_s)
        while pending and time.monotonic() < deadline:
            self._producer.poll(0.05)
            pending = [d for d in pending if not d.done]
        for d in pending:
            self._report(d, f"no delivery report within {timeout_s or self.report_timeout_s:g}"
                            f" s; the broker may be unreachable")

    def close(self, timeout_s: float = 30.0) -> int:
        """Deliver what is queued (up to ``timeout_s``); the number of records left."""
        return self._producer.flush(timeout_s)
