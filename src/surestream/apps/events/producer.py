"""``EventProducer``: validate an event, route it by type, key it, and wait for the broker.

``publish_event`` returns only once the broker has acknowledged the record (the preset's
``acks``: all in-sync replicas for ``reliability``, the default), with the partition and
offset it is at; ``publish_batch`` queues every event first and then waits for all the
reports, so a batch costs one round of waiting, not one per event. Invalid events are never
sent: ``publish_event`` raises ``InvalidEventError`` listing every problem, and
``publish_batch`` reports them in their place in the results.

Each record carries the event as JSON, its key (``EventSchema.key``) and headers
``event_type``, ``schema_version``, ``event_id``, ``content-type`` and, where the event has
one, ``correlation_id`` -- so consumers can route and trace without parsing the value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from surestream.apps.events.events import (
    ROUTES,
    EventProblem,
    EventSchema,
    InvalidEventError,
)
from surestream.apps.events.metrics import ProducerMetrics
from surestream.connectors.kafka.broker import resolve_bootstrap
from surestream.connectors.kafka.client_config import producer_config
from surestream.connectors.kafka.delivery import DeliveringProducer, Delivery


class PublishError(RuntimeError):
    """The broker did not acknowledge an event; ``result`` says why."""

    def __init__(self, result: PublishResult) -> None:
        self.result = result
        super().__init__(f"event {result.event_id} to {result.topic}: {result.error}")


@dataclass(frozen=True)
class PublishResult:
    """Where one event landed, or why it did not (``problems`` when it was invalid)."""

    event_id: str
    topic: str | None
    partition: int | None
    offset: int | None
    error: str | None = None
    problems: tuple[EventProblem, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None


class EventProducer:
    """Publishes events to their topics (``ROUTES``, renamed by ``topics``) through one
    Kafka producer of ``preset`` (``connectors/kafka/client_config``); ``overrides`` are
    librdkafka settings that win over the preset. Close it (or use ``with``) to deliver
    what is queued."""

    def __init__(self, bootstrap: str | None = None, *, preset: str = "reliability",
                 overrides: dict[str, Any] | None = None,
                 topics: Mapping[str, str] | None = None) -> None:
        self.metrics = ProducerMetrics()
        self.routes = {**ROUTES, **(topics or {})}
        config = producer_config(resolve_bootstrap(bootstrap), preset, overrides)
        self._producer = DeliveringProducer(config, on_report=self._count)

    def _count(self, delivery: Delivery) -> None:
        if delivery.error is None:
            self.metrics.delivered(delivery.size, delivery.latency_ms or 0.0)
        else:
            self.metrics.failed(delivery.error.split(":")[0])

    def _send(self, event: EventSchema) -> Delivery | PublishResult:
        """Queue ``event``, or the result that refuses it (invalid)."""
        problems = event.validate()
        if problems:
            self.metrics.failed("invalid event", invalid=True)
            return PublishResult(event.event_id, event.topic, None, None,
                                 "; ".join(map(str, problems)), tuple(problems))
        headers = [("event_type", event.event_type.encode()),
                   ("schema_version", event.schema_version.encode()),
                   ("event_id", event.event_id.encode()),
                   ("content-type", b"application/json")]
        if event.correlation_id:
            headers.append(("correlation_id", event.correlation_id.encode()))
        key = event.key()
        return self._producer.send(self.routes[event.event_type], event.to_json(),
                                   key.encode() if key is not None else None, headers)

    @staticmethod
    def _result(event: EventSchema, sent: Delivery | PublishResult) -> PublishResult:
        if isinstance(sent, PublishResult):
            return sent
        return PublishResult(event.event_id, sent.topic, sent.partition, sent.offset,
                             sent.error)

    def publish_event(self, event: EventSchema) -> PublishResult:
        """Publish one event and wait for the broker's acknowledgement: its partition and
        offset. Raises ``InvalidEventError`` (every problem) or ``PublishError``."""
        sent = self._send(event)
        if isinstance(sent, Delivery):
            self._producer.wait([sent])
        result = self._result(event, sent)
        if result.problems:
            raise InvalidEventError(event.event_id, list(result.problems))
        if not result.ok:
            raise PublishError(result)
        return result

    def publish_batch(self, events: Iterable[EventSchema]) -> list[PublishResult]:
        """Publish every event, then wait for all their acknowledgements: one result per
        event, in order (a failed or invalid event does not stop the others)."""
        events = list(events)
        sent = [self._send(e) for e in events]
        self._producer.wait([s for s in sent if isinstance(s, Delivery)])
        return [self._result(e, s) for e, s in zip(events, sent, strict=True)]

    def get_metrics(self) -> dict[str, Any]:
        """records_sent / records_failed (invalid ones among them: records_invalid),
        record_error_rate, bytes_sent, latency_ms_avg / _p99 / _max, errors by reason."""
        self._producer.poll(0)
        return self.metrics.as_dict()

    def close(self, timeout_s: float = 30.0) -> None:
        self._producer.close(timeout_s)

    def __enter__(self) -> EventProducer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
