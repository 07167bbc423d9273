"""Reading records back for the producer tests: a topic made with N partitions, the record
at one partition/offset (assign + seek), every record of a topic."""

from __future__ import annotations

from confluent_kafka import Consumer, Message, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def create_topic(bootstrap: str, topic: str, partitions: int = 4) -> str:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, partitions, 1)]).values():
        future.result(15)
    return topic


def _consumer(bootstrap: str) -> Consumer:
    return Consumer({"bootstrap.servers": bootstrap, "group.id": "producer-readback",
                     "enable.auto.commit": False, "fetch.wait.max.ms": 10})


def record_at(bootstrap: str, topic: str, partition: int, offset: int) -> Message:
    """The record at ``topic``/``partition``/``offset``, read with assign + seek."""
    consumer = _consumer(bootstrap)
    try:
        consumer.assign([TopicPartition(topic, partition, offset)])
        for _ in range(100):
            msg = consumer.poll(0.2)
            if msg is not None and not msg.error():
                return msg
        raise AssertionError(f"no record at {topic}/{partition}/{offset}")
    finally:
        consumer.close()


def all_records(bootstrap: str, topic: str, expected: int) -> list[Message]:
    """Every record of ``topic`` (all partitions, from the start) once ``expected`` have
    arrived, then a moment more to catch any extra."""
    consumer = _consumer(bootstrap)
    try:
        partitions = consumer.list_topics(topic, 10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        records: list[Message] = []
        for _ in range(200):
            records += [m for m in consumer.consume(1000, 0.2) if not m.error()]
            if len(records) >= expected:
                break
        records += [m for m in consumer.consume(1000, 0.5) if not m.error()]
        return records
    finally:
        consumer.close()
