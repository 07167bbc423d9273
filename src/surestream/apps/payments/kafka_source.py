"""The payment processor's Kafka source, with its connection settings from the environment.

The plan's deployment hands the job ``KAFKA_BOOTSTRAP_SERVERS``, ``KAFKA_TOPIC_PAYMENTS``
and ``CHECKPOINT_LOCATION``; the template writes them as ``${NAME:-default}`` placeholders
(``model/env_values.py``), which ``surestream run`` expands when it loads the spec file, so
one file serves every environment:

    source: {type: kafka, bootstrap: "${KAFKA_BOOTSTRAP_SERVERS:-}",
             topics: ["${KAFKA_TOPIC_PAYMENTS:-payments}"], ...}
    checkpoint: {dir: "${CHECKPOINT_LOCATION:-out/payments/checkpoints}"}

An unset ``KAFKA_BOOTSTRAP_SERVERS`` leaves the bootstrap empty, which the Kafka source reads
as "not given": ``$SURESTREAM_BOOTSTRAP``, else the running ``surestream broker``.
"""

from __future__ import annotations

from typing import Any

BOOTSTRAP_ENV = "KAFKA_BOOTSTRAP_SERVERS"
TOPIC_ENV = "KAFKA_TOPIC_PAYMENTS"
CHECKPOINT_ENV = "CHECKPOINT_LOCATION"
DEFAULT_TOPIC = "payments"


def kafka_source(pipeline: str, bootstrap: str | None = None, topic: str | None = None,
                 *, live: bool = False) -> dict[str, Any]:
    """The source dict: ``bootstrap`` / ``topic`` as given, else their placeholders.

    Bounded (``stop_at: end``: the end offsets at start, for replays and tests) unless
    ``live`` (runs until stopped, as a deployment does). The consumer group is the
    pipeline's name; with no checkpoint the run starts at the earliest offset."""
    source: dict[str, Any] = {
        "type": "kafka",
        "bootstrap": bootstrap or f"${{{BOOTSTRAP_ENV}:-}}",
        "topics": [topic or f"${{{TOPIC_ENV}:-{DEFAULT_TOPIC}}}"],
        "group_id": pipeline, "start": "earliest", "format": "json"}
    if not live:
        source["stop_at"] = "end"
    return source


def checkpoint_location(out_dir: str) -> str:
    """The checkpoint folder: ``$CHECKPOINT_LOCATION``, else ``<out_dir>/checkpoints``."""
    return f"${{{CHECKPOINT_ENV}:-{out_dir}/checkpoints}}"
