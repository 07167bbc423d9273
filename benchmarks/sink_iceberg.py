#!/usr/bin/env python3
"""The Iceberg sink: rows/s and commit latency, against a Parquet dataset output.

Two workloads over the trades-1m input (../shared/bench/gen_trades.py, seed 42):

1. the trades windows: benchmarks/trades_1m.yaml (watermark, dedup, 1-minute VWAP
   windows per symbol) with its windows written to an Iceberg table;
2. 1M raw trades: every trade (watermark only) written to an Iceberg table partitioned
   by ``status``.

Both checkpoint every 1 s.

For each: the run's records/s end to end, the rows written, and per checkpoint the time
the sink spent staging (pre_commit: write the snapshot on its branch, audit) and
publishing (commit: ancestry check, move ``main``) -- median and max -- beside the
same pipeline writing a Parquet dataset. The embedded SQLite catalog, a local warehouse.

    python benchmarks/sink_iceberg.py [--events 1000000] [--data bench-data]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SPEC = HERE / "trades_1m.yaml"

DRIVER = r"""
import json, sys, time
from surestream.connectors.tables.iceberg import IcebergTableSink
from surestream.connectors.file_sinks import ParquetDatasetSink
from surestream.model.loader import build_spec
from surestream.runners.local.runner import LocalRunner

timings = {"pre_commit": [], "commit": []}
def timed(cls, name):
    inner = getattr(cls, name)
    def wrapper(self, *a, **k):
        t0 = time.perf_counter()
        try:
            return inner(self, *a, **k)
        finally:
            timings[name].append(time.perf_counter() - t0)
    setattr(cls, name, wrapper)
cls = IcebergTableSink if sys.argv[2] == "iceberg" else ParquetDatasetSink
timed(cls, "pre_commit"); timed(cls, "commit")
spec = build_spec(json.loads(open(sys.argv[1]).read()), sys.argv[3])
t0 = time.perf_counter()
result = LocalRunner(spec).run()
print("RESULT " + json.dumps({"elapsed_s": time.perf_counter() - t0,
                              "records_in": result.records_in, "written": result.written,
                              "timings": timings}))
"""


def ensure_data(events: int, data_dir: Path) -> Path:
    path = data_dir / f"trades-{events}.jsonl"
    if not path.exists():
        bench = next(p for p in (REPO.parent / "shared" / "bench",
                                 REPO.parent.parent / "shared" / "bench")
                     if (p / "gen_trades.py").exists())
        subprocess.run([sys.executable, str(bench / "gen_trades.py"), "--n", str(events),
                        "--seed", "42", "--out", str(data_dir), "--parts", "0"], check=True)
    return path


def spec_doc(workload: str, sink: str, data: Path, out: Path) -> dict:
    import yaml

    if workload == "windows":
        doc = yaml.safe_load(SPEC.read_text())
    else:
        doc = {"pipeline": "raw-trades",
               "steps": [{"type": "watermark", "timestamp_column": "timestamp_ms",
                          "max_out_of_orderness_ms": 5000}],
               "outputs": {}, "runtime": {"batch_size": 65536}}
    doc["source"] = {"type": "file", "path": str(data), "format": "jsonl"}
    partition = ["status"] if workload == "raw" else None
    if sink == "iceberg":
        main = {"type": "iceberg", "table": f"bench.{workload}",
                "catalog": {"uri": f"sqlite:///{out}/catalog.db",
                            "warehouse": str(out / "warehouse")}}
        if partition:
            main["partition_by"] = partition
    else:
        main = {"type": "file", "format": "parquet", "path": str(out / "dataset")}
        if partition:
            main["partition_by"] = partition
    doc["outputs"] = {"main": main,
                      "late_window": {"type": "file", "path": str(out / "late.jsonl")},
                      "errors": {"type": "file", "path": str(out / "errors.jsonl")}}
    if workload == "raw":
        del doc["outputs"]["late_window"]
    doc["checkpoint"] = {"dir": str(out / "checkpoints"), "interval_ms": 1000}
    return doc


def run(workload: str, sink: str, data: Path) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"bench-{sink}-") as d:
        out = Path(d)
        spec = out / "spec.json"
        spec.write_text(json.dumps(spec_doc(workload, sink, data, out)))
        env = {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep
               + os.environ.get("PYTHONPATH", "")}
        proc = subprocess.run([sys.executable, "-c", DRIVER, str(spec), sink, str(out)],
                              env=env, capture_output=True, text=True, check=True)
        line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
        return json.loads(line[len("RESULT "):])


def summary(workload: str, sink: str, r: dict) -> str:
    stage, publish = r["timings"]["pre_commit"], r["timings"]["commit"]
    both = [a + b for a, b in zip(stage, publish, strict=False)]

    def ms(values: list[float]) -> str:
        if not values:
            return "-"
        return f"{statistics.median(values) * 1000:.0f} / {max(values) * 1000:.0f}"

    rows = r["written"].get("main", 0)
    return (f"| {workload} | {sink} | {r['records_in'] / r['elapsed_s']:,.0f} | {rows:,} | "
            f"{rows / r['elapsed_s']:,.0f} | {len(stage)} | {ms(stage)} | {ms(publish)} | "
            f"{ms(both)} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000,
                    help="trades in the input (default: 1000000)")
    ap.add_argument("--data", default=str(REPO / "bench-data"),
                    help="where the generated input is kept (default: bench-data)")
    args = ap.parse_args()
    data = ensure_data(args.events, Path(args.data))
    print(f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} cores, "
          f"{time.strftime('%Y-%m-%d')}")
    print("| workload | output | records/s end to end | rows written | rows/s written | "
          "checkpoints | stage ms (median / max) | publish ms | commit total ms |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for workload in ("windows", "raw"):
        for sink in ("parquet", "iceberg"):
            print(summary(workload, sink, run(workload, sink, data)), flush=True)


if __name__ == "__main__":
    main()
