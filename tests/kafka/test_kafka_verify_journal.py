"""`surestream verify SPEC --journal DIR` on a live Kafka pipeline (issue 10, item 3): a live
run fed in bursts and stopped with SIGTERM verifies -- its journal replays twice and with
SIGKILLs to exactly its own outputs, a file and a Kafka topic -- and a changed output or a
tampered journal fails, naming what differs."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from live_source_helpers import create_topic, produce, trades
from test_kafka_live_replay import lines, wait_for


def live_spec(tmp_path: Path, bootstrap: str, topic: str, out_topic: str) -> Path:
    spec = {
        "pipeline": "live-verify",
        "source": {"type": "kafka", "bootstrap": bootstrap, "topics": [topic],
                   "schema": {"trade_id": "int", "ts": "int", "symbol": "string",
                              "qty": "int"}},
        "streams": {
            "stamped": {"from": "source", "steps": [
                {"type": "watermark", "timestamp_column": "ts", "max_out_of_orderness_ms": 0,
                 "idle_source_timeout_ms": 300},
                {"type": "processing_time", "column": "seen_at"}]},
            "windows": {"from": "stamped", "steps": [
                {"type": "window", "kind": "tumbling", "size_ms": 5_000,
                 "key_fields": ["symbol"], "aggregations": {"n": "count()"}}]},
        },
        "outputs": {"stamped": {"type": "file", "path": str(tmp_path / "live" / "stamped.jsonl")},
                    "windows": {"type": "kafka", "bootstrap": bootstrap, "topic": out_topic,
                                "key_fields": ["symbol"]},
                    "late_window": {"type": "file",
                                    "path": str(tmp_path / "live" / "late.jsonl")}},
        "checkpoint": {"dir": str(tmp_path / "cp"), "interval_ms": 250},
        "runtime": {"batch_size": 7, "max_batch_delay_ms": 40},
    }
    path = tmp_path / "live.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def verify(spec: Path, journal: Path, workdir: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "surestream", "verify", str(spec),
                           "--journal", str(journal), "--crash-points", "4", "--seed", "3",
                           "--workdir", str(workdir)],
                          capture_output=True, text=True, timeout=900)


def test_verify_journal_of_a_live_kafka_run(kafka_bootstrap, kafka_topic, tmp_path) -> None:
    topic, out_topic = kafka_topic("vj-in"), kafka_topic("vj-windows")
    create_topic(kafka_bootstrap, topic, 2)
    create_topic(kafka_bootstrap, out_topic, 2)
    spec = live_spec(tmp_path, kafka_bootstrap, topic, out_topic)
    proc = subprocess.Popen([sys.executable, "-m", "surestream", "run", str(spec)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sent = 0
    stamped = tmp_path / "live" / "stamped.jsonl"
    try:
        for burst in range(6):  # bursts with pauses: batches close on wall time
            values = [(0 if burst >= 2 else i % 2, v)
                      for i, (_, v) in enumerate(trades(9, 1, start=sent))]
            produce(kafka_bootstrap, topic, values)
            sent += 9
            time.sleep(0.35)
        wait_for(lambda: len(lines(stamped)) == sent)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err

    done = verify(spec, tmp_path / "cp", tmp_path / "v1")
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "PASS replay identity" in out and "late_window, stamped, windows" in out
    assert "PASS crash recovery: 4/4 replays killed with SIGKILL" in out
    assert "PASS no duplicate keys: windows by (symbol, window_start, window_end, " \
           "revision): 0 duplicates" in out
    assert "PASS late path counted" in out

    # a live output changed after the fact: replay identity fails, naming it
    original = stamped.read_text().splitlines()
    changed = json.loads(original[4])
    changed["qty"] += 100
    stamped.write_text("\n".join([*original[:4], json.dumps(changed), *original[5:]]) + "\n")
    done = verify(spec, tmp_path / "cp", tmp_path / "v2")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAIL replay identity: stamped record 5 differs in 'qty'" in done.stdout
    stamped.write_text("\n".join(original) + "\n")

    # a tampered journal (a step that read records dropped): the replay is not the live run
    journal = tmp_path / "cp" / "journal.jsonl"
    entries = journal.read_text().splitlines()
    reading = next(i for i, e in enumerate(entries)
                   if '"s"' in e and json.loads(e)["c"])
    tampered = tmp_path / "tampered"
    tampered.mkdir()
    (tampered / "journal.jsonl").write_text(
        "\n".join(entries[:reading] + entries[reading + 1:]) + "\n")
    done = verify(spec, tampered, tmp_path / "v3")
    assert done.returncode == 1, done.stdout + done.stderr
    fail = [ln for ln in done.stdout.splitlines() if ln.startswith("FAIL replay")]
    assert fail and "stamped" in fail[0], done.stdout
