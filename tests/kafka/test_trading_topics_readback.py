"""The demo's own topic tools against the real broker: the planned topics are created with
their partitions (and refused when they exist, unless kept on purpose), and a topic read
back whole gives its records and the messages keyed otherwise than planned."""

from __future__ import annotations

import orjson
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from surestream.apps.trading.kafka_topics import PLANNED_TOPICS, TopicsExist, create_topics
from surestream.apps.trading.topic_readback import read_topic


def test_planned_topics_created_with_their_partitions_and_never_taken_over(
        kafka_bootstrap, kafka_topic) -> None:
    prefix = kafka_topic("plan") + "."
    made = create_topics(kafka_bootstrap, list(PLANNED_TOPICS), prefix)
    assert made == {prefix + t: p.partitions for t, p in PLANNED_TOPICS.items()}
    assert made[prefix + "raw.trades"] == 8
    with pytest.raises(TopicsExist, match="--topic-prefix"):
        create_topics(kafka_bootstrap, ["raw.trades"], prefix)
    assert create_topics(kafka_bootstrap, ["raw.trades", "raw.orderbook"], prefix,
                         existing_ok=True) == {prefix + "raw.trades": 8,
                                               prefix + "raw.orderbook": 8}


def test_read_topic_counts_committed_records_and_wrong_keys(kafka_bootstrap,
                                                            kafka_topic) -> None:
    topic = kafka_topic("back")
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(topic, 3, 1)])[topic].result(30)
    p = Producer({"bootstrap.servers": kafka_bootstrap, "transactional.id": topic})
    p.init_transactions(30)
    p.begin_transaction()
    for i in range(50):  # 50 records, each keyed by its order_id but two
        key = b"wrong" if i in (7, 8) else b"O%d" % (i % 10)
        p.produce(topic, orjson.dumps({"order_id": f"O{i % 10}", "n": i}), key,
                  partition=i % 3 if i != 8 else 0)
    p.commit_transaction(30)
    content = read_topic(kafka_bootstrap, topic, "order_id")
    assert content.records == 50
    assert content.wrong_keys == 2
    assert content.keys_in_several_partitions == 10 + 1  # O0..O9 over 3 partitions; "wrong"
