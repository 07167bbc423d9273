#!/usr/bin/env python3
"""The PostgreSQL sink: rows/s and commit latency, for the trades windows and 1M raw trades.

Drives the sink as the runner does (reject, write per batch, pre_commit + commit at each
checkpoint, a checkpoint every ``--interval`` seconds of wall time) into a real PostgreSQL
server: the one ``--dsn`` names, else a temporary PostgreSQL 15 started on 127.0.0.1 (as the
tests do: ``tests/tables/postgres_server.py``; as root it runs as the ``postgres`` user).

- windows: the 1-minute VWAP windows of ``--events`` generated trades
  (examples/trades_vwap.yaml, memory outputs), written in each mode (append, upsert by
  (symbol, window_start) under their own revision column, replace_partition by
  window_start);
- raw trades: the ``--events`` trades themselves, appended, in batches of 65,536; and
  the same through ``surestream run`` (benchmarks/trades_1m.yaml without its steps, a
  checkpoint every ``--interval`` s), beside the same run into a Parquet dataset.

Prints per case: rows, wall seconds, rows/s, checkpoints and the commit latency
(pre_commit + commit: COPY into staging, then the move and the commits row) median / max.
docs/benchmarks.md ("Table sinks") has the figures.

    python benchmarks/sink_postgres.py [--events 1000000] [--interval 1.0] [--dsn DSN]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BATCH = 65_536


def server(folder: Path):
    """A temporary PostgreSQL 15 (the tests' helper), started."""
    sys.path.insert(0, str(REPO / "tests" / "tables"))
    import shutil

    from postgres_server import PostgresServer, _free_port
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    found = PostgresServer(folder, _free_port())
    found.start()
    return found


def trades(events: int, folder: Path) -> pl.DataFrame:
    shared = next(p for p in (REPO.parent / "shared", REPO / "shared")
                  if (p / "bench" / "gen_trades.py").exists())
    subprocess.run([sys.executable, str(shared / "bench" / "gen_trades.py"), "--n",
                    str(events), "--seed", "7", "--out", str(folder), "--parts", "0"],
                   check=True, capture_output=True)
    return pl.read_ndjson(folder / f"trades-{events}.jsonl")


def windows(path: Path, folder: Path) -> pl.DataFrame:
    from surestream.model.loader import load_spec
    from surestream.runners.local.runner import LocalRunner

    spec = load_spec(REPO / "src" / "surestream" / "examples" / "trades_vwap.yaml", [
        f"source.path={path}", f"checkpoint.dir={folder / 'chk'}",
        "outputs.main={type: memory}", "outputs.late={type: memory}",
        "outputs.late_window={type: memory}", "outputs.errors={type: memory}"])
    return pl.DataFrame(LocalRunner(spec).run().rows("main"), infer_schema_length=None)


def drive(dsn: str, table: str, frame: pl.DataFrame, interval: float, **keys) -> str:
    from surestream.connectors.tables.postgres import PostgresTableSink
    from surestream.model.spec import PostgresSink

    sink = PostgresTableSink(PostgresSink(dsn=dsn, table=table, **keys), "bench", table)
    sink.open(fresh=True)
    latencies, staging, n = [], [], 0
    started = last = time.perf_counter()

    def checkpoint() -> None:
        nonlocal n, last
        n += 1
        t0 = time.perf_counter()
        committable = sink.pre_commit(n)
        t1 = time.perf_counter()
        sink.commit(committable)
        latencies.append(time.perf_counter() - t0)
        staging.append(t1 - t0)
        last = time.perf_counter()

    for batch in frame.iter_slices(BATCH):
        rejected = sink.reject(batch)
        assert rejected is None, rejected.reasons[:3]
        sink.write(batch)
        if time.perf_counter() - last >= interval:
            checkpoint()
    checkpoint()
    wall = time.perf_counter() - started
    sink.close()
    return (f"{frame.height:>9,} rows  {wall:6.2f} s  {frame.height / wall:>9,.0f} rows/s  "
            f"{n:>3} checkpoints  commit median {statistics.median(latencies) * 1e3:7.1f} ms"
            f"  max {max(latencies) * 1e3:7.1f} ms (COPY to staging: "
            f"{sum(staging) / sum(latencies):.0%})")


def pipeline(dsn: str, path: Path, folder: Path, interval: float) -> str:
    """1M raw trades through ``surestream run`` (in process) into the table, checkpointing
    every ``interval`` s, against the same run into a Parquet dataset: the sink's real cost
    in a run, and each checkpoint's commit latency (pre_commit + commit, timed around the
    sink's own methods)."""
    from surestream.connectors.tables import postgres as pg
    from surestream.model.loader import apply_override, build_spec, load_spec_dict
    from surestream.runners.local.runner import LocalRunner

    timings: list[float] = []
    pre_commit, commit = pg.PostgresTableSink.pre_commit, pg.PostgresTableSink.commit
    began: dict[int, float] = {}

    def timed_pre_commit(self, n):
        began[n] = time.perf_counter()
        return pre_commit(self, n)

    def timed_commit(self, committable):
        commit(self, committable)
        timings.append(time.perf_counter() - began.pop(committable["checkpoint"]))

    pg.PostgresTableSink.pre_commit, pg.PostgresTableSink.commit = timed_pre_commit, timed_commit
    walls = {}
    for name, output in (("parquet", f"{{type: file, format: parquet, path: '{folder}/raw'}}"),
                         ("postgres", f"{{type: postgres, dsn: '{dsn}', table: bench_raw}}")):
        doc = load_spec_dict(HERE / "trades_1m.yaml")
        for assignment in (f"source.path={path}", "steps=[]", f"outputs.main={output}",
                           f"outputs.errors.path={folder / name / 'errors.jsonl'}",
                           f"checkpoint={{dir: '{folder / name / 'chk'}', "
                           f"interval_ms: {int(interval * 1000)}}}"):
            apply_override(doc, assignment)
        del doc["outputs"]["late_window"]
        spec = build_spec(doc, HERE)
        started = time.perf_counter()
        result = LocalRunner(spec).run()
        walls[name] = time.perf_counter() - started
    pg.PostgresTableSink.pre_commit, pg.PostgresTableSink.commit = pre_commit, commit
    rows = result.records_in
    return (f"{rows:>9,} rows  {walls['postgres']:6.2f} s  {rows / walls['postgres']:>9,.0f} "
            f"rows/s  {len(timings):>3} checkpoints  commit median "
            f"{statistics.median(timings) * 1e3:7.1f} ms  max {max(timings) * 1e3:7.1f} ms"
            f"  (into Parquet: {walls['parquet']:.2f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--interval", type=float, default=1.0,
                        help="seconds between checkpoints")
    parser.add_argument("--dsn", help="a PostgreSQL to write to (tables bench_*)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pg-bench-") as tmp:
        folder = Path(tmp)
        started = None
        dsn = args.dsn
        if dsn is None:  # a folder of its own: the postgres user cannot enter ``tmp``
            started = server(Path(tempfile.mkdtemp(prefix="pg-bench-server-")))
            dsn = started.dsn()
        try:
            raw = trades(args.events, folder)
            wins = windows(folder / f"trades-{args.events}.jsonl", folder)
            print(f"windows, append:            "
                  f"{drive(dsn, 'bench_windows_a', wins, args.interval)}")
            print("windows, upsert:            " + drive(
                dsn, "bench_windows_u", wins, args.interval, mode="upsert",
                key_columns=["symbol", "window_start"], version_column="revision"))
            print("windows, replace_partition: " + drive(
                dsn, "bench_windows_r", wins, args.interval, mode="replace_partition",
                partition_columns=["window_start"]))
            print(f"raw trades, append:         "
                  f"{drive(dsn, 'bench_trades', raw, args.interval)}")
            print("raw trades, surestream run: " + pipeline(
                dsn, folder / f"trades-{args.events}.jsonl", folder, args.interval))
        finally:
            if started is not None:
                started.stop()
                shutil.rmtree(started.folder, ignore_errors=True)


if __name__ == "__main__":
    main()
