"""Verify's Kafka outputs: each run writes a topic of its own, read back to compare.

A run cannot share the user's topic with the next (records cannot be deleted from a topic,
and a fresh run refuses a topic holding an earlier run's output), so every run writes
``<topic>.verify.<run>.<8 hex>``, created with the user's topic's partition count (1 when
that topic does not exist yet), on the output's own cluster. The topics are left on the
cluster afterwards (``surestream verify`` prints nothing about them; delete them with your
cluster's tools when done). The records are read with ``read_committed``, keeping each
checkpoint's last attempt (``connectors/kafka/reader.py``: on a broker that does not
filter aborted transactions, that is the committed one).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import polars as pl

TOPICS_FILE = "kafka-topics.json"


def is_kafka(sink: Any) -> bool:
    return getattr(sink, "type", None) == "kafka"


def _bootstrap(sink: Any, tag: str) -> str:
    from surestream.connectors.kafka.broker import resolve_bootstrap

    return resolve_bootstrap(sink.bootstrap, f"outputs.{tag}.bootstrap")


def create_run_topics(folder: Path, run: str, outputs: dict[str, Any]) -> dict[str, str]:
    """A new topic for each Kafka output of run ``run``; noted in ``folder``."""
    from confluent_kafka.admin import AdminClient, NewTopic

    topics: dict[str, str] = {}
    for tag, sink in outputs.items():
        if not is_kafka(sink):
            continue
        bootstrap = _bootstrap(sink, tag)
        admin = AdminClient({"bootstrap.servers": bootstrap})
        meta = admin.list_topics(timeout=30).topics.get(sink.topic)
        partitions = len(meta.partitions) if meta is not None and meta.partitions else 1
        name = f"{sink.topic}.verify.{run}.{uuid.uuid4().hex[:8]}"
        for f in admin.create_topics([NewTopic(name, partitions, 1)]).values():
            f.result(60)
        topics[tag] = name
    (folder / TOPICS_FILE).write_text(json.dumps(topics))
    return topics


def run_topic(folder: Path, tag: str) -> str:
    return json.loads((folder / TOPICS_FILE).read_text())[tag]


def read_topic_frame(folder: Path, tag: str, sink: Any) -> pl.DataFrame:
    """The records run ``folder`` wrote to its topic for ``tag``, in commit order."""
    from surestream.connectors.kafka.reader import read_committed_records

    records = read_committed_records(_bootstrap(sink, tag), run_topic(folder, tag))
    return pl.DataFrame(records, infer_schema_length=None) if records else pl.DataFrame()
