"""The client presets hold the settings the plan names, overrides win, and the broker
accepts each preset for a real round trip."""

from __future__ import annotations

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from surestream.connectors.kafka.client_config import (
    PresetError,
    consumer_config,
    producer_config,
)


def test_reliability_producer_preset():
    config = producer_config("h:1")
    assert config["bootstrap.servers"] == "h:1"
    assert config["acks"] == "all" and config["enable.idempotence"] is True
    assert config["retries"] > 0 and config["compression.type"] == "snappy"
    assert config["message.max.bytes"] == 1_048_576


def test_throughput_producer_preset():
    config = producer_config("h:1", "throughput")
    assert config["acks"] == 1 and config["linger.ms"] > 0
    assert config["batch.size"] > 16_384 and config["compression.type"] != "none"


def test_consumer_presets_and_overrides():
    low = consumer_config("h:1", "g")
    high = consumer_config("h:1", "g", "high-throughput")
    assert low["fetch.wait.max.ms"] <= 10 and low["fetch.min.bytes"] == 1
    assert high["fetch.min.bytes"] > low["fetch.min.bytes"]
    assert high["max.partition.fetch.bytes"] > 1_048_576
    for config in (low, high):
        assert config["enable.auto.commit"] is False and config["group.id"] == "g"
        assert config["isolation.level"] == "read_committed"
    assert producer_config("h:1", overrides={"acks": 1})["acks"] == 1
    with pytest.raises(PresetError, match="reliability, throughput"):
        producer_config("h:1", "fast")


@pytest.mark.parametrize("producer_preset, consumer_preset",
                         [("reliability", "low-latency"), ("throughput", "high-throughput")])
def test_each_preset_round_trips_through_the_broker(kafka_bootstrap, kafka_topic,
                                                    producer_preset, consumer_preset):
    topic = kafka_topic("preset")
    producer = Producer(producer_config(kafka_bootstrap, producer_preset))
    reports = []
    for i in range(20):
        producer.produce(topic, b"v%d" % i, partition=0,
                         on_delivery=lambda err, msg: reports.append(err))
    assert producer.flush(15) == 0 and reports == [None] * 20
    consumer = Consumer(consumer_config(kafka_bootstrap, "presets", consumer_preset))
    consumer.assign([TopicPartition(topic, 0, 0)])
    values = []
    for _ in range(100):
        values += [m.value() for m in consumer.consume(20, 0.2) if not m.error()]
        if len(values) >= 20:
            break
    consumer.close()
    assert values == [b"v%d" % i for i in range(20)]
