"""Kafka client presets: named librdkafka settings for producers and consumers.

A preset is a starting point a user names instead of a dozen librdkafka keys; whatever the
caller passes in ``overrides`` wins, so a preset never hides a setting. The names are
librdkafka's (confluent-kafka's ``Producer``/``Consumer`` take the dict as it is).

Producers
- ``reliability``: nothing acknowledged is lost and nothing is written twice by a retry:
  ``acks=all`` (every in-sync replica has it), ``enable.idempotence`` (retries cannot
  duplicate or reorder), unbounded retries within ``delivery.timeout.ms``, snappy
  compression, and a 1 MB cap on a request (``message.max.bytes``: a larger record is
  refused at once with ``MSG_SIZE_TOO_LARGE`` instead of by the broker later).
- ``throughput``: more records per request at the cost of durability on a leader's failure:
  ``acks=1`` (the leader alone), ``linger.ms`` to fill batches, large ``batch.size``, lz4
  compression (cheaper on the CPU than snappy's ratio is worth at volume).

Consumers (offsets are surestream's to keep: ``enable.auto.commit=false`` in both, and
``isolation.level=read_committed`` so that records of open or aborted transactions are not
read on a broker that honours it)
- ``low-latency``: the broker answers a fetch as soon as it has one byte
  (``fetch.min.bytes=1``) and waits at most 10 ms otherwise (librdkafka's default of 500 ms
  would dominate end-to-end latency).
- ``high-throughput``: the broker gathers 64 KB (or 100 ms) per fetch, partitions fetch up
  to 4 MB, and the client queues more ahead of the application.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

#: where a run's Kafka clients send librdkafka's own log lines (its ``logger`` setting):
#: through Python logging, served in the thread that polls the client, so they take the
#: run's log format, level and context (``ops/logs``) instead of being printed to standard
#: error by librdkafka's threads -- where they would cut into JSON log lines
LIBRDKAFKA_LOGGER = "surestream.connectors.kafka.librdkafka"


def client_logger() -> logging.Logger:
    """The ``logger`` setting of a run's Kafka clients (see ``LIBRDKAFKA_LOGGER``)."""
    return logging.getLogger(LIBRDKAFKA_LOGGER)

ProducerPreset = Literal["reliability", "throughput"]
ConsumerPreset = Literal["low-latency", "high-throughput"]

#: 1 MB: the largest request (and so record) a reliability producer sends
MAX_REQUEST_BYTES = 1_048_576

PRODUCER_PRESETS: dict[str, dict[str, Any]] = {
    "reliability": {
        "acks": "all",
        "enable.idempotence": True,
        "retries": 2_147_483_647,          # bounded by delivery.timeout.ms instead
        "delivery.timeout.ms": 120_000,
        "max.in.flight.requests.per.connection": 5,  # the most idempotence keeps ordered
        "compression.type": "snappy",
        "message.max.bytes": MAX_REQUEST_BYTES,
        "linger.ms": 5,
    },
    "throughput": {
        "acks": 1,
        "enable.idempotence": False,
        "retries": 10,
        "linger.ms": 50,
        "batch.size": 524_288,
        "batch.num.messages": 100_000,
        "compression.type": "lz4",
        "queue.buffering.max.kbytes": 1_048_576,
    },
}

_CONSUMER_BASE: dict[str, Any] = {
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "isolation.level": "read_committed",
}

CONSUMER_PRESETS: dict[str, dict[str, Any]] = {
    "low-latency": {
        **_CONSUMER_BASE,
        "fetch.min.bytes": 1,
        "fetch.wait.max.ms": 10,
        "queued.min.messages": 1_000,
    },
    "high-throughput": {
        **_CONSUMER_BASE,
        "fetch.min.bytes": 65_536,
        "fetch.wait.max.ms": 100,
        "max.partition.fetch.bytes": 4_194_304,
        "queued.max.messages.kbytes": 262_144,
        "queued.min.messages": 500_000,
    },
}


class PresetError(ValueError):
    """A preset name that does not exist."""


def _preset(table: dict[str, dict[str, Any]], name: str, kind: str) -> dict[str, Any]:
    try:
        return dict(table[name])
    except KeyError:
        raise PresetError(f"unknown {kind} preset {name!r}; use one of "
                          f"{', '.join(sorted(table))}") from None


def producer_config(bootstrap: str, preset: str = "reliability",
                    overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The confluent-kafka ``Producer`` settings of ``preset`` for ``bootstrap``;
    ``overrides`` (librdkafka names) win over the preset."""
    return {**_preset(PRODUCER_PRESETS, preset, "producer"), **(overrides or {}),
            "bootstrap.servers": bootstrap}


def consumer_config(bootstrap: str, group_id: str, preset: str = "low-latency",
                    overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The confluent-kafka ``Consumer`` settings of ``preset`` for ``bootstrap`` and
    ``group_id``; ``overrides`` (librdkafka names) win over the preset."""
    return {**_preset(CONSUMER_PRESETS, preset, "consumer"), **(overrides or {}),
            "bootstrap.servers": bootstrap, "group.id": group_id}
