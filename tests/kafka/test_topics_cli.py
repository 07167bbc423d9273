"""``surestream topics apply|list|describe`` as a user runs them: output and exit codes
against the real broker, and a bad topics file named field by field (exit 2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml
from confluent_kafka.admin import AdminClient

from surestream.connectors.kafka.broker import free_port


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "surestream", "topics", *args],
                          capture_output=True, text=True, timeout=120)


def partitions_of(bootstrap: str, name: str) -> int | None:
    meta = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=30).topics
    return len(meta[name].partitions) if name in meta and meta[name].error is None else None


def write(path: Path, doc: dict) -> Path:
    path.write_text(yaml.safe_dump(doc))
    return path


def test_apply_creates_then_matches_then_reports_a_difference_with_exit_1(
        kafka_bootstrap, kafka_topic, tmp_path) -> None:
    a, b = kafka_topic("a"), kafka_topic("b")
    spec = write(tmp_path / "topics.yaml", {
        "defaults": {"retention_ms": "7d", "cleanup_policy": "delete"},
        "topics": {a: {"partitions": 2}, b: None}})

    dry = cli("apply", str(spec), "--bootstrap", kafka_bootstrap, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"{a}: would create" in dry.stdout and f"{b}: would create" in dry.stdout
    assert partitions_of(kafka_bootstrap, a) is None  # a dry run creates nothing

    first = cli("apply", str(spec), "--bootstrap", kafka_bootstrap)
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"{a}: created" in first.stdout and f"{b}: created" in first.stdout
    assert "2 topic(s): 2 created; nothing deleted" in first.stdout
    assert partitions_of(kafka_bootstrap, a) == 2 and partitions_of(kafka_bootstrap, b) == 1

    second = cli("apply", str(spec), "--bootstrap", kafka_bootstrap)
    assert second.returncode == 0
    assert f"{a}: matches" in second.stdout and f"{b}: matches" in second.stdout

    more = write(tmp_path / "more.yaml", {"topics": {a: {"partitions": 4, "retention_ms": "90d"},
                                                    b: None}})
    differs = cli("apply", str(more), "--bootstrap", kafka_bootstrap)
    assert differs.returncode == 1
    lines = differs.stdout.splitlines()
    at = lines.index(f"{a}: differs")
    assert lines[at + 1].strip().startswith("partitions: wanted 4, found 2 -- not changed")
    assert lines[at + 2].strip().startswith(
        "retention_ms: wanted 7776000000 (90d), found 604800000 (7d) -- not changed")
    assert f"{b}: matches" in lines
    assert partitions_of(kafka_bootstrap, a) == 2

    altered = cli("apply", str(more), "--bootstrap", kafka_bootstrap, "--alter")
    assert altered.returncode == 1  # the retention is set; partitions still differ
    assert "retention_ms: wanted 7776000000 (90d), found 604800000 (7d) -- changed" \
        in altered.stdout


def test_apply_of_a_shipped_map_by_name_with_a_prefix(kafka_bootstrap, kafka_topic) -> None:
    prefix = kafka_topic("ep") + "."
    r = cli("apply", "event_platform", "--bootstrap", kafka_bootstrap, "--prefix", prefix,
            "--replication-factor", "1")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{prefix}gold-metrics: created" in r.stdout
    assert "9 topic(s): 9 created; nothing deleted" in r.stdout
    assert partitions_of(kafka_bootstrap, prefix + "raw-events") == 6


def test_list_and_describe(kafka_bootstrap, kafka_topic, tmp_path) -> None:
    name = kafka_topic("d")
    spec = write(tmp_path / "t.yaml", {"topics": {name: {"partitions": 3,
                                                         "retention_ms": "2y"}}})
    assert cli("apply", str(spec), "--bootstrap", kafka_bootstrap).returncode == 0

    listed = cli("list", "--bootstrap", kafka_bootstrap)
    assert listed.returncode == 0
    row = next(line.split() for line in listed.stdout.splitlines() if line.startswith(name))
    assert row == [name, "3", "1"]

    described = cli("describe", name, "--bootstrap", kafka_bootstrap)
    assert described.returncode == 0
    assert "  partitions: 3" in described.stdout
    assert "    retention.ms: 63072000000 (2y)" in described.stdout

    missing = cli("describe", name, name + ".nope", "--bootstrap", kafka_bootstrap)
    assert missing.returncode == 1 and f"{name}.nope: no such topic" in missing.stderr


def test_a_bad_topics_file_names_each_field_and_exits_2(tmp_path) -> None:
    spec = write(tmp_path / "bad.yaml", {
        "defaults": {"min_insync_replicas": 0},
        "topics": {"raw.trades": {"partitions": "eight", "retention_ms": "7 parsecs",
                                  "compresion_type": "lz4"}}})
    r = cli("apply", str(spec), "--bootstrap", "127.0.0.1:1")
    assert r.returncode == 2
    assert f"{spec}: defaults.min_insync_replicas: Input should be greater than or " \
           "equal to 1" in r.stderr
    assert f'{spec}: topics["raw.trades"].partitions: Input should be a valid integer' \
        in r.stderr
    assert f'{spec}: topics["raw.trades"].retention_ms: \'7 parsecs\' is not a duration' \
        in r.stderr
    assert f'{spec}: topics["raw.trades"].compresion_type: unknown key' in r.stderr

    crossed = write(tmp_path / "crossed.yaml", {"topics": {
        "t": {"replication_factor": 2, "min_insync_replicas": 3}, "bad name": {}}})
    r = cli("apply", str(crossed), "--bootstrap", "127.0.0.1:1")
    assert r.returncode == 2
    assert "topics.t.min_insync_replicas: 3 exceeds replication_factor 2" in r.stderr
    assert "topics[\"bad name\"].name: 'bad name' is not a Kafka topic name" in r.stderr


def test_an_unreachable_cluster_is_exit_1_with_the_address(tmp_path) -> None:
    spec = write(tmp_path / "t.yaml", {"topics": {"x": None}})
    address = f"127.0.0.1:{free_port()}"
    r = cli("apply", str(spec), "--bootstrap", address, "--timeout", "2")
    assert r.returncode == 1 and address in r.stderr and "is the cluster running" in r.stderr
