"""Crash safety of the PostgreSQL sink: `surestream run` killed with SIGKILL at every kill
point -- inside the checkpoint write, between the durable checkpoint and the sink's commit,
inside the sink's staging and after its commit -- then restarted until done, ends with the
tables of one clean run: no row lost, none duplicated, compared by key. And a table holding
a checkpoint newer than any the folder can restore is refused, not written over."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

import surestream
from surestream.apps.trading.simulator import TradeSimulation
from surestream.runners.local.faults import POINTS

SPEC = Path(surestream.__file__).parent / "examples" / "trades_vwap.yaml"
#: the tables, each with its key: both are appended, so a duplicated row would be a second
#: row of a key (the late trades hold a key twice where the input sent a late trade twice:
#: late records are quarantined before deduplication -- the clean run holds those too)
TABLES = {"windows": ("symbol", "window_start"), "late_trades": ("trade_id",)}
KILLS = [(point, 2) for point in POINTS] + [("postgres.staged", 3),
                                             ("postgres.committed", 2)]


@pytest.fixture(scope="module")
def trades(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("pg-trades") / "trades.jsonl"
    truth = TradeSimulation(events=3000, seed=5).write(str(path))
    assert truth.late and truth.duplicates
    return path


def run(spec_dir: Path, trades: Path, dsn: str, fault: str | None = None):
    overrides = [
        f"source.path={trades}", f"checkpoint.dir={spec_dir / 'chk'}",
        "checkpoint.interval_records=600", "checkpoint.interval_ms=null",
        "runtime.batch_size=250", "steps[0].max_out_of_orderness_ms=1500",
        "steps[3].size_ms=500",
        f"outputs.main={{type: postgres, dsn: '{dsn}', table: windows}}",
        f"outputs.late={{type: postgres, dsn: '{dsn}', table: late_trades}}",
        f"outputs.late_window.path={spec_dir / 'late_window.jsonl'}",
        f"outputs.errors.path={spec_dir / 'errors.jsonl'}"]
    env = {**os.environ, "PYTHONPATH": str(Path(surestream.__file__).parents[1])}
    env.pop("SURESTREAM_FAULT", None)
    if fault:
        env["SURESTREAM_FAULT"] = fault
    args = [sys.executable, "-m", "surestream", "run", str(SPEC)]
    for o in overrides:
        args += ["--set", o]
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)


def tables(dsn: str) -> dict[str, list[tuple]]:
    with psycopg.connect(dsn) as con:
        return {t: sorted(con.execute(f"select * from {t}").fetchall(), key=repr)
                for t in TABLES}


def keys(dsn: str, table: str) -> tuple[int, int]:
    cols = ", ".join(TABLES[table])
    with psycopg.connect(dsn) as con:
        return con.execute(f"select count(*), count(distinct ({cols})) from {table}").fetchone()


@pytest.fixture(scope="module")
def clean(trades, postgres_server, tmp_path_factory) -> dict[str, list[tuple]]:
    db = postgres_server.create_database()
    done = run(tmp_path_factory.mktemp("pg-clean"), trades, postgres_server.dsn(db))
    assert done.returncode == 0, done.stderr[-2000:]
    got = tables(postgres_server.dsn(db))
    assert len(got["windows"]) > 50 and len(got["late_trades"]) > 5
    postgres_server.drop_database(db)
    return got


@pytest.mark.parametrize(("point", "hit"), KILLS)
def test_killed_at_a_kill_point_and_restarted_the_tables_equal_a_clean_run(
        point, hit, trades, clean, postgres_dsn, tmp_path):
    killed = run(tmp_path, trades, postgres_dsn, fault=f"{point}:{hit}")
    assert killed.returncode == -9, (point, killed.returncode, killed.stderr[-2000:])
    for _ in range(5):
        done = run(tmp_path, trades, postgres_dsn)
        if done.returncode == 0:
            break
    assert done.returncode == 0, done.stderr[-2000:]
    assert tables(postgres_dsn) == clean  # every row, as often as in the clean run
    rows, distinct = keys(postgres_dsn, "windows")
    assert rows == distinct  # one row per window
    with psycopg.connect(postgres_dsn) as con:
        staged = con.execute("select count(*) from pg_tables "
                             "where tablename like '_surestream_stage%'").fetchone()[0]
    assert staged == 0


def test_a_table_with_commits_newer_than_any_restorable_checkpoint_is_refused(
        trades, postgres_dsn, tmp_path):
    done = run(tmp_path, trades, postgres_dsn)
    assert done.returncode == 0, done.stderr[-2000:]
    before = tables(postgres_dsn)
    checkpoints = sorted((tmp_path / "chk").glob("chk-*.json"))
    assert len(checkpoints) >= 3
    checkpoints[-1].write_bytes(b"{")  # the newest checkpoint is lost
    refused = run(tmp_path, trades, postgres_dsn)
    assert refused.returncode == 2  # (checkpoint and recovery refusals exit 2)
    assert "PostgreSQL table 'windows'" in refused.stderr or \
        "PostgreSQL table 'late_trades'" in refused.stderr
    assert "already holds checkpoint" in refused.stderr
    assert tables(postgres_dsn) == before  # left as it was
