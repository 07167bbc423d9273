"""validate() lists every problem of an event in one call; valid events of each type fit
their shipped Avro and JSON Schemas."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import fastavro
import jsonschema
import pytest

from surestream.apps.events import (
    EventSchema,
    LogEvent,
    MetricEvent,
    SystemEvent,
    TransactionEvent,
    UserActionEvent,
    to_avro_record,
)
from surestream.apps.events.registration import schema_text


def payment(**changes) -> TransactionEvent:
    fields = dict(source_system="payments", transaction_id="tx-1", account_id="acc-1",
                  amount=Decimal("99.95"), currency="EUR",
                  metadata={"correlation_id": "order-1"})
    return TransactionEvent(**{**fields, **changes})


def test_validate_reports_every_kind_of_problem_in_one_call():
    event = payment(event_id="1234", event_timestamp="2026-03-01T12:30:00",
                    payload={"blob": "x" * 2_000_000}, metadata={})
    problems = {p.field: p.reason for p in event.validate()}
    assert set(problems) == {"event_id", "event_timestamp", "payload",
                             "metadata.correlation_id"}
    assert "not a UUID" in problems["event_id"]
    assert "no time zone" in problems["event_timestamp"]
    assert "2,000,011 bytes" in problems["payload"]   # {"blob":"..."}: 2,000,000 + 11
    assert "must carry one" in problems["metadata.correlation_id"]


def test_an_unknown_type_a_missing_key_and_an_empty_source_are_reported():
    problems = {p.field: p.reason for p in
                EventSchema(event_type="user_actoin", source_system=" ").validate()}
    assert set(problems) == {"event_type", "source_system"}
    assert "'user_actoin' is not a known type" in problems["event_type"]
    problems = {p.field: p.reason for p in
                EventSchema(event_type="user_action", source_system="web").validate()}
    assert set(problems) == {"user_id"}  # its key: neither a field nor in payload
    assert EventSchema(event_type="user_action", source_system="web",
                       payload={"user_id": "u1"}).validate() == []


def test_event_id_must_be_a_uuid_version_4():
    assert [p.field for p in payment(event_id=str(uuid.uuid1())).validate()] == ["event_id"]
    assert "version 1" in payment(event_id=str(uuid.uuid1())).validate()[0].reason
    assert payment(event_id=str(uuid.uuid4())).validate() == []


@pytest.mark.parametrize("stamp", ["2026-03-01T12:30:00Z", "2026-03-01T12:30:00+00:00",
                                   "2026-03-01T12:30:00.123456Z",
                                   datetime(2026, 3, 1, 12, 30, tzinfo=UTC)])
def test_utc_timestamps_with_their_zone_are_accepted(stamp):
    assert payment(event_timestamp=stamp).validate() == []


def test_a_timestamp_in_another_zone_is_refused_with_its_utc_form():
    [problem] = payment(event_timestamp="2026-03-01T14:30:00+02:00").validate()
    assert problem.field == "event_timestamp" and "2026-03-01T12:30:00Z" in problem.reason
    [problem] = payment(event_timestamp=datetime(2026, 3, 1, 12, 30)).validate()  # naive
    assert "no time zone" in problem.reason
    [problem] = payment(event_timestamp="yesterday").validate()
    assert "not an ISO-8601 time" in problem.reason


def test_the_payload_limit_is_one_megabyte_as_json():
    limit = 1_048_576
    just_under = {"b": "x" * (limit - 1 - len('{"b":""}'))}
    assert payment(payload=just_under).validate() == []
    at_limit = {"b": "x" * (limit - len('{"b":""}'))}
    assert [p.field for p in payment(payload=at_limit).validate()] == ["payload"]


def test_only_transactions_require_a_correlation_id():
    assert [p.field for p in payment(metadata={}).validate()] == ["metadata.correlation_id"]
    assert [p.field for p in payment(metadata={"correlation_id": ""}).validate()] == \
        ["metadata.correlation_id"]
    assert UserActionEvent(source_system="web", user_id="u", action="a").validate() == []


EXAMPLES = [
    UserActionEvent(source_system="web", user_id="u1", action="click", session_id="s"),
    TransactionEvent(source_system="payments", transaction_id="t", amount=Decimal("-0.50"),
                     currency="USD", metadata={"correlation_id": "c"}),
    MetricEvent(source_system="collector", metric_name="cpu", value=0.5, unit="ratio",
                tags={"host": "a"}),
    SystemEvent(source_system="billing", status="degraded", component="db"),
    LogEvent(source_system="k8s", severity="WARNING", message="slow", application="shop"),
]


@pytest.mark.parametrize("event", EXAMPLES, ids=lambda e: e.event_type)
def test_each_event_type_fits_its_shipped_avro_and_json_schema(event):
    assert event.validate() == []
    avro = fastavro.parse_schema(json.loads(schema_text(event.event_type, "AVRO")))
    assert fastavro.validate(to_avro_record(event), avro, raise_errors=True)
    schema = json.loads(schema_text(event.event_type, "JSON"))
    jsonschema.validate(json.loads(event.to_json()), schema,
                        format_checker=jsonschema.FormatChecker())


def test_the_json_schema_refuses_what_validate_refuses():
    schema = json.loads(schema_text("transaction", "JSON"))
    checker = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    event = payment(event_timestamp="2026-03-01T14:30:00+02:00", metadata={})
    paths = {"/".join(map(str, e.absolute_path)) for e in checker.iter_errors(
        json.loads(event.to_json()))}
    assert paths == {"event_timestamp", "metadata"}
