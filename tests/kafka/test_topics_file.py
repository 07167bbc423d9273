"""The topics file (no broker): durations in human form, defaults, validation that names
the field, and the two shipped maps as their plans give them."""

from __future__ import annotations

import pytest

from surestream.model.durations import parse_duration_ms
from surestream.model.loader import SpecError
from surestream.model.topics import TopicConfig, load_topics, shipped_topics_file, topic_configs

DAY_MS = 86_400_000


@pytest.mark.parametrize(("text", "ms"), [
    ("7d", 7 * DAY_MS), ("90d", 90 * DAY_MS), ("2y", 730 * DAY_MS), ("7y", 2555 * DAY_MS),
    ("12h", 12 * 3_600_000), ("30m", 1_800_000), ("15min", 900_000), ("500ms", 500),
    ("2w", 14 * DAY_MS), (" 45 s ", 45_000), (604800000, 604800000), ("604800000", 604800000),
    # spelled out, as Spark-style configurations write them (issue 14: "15 minutes")
    ("7 days", 7 * DAY_MS), ("30 seconds", 30_000), ("15 minutes", 900_000),
    ("1 hour", 3_600_000),
])
def test_durations_in_human_form(text, ms) -> None:
    assert parse_duration_ms(text) == ms


@pytest.mark.parametrize("bad", ["7 parsecs", "1.5d", "d", "", "-5", True, 2.5, "7mo",
                                 "5 minutes ago"])
def test_what_is_not_a_duration_is_refused(bad) -> None:
    with pytest.raises(ValueError, match="not a duration|negative"):
        parse_duration_ms(bad)


def test_retention_forever() -> None:
    for spelling in (-1, "-1", "forever", "infinite"):
        assert TopicConfig(name="t", retention_ms=spelling).retention_ms == -1


def test_defaults_apply_unless_a_topic_sets_its_own() -> None:
    configs = {c.name: c for c in topic_configs({
        "defaults": {"partitions": 3, "retention_ms": "7d",
                     "configs": {"segment.ms": "1h", "max.message.bytes": 1000}},
        "topics": {"a": None, "b": {"partitions": 8, "retention_ms": "90d",
                                    "cleanup_policy": "delete,compact",
                                    "configs": {"max.message.bytes": 2000}}}})}
    assert configs["a"].partitions == 3 and configs["a"].kafka_configs() == {
        "retention.ms": str(7 * DAY_MS), "segment.ms": "3600000", "max.message.bytes": "1000"}
    assert configs["b"].partitions == 8 and configs["b"].kafka_configs() == {
        "retention.ms": str(90 * DAY_MS), "cleanup.policy": "compact,delete",
        "segment.ms": "3600000", "max.message.bytes": "2000"}


def problems(doc: object) -> list[tuple[str, str]]:
    with pytest.raises(SpecError) as e:
        topic_configs(doc)
    return e.value.problems


def test_errors_name_the_field_by_its_path_in_the_file() -> None:
    found = dict(problems({"topics": {"raw.trades": {"partitions": 0},
                                      "x": {"cleanup_policy": "zap",
                                            "configs": {"retention.ms": 5}}},
                           "extra": 1}))
    assert set(found) == {'topics["raw.trades"].partitions', "topics.x.cleanup_policy",
                          "topics.x.configs", "extra"}
    assert "greater than or equal to 1" in found['topics["raw.trades"].partitions']
    assert "set it as `retention_ms`" in found["topics.x.configs"]
    assert problems({"topics": {}}) == [("topics", "Dictionary should have at least 1 item "
                                                   "after validation, not 0")]
    assert problems(["a"])[0][1].startswith("a topics file is a mapping")


def test_min_insync_replicas_may_not_exceed_replication() -> None:
    ((path, reason),) = problems({"defaults": {"replication_factor": 1},
                                  "topics": {"t": {"min_insync_replicas": 2}}})
    assert path == "topics.t.min_insync_replicas" and "exceeds replication_factor 1" in reason
    capped = TopicConfig(name="t", replication_factor=3, min_insync_replicas=2)
    assert capped.with_replication(1).min_insync_replicas == 1


def test_the_trading_map_is_the_plans() -> None:
    topics = {c.name: c for c in load_topics(shipped_topics_file("trading"))}
    assert topics["raw.trades"].partitions == 8
    assert set(topics) >= {
        "raw.trades", "raw.market-data", "raw.orderbook", "processed.trades.new",
        "processed.trades.filled", "processed.trades.cancelled", "processed.trades.rejected",
        "analytics.trade-aggregates", "analytics.orderbook-metrics", "alerts.price-movement",
        "enriched.trades", "dlq.deserialization", "dlq.processing-errors",
        "dlq.trades.unroutable"}


def test_the_event_platform_map_is_the_plans() -> None:
    topics = {c.name: c for c in load_topics(shipped_topics_file("event-platform"))}
    assert set(topics) == {"raw-events", "raw-transactions", "raw-system-events",
                           "raw-metrics", "raw-logs", "bronze-events", "silver-events",
                           "gold-metrics", "dlq-events"}
    retention = {n: c.retention_ms for n, c in topics.items()}
    assert {retention[n] for n in topics if n.startswith("raw-")} == {7 * DAY_MS}
    assert retention["bronze-events"] == 90 * DAY_MS
    assert retention["silver-events"] == 2 * 365 * DAY_MS
    assert retention["gold-metrics"] == 7 * 365 * DAY_MS
    assert {(c.replication_factor, c.min_insync_replicas) for c in topics.values()} == {(3, 2)}
