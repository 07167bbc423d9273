"""Crash safety of the PostgreSQL sink: `surestream run` killed with SIGKILL at every kill
point -- inside the checkpoint write, between the durable checkpoint and the sink's commit,
inside the sink's staging and after its commit -- then restarted until done, ends with the
tables of one clean run: no row lost, none duplicated, compared by key. The windows go to
their table in each mode in turn (upsert by (symbol, window_start) under `revision` and
append, with allowed lateness so windows fire again with higher revisions;
replace_partition by window_start, without it); the window's late trades are appended.
And a table holding a checkpoint newer than any the folder can restore is refused, not
written over."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import yaml

import surestream
from surestream.apps.trading.simulator import TradeSimulation
from surestream.model.loader import apply_override, load_spec_dict
from surestream.runners.local.faults import POINTS

SPEC = Path(surestream.__file__).parent / "examples" / "trades_vwap.yaml"
#: the tables, each with its key (the late trades hold a key twice where the input sent a
#: late trade twice: late records are quarantined before deduplication -- the clean run
#: holds those too)
TABLES = {"windows": ("symbol", "window_start", "revision"), "late_trades": ("trade_id",)}
MODES = {"upsert": "mode: upsert, key_columns: [symbol, window_start], "
                   "version_column: revision",
         "append": "mode: append",
         "replace_partition": "mode: replace_partition, partition_columns: [window_start]"}
KILLS = [(point, hit, list(MODES)[i % len(MODES)]) for i, (point, hit) in enumerate(
    [(point, 2) for point in POINTS] + [("postgres.staged", 3), ("postgres.committed", 2)])]


@pytest.fixture(scope="module")
def trades(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("pg-trades") / "trades.jsonl"
    truth = TradeSimulation(events=3000, seed=5).write(str(path))
    assert truth.late and truth.duplicates
    return path


def spec_file(spec_dir: Path, trades: Path, dsn: str, mode: str) -> Path:
    """examples/trades_vwap.yaml without its late-data step (so records behind the watermark
    reach the window: within the allowed lateness they fire it again, beyond it they are
    the window's late output), with both outputs in PostgreSQL."""
    doc = load_spec_dict(SPEC)
    del doc["steps"][1]  # the late_data_side_output step
    del doc["outputs"]["late"]
    for assignment in (
            f"source.path={trades}", f"checkpoint.dir={spec_dir / 'chk'}",
            "checkpoint.interval_records=600", "checkpoint.interval_ms=null",
            "runtime.batch_size=250", "steps[0].max_out_of_orderness_ms=1500",
            "steps[2].size_ms=500",
            # windows that fire again for one key are not complete partitions: not for
            # replace_partition (docs/sinks.md, "Modes")
            f"steps[2].allowed_lateness_ms={0 if mode == 'replace_partition' else 500}",
            f"outputs.main={{type: postgres, dsn: '{dsn}', table: windows, {MODES[mode]}}}",
            f"outputs.late_window={{type: postgres, dsn: '{dsn}', table: late_trades}}",
            f"outputs.errors.path={spec_dir / 'errors.jsonl'}"):
        apply_override(doc, assignment)
    path = spec_dir / "spec.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def run(spec_dir: Path, trades: Path, dsn: str, fault: str | None = None,
        mode: str = "upsert"):
    spec = spec_file(spec_dir, trades, dsn, mode)
    env = {**os.environ, "PYTHONPATH": str(Path(surestream.__file__).parents[1])}
    env.pop("SURESTREAM_FAULT", None)
    if fault:
        env["SURESTREAM_FAULT"] = fault
    return subprocess.run([sys.executable, "-m", "surestream", "run", str(spec)], env=env,
                          capture_output=True, text=True, timeout=120)


def tables(dsn: str) -> dict[str, list[tuple]]:
    with psycopg.connect(dsn) as con:
        # each row led by its key, then every column
        return {t: sorted(con.execute(f"select {', '.join(key)}, * from {t}").fetchall(),
                          key=repr) for t, key in TABLES.items()}


def keys(dsn: str, table: str) -> tuple[int, int]:
    cols = ", ".join(TABLES[table])
    with psycopg.connect(dsn) as con:
        return con.execute(f"select count(*), count(distinct ({cols})) from {table}").fetchone()


@pytest.fixture(scope="module")
def clean(trades, postgres_server, tmp_path_factory):
    """``clean(mode)``: the tables of one uninterrupted run with the windows in ``mode``."""
    done: dict[str, dict[str, list[tuple]]] = {}

    def get(mode: str) -> dict[str, list[tuple]]:
        if mode not in done:
            db = postgres_server.create_database()
            ran = run(tmp_path_factory.mktemp("pg-clean"), trades, postgres_server.dsn(db),
                      mode=mode)
            assert ran.returncode == 0, ran.stderr[-2000:]
            done[mode] = tables(postgres_server.dsn(db))
            postgres_server.drop_database(db)
        return done[mode]

    return get


def test_the_clean_runs_hold_what_each_mode_promises(clean):
    """Windows fire again with higher revisions (allowed lateness): append keeps every
    firing, upsert the highest revision of each window, and the late trades are there."""
    appended = clean("append")["windows"]
    assert len(appended) > 50 and len(clean("append")["late_trades"]) >= 1
    revisions: dict[tuple, int] = {}
    for row in appended:
        key = (row[0], row[1])
        revisions[key] = max(revisions.get(key, -1), row[2])
    assert max(revisions.values()) >= 1  # some window fired again
    upserted = clean("upsert")["windows"]
    assert {(r[0], r[1]): r[2] for r in upserted} == revisions
    assert len(upserted) == len(revisions)  # one row per window, its newest revision
    assert sorted(upserted, key=repr) == sorted(
        (r for r in appended if r[2] == revisions[(r[0], r[1])]), key=repr)
    replaced = clean("replace_partition")["windows"]  # (no allowed lateness: no refiring)
    assert len(replaced) > 50 and {r[2] for r in replaced} == {0}
    assert len({(r[0], r[1]) for r in replaced}) == len(replaced)


@pytest.mark.parametrize(("point", "hit", "mode"), KILLS)
def test_killed_at_a_kill_point_and_restarted_the_tables_equal_a_clean_run(
        point, hit, mode, trades, clean, postgres_dsn, tmp_path):
    killed = run(tmp_path, trades, postgres_dsn, fault=f"{point}:{hit}", mode=mode)
    assert killed.returncode == -9, (point, killed.returncode, killed.stderr[-2000:])
    for _ in range(5):
        done = run(tmp_path, trades, postgres_dsn, mode=mode)
        if done.returncode == 0:
            break
    assert done.returncode == 0, done.stderr[-2000:]
    assert tables(postgres_dsn) == clean(mode)  # every row, as often as in the clean run
    rows, distinct = keys(postgres_dsn, "windows")
    assert rows == distinct  # one row per window firing
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
