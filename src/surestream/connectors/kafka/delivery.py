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

import numpy as np
from confluent_kafka import KafkaError, KafkaException, Message, Producer

#: upper bounds (seconds) of the producer latency histogram: produce() to delivery report
PRODUCER_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                            2.5, 5.0, 10.0, 30.0, 60.0)
#: latencies kept before they are folded into the histogram (a few hundred KB at most)
_FOLD_AT = 16_384


class DeliveryStats:
    """Delivery reports counted for telemetry: records delivered, failed, and the latency
    from ``produce()`` to the broker's acknowledgement (librdkafka measures it:
    ``Message.latency()``).

    The callbacks do one list append (or one addition): latencies are folded into the
    histogram in bulk (numpy) when ``to_dict`` is read or ``fold`` is called after a
    batch. ``on_delivery`` counts the record and times it; ``on_timed`` only times it, for
    a producer that counts its records otherwise (a transactional sink counts them at the
    commit and times a sample: a callback on every record would cost ~0.5 us each, a
    quarter of what ``produce`` itself costs)."""

    def __init__(self) -> None:
        self.delivered = 0
        self.failed = 0
        self._latencies: list[float] = []
        self._buckets = np.asarray(PRODUCER_LATENCY_BUCKETS)
        self._counts = [0] * (len(PRODUCER_LATENCY_BUCKETS) + 1)
        self._sum = 0.0

    def on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        """confluent-kafka's ``on_delivery`` callback: count the record, time it."""
        if err is None:
            self.delivered += 1
            self._latencies.append(msg.latency() or 0.0)
        else:
            self.failed += 1

    def on_timed(self, err: KafkaError | None, msg: Message) -> None:
        """An ``on_delivery`` callback that only times a delivered record."""
        if err is None:
            self._latencies.append(msg.latency() or 0.0)

    def fold(self, at_least: int = _FOLD_AT) -> None:
        """Fold the pending latencies into the histogram once ``at_least`` wait."""
        values = self._latencies
        if not values or len(values) < at_least:
            return
        self._latencies = []
        arr = np.asarray(values, dtype=np.float64)
        idx = np.searchsorted(self._buckets, arr, side="left")
        for i, n in enumerate(np.bincount(idx, minlength=len(self._counts)).tolist()):
            self._counts[i] += n
        self._sum += float(arr.sum())

    def latency(self) -> dict[str, Any]:
        """The latency histogram (seconds) in the shape of the run telemetry's histograms:
        ``{buckets, counts (per bucket, non-cumulative, last = +Inf), sum, count}``."""
        self.fold(1)
        return {"buckets": list(PRODUCER_LATENCY_BUCKETS), "counts": list(self._counts),
                "sum": self._sum, "count": sum(self._counts)}


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
