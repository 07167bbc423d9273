"""A fresh run of a pipeline whose Kafka output already holds an earlier run's committed
records is refused before anything is touched -- its other outputs and its checkpoints
stay as they were -- unless the output says ``fresh_start: append``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from surestream.connectors.kafka.reader import read_committed_records
from surestream.connectors.kafka.sink import TopicHoldsEarlierRunError
from surestream.model.loader import build_spec
from surestream.runners.local.runner import LocalRunner


def doc(tmp_path: Path, bootstrap: str, topic: str, **kafka: object) -> dict:
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": i}) + "\n" for i in range(30)))
    return {
        "pipeline": "fresh",
        "source": {"type": "file", "path": str(src), "format": "jsonl"},
        "outputs": {"errors": {"type": "file", "path": str(tmp_path / "errors.jsonl")},
                    "main": {"type": "kafka", "bootstrap": bootstrap, "topic": topic,
                             **kafka}},
        "checkpoint": {"dir": str(tmp_path / "checkpoints"), "interval_records": 10},
        "runtime": {"batch_size": 5},
    }


def test_a_second_fresh_run_is_refused_before_anything_is_touched(
        tmp_path, kafka_bootstrap, kafka_topic) -> None:
    topic = kafka_topic("out")
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    for f in admin.create_topics([NewTopic(topic, 2, 1)]).values():
        f.result(30)
    LocalRunner(build_spec(doc(tmp_path, kafka_bootstrap, topic))).run()
    errors_file = tmp_path / "errors.jsonl"
    errors_file.write_text('{"kept": "a line the refused run must not truncate"}\n')
    checkpoints = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())

    with pytest.raises(TopicHoldsEarlierRunError,
                       match=rf"output 'main' \(Kafka topic {topic}\) already holds the "
                             r"output of an earlier run.*fresh_start: append"):
        LocalRunner(build_spec(doc(tmp_path, kafka_bootstrap, topic))).run()
    assert errors_file.read_text().startswith('{"kept"')
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == checkpoints
    assert [r["id"] for r in read_committed_records(kafka_bootstrap, topic)] == \
        list(range(30))

    again = LocalRunner(build_spec(doc(tmp_path, kafka_bootstrap, topic,
                                       fresh_start="append"))).run()
    assert [r["id"] for r in again.rows("main")] == list(range(30))  # this run's records
    assert [r["id"] for r in read_committed_records(kafka_bootstrap, topic)] == \
        list(range(30)) * 2
