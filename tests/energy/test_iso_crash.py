"""`surestream verify` on the hardened_iso_streaming template with its ClickHouse output:
two clean runs identical (a replay from the start reproduces every table), runs killed with
SIGKILL at seeded points and restarted from their checkpoints equal to the clean run (nothing
lost, nothing twice), one row per key in every curated table, the late path counted."""

from __future__ import annotations

import re
import uuid

import yaml
from crash_suite import verify_passes

from surestream.apps.energy.iso_simulator import IsoSimulation
from surestream.apps.energy.iso_template import hardened_iso_streaming


def test_verify_kills_and_restarts_without_loss_or_duplicates(clickhouse_server, tmp_path):
    truth = IsoSimulation(hours=1, seed=21, duplicate_rate=0.05, late_rate=0.03,
                          correction_rate=0.05).write(tmp_path / "data")
    assert truth["expected"]["late"] and truth["expected"]["superseded"]
    doc = hardened_iso_streaming(
        input_path="data/lmp.jsonl", out_dir="out", checkpoint_interval_records=200,
        checkpoint_interval_ms=None, batch_size=100,
        clickhouse={"host": clickhouse_server.host, "port": clickhouse_server.port,
                    "table": f"v_{uuid.uuid4().hex[:10]}"})
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(yaml.safe_dump(doc, sort_keys=False))
    lines = verify_passes(spec, 2, 5, [], tmp_path / "runs")
    # the clean runs' figures are the truth's
    figures = dict(re.findall(r"(\w+) ([\d,]+)(?=[,)]| records)", lines[0]))
    assert int(figures["rt_lmp_5m"].replace(",", "")) == truth["expected"]["curated_rows"]
    assert int(figures["late_iso_lmp"].replace(",", "")) == truth["expected"]["late"]
    assert int(figures["errors"].replace(",", "")) == truth["expected"]["errors"]
