"""The raw platform events' schemas: three feeds, each a topic (or a landing file).

The producers publish JSON objects, one per message (one per line in a landing file):

- user_action (topic ``raw-events``): event_id, event_type, user_id, session_id, source,
  timestamp, properties;
- transaction (``raw-transactions``): event_id, transaction_id, user_id, amount, currency,
  status, timestamp, source;
- metric (``raw-metrics``): event_id, metric_name, value, host, timestamp, source.

Every field is required.

``timestamp`` is ISO-8601 in UTC with its zone (``Z`` or ``+00:00``); ``amount`` and
``value`` are JSON numbers; ``properties`` is a JSON object; ``event_type`` of a user action
is one of ``USER_EVENT_TYPES``. A transaction's event type is ``transaction`` and a metric's
``metric`` (their feed), so gold can group every event by event type and source. Fields the
schema does not name are allowed (a producer may add one before the schema says so) and are
not carried into silver.

The topic names are the event platform's (``surestream.apps.events.ROUTES``); the landing
files are named after them (``raw-events.jsonl`` ...).
"""

from __future__ import annotations

from typing import Literal

FieldType = Literal["string", "number", "timestamp", "object"]

#: feed -> its topic (and landing file stem)
FEED_TOPICS: dict[str, str] = {
    "user_action": "raw-events",
    "transaction": "raw-transactions",
    "metric": "raw-metrics",
}
#: topic (or landing file stem) -> feed
TOPIC_FEEDS: dict[str, str] = {topic: feed for feed, topic in FEED_TOPICS.items()}

#: feed -> field -> type, in the order validation checks them
FEED_FIELDS: dict[str, dict[str, FieldType]] = {
    "user_action": {"event_id": "string", "event_type": "string", "user_id": "string",
                    "session_id": "string", "source": "string", "timestamp": "timestamp",
                    "properties": "object"},
    "transaction": {"event_id": "string", "transaction_id": "string", "user_id": "string",
                    "amount": "number", "currency": "string", "status": "string",
                    "timestamp": "timestamp", "source": "string"},
    "metric": {"event_id": "string", "metric_name": "string", "value": "number",
               "host": "string", "timestamp": "timestamp", "source": "string"},
}

USER_EVENT_TYPES = ("page_view", "click", "add_to_cart", "purchase", "login")
APP_SOURCES = ("web", "ios", "android")
METRIC_SOURCES = ("api", "worker")
TRANSACTION_STATUSES = ("authorized", "captured", "declined", "refunded")
CURRENCIES = ("USD", "EUR", "GBP")
METRIC_NAMES = ("cpu_percent", "memory_mb", "request_latency_ms", "queue_depth")

#: why an event is invalid (the DLQ's ``dlq_reason``; ``dlq_field`` names the field)
InvalidReason = Literal["unknown_feed", "malformed_json", "missing_field", "wrong_type",
                        "unknown_event_type"]
INVALID_REASONS: tuple[str, ...] = ("unknown_feed", "malformed_json", "missing_field",
                                    "wrong_type", "unknown_event_type")

#: the DLQ topic (or file stem) of the platform: ``{original_message, error, timestamp}``
DLQ_TOPIC = "dlq-events"


def event_type_of(feed: str, record_event_type: str | None) -> str | None:
    """The event type silver and gold use: a user action's own, else the feed's name."""
    return record_event_type if feed == "user_action" else feed
