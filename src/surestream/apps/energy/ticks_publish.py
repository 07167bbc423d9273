"""Publishing a simulated vendor-tick feed to a Kafka topic.

The topic gets **one partition**: the lines go in the order they were written, so the
watermark a consumer sees -- and with it which ticks are late -- is exactly what the truth
says (with several partitions the late set would depend on how the partitions are
interleaved when read). Each line is keyed by its vendor; the producer is idempotent, so a
retry never reorders or repeats a line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_VENDOR = re.compile(rb'"vendor":"([^"]*)"')


class PublishError(RuntimeError):
    """Not every line was acknowledged by the cluster."""


def ensure_topic(bootstrap: str, topic: str, timeout_s: float = 30.0) -> int:
    """Create ``topic`` with one partition if it is missing; its partition count."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    found = admin.list_topics(timeout=timeout_s).topics
    if topic not in found:
        for future in admin.create_topics([NewTopic(topic, 1, 1)],
                                          request_timeout=timeout_s).values():
            future.result(timeout_s)
        return 1
    return len(found[topic].partitions)


def publish_lines(bootstrap: str, topic: str, lines: Iterable[bytes],
                  timeout_s: float = 60.0) -> int:
    """Send ``lines`` in order to partition 0 of ``topic``; the number acknowledged.
    Raises ``PublishError`` when a line was not acknowledged."""
    from confluent_kafka import Producer

    failures: list[str] = []
    acked = 0

    def delivered(err: object, _msg: object) -> None:
        nonlocal acked
        if err is not None:
            failures.append(str(err))
        else:
            acked += 1

    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                         "acks": "all", "linger.ms": 5})
    for i, line in enumerate(lines):
        found = _VENDOR.search(line)
        while True:
            try:
                producer.produce(topic, line, found.group(1) if found else None, 0,
                                 on_delivery=delivered)
                break
            except BufferError:  # the local queue is full: let deliveries drain it
                producer.poll(0.05)
        if i % 2_000 == 0:
            producer.poll(0)
    left = producer.flush(timeout_s)
    if left or failures:
        raise PublishError(f"{left + len(failures)} line(s) not acknowledged by {bootstrap} "
                           f"(first: {failures[0] if failures else 'flush timed out'})")
    return acked
