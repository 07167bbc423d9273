"""`surestream verify` on a pipeline writing a Delta table: replay identity, seeded
SIGKILLs restarted to the clean run's table, no duplicate keys."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import surestream
from surestream.apps.trading.simulator import TradeSimulation

SPEC = Path(surestream.__file__).parent / "examples" / "trades_vwap.yaml"


def test_verify_passes_on_a_delta_output(tmp_path):
    data = tmp_path / "trades.jsonl"
    TradeSimulation(events=2500, seed=5).write(str(data))
    sets = [f"source.path={data}", "steps[3].size_ms=500",
            "steps[0].max_out_of_orderness_ms=1500",
            "outputs.main={type: delta, path: out/windows, partition_by: [symbol]}"]
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
    assert "main by (symbol, window_start" in lines[2]
    tables = list((tmp_path / "runs").glob("*/out/main.delta/_delta_log"))
    assert len(tables) >= 5  # every run wrote a Delta table of its own
