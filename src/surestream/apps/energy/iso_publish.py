"""Publishing a simulated ISO feed to a Kafka topic, as an ISO poller would.

The feed goes to one topic (default ``iso.rt_lmp``) in arrival order, keyed by ISO. The
topic is created with **one partition** when missing: the merged feed then reaches the
pipeline in the order the truth was worked out in, so ``truth.json`` holds for the topic
exactly as for the file. (With a topic of several partitions keyed by ISO, each ISO's
messages keep their order, but which messages are late depends on how the partitions
interleave; the truth's late count is then no longer exact -- docs/energy.md.)
The producer is idempotent with ``acks=all``: a retry never repeats or reorders a line.
"""

from __future__ import annotations

import re
from typing import Any

DEFAULT_TOPIC = "iso.rt_lmp"
_ISO = re.compile(rb'"iso":"([^"]*)"')


def ensure_topic(bootstrap: str, topic: str, timeout_s: float = 30.0) -> int:
    """Create ``topic`` with one partition if missing; its partition count."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    found = admin.list_topics(timeout=timeout_s).topics
    if topic not in found:
        for future in admin.create_topics([NewTopic(topic, 1, 1)],
                                          request_timeout=timeout_s).values():
            future.result(timeout_s)
        found = admin.list_topics(topic=topic, timeout=timeout_s).topics
    return len(found[topic].partitions) if topic in found else 1


def publish_lines(bootstrap: str, topic: str, lines: list[bytes],
                  options: dict[str, Any] | None = None, timeout_s: float = 60.0
                  ) -> tuple[int, list[str]]:
    """Send ``lines`` in order (keyed by their ISO; a line too broken to show one has no
    key); ``(acknowledged, failure reasons)``."""
    from confluent_kafka import Producer

    acked = 0
    failures: list[str] = []

    def delivered(err: Any, _msg: Any) -> None:
        nonlocal acked
        if err is None:
            acked += 1
        elif len(failures) < 10:
            failures.append(str(err))

    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                         "acks": "all", "linger.ms": 5, **(options or {})})
    for i, line in enumerate(lines):
        found = _ISO.search(line)
        while True:
            try:
                producer.produce(topic, line, found.group(1) if found else None,
                                 on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.05)
        if i % 2000 == 0:
            producer.poll(0)
    left = producer.flush(timeout_s)
    if left:
        failures.append(f"{left} records not acknowledged in {timeout_s:g} s")
    return acked, failures
