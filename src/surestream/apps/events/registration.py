"""The event types' schemas, shipped with the package, and their registration.

Each event type has an Avro schema (``schemas/<type>.avsc``) and a JSON Schema
(``schemas/<type>.schema.json``). Records go on the wire as JSON, so the JSON Schema is
registered under the topic's value subject (Confluent's TopicNameStrategy,
``raw-events-value``); the Avro schema, for consumers that store or convert to Avro, under
``<topic>-avro-value``. In Avro, ``payload`` and ``metadata`` are JSON text (their content
is the service's own); ``to_avro_record`` converts an event accordingly.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from surestream.apps.events.events import ROUTES, EventSchema
from surestream.connectors.kafka.schema_registry import RegisteredSchema, SchemaRegistry


def schema_text(event_type: str, schema_type: str) -> str:
    """The shipped schema of ``event_type`` (``AVRO`` or ``JSON``), as text."""
    if event_type not in ROUTES:
        raise KeyError(f"no schema for event type {event_type!r}; known: {', '.join(ROUTES)}")
    suffix = {"AVRO": "avsc", "JSON": "schema.json"}[schema_type]
    return (resources.files("surestream.apps.events") / "schemas"
            / f"{event_type}.{suffix}").read_text()


def subject(event_type: str, schema_type: str, topics: dict[str, str] | None = None) -> str:
    """The registry subject of ``event_type``'s schema of ``schema_type``."""
    topic = {**ROUTES, **(topics or {})}[event_type]
    return f"{topic}-value" if schema_type == "JSON" else f"{topic}-avro-value"


def register_event_schemas(registry: SchemaRegistry, topics: dict[str, str] | None = None,
                           ) -> list[RegisteredSchema]:
    """Register every event type's Avro and JSON Schema (idempotent: a subject that holds
    the shipped schema already keeps its version)."""
    return [registry.register(subject(t, kind, topics), schema_text(t, kind), kind)
            for t in ROUTES for kind in ("AVRO", "JSON")]


def to_avro_record(event: EventSchema) -> dict[str, Any]:
    """``event`` as a record of its Avro schema (payload and metadata as JSON text)."""
    record = event.model_dump(mode="json")
    record["payload"] = json.dumps(record["payload"], sort_keys=True)
    record["metadata"] = json.dumps(record["metadata"], sort_keys=True)
    return record
