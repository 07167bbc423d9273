"""Crash safety of the Iceberg sink: a run killed with SIGKILL at a kill point (through
the runner's fault points, as ``surestream verify`` does) and restarted holds exactly the
rows of a clean run, by key -- none lost, none twice; and a restart is refused when the
table holds a checkpoint newer than any it can restore."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from surestream.connectors.tables.iceberg_read import read_table

SRC = str(Path(__file__).resolve().parents[2] / "src")
CATALOG = {"uri": "sqlite:///out/catalog.db", "warehouse": "out/warehouse"}


def write_pipeline(folder: Path) -> Path:
    records = [{"id": i % 70, "iso": ["CAISO", "PJM", "ERCOT"][i % 3],
                "ts": 1_772_409_600_000 + 60_000 * i, "lmp": float(i)} for i in range(90)]
    (folder / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    spec = {
        "pipeline": "iceberg-crash",
        "source": {"type": "file", "path": "in.jsonl", "format": "jsonl"},
        "steps": [{"type": "watermark", "timestamp_column": "ts"},
                  {"type": "keyed_dedup", "key_fields": ["id"], "time_window_ms": 10**9}],
        "outputs": {"main": {"type": "iceberg", "catalog": CATALOG, "table": "curated.lmp",
                             "partition_by": ["iso"], "audit": {"unique": ["id"]}},
                    "errors": {"type": "file", "path": "out/errors.jsonl"}},
        "checkpoint": {"dir": "out/checkpoints", "interval_records": 20},
        "runtime": {"batch_size": 10},
    }
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def run(spec: Path, fault: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SURESTREAM_FAULT")}
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    if fault:
        env["SURESTREAM_FAULT"] = fault
    return subprocess.run([sys.executable, "-m", "surestream", "run", str(spec)],
                          env=env, capture_output=True, text=True, timeout=120)


def table_ids(folder: Path) -> list[int]:
    frame = read_table(CATALOG, "curated.lmp", lambda p: folder / p)
    return sorted(frame["id"].to_list())


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> list[int]:
    folder = tmp_path_factory.mktemp("clean")
    assert run(write_pipeline(folder)).returncode == 0
    return table_ids(folder)


@pytest.mark.parametrize("fault", [
    "checkpoint.durable:2",        # checkpoint 2 durable, its snapshot staged, not published
    "checkpoint.pre_committed:3",  # staged, the checkpoint not yet durable
    "checkpoint.commit_partial:2",  # published, the errors file not yet committed
    "batch.mid:5",                 # in the middle of the open checkpoint interval
])
def test_killed_and_restarted_run_holds_the_clean_runs_rows_by_key(tmp_path, clean, fault):
    assert clean == list(range(70))  # every key once: the dedup kept the first of each
    spec = write_pipeline(tmp_path)
    killed = run(spec, fault)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    restarted = run(spec)
    assert restarted.returncode == 0, restarted.stderr
    assert table_ids(tmp_path) == clean


def test_a_table_newer_than_every_restorable_checkpoint_is_refused(tmp_path, clean):
    spec = write_pipeline(tmp_path)
    assert run(spec, "batch.mid:8").returncode == -signal.SIGKILL  # after checkpoint 3
    checkpoints = sorted((tmp_path / "out" / "checkpoints").glob("chk-*.json"))
    held = table_ids(tmp_path)
    checkpoints[-1].unlink()  # the newest checkpoint is lost; the table holds its rows
    refused = run(spec)
    assert refused.returncode == 2  # cannot resume: as every sink's recovery refusal
    assert "already holds checkpoint" in refused.stderr
    assert "newer than the restored checkpoint" in refused.stderr
    assert table_ids(tmp_path) == held  # the table was left as it was
