"""One truth for the trading topics: the demo and `simulate --kafka` create them from the
shipped topic map (src/surestream/data/topics/trading.yaml, the one `surestream topics apply
trading` applies) -- its names, partitions and settings -- with replication 1 and under
`--topic-prefix`."""

from __future__ import annotations

import yaml

from surestream.apps.trading.kafka_topics import PLANNED_TOPICS, STREAM_TOPICS, create_topics
from surestream.connectors.kafka.admin import KafkaAdminManager
from surestream.model.topics import shipped_topics_file

DAY_MS = 86_400_000


def shipped_map() -> dict:
    """The shipped file itself, read as plain YAML (not through the code under test)."""
    return yaml.safe_load(shipped_topics_file("trading").read_text())["topics"]


def test_the_demo_plans_exactly_the_shipped_map_topics() -> None:
    shipped = shipped_map()
    assert {name: t.partitions for name, t in PLANNED_TOPICS.items()} == \
        {name: settings["partitions"] for name, settings in shipped.items()}
    assert set(STREAM_TOPICS.values()) == {"raw.trades", "raw.market-data", "raw.orderbook"}
    assert PLANNED_TOPICS["raw.trades"].partitions == 8  # as the plan says


def test_demo_topics_are_created_as_the_shipped_map_says(kafka_bootstrap, kafka_topic) -> None:
    prefix = kafka_topic("onemap") + "."
    names = ["raw.market-data", "processed.trades.filled", "analytics.trade-aggregates",
             "dlq.deserialization"]
    made = create_topics(kafka_bootstrap, names, prefix)
    shipped = shipped_map()
    assert made == {prefix + n: shipped[n]["partitions"] for n in names}
    described = KafkaAdminManager(kafka_bootstrap).describe(prefix + n for n in names)
    for n in names:
        state = described[prefix + n]
        assert state is not None and state.partitions == shipped[n]["partitions"]
        assert state.replication_factor == 1  # the embedded broker has one node
    # settings from the map: 30 days for analytics and dead letters, 7 days by default
    assert described[prefix + "analytics.trade-aggregates"].configs["retention.ms"] == \
        str(30 * DAY_MS)
    assert described[prefix + "dlq.deserialization"].configs["retention.ms"] == \
        str(30 * DAY_MS)
    assert described[prefix + "raw.market-data"].configs["retention.ms"] == str(7 * DAY_MS)
