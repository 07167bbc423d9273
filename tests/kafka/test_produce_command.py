"""`surestream produce FILE --topic T`: every line of the file is on the topic (count and
content, keyed by a field when asked), and any line not acknowledged makes it exit 1."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from producer_readback import all_records, create_topic


def produce(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "surestream", "produce", *args],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def test_produce_sends_every_line_keyed_by_a_field(kafka_bootstrap, kafka_topic, tmp_path):
    topic = create_topic(kafka_bootstrap, kafka_topic("orders"))
    rows = [{"order": i, "user": f"u{i % 7}", "amount": i * 1.5} for i in range(250)]
    lines = [json.dumps(r) for r in rows]
    path = tmp_path / "orders.jsonl"
    path.write_text("\n".join(lines[:100]) + "\n\n" + "\n".join(lines[100:]) + "\n")
    r = produce(str(path), "--topic", topic, "--bootstrap", kafka_bootstrap,
                "--key-field", "user")
    assert r.returncode == 0, r.stderr
    assert f"sent 250 of 250 lines to {topic}" in r.stdout
    records = all_records(kafka_bootstrap, topic, 250)
    assert sorted(m.value().decode() for m in records) == sorted(lines)
    assert all(m.key().decode() == json.loads(m.value())["user"] for m in records)
    # one user, one partition, in file order
    for user in {row["user"] for row in rows}:
        mine = [m for m in records if m.key() == user.encode()]
        assert len({m.partition() for m in mine}) == 1
        orders = [json.loads(m.value())["order"] for m in sorted(mine, key=lambda m: m.offset())]
        assert orders == sorted(orders)


def test_produce_without_key_sends_lines_as_they_are(kafka_bootstrap, kafka_topic, tmp_path):
    topic = kafka_topic("plain")
    path = tmp_path / "lines.txt"
    path.write_text("alpha\nnot json at all\n{\"x\": 1}\n")
    r = produce(str(path), "--topic", topic, "--bootstrap", kafka_bootstrap,
                "--preset", "throughput")
    assert r.returncode == 0, r.stderr
    records = all_records(kafka_bootstrap, topic, 3)
    assert sorted(m.value() for m in records) == sorted([b"alpha", b"not json at all",
                                                         b'{"x": 1}'])
    assert {m.key() for m in records} == {None}


def test_produce_exits_1_naming_each_line_not_acknowledged(kafka_bootstrap, kafka_topic,
                                                           tmp_path):
    topic = create_topic(kafka_bootstrap, kafka_topic("failing"))
    good = [json.dumps({"id": i, "k": "a"}) for i in range(3)]
    too_big = json.dumps({"id": 3, "k": "a", "blob": "x" * 1_100_000})
    no_key = json.dumps({"id": 4})
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join([good[0], too_big, good[1], no_key, good[2]]) + "\n")
    r = produce(str(path), "--topic", topic, "--bootstrap", kafka_bootstrap,
                "--key-field", "k")
    assert r.returncode == 1
    assert "sent 3 of 5 lines" in r.stdout
    assert "line 2: MSG_SIZE_TOO_LARGE" in r.stderr
    assert "line 4: has no field 'k'" in r.stderr
    records = all_records(kafka_bootstrap, topic, 3)
    assert sorted(m.value().decode() for m in records) == sorted(good)


def test_produce_without_a_broker_to_use_is_a_usage_error(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text("{}\n")
    env = {"SURESTREAM_HOME": str(tmp_path), "SURESTREAM_BOOTSTRAP": ""}
    r = produce(str(path), "--topic", "t", env=env)
    assert r.returncode == 2 and "--bootstrap" in r.stderr
    r = produce(str(tmp_path / "missing.jsonl"), "--topic", "t", "--bootstrap", "x:1")
    assert r.returncode == 2 and "no such file" in r.stderr
