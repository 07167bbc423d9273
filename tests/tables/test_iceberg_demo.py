"""``surestream demo --warehouse iceberg``: the trading demo writing its warehouse as
Iceberg tables ``trading.<dataset>`` reconciles as the Parquet demo does, and its tables
hold the very rows of the Parquet datasets (compared by key)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl

from surestream.apps.trading.iceberg_warehouse import iceberg_datasets
from surestream.connectors.file_sinks import read_parquet_dataset

SRC = str(Path(__file__).resolve().parents[2] / "src")
EVENTS = "8000"
#: processing-time columns: they differ between any two runs
PROCESSING_TIME = {"enriched_at_ms", "computed_at"}
#: dataset -> its key
KEYED = {"processed_trades_filled": ["trade_id"], "processed_trades_new": ["trade_id"],
         "enriched_trades": ["trade_id"],
         "trade_aggregates": ["symbol", "window_size", "window_start", "revision"]}


def demo(out: Path, *extra: str) -> dict:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-m", "surestream", "demo", "--events", EVENTS,
                           "--days", "1", "--out", str(out), *extra],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return json.loads((out / "report.json").read_text())


def test_the_iceberg_warehouse_reconciles_and_holds_the_parquet_warehouses_rows(tmp_path):
    parquet = demo(tmp_path / "parquet")
    iceberg = demo(tmp_path / "iceberg", "--warehouse", "iceberg")
    checks = iceberg["reconciliation"]
    assert checks and all(c["found"] == c["injected"] for c in checks)
    assert checks == parquet["reconciliation"]
    warehouse = tmp_path / "iceberg" / "warehouse"
    assert not (warehouse / "processed_trades_filled").exists()  # no Parquet dataset
    tables = iceberg_datasets(warehouse, set(KEYED))
    assert set(tables) == set(KEYED)
    for name, key in KEYED.items():
        want = read_parquet_dataset(tmp_path / "parquet" / "warehouse" / name)
        got = pl.from_arrow(tables[name])
        columns = [c for c in want.columns if c in got.columns
                   and c not in PROCESSING_TIME]
        assert got.height == want.height > 0, name
        assert got.select(columns).sort(key).equals(
            want.select(columns).cast(got.select(columns).schema).sort(key)), name
