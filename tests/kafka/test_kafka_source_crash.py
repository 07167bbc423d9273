"""Offsets restored exactly after SIGKILL: `surestream verify` on a bounded Kafka source
(its crash recovery check kills runs at seeded points inside checkpoints and mid-batch,
restarts them, and compares with a clean run), and a live run killed at a random moment,
restarted and stopped: every record once, and its journal still replays it exactly."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import yaml
from live_source_helpers import create_topic, kafka_spec, produce, trades
from test_kafka_live_replay import lines, live_spec, wait_for


def test_verify_passes_on_a_bounded_kafka_pipeline(kafka_bootstrap, kafka_topic,
                                                   tmp_path) -> None:
    topic = kafka_topic("verify")
    create_topic(kafka_bootstrap, topic, 3)
    produce(kafka_bootstrap, topic, trades(3000, 3), linger_ms=20)
    d = kafka_spec(kafka_bootstrap, [topic], stop_at="end")
    d["outputs"] = {"main": {"type": "file", "path": str(tmp_path / "main.jsonl")},
                    "late_window": {"type": "file", "path": str(tmp_path / "late.jsonl")}}
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(d))
    done = subprocess.run([sys.executable, "-m", "surestream", "verify", str(spec),
                           # six: every fault point this pipeline passes, once each
                           "--crash-points", "6", "--seed", "5",
                           "--workdir", str(tmp_path / "verify")],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS replay identity" in done.stdout
    assert "PASS crash recovery: 6/6 runs killed with SIGKILL" in done.stdout


def test_live_run_killed_restarted_and_stopped_keeps_every_record_once(
        kafka_bootstrap, kafka_topic, tmp_path) -> None:
    topic = kafka_topic("kill")
    create_topic(kafka_bootstrap, topic, 2)
    spec = live_spec(tmp_path, kafka_bootstrap, topic)
    cmd = [sys.executable, "-m", "surestream", "run", str(spec)]
    rng = random.Random(7)
    sent = 0
    for _ in range(3):  # three lives, each killed at a random moment
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(3):
            produce(kafka_bootstrap, topic, [(i % 2, v) for i, (_, v)
                                             in enumerate(trades(11, 1, start=sent))])
            sent += 11
            time.sleep(rng.uniform(0.05, 0.4))
        time.sleep(rng.uniform(0.0, 0.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    savepoint = tmp_path / "savepoint"
    proc = subprocess.Popen([*cmd, "--stop-with-savepoint", str(savepoint)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stamped = tmp_path / "live" / "stamped.jsonl"
    try:
        wait_for(lambda: len(lines(stamped)) >= sent)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert sorted(r["trade_id"] for r in lines(stamped)) == list(range(sent))
    assert any(savepoint.glob("chk-*.json")) and "savepoint" in out
    # the group's committed offsets are the final positions (for lag tools)
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": "surestream-live"})
    committed = c.committed([TopicPartition(topic, p) for p in (0, 1)], timeout=10)
    c.close()
    assert sum(tp.offset for tp in committed) == sent

    replayed = subprocess.run([sys.executable, "-m", "surestream", "replay", str(spec),
                               "--out", str(tmp_path / "replay")],
                              capture_output=True, text=True, timeout=120,
                              env=dict(os.environ))
    assert replayed.returncode == 0, replayed.stderr
    for name in ("stamped.jsonl", "windows.jsonl"):
        assert (tmp_path / "replay" / name).read_bytes() == \
            (tmp_path / "live" / name).read_bytes()
    assert json.loads((tmp_path / "cp" / "journal.jsonl").read_text().splitlines()[0])[
        "journal"] == 1


def test_verify_refuses_a_live_kafka_pipeline_naming_stop_at(kafka_bootstrap, tmp_path) -> None:
    d = kafka_spec(kafka_bootstrap, ["any"])
    d["outputs"] = {"main": {"type": "file", "path": str(tmp_path / "main.jsonl")},
                    "late_window": {"type": "file", "path": str(tmp_path / "late.jsonl")}}
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(d))
    done = subprocess.run([sys.executable, "-m", "surestream", "verify", str(spec)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "source.stop_at" in done.stderr and "stop_at: end" in done.stderr
