"""``surestream verify`` on a pipeline whose outputs are Kafka topics: each run writes
topics of its own, read back with read_committed; identical runs pass, crash runs (killed
inside the Kafka transaction too) equal the clean run, and a pipeline whose output differs
between runs fails naming the record."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from surestream.apps.trading.simulator import TradeSimulation

USER_CODE = """
import random


def jitter(record):
    record["noise"] = random.random()
    return record
"""


def spec(folder: Path, bootstrap: str, kafka_topic, *steps: dict) -> Path:
    path = folder / "trades.jsonl"
    TradeSimulation(events=1_500, seed=4, malformed_rate=0.01, late_rate=0.02).write(str(path))
    (folder / "usercode.py").write_text(USER_CODE)
    doc = {
        "pipeline": "kafka-verify",
        "source": {"type": "file", "path": str(path), "format": "jsonl"},
        "steps": [{"type": "watermark", "name": "trade_time", "timestamp_column": "timestamp_ms",
                   "max_out_of_orderness_ms": 5000},
                  {"type": "late_data_side_output", "name": "quarantine_late",
                   "output_tag": "late"}, *steps],
        "outputs": {tag: {"type": "kafka", "bootstrap": bootstrap, "topic": kafka_topic(tag),
                          **({"key_fields": ["symbol"]} if tag == "main" else {})}
                    for tag in ("main", "late", "errors")},
    }
    (folder / "spec.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return folder / "spec.yaml"


def verify(folder: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(folder), env.get("PYTHONPATH")) if p)
    return subprocess.run(
        [sys.executable, "-m", "surestream", "verify", "spec.yaml", "--crash-points", "3",
         "--seed", "3", "--workdir", str(folder / "runs")],
        cwd=folder, env=env, capture_output=True, text=True, timeout=900)


def test_verify_passes_a_deterministic_pipeline_writing_kafka_topics(
        tmp_path, kafka_bootstrap, kafka_topic) -> None:
    spec(tmp_path, kafka_bootstrap, kafka_topic)
    proc = verify(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASS replay identity" in proc.stdout and "PASS crash recovery" in proc.stdout


def test_verify_fails_a_pipeline_whose_kafka_output_differs_between_runs(
        tmp_path, kafka_bootstrap, kafka_topic) -> None:
    spec(tmp_path, kafka_bootstrap, kafka_topic,
         {"type": "map", "name": "jitter", "function": "usercode:jitter"})
    proc = verify(tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAIL replay identity" in proc.stdout and "'noise'" in proc.stdout
