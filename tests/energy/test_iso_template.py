"""The hardened_iso_streaming factory: the seed's parameters as defaults, the feed
profile's keys as parameters, a spec `surestream validate` accepts, and the shipped YAML
equal to the factory's output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

import surestream
from surestream.apps.energy.iso_template import hardened_iso_streaming
from surestream.model.loader import build_spec

SHIPPED = Path(surestream.__file__).parent / "apps" / "templates" / "hardened_iso_streaming.yaml"


def steps(doc: dict) -> dict[str, dict]:
    return {s["name"]: s for st in doc["streams"].values() for s in st["steps"]}


def test_defaults_are_the_seed_parameters():
    doc = hardened_iso_streaming()
    by_name = steps(doc)
    wm = by_name["add_event_time_watermark"]
    assert (wm["timestamp_column"], wm["max_out_of_orderness_ms"],
            wm["idle_source_timeout_ms"], wm["strategy"]) == (
        "event_timestamp", 600_000, 60_000, "bounded_out_of_orderness")
    dedup = by_name["dedup_messages"]
    assert (dedup["key_fields"], dedup["time_window_ms"], dedup["strategy"],
            dedup["state_ttl_ms"]) == (["iso", "node", "interval_start", "message_id"],
                                       600_000, "first", 3_600_000)
    late = by_name["quarantine_late"]["metadata"]
    assert all(late.values()) and len(late) == 3
    hourly = by_name["hourly_per_node"]
    assert (hourly["kind"], hourly["size_ms"], hourly["key_fields"]) == (
        "tumbling", 3_600_000, ["iso", "node"])
    curated = doc["outputs"]["rt_lmp_5m"]
    assert (curated["type"], curated["table"], curated["write_audit_publish"]) == (
        "iceberg", "curated.rt_lmp_5m", True)
    quarantine = doc["outputs"]["late_iso_lmp"]
    assert (quarantine["table"], quarantine["partition_by"]) == (
        "quarantine.late_iso_lmp", ["processing_date", "iso"])
    assert "rt_lmp_5m_clickhouse" not in doc["outputs"]  # no connection given


def test_feed_profile_parameters_and_clickhouse_flow_into_the_spec(tmp_path):
    doc = hardened_iso_streaming(watermark_max_out_of_order_ms=120_000, dedup_window_ms=60_000,
                                 state_ttl_ms=900_000, idle_timeout_ms=5_000,
                                 input_path="feed/*.jsonl", out_dir="o",
                                 clickhouse={"host": "ch", "port": 9001, "table": "lmp"})
    by_name = steps(doc)
    assert by_name["add_event_time_watermark"]["max_out_of_orderness_ms"] == 120_000
    assert by_name["add_event_time_watermark"]["idle_source_timeout_ms"] == 5_000
    assert by_name["dedup_messages"]["time_window_ms"] == 60_000
    assert by_name["dedup_messages"]["state_ttl_ms"] == 900_000
    assert doc["source"]["path"] == "feed/*.jsonl"
    assert doc["checkpoint"]["dir"] == "o/checkpoints"
    ch = doc["outputs"]["rt_lmp_5m_clickhouse"]
    assert (ch["type"], ch["host"], ch["port"], ch["table"], ch["key_columns"],
            ch["version_column"]) == ("clickhouse", "ch", 9001, "lmp",
                                      ["iso", "node", "interval_start"], "event_version")
    build_spec(doc, base_dir=tmp_path)  # valid


def test_shipped_yaml_is_the_factory_output_and_validates():
    assert yaml.safe_load(SHIPPED.read_text()) == hardened_iso_streaming()
    proc = subprocess.run([sys.executable, "-m", "surestream", "validate", str(SHIPPED)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
