"""The events services publish into the platform: one envelope, five kinds.

``EventSchema`` is the envelope every event shares (event_id, event_type, event_timestamp,
source_system, payload, metadata, schema_version). Its fields take what a service hands
them without judging it; ``validate()`` then lists *every* problem in one call, so a
service fixes them all at once instead of one per round trip. The rules:

- ``event_id`` is a UUID version 4 (random: ids made independently never collide);
- ``event_timestamp`` is ISO-8601 *with* its zone, and the zone is UTC (``Z`` or
  ``+00:00``): a naive time means different instants on different machines;
- ``payload`` is under 1 MB as JSON (the reliability producer's request limit);
- ``event_type`` is one of ``ROUTES`` (a typo is refused, never sent to a default topic);
- the event has its partition key (``KEY_FIELDS``, from its fields or its payload);
- ``metadata.correlation_id`` is present where the type requires it: transactions (a
  payment crosses services -- authorisation, capture, settlement -- and reconciliation joins
  them on it). Other types may carry one.

Each kind names its topic and key, as the event platform's plan has them:

| event_type | class | topic | key (first present) |
| --- | --- | --- | --- |
| user_action | ``UserActionEvent`` | raw-events | user_id |
| transaction | ``TransactionEvent`` | raw-transactions | account_id, transaction_id |
| system | ``SystemEvent`` | raw-system-events | source_system |
| metric | ``MetricEvent`` | raw-metrics | metric_name, source_system |
| log | ``LogEvent`` | raw-logs | application, severity |
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator

#: the largest payload, as JSON bytes, an event may carry (the producer's request limit)
MAX_PAYLOAD_BYTES = 1_048_576

#: event_type -> topic
ROUTES: dict[str, str] = {
    "user_action": "raw-events",
    "transaction": "raw-transactions",
    "system": "raw-system-events",
    "metric": "raw-metrics",
    "log": "raw-logs",
}

#: event_type -> the fields its key is taken from, the first one present wins
KEY_FIELDS: dict[str, tuple[str, ...]] = {
    "user_action": ("user_id",),
    "transaction": ("account_id", "transaction_id"),
    "system": ("source_system",),
    "metric": ("metric_name", "source_system"),
    "log": ("application", "severity"),
}

#: event types whose metadata must carry a correlation_id
CORRELATION_REQUIRED = frozenset({"transaction"})


@dataclass(frozen=True)
class EventProblem:
    """One thing wrong with an event: the field and what to do about it."""

    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


class InvalidEventError(ValueError):
    """An event that ``validate()`` found problems with; ``problems`` lists them all."""

    def __init__(self, event_id: str, problems: list[EventProblem]) -> None:
        self.event_id, self.problems = event_id, problems
        super().__init__(f"event {event_id}: " + "; ".join(map(str, problems)))


def utc_now() -> str:
    """Now, ISO-8601 in UTC with its zone, to the microsecond."""
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class EventSchema(BaseModel):
    """The envelope of every event (the module's docstring has the rules)."""

    model_config = ConfigDict(extra="forbid")

    event_id: str = Field(default_factory=lambda: str(uuid.uuid4()),
                          description="a UUID v4, made here unless given")
    event_type: str = Field(description=f"one of {', '.join(ROUTES)}")
    event_timestamp: str = Field(default_factory=utc_now,
                                 description="when it happened: ISO-8601 in UTC, with its "
                                             "zone (2026-01-31T12:00:00Z)")
    source_system: str = Field(description="the service that publishes it")
    payload: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict,
                                     description="correlation_id, trace ids, ...")
    schema_version: str = "1.0"

    @field_validator("event_timestamp", mode="before")
    @classmethod
    def _datetime_as_iso(cls, value: Any) -> Any:
        """A ``datetime`` is written as ISO-8601 (a naive one stays naive: validate() says so)."""
        return value.isoformat() if isinstance(value, datetime) else value

    # -- what validate() and the producer use ----------------------------------------------
    def validate(self) -> list[EventProblem]:  # type: ignore[override]
        """Every problem with this event ([] when it may be published)."""
        problems = [*_event_id_problems(self.event_id),
                    *_timestamp_problems(self.event_timestamp)]
        if self.event_type not in ROUTES:
            problems.append(EventProblem("event_type", f"{self.event_type!r} is not a known "
                                         f"type; use one of {', '.join(ROUTES)}"))
        elif self.key() is None:
            names = " or ".join(KEY_FIELDS[self.event_type])
            problems.append(EventProblem(KEY_FIELDS[self.event_type][0],
                                         f"a {self.event_type} event needs {names} (its "
                                         f"partition key), as a field or in payload"))
        if not self.source_system.strip():
            problems.append(EventProblem("source_system", "is empty; name the service that "
                                                          "publishes the event"))
        size = len(orjson.dumps(self.payload, default=str))
        if size >= MAX_PAYLOAD_BYTES:
            problems.append(EventProblem("payload", f"is {size:,} bytes as JSON; the limit "
                                         f"is {MAX_PAYLOAD_BYTES:,} (1 MB): store large "
                                         f"content elsewhere and send its reference"))
        if self.event_type in CORRELATION_REQUIRED and not self.correlation_id:
            problems.append(EventProblem("metadata.correlation_id",
                                         f"a {self.event_type} event must carry one (it "
                                         f"joins the services' records of one operation)"))
        return problems

    @property
    def correlation_id(self) -> str | None:
        value = self.metadata.get("correlation_id")
        return str(value) if value not in (None, "") else None

    @property
    def topic(self) -> str | None:
        """The topic this event goes to (None for an unknown type)."""
        return ROUTES.get(self.event_type)

    def key(self) -> str | None:
        """The partition key: the first of its type's ``KEY_FIELDS`` present as a field of
        the event or a payload entry (None when none is)."""
        for name in KEY_FIELDS.get(self.event_type, ()):
            value = getattr(self, name, None)
            if value in (None, ""):
                value = self.payload.get(name)
            if value not in (None, ""):
                return str(value)
        return None

    def to_json(self) -> bytes:
        """The record value: the event as one JSON object."""
        return orjson.dumps(self.model_dump(mode="json"))


def _event_id_problems(event_id: str) -> list[EventProblem]:
    try:
        parsed = uuid.UUID(event_id)
    except (ValueError, AttributeError, TypeError):
        return [EventProblem("event_id", f"{event_id!r} is not a UUID; leave it out to have "
                                         f"one made (uuid4)")]
    if parsed.version != 4 or parsed.variant != uuid.RFC_4122:
        return [EventProblem("event_id", f"{event_id} is a UUID of version {parsed.version}, "
                                         f"not 4 (random); use uuid.uuid4()")]
    return []


def _timestamp_problems(stamp: str) -> list[EventProblem]:
    try:
        parsed = datetime.fromisoformat(stamp)
    except (ValueError, TypeError):
        return [EventProblem("event_timestamp", f"{stamp!r} is not an ISO-8601 time; write "
                                                f"e.g. 2026-01-31T12:00:00Z")]
    if parsed.tzinfo is None:
        return [EventProblem("event_timestamp", f"{stamp} has no time zone; write it in UTC "
                                                f"with its zone, e.g. {stamp}Z")]
    if parsed.utcoffset() != timedelta(0):
        utc = parsed.astimezone(UTC).isoformat().replace("+00:00", "Z")
        return [EventProblem("event_timestamp", f"{stamp} is in zone {parsed.tzname()}, not "
                                                f"UTC; write {utc}")]
    return []


class UserActionEvent(EventSchema):
    """Something a user did (a click, a login, a purchase step). Key: user_id."""

    event_type: Literal["user_action"] = "user_action"
    user_id: str
    action: str
    session_id: str | None = None


class TransactionEvent(EventSchema):
    """A payment or transfer. Key: account_id, else transaction_id. Requires
    ``metadata.correlation_id``. ``amount`` is exact (a decimal, written as a string)."""

    event_type: Literal["transaction"] = "transaction"
    transaction_id: str
    account_id: str | None = None
    amount: Decimal
    currency: str = Field(min_length=3, max_length=3, description="ISO 4217, e.g. EUR")


class MetricEvent(EventSchema):
    """One measurement. Key: metric_name."""

    event_type: Literal["metric"] = "metric"
    metric_name: str
    value: float
    unit: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)


class SystemEvent(EventSchema):
    """A service's own event (started, stopped, degraded). Key: source_system."""

    event_type: Literal["system"] = "system"
    status: str
    component: str | None = None


class LogEvent(EventSchema):
    """A log line. Key: application, else severity."""

    event_type: Literal["log"] = "log"
    severity: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
    message: str
    application: str | None = None


#: event_type -> its class
EVENT_CLASSES: dict[str, type[EventSchema]] = {
    "user_action": UserActionEvent, "transaction": TransactionEvent, "system": SystemEvent,
    "metric": MetricEvent, "log": LogEvent,
}
