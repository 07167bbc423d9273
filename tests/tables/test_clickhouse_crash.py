"""Crash safety of the ClickHouse sink: a real process killed with SIGKILL at every fault
point of a checkpoint cycle -- between a durable checkpoint and the inserts, between two
insert blocks, after the inserts but before the commit row -- restarted until done, leaves
exactly the clean run's windows when read with FINAL: one row per key, none lost."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import uuid
from pathlib import Path

import orjson
import polars as pl
import pytest
from clickhouse_driver import Client

import surestream
from surestream.apps.trading.simulator import TradeSimulation
from surestream.runners.local import faults
from surestream.runners.local.checkpoint_store import CheckpointStore

SPEC = Path(surestream.__file__).parent / "examples" / "trades_vwap.yaml"
KEY = ["symbol", "window_start"]
SEED = 20261126


def sets(data: Path, out: Path, main: str, batch_size: int) -> list[str]:
    assignments = [
        f"source.path={data}", f"outputs.main={main}",
        f"outputs.late.path={out / 'late.jsonl'}",
        f"outputs.late_window.path={out / 'late_window.jsonl'}",
        f"outputs.errors.path={out / 'errors.jsonl'}",
        f"checkpoint.dir={out / 'chk'}", "checkpoint.interval_records=1000",
        "checkpoint.interval_ms=null", f"runtime.batch_size={batch_size}",
        "steps[0].max_out_of_orderness_ms=1500", "steps[3].size_ms=500",
    ]
    return [a for s in assignments for a in ("--set", s)]


def run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "surestream", "run", str(SPEC), *args],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("trades") / "trades.jsonl"
    TradeSimulation(events=3000, seed=7).write(str(path))
    return path


@pytest.fixture(scope="module")
def clean(data, tmp_path_factory) -> pl.DataFrame:
    out = tmp_path_factory.mktemp("clean")
    done = run(sets(data, out, f"{{type: file, path: '{out / 'w.jsonl'}'}}", 100_000))
    assert done.returncode == 0, done.stderr
    rows = [orjson.loads(x) for x in (out / "w.jsonl").read_bytes().splitlines()]
    return pl.DataFrame(rows).sort(KEY)


POINTS = (*faults.POINTS, *faults.TABLE_SINK_POINTS)
#: each fault point killed at a seeded hit (the 2nd or 3rd time it is reached)
KILLS = [(point, random.Random(f"{SEED}-{point}").randint(2, 3)) for point in POINTS]


@pytest.mark.parametrize(("point", "hit"), KILLS, ids=[p for p, _ in KILLS])
def test_a_kill_at_any_point_then_restarts_leave_one_row_per_window(clickhouse_server, data,
                                                                    clean, tmp_path, point,
                                                                    hit):
    out, table = tmp_path / "out", f"w_{uuid.uuid4().hex[:12]}"
    client = Client(host=clickhouse_server.host, port=clickhouse_server.port)
    main = (f"{{type: clickhouse, host: {clickhouse_server.host}, "
            f"port: {clickhouse_server.port}, table: {table}, "
            "key_columns: [symbol, window_start], version_column: window_end, "
            "insert_block_rows: 20}")
    args = sets(data, out, main, 400)
    crashed = run(args, env={faults.ENV: f"{point}:{hit}"})
    assert crashed.returncode == -9, crashed.stderr  # killed with SIGKILL mid-run
    if point in ("checkpoint.durable", "clickhouse.inserted"):
        # commit unknown: the checkpoint is durable with windows in it, its commit row is
        # not in the table (its rows are, after "inserted"): recovery inserts them again
        cp = CheckpointStore(out / "chk").latest()
        assert cp.committables["main"]["rows"] > 0
        assert not client.execute(f"SELECT count() FROM _surestream_commits_{table} "
                                  f"WHERE checkpoint = {cp.id}")[0][0]
    resumed = run(args)
    assert resumed.returncode == 0, resumed.stderr
    data_, types = client.execute(f"SELECT * FROM {table} FINAL", columnar=True,
                                  with_column_types=True)
    got = pl.DataFrame({n: list(v) for (n, _), v in zip(types, data_, strict=True)})
    got = got.select(clean.columns).sort(KEY)
    assert got.select(KEY).is_duplicated().sum() == 0  # one row per key
    assert got.equals(clean)  # nothing lost, nothing changed
    assert client.execute(f"SELECT count() FROM {table}")[0][0] >= clean.height
