"""The medallion's Kafka side: the feeds' topics, the landing lines published into them,
and the ``dlq-events`` topic counted back.

Each feed's lines go, in order, to its topic (``schemas.FEED_TOPICS``; one partition, so
the topic's offsets are the landing file's line indexes), as the raw bytes -- a malformed
line too: the broker carries bytes, and bronze must receive what was sent. The producer is
idempotent (``acks=all``): its own retries never repeat or reorder a message, so a topic
holds exactly the simulated feed.
"""

from __future__ import annotations

from surestream.apps.medallion.schemas import DLQ_TOPIC, FEED_TOPICS


def create_topics(bootstrap: str) -> None:
    """The three feed topics and ``dlq-events``, one partition each."""
    from surestream.connectors.kafka.admin import KafkaAdminManager
    from surestream.model.topics import TopicConfig

    reports = KafkaAdminManager(bootstrap).create_topics(
        [TopicConfig(name=t, partitions=1) for t in (*FEED_TOPICS.values(), DLQ_TOPIC)])
    failed = [r for r in reports if not r.ok]
    if failed:
        raise RuntimeError("creating the medallion's topics: "
                           + "; ".join(line for r in failed for line in r.lines()))


def publish_feeds(bootstrap: str, lines: dict[str, list[str]]) -> int:
    """Publish every feed's lines to its topic and wait for the acknowledgements; the
    number acknowledged (raises when any failed)."""
    from confluent_kafka import Producer

    failures: list[str] = []
    acked = 0

    def delivered(err: object, _msg: object) -> None:
        nonlocal acked
        if err is None:
            acked += 1
        else:
            failures.append(str(err))

    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                         "acks": "all", "linger.ms": 5})
    for feed, feed_lines in lines.items():
        for line in feed_lines:
            while True:
                try:
                    producer.produce(FEED_TOPICS[feed], line.encode("utf-8"),
                                     on_delivery=delivered)
                    break
                except BufferError:
                    producer.poll(0.01)
            producer.poll(0)
    producer.flush(60)
    sent = sum(len(v) for v in lines.values())
    if failures or acked != sent:
        raise RuntimeError(f"publishing the feeds: {acked:,} of {sent:,} acknowledged; "
                           f"{failures[:3]}")
    return acked


def count_dlq_messages(bootstrap: str, topic: str = DLQ_TOPIC) -> int:
    """The committed messages of the DLQ topic, read back whole."""
    from surestream.apps.trading.topic_readback import read_topic

    return read_topic(bootstrap, topic).records
