#!/usr/bin/env python3
"""The trading price-alerts job (examples/trading/alerts.yaml) over a simulated market.

Simulates ``--events`` events (``surestream simulate``), then runs the alerts job on its
trades and ticks ``--repeat`` times, each in a fresh workspace, through the command line
(``surestream run alerts.yaml --set source.path=[...]``), and prints per run the wall
time, the records read, events/s and the alerts written. docs/benchmarks.md has the figures.

    python benchmarks/alerts_job.py [--events 1000000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

REPO = Path(__file__).resolve().parent.parent
SPEC = REPO / "src" / "surestream" / "examples" / "trading" / "alerts.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="alerts-bench-") as tmp:
        market = Path(tmp) / "market"
        subprocess.run([sys.executable, "-m", "surestream", "simulate", "--events",
                        str(args.events), "--out", str(market)], check=True,
                       stdout=subprocess.DEVNULL)
        inputs = [market / "raw.trades.jsonl", market / "raw.marketdata.jsonl"]
        records = sum(sum(1 for _ in p.open("rb")) for p in inputs)
        for run in range(1, args.repeat + 1):
            ws = Path(tmp) / f"ws{run}"
            ws.mkdir()
            shutil.copy(SPEC, ws / "alerts.yaml")
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "surestream", "run", "alerts.yaml", "--set",
                            f"source.path=[{inputs[0]}, {inputs[1]}]"], cwd=ws, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wall = time.perf_counter() - started
            alerts = pl.read_parquet(ws / "warehouse" / "price_alerts" / "**" / "*.parquet")
            print(f"run {run}: {wall:.1f} s, {records:,} lines, {records / wall:,.0f} "
                  f"events/s, {alerts.height} alerts")


if __name__ == "__main__":
    main()
