"""The crash suite: `surestream verify` on every example pipeline, 52 seeded kill points.

Each kill is a real child process killed with SIGKILL at a fault point (inside the
checkpoint write, between pre-commit and commit, mid-batch, ...), restarted until done,
and compared with a clean run: outputs identical, no duplicate keys, late path counted.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from surestream.apps.trading.simulator import TradeSimulation

EXAMPLES = Path(__file__).resolve().parents[1] / "src" / "surestream" / "examples"
CASES = [("trades_vwap.yaml", 20, 11), ("trades_router.yaml", 20, 12),
         ("trades_sessions.yaml", 12, 13)]


@pytest.fixture(scope="module")
def trades(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("crash-data") / "trades.jsonl"
    TradeSimulation(events=12_000, seed=11).write(str(path))
    return path


def test_the_suite_has_at_least_50_kill_points():
    assert sum(points for _, points, _ in CASES) >= 50
    assert {name for name, _, _ in CASES} == {p.name for p in EXAMPLES.glob("*.yaml")}


@pytest.mark.parametrize(("example", "points", "seed"), CASES)
def test_verify_passes_with_seeded_kills(example, points, seed, trades, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "surestream", "verify", str(EXAMPLES / example),
         "--crash-points", str(points), "--seed", str(seed), "--set",
         f"source.path={trades}", "--workdir", str(tmp_path / "runs")],
        capture_output=True, text=True, timeout=900)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(("PASS", "FAIL"))]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [ln.split(":")[0] for ln in lines] == [
        "PASS replay identity", "PASS crash recovery", "PASS no duplicate keys",
        "PASS late path counted"]
    assert f"{points}/{points} runs killed with SIGKILL" in lines[1]
