"""Topics as code against the real broker: ``KafkaAdminManager.apply`` creates what is
missing with the wanted partitions and configs, reports what differs, changes only what
it is asked to, and never reports a setting the broker does not read back.

Every check reads the cluster with a client of its own (``cluster_view``), not through
the code under test. Topic names carry a prefix unique to the test (``kafka_topic``)."""

from __future__ import annotations

import os

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

from surestream.connectors.kafka.admin import KafkaAdminManager
from surestream.connectors.kafka.broker import TEST_CLUSTER_ENV
from surestream.connectors.kafka.topic_diff import Outcome
from surestream.model.topics import TopicConfig, load_topics, shipped_topics_file

DAY_MS = 24 * 3600 * 1000
ON_TANSU = not os.environ.get(TEST_CLUSTER_ENV)


def cluster_view(bootstrap: str, names: list[str]) -> dict[str, tuple[int, dict[str, str]]]:
    """name -> (partition count, configs) for each named topic that exists, read with a
    client of the test's own."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    meta = admin.list_topics(timeout=30).topics
    present = [n for n in names if n in meta and meta[n].error is None]
    futures = admin.describe_configs([ConfigResource(ResourceType.TOPIC, n) for n in present]) \
        if present else {}
    configs = {r.name: {k: v.value for k, v in f.result(timeout=30).items()}
               for r, f in futures.items()}
    return {n: (len(meta[n].partitions), configs[n]) for n in present}


def create_directly(bootstrap: str, name: str, partitions: int,
                    config: dict[str, str] | None = None) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, partitions, 1, config=config or {})])[name].result(30)


@pytest.mark.parametrize("shipped", ["trading", "event_platform"])
def test_apply_creates_a_shipped_map_then_a_second_apply_matches_and_changes_nothing(
        kafka_bootstrap, kafka_topic, shipped) -> None:
    prefix = kafka_topic(shipped) + "."
    configs = [c.with_replication(1).renamed(prefix)
               for c in load_topics(shipped_topics_file(shipped))]
    names = [c.name for c in configs]
    manager = KafkaAdminManager(kafka_bootstrap)

    first = manager.apply(configs)
    assert [(r.name, r.status, r.ok) for r in first] == [(n, "created", True) for n in names]
    view = cluster_view(kafka_bootstrap, names)
    assert set(view) == set(names)
    for config in configs:  # the partition counts the file gives
        assert view[config.name][0] == config.partitions, config.name
    if shipped == "trading":
        assert view[prefix + "raw.trades"][0] == 8  # as the trading plan says
        assert {n.removeprefix(prefix) for n in names} >= {
            "raw.trades", "raw.market-data", "raw.orderbook", "processed.trades.new",
            "processed.trades.filled", "processed.trades.cancelled",
            "processed.trades.rejected", "analytics.trade-aggregates",
            "alerts.price-movement", "enriched.trades", "dlq.deserialization",
            "dlq.processing-errors", "dlq.trades.unroutable"}
    else:  # the planned retention per layer: raw 7 d, bronze 90 d, silver 2 y, gold 7 y
        retention = {n.removeprefix(prefix): int(view[n][1]["retention.ms"]) for n in names}
        assert retention["raw-events"] == 7 * DAY_MS
        assert retention["raw-transactions"] == 7 * DAY_MS
        assert retention["bronze-events"] == 90 * DAY_MS
        assert retention["silver-events"] == 2 * 365 * DAY_MS
        assert retention["gold-metrics"] == 7 * 365 * DAY_MS
        assert {n.removeprefix(prefix) for n in names} >= {
            "raw-events", "raw-transactions", "raw-system-events", "raw-metrics",
            "raw-logs", "bronze-events", "silver-events", "gold-metrics", "dlq-events"}
        assert {view[n][1]["min.insync.replicas"] for n in names} == {"1"}  # capped at 1

    second = manager.apply(configs, alter_configs=True, add_partitions=True)
    assert [(r.status, r.differences, r.ok) for r in second] == \
        [("matches", [], True)] * len(configs)
    assert cluster_view(kafka_bootstrap, names) == view


def test_fewer_partitions_are_reported_and_added_only_when_asked(kafka_bootstrap,
                                                                   kafka_topic) -> None:
    name = kafka_topic("few")
    create_directly(kafka_bootstrap, name, 2)
    manager = KafkaAdminManager(kafka_bootstrap)
    wanted = TopicConfig(name=name, partitions=4)

    (report,) = manager.apply([wanted])
    assert report.status == "differs" and not report.ok
    (diff,) = report.differences
    assert (diff.setting, diff.wanted, diff.found, diff.outcome) == \
        ("partitions", "4", "2", Outcome.LEFT)
    assert "--add-partitions" in diff.note
    assert cluster_view(kafka_bootstrap, [name])[name][0] == 2  # untouched

    (dry,) = manager.apply([wanted], add_partitions=True, dry_run=True)
    assert dry.status == "would change" and dry.ok
    assert cluster_view(kafka_bootstrap, [name])[name][0] == 2

    (asked,) = manager.apply([wanted], add_partitions=True)
    (diff,) = asked.differences
    partitions = cluster_view(kafka_bootstrap, [name])[name][0]
    if ON_TANSU:  # tansu has no CreatePartitions: refused, and said so
        assert diff.outcome is Outcome.REFUSED and "CreatePartitions" in diff.note
        assert asked.status == "differs" and not asked.ok and partitions == 2
    else:
        assert diff.outcome is Outcome.CHANGED and asked.status == "changed" and asked.ok
        assert partitions == 4


def test_more_partitions_than_wanted_cannot_be_changed(kafka_bootstrap, kafka_topic) -> None:
    name = kafka_topic("many")
    create_directly(kafka_bootstrap, name, 3)
    (report,) = KafkaAdminManager(kafka_bootstrap).apply(
        [TopicConfig(name=name, partitions=1)], add_partitions=True, alter_configs=True)
    (diff,) = report.differences
    assert (diff.setting, diff.outcome, report.ok) == ("partitions", Outcome.CANNOT, False)
    assert cluster_view(kafka_bootstrap, [name])[name][0] == 3  # never removed


def test_differing_configs_are_reported_then_set_and_read_back_with_alter(
        kafka_bootstrap, kafka_topic) -> None:
    name = kafka_topic("cfg")
    create_directly(kafka_bootstrap, name, 1, {"retention.ms": str(DAY_MS)})
    manager = KafkaAdminManager(kafka_bootstrap)
    wanted = TopicConfig(name=name, retention_ms="7d", cleanup_policy="compact",
                         compression_type="lz4", min_insync_replicas=1,
                         configs={"max.message.bytes": 2_000_000})

    (report,) = manager.apply([wanted])
    assert report.status == "differs" and not report.ok
    by_setting = {d.setting: d for d in report.differences}
    assert set(by_setting) == {"retention_ms", "cleanup_policy", "compression_type",
                               "min_insync_replicas", "max.message.bytes"}
    assert by_setting["retention_ms"].found.startswith(str(DAY_MS))
    assert {d.outcome for d in report.differences} == {Outcome.LEFT}
    assert cluster_view(kafka_bootstrap, [name])[name][1]["retention.ms"] == str(DAY_MS)

    (changed,) = manager.apply([wanted], alter_configs=True)
    assert changed.status == "changed" and changed.ok
    assert {d.outcome for d in changed.differences} == {Outcome.CHANGED}
    configs = cluster_view(kafka_bootstrap, [name])[name][1]
    assert configs["retention.ms"] == str(7 * DAY_MS)
    assert configs["cleanup.policy"] == "compact" and configs["compression.type"] == "lz4"
    assert configs["max.message.bytes"] == "2000000"
    (again,) = manager.apply([wanted])
    assert again.status == "matches"


def test_a_replication_factor_beyond_the_cluster_is_never_reported_as_applied(
        kafka_bootstrap, kafka_topic) -> None:
    """tansu creates it and lists its one broker three times; Apache Kafka refuses it.
    Either way the report says the topic does not have what was asked."""
    brokers = len(AdminClient({"bootstrap.servers": kafka_bootstrap})
                  .list_topics(timeout=30).brokers)
    name = kafka_topic("rf")
    (report,) = KafkaAdminManager(kafka_bootstrap).apply(
        [TopicConfig(name=name, partitions=1, replication_factor=brokers + 2)])
    assert not report.ok
    if report.status == "created":
        (diff,) = report.differences
        assert (diff.setting, diff.wanted, diff.outcome) == \
            ("replication_factor", str(brokers + 2), Outcome.NOT_KEPT)
    else:
        assert report.status == "refused" and "REPLICATION" in report.problem.upper()


def test_describe_and_list_read_what_apply_made(kafka_bootstrap, kafka_topic) -> None:
    name = kafka_topic("desc")
    manager = KafkaAdminManager(kafka_bootstrap)
    manager.apply([TopicConfig(name=name, partitions=3, retention_ms="90d")])
    state = manager.describe([name, name + ".missing"])
    assert state[name + ".missing"] is None
    assert state[name].partitions == 3 and state[name].replication_factor == 1
    assert state[name].configs["retention.ms"] == str(90 * DAY_MS)
    assert name in {t.name for t in manager.list_topics()}
