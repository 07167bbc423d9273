"""Crash safety of the Delta sink: a real process killed with SIGKILL at every fault point
of a checkpoint cycle (including between a durable checkpoint and the Delta commit),
restarted until done, leaves the table holding exactly the clean run's windows -- none
lost, none twice -- compared by key."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import orjson
import polars as pl
import pytest
from deltalake import DeltaTable

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


#: each fault point killed at a seeded hit (the 2nd or 3rd time it is reached)
KILLS = [(point, random.Random(f"{SEED}-{point}").randint(2, 3)) for point in faults.POINTS]


@pytest.mark.parametrize(("point", "hit"), KILLS, ids=[p for p, _ in KILLS])
def test_a_kill_at_any_point_then_restarts_leave_each_window_once(data, clean, tmp_path,
                                                                  point, hit):
    out = tmp_path / "out"
    table = out / "delta" / "windows"
    args = sets(data, out, f"{{type: delta, path: '{table}', partition_by: [symbol]}}", 400)
    crashed = run(args, env={faults.ENV: f"{point}:{hit}"})
    assert crashed.returncode == -9, crashed.stderr  # killed with SIGKILL mid-run
    if point == "checkpoint.durable":
        # the window that matters: checkpoint durable with windows in it, Delta commit not
        # made -- recovery must commit it from the staged records, once
        cp = CheckpointStore(out / "chk").latest()
        assert cp.committables["main"]["rows"] > 0
        version = DeltaTable(str(table)).transaction_version("surestream-trades-vwap-main")
        assert version is None or version < cp.id
    resumed = run(args)
    assert resumed.returncode == 0, resumed.stderr
    got = pl.read_delta(str(table)).select(clean.columns).sort(KEY)
    assert got.select(KEY).is_duplicated().sum() == 0  # nothing twice
    assert got.equals(clean)  # nothing lost, nothing changed
    # the app's version is the last checkpoint with windows: the transactions were used
    version = DeltaTable(str(table)).transaction_version("surestream-trades-vwap-main")
    assert version is not None and version >= 1
