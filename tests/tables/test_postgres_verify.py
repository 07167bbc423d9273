"""`surestream verify` on a pipeline whose outputs are PostgreSQL tables: every run (clean,
replayed, killed and restarted) writes a table of its own, read back and compared."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg

import surestream
from surestream.apps.trading.simulator import TradeSimulation

SPEC = Path(surestream.__file__).parent / "examples" / "trades_vwap.yaml"


def test_verify_passes_on_a_pipeline_writing_postgres_tables(postgres_dsn, tmp_path):
    trades = tmp_path / "trades.jsonl"
    TradeSimulation(events=2000, seed=3).write(str(trades))
    args = [sys.executable, "-m", "surestream", "verify", str(SPEC), "--crash-points", "4",
            "--seed", "4", "--set", f"source.path={trades}",
            "--set", "steps[0].max_out_of_orderness_ms=1500", "--set", "steps[3].size_ms=500",
            "--set", f"outputs.main={{type: postgres, dsn: '{postgres_dsn}', table: windows, "
                     "mode: upsert, key_columns: [symbol, window_start], "
                     "version_column: revision}",
            "--set", f"outputs.late={{type: postgres, dsn: '{postgres_dsn}', "
                     "table: late_trades}"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "FAIL" not in done.stdout and done.stdout.count("PASS") >= 3, done.stdout
    with psycopg.connect(postgres_dsn) as con:
        # each run wrote tables of its own; the user's tables were not touched
        names = {r[0] for r in con.execute("select tablename from pg_tables "
                                           "where schemaname = 'public'").fetchall()}
        runs = {sink for (sink,) in con.execute(
            "select distinct tbl from surestream_commits").fetchall()}
    assert "windows" not in names and "late_trades" not in names
    assert len([n for n in names if n.startswith("windows_v")]) >= 6  # 2 clean + 4 crashes
    assert runs <= names
