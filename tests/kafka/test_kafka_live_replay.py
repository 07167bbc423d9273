"""A live Kafka run: it runs until SIGTERM (exit 0, everything committed), batches close on
wall time, idleness runs on the wall clock -- and `surestream replay` reproduces its
outputs byte for byte from the journal, without touching the live run's outputs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from live_source_helpers import create_topic, produce, trades


def live_spec(tmp_path: Path, bootstrap: str, topic: str) -> Path:
    spec = {
        "pipeline": "live",
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
                    "windows": {"type": "file", "path": str(tmp_path / "live" / "windows.jsonl")},
                    "late_window": {"type": "file",
                                    "path": str(tmp_path / "live" / "late.jsonl")}},
        "checkpoint": {"dir": str(tmp_path / "cp"), "interval_ms": 250},
        "runtime": {"batch_size": 7, "max_batch_delay_ms": 40},
    }
    path = tmp_path / "live.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def wait_for(cond, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_live_run_stops_on_sigterm_and_replays_byte_for_byte(
        kafka_bootstrap, kafka_topic, tmp_path) -> None:
    topic = kafka_topic("live")
    create_topic(kafka_bootstrap, topic, 2)
    produce(kafka_bootstrap, topic, trades(20, 2))
    spec = live_spec(tmp_path, kafka_bootstrap, topic)
    env = {**os.environ}
    proc = subprocess.Popen([sys.executable, "-m", "surestream", "run", str(spec)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        sent = 20
        stamped = tmp_path / "live" / "stamped.jsonl"
        # the run is up and has read the first records before the bursts come (on a
        # loaded machine its start-up can outlast them all: one batch, one stamp)
        wait_for(lambda: len(lines(stamped)) == sent)
        for burst in range(6):  # fed while it runs, with pauses: batches close on time
            time.sleep(0.35)
            # partition 1 goes quiet after the second burst: its idleness (wall clock)
            # lets the watermark, and the windows, move on
            values = [(0 if burst >= 2 else i % 2, v)
                      for i, (_, v) in enumerate(trades(9, 1, start=sent))]
            produce(kafka_bootstrap, topic, values)
            sent += 9
        wait_for(lambda: len(lines(stamped)) == sent)
        assert proc.poll() is None  # a live run does not end on its own
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    live = {name: (tmp_path / "live" / name).read_bytes()
            for name in ("stamped.jsonl", "windows.jsonl")}
    assert sorted(r["trade_id"] for r in lines(stamped)) == list(range(sent))
    assert lines(tmp_path / "live" / "windows.jsonl")
    # processing time came from the wall clock, a new stamp at each checkpoint
    assert len({r["seen_at"] for r in lines(stamped)}) > 1
    steps = [json.loads(x) for x in (tmp_path / "cp" / "journal.jsonl").read_text()
             .splitlines()[1:] if '"s"' in x]
    assert sum(1 for s in steps if s["c"]) > 3  # records came in several batches

    out_dir = tmp_path / "replay"
    done = subprocess.run([sys.executable, "-m", "surestream", "replay", str(spec),
                           "--out", str(out_dir)], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert (out_dir / "stamped.jsonl").read_bytes() == live["stamped.jsonl"]
    assert (out_dir / "windows.jsonl").read_bytes() == live["windows.jsonl"]
    # the live run's outputs are untouched
    assert {n: (tmp_path / "live" / n).read_bytes() for n in live} == live

    # a replay never writes where something is
    again = subprocess.run([sys.executable, "-m", "surestream", "replay", str(spec),
                            "--out", str(out_dir)], env=env, capture_output=True, text=True,
                           timeout=120)
    assert again.returncode == 2 and "not an empty folder" in again.stderr
