"""`surestream verify` on a pipeline writing a ClickHouse table (each run a table of its
own on the test server): replay identity read with FINAL, seeded SIGKILLs restarted to the
clean run's rows, one row per key."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

from clickhouse_driver import Client

import surestream
from surestream.apps.trading.simulator import TradeSimulation

SPEC = Path(surestream.__file__).parent / "examples" / "trades_vwap.yaml"


def test_verify_passes_on_a_clickhouse_output(clickhouse_server, tmp_path):
    data = tmp_path / "trades.jsonl"
    TradeSimulation(events=2500, seed=5).write(str(data))
    table = f"v_{uuid.uuid4().hex[:10]}"
    sets = [f"source.path={data}", "steps[3].size_ms=500",
            "steps[0].max_out_of_orderness_ms=1500",
            f"outputs.main={{type: clickhouse, host: {clickhouse_server.host}, "
            f"port: {clickhouse_server.port}, table: {table}, "
            "key_columns: [symbol, window_start], version_column: window_end}"]
    proc = subprocess.run(
        [sys.executable, "-m", "surestream", "verify", str(SPEC), "--crash-points", "3",
         "--seed", "3", *[a for s in sets for a in ("--set", s)],
         "--workdir", str(tmp_path / "runs")], capture_output=True, text=True, timeout=600)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(("PASS", "FAIL"))]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [ln.split(":")[0] for ln in lines] == [
        "PASS replay identity", "PASS crash recovery", "PASS no duplicate keys",
        "PASS late path counted"]
    assert "3/3 runs killed with SIGKILL" in lines[1]
    runs = Client(host=clickhouse_server.host, port=clickhouse_server.port).execute(
        "SELECT count() FROM system.tables WHERE database = 'default' AND name LIKE "
        f"'{table}_%' AND name NOT LIKE '_surestream%'")[0][0]
    assert runs >= 5  # every run wrote a table of its own
