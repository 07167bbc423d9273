"""The event producer against a real broker: publish_event says where the record really is,
events are routed and keyed by type as the plan has them, batches report each event, and
the metrics count what was acknowledged and what failed."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from producer_readback import all_records, create_topic, record_at

from surestream.apps.events import (
    ROUTES,
    EventProducer,
    EventSchema,
    InvalidEventError,
    LogEvent,
    MetricEvent,
    PublishError,
    SystemEvent,
    TransactionEvent,
    UserActionEvent,
)


@pytest.fixture
def topics(kafka_bootstrap, kafka_topic) -> dict[str, str]:
    """The five routes, each on a fresh 4-partition topic of this test."""
    return {event_type: create_topic(kafka_bootstrap, kafka_topic(topic))
            for event_type, topic in ROUTES.items()}


def click(user: str, n: int = 0) -> UserActionEvent:
    return UserActionEvent(source_system="web", user_id=user, action="click",
                           payload={"n": n})


def test_publish_event_returns_the_partition_and_offset_the_record_is_at(
        kafka_bootstrap, topics):
    with EventProducer(kafka_bootstrap, topics=topics) as producer:
        events = [click(f"user-{i % 5}", i) for i in range(12)]
        results = [producer.publish_event(e) for e in events]
    for event, result in zip(events, results, strict=True):
        assert result.ok and result.topic == topics["user_action"]
        msg = record_at(kafka_bootstrap, result.topic, result.partition, result.offset)
        assert json.loads(msg.value())["event_id"] == event.event_id
        assert msg.key() == event.user_id.encode()
    # the same key always lands on one partition, in the order published
    user0 = [r for e, r in zip(events, results, strict=True) if e.user_id == "user-0"]
    assert len({r.partition for r in user0}) == 1
    assert [r.offset for r in user0] == sorted(r.offset for r in user0)


def test_events_are_routed_and_keyed_by_type(kafka_bootstrap, topics):
    cases = [  # (event, the key the plan gives it)
        (click("u-17"), b"u-17"),
        (TransactionEvent(source_system="payments", transaction_id="tx-1", account_id="acc-9",
                          amount=Decimal("12.30"), currency="EUR",
                          metadata={"correlation_id": "order-5"}), b"acc-9"),
        (TransactionEvent(source_system="payments", transaction_id="tx-2",
                          amount=Decimal("1"), currency="EUR",
                          metadata={"correlation_id": "order-6"}), b"tx-2"),
        (MetricEvent(source_system="collector", metric_name="cpu.load", value=0.7), b"cpu.load"),
        (EventSchema(event_type="metric", source_system="collector", payload={"v": 1}),
         b"collector"),
        (SystemEvent(source_system="billing", status="started"), b"billing"),
        (LogEvent(source_system="k8s", application="checkout", severity="INFO",
                  message="ok"), b"checkout"),
        (LogEvent(source_system="k8s", severity="ERROR", message="disk"), b"ERROR"),
    ]
    with EventProducer(kafka_bootstrap, topics=topics) as producer:
        results = producer.publish_batch(e for e, _ in cases)
    for (event, key), result in zip(cases, results, strict=True):
        assert result.ok, result.error
        assert result.topic == topics[event.event_type]
        msg = record_at(kafka_bootstrap, result.topic, result.partition, result.offset)
        assert msg.key() == key
        assert json.loads(msg.value())["event_id"] == event.event_id
        headers = dict(msg.headers())
        assert headers["event_type"] == event.event_type.encode()
        assert headers.get("correlation_id") == (
            event.metadata["correlation_id"].encode() if event.event_type == "transaction"
            else None)
    raw_transactions = all_records(kafka_bootstrap, topics["transaction"], 2)
    amounts = {json.loads(m.value())["transaction_id"]: json.loads(m.value())["amount"]
               for m in raw_transactions}
    assert amounts == {"tx-1": "12.30", "tx-2": "1"}  # exact decimals, as strings


def test_publish_batch_reports_each_event_and_sends_no_invalid_one(kafka_bootstrap, topics):
    events = [click(f"u{i}", i) for i in range(10)]
    bad = click("u-bad")
    bad.event_timestamp = "2026-03-01T12:00:00"  # no zone
    events.insert(4, bad)
    with EventProducer(kafka_bootstrap, topics=topics) as producer:
        results = producer.publish_batch(events)
    assert len(results) == 11
    assert not results[4].ok and results[4].offset is None
    assert [p.field for p in results[4].problems] == ["event_timestamp"]
    for event, result in zip(events, results, strict=True):
        if event is not bad:
            msg = record_at(kafka_bootstrap, result.topic, result.partition, result.offset)
            assert json.loads(msg.value())["event_id"] == event.event_id
    sent = all_records(kafka_bootstrap, topics["user_action"], 10)
    assert sorted(json.loads(m.value())["payload"]["n"] for m in sent) == list(range(10))


def test_metrics_count_acknowledged_records_and_failures(kafka_bootstrap, topics):
    with EventProducer(kafka_bootstrap, topics=topics) as producer:
        for i in range(3):
            producer.publish_event(click("u1", i))
        # valid (the payload is under 1 MB) but the record is over the 1 MB request limit
        huge = click("u1")
        huge.payload = {"blob": "x" * (1_048_576 - 100)}
        assert huge.validate() == []
        with pytest.raises(PublishError, match="MSG_SIZE_TOO_LARGE"):
            producer.publish_event(huge)
        invalid = click("u1")
        invalid.event_id = "not-a-uuid"
        with pytest.raises(InvalidEventError, match="event_id"):
            producer.publish_event(invalid)
        metrics = producer.get_metrics()
    on_topic = all_records(kafka_bootstrap, topics["user_action"], 3)
    assert len(on_topic) == 3
    assert metrics["records_sent"] == 3
    assert metrics["records_failed"] == 2 and metrics["records_invalid"] == 1
    assert metrics["record_error_rate"] == pytest.approx(2 / 5)
    assert metrics["bytes_sent"] == sum(len(m.value()) + len(m.key()) for m in on_topic)
    assert metrics["errors"] == {"MSG_SIZE_TOO_LARGE": 1, "invalid event": 1}
    assert 0 <= metrics["latency_ms_avg"] <= metrics["latency_ms_max"]
