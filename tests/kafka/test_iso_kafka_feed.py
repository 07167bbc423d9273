"""The ISO feed through Kafka: `surestream simulate iso --kafka` publishes the feed to a
topic of one partition, and the hardened_iso_streaming template reading that topic (bounded
at its end) fills the tables exactly as the truth says -- as it does from the file."""

from __future__ import annotations

import subprocess
import sys

import orjson

from surestream.apps.energy.iso_reconcile import iceberg_checks
from surestream.apps.energy.iso_template import hardened_iso_streaming
from surestream.model.loader import build_spec
from surestream.runners.local.runner import LocalRunner


def test_template_over_the_simulated_topic_reconciles(kafka_bootstrap, kafka_topic, tmp_path):
    topic = kafka_topic("iso")
    proc = subprocess.run(
        [sys.executable, "-m", "surestream", "simulate", "iso", "--kafka", "--bootstrap",
         kafka_bootstrap, "--topic", topic, "--hours", "1", "--seed", "9",
         "--out", str(tmp_path / "truth")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    truth = orjson.loads((tmp_path / "truth" / "truth.json").read_bytes())
    assert not (tmp_path / "truth" / "lmp.jsonl").exists()  # the lines went to the topic
    doc = hardened_iso_streaming(out_dir="out", kafka={
        "topic": topic, "bootstrap": kafka_bootstrap, "stop_at": "end"})
    result = LocalRunner(build_spec(doc, base_dir=tmp_path)).run()
    assert result.records_in == truth["lines"]
    checks = iceberg_checks(truth, doc["outputs"]["rt_lmp_5m"]["catalog"], tmp_path)
    assert [c for c in checks if not c.ok] == []
    assert result.operator_counters["dedup_messages"]["duplicates"] == \
        truth["expected"]["duplicates"]
