"""The event platform's producer side: typed events, validated, routed and keyed by type,
published with delivery reports and metrics; their schemas, shipped and registered."""

from surestream.apps.events.events import (
    CORRELATION_REQUIRED,
    EVENT_CLASSES,
    KEY_FIELDS,
    ROUTES,
    EventProblem,
    EventSchema,
    InvalidEventError,
    LogEvent,
    MetricEvent,
    SystemEvent,
    TransactionEvent,
    UserActionEvent,
)
from surestream.apps.events.producer import EventProducer, PublishError, PublishResult
from surestream.apps.events.registration import register_event_schemas, to_avro_record

__all__ = [
    "CORRELATION_REQUIRED", "EVENT_CLASSES", "KEY_FIELDS", "ROUTES", "EventProblem",
    "EventProducer", "EventSchema", "InvalidEventError", "LogEvent", "MetricEvent",
    "PublishError", "PublishResult", "SystemEvent", "TransactionEvent", "UserActionEvent",
    "register_event_schemas", "to_avro_record",
]
