"""A whole pipeline writing Kafka topics, killed with SIGKILL again and again -- at every
point of a checkpoint, inside the Kafka transaction too -- and restarted each time: the
topics end up holding exactly what a clean run's hold (read with read_committed; on tansu,
each checkpoint's last attempt: ``connectors/kafka/reader.py``). Both ways of producing:
at commit (after the checkpoint is durable) and as written (``produce_at: write``: the
transaction is open while the epoch runs, so kills before a checkpoint is durable leave
attempts behind that the restarted run must number above)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from confluent_kafka.admin import AdminClient, NewTopic

from surestream.connectors.kafka.broker import TEST_CLUSTER_ENV
from surestream.connectors.kafka.reader import committed_messages, read_all

REAL_KAFKA = bool(os.environ.get(TEST_CLUSTER_ENV))
RECORDS = 400
#: the kill of each restart, in order (``point:n``: the n-th time the point is reached)
KILLS = ["kafka.mid_produce:2", "checkpoint.pre_committed:1", "kafka.produced:1",
         "checkpoint.durable:1", "kafka.marker_sent:1", "checkpoint.commit_partial:1",
         "kafka.committed:1", "batch.mid:3"]


def write_input(path: Path) -> Path:
    lines = []
    for i in range(RECORDS):
        if i % 37 == 5:
            lines.append(f'{{"id": {i}, "price": ')  # does not parse: an error record
        else:
            lines.append(json.dumps({"id": i, "sym": f"S{i % 7}", "price": i * 0.5}))
    path.write_text("\n".join(lines) + "\n")
    return path


def make_spec(folder: Path, source: Path, bootstrap: str, topics: dict[str, str],
              produce_at: str) -> Path:
    doc = {
        "pipeline": "kafka-crash-loop",
        "source": {"type": "file", "path": str(source), "format": "jsonl"},
        "steps": [{"type": "with_columns", "name": "notional",
                   "columns": {"notional": "price * 10"}}],
        "outputs": {
            "main": {"type": "kafka", "bootstrap": bootstrap, "topic": topics["main"],
                     "key_fields": ["sym"], "produce_at": produce_at},
            "errors": {"type": "kafka", "bootstrap": bootstrap, "topic": topics["errors"],
                       "produce_at": produce_at},
        },
        "runtime": {"batch_size": 20, "interleave_records": 20},
        "checkpoint": {"dir": str(folder / "checkpoints"), "interval_records": 40},
    }
    spec = folder / "spec.yaml"
    spec.write_text(yaml.safe_dump(doc))
    return spec


def run(spec: Path, fault: str | None) -> int:
    env = {k: v for k, v in os.environ.items() if k != "SURESTREAM_FAULT"}
    if fault:
        env["SURESTREAM_FAULT"] = fault
    proc = subprocess.run([sys.executable, "-m", "surestream", "run", str(spec)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode in (0, -9), proc.stderr[-2000:]
    return proc.returncode


def topic_content(bootstrap: str, topic: str) -> list[tuple[bytes | None, dict]]:
    return [(m.key, m.record()) for m in committed_messages(
        read_all(bootstrap, topic), last_attempt_only=not REAL_KAFKA)]


@pytest.mark.parametrize("produce_at", ["commit", "write"])
def test_a_pipeline_killed_again_and_again_writes_its_topics_as_a_clean_run(
        tmp_path, kafka_bootstrap, kafka_topic, produce_at) -> None:
    source = write_input(tmp_path / "in.jsonl")
    runs = {name: {tag: kafka_topic(f"{name}-{tag}") for tag in ("main", "errors")}
            for name in ("clean", "crashed")}
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    new = [NewTopic(t, 3, 1) for topics in runs.values() for t in topics.values()]
    for f in admin.create_topics(new).values():
        f.result(30)
    specs = {}
    for name, topics in runs.items():
        (tmp_path / name).mkdir()
        specs[name] = make_spec(tmp_path / name, source, kafka_bootstrap, topics, produce_at)

    assert run(specs["clean"], None) == 0
    kills = [fault for fault in KILLS if run(specs["crashed"], fault) == -9]
    assert kills == KILLS  # every kill happened (none came after the end of the input)
    assert run(specs["crashed"], None) == 0

    for tag in ("main", "errors"):
        clean = topic_content(kafka_bootstrap, runs["clean"][tag])
        crashed = topic_content(kafka_bootstrap, runs["crashed"][tag])
        assert crashed == clean, tag
    main = topic_content(kafka_bootstrap, runs["clean"]["main"])
    errors = topic_content(kafka_bootstrap, runs["clean"]["errors"])
    bad = {i for i in range(RECORDS) if i % 37 == 5}
    assert [r["id"] for _, r in main] == [i for i in range(RECORDS) if i not in bad]
    assert all(key == r["sym"].encode() and r["notional"] == r["price"] * 10
               for key, r in main)
    assert len(errors) == len(bad)
