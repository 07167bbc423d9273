"""The crash suite's cases and its one check, shared by its two test files.

`surestream verify` on every example pipeline, with seeded kill points: each kill is a real
child process killed with SIGKILL at a fault point (inside the checkpoint write, between
pre-commit and commit, mid-batch, ...), restarted until done, and compared with a clean
run: outputs identical, no duplicate keys, late path counted.

The cases are split over two files (tests/test_crash_suite.py: the top-level, ISO and Flink
examples; tests/test_crash_suite_trading.py: the trading platform's) only so that
``pytest --dist loadfile`` can run the halves -- about eight minutes each in CI --
on two workers.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from surestream.apps.trading.demo import prepare_reference
from surestream.apps.trading.simulator import MarketSimulation, TradeSimulation

EXAMPLES = Path(__file__).resolve().parents[1] / "src" / "surestream" / "examples"


def trades_file(data: Path) -> list[str]:
    return [f"source.path={data / 'trades.jsonl'}"]


def market(data: Path) -> dict[str, str]:
    return {name: str(data / "market" / f"{name}.jsonl")
            for name in ("raw.trades", "raw.marketdata", "raw.orderbook")}


#: (spec, kill points, seed, overrides for the test data). verify takes the fault points a
#: pipeline passes in turn (six for these file-sink pipelines), each at a seeded random hit:
#: 12 kill each point twice, at two different checkpoints. Each kill is two or more child
#: processes whose start-up dominates their cost, so kills beyond that repeat a point at
#: one more position for seconds apiece and prove nothing the others do not.
CASES = [
    ("trades_vwap.yaml", 12, 11, trades_file),
    ("trades_router.yaml", 12, 12, trades_file),
    ("trades_sessions.yaml", 8, 13, trades_file),
    ("trading/router.yaml", 4, 21, lambda d: [f"source.path={market(d)['raw.trades']}"]),
    ("trading/aggregation.yaml", 4, 22, lambda d: [f"source.path={market(d)['raw.trades']}"]),
    ("trading/alerts.yaml", 4, 23, lambda d: [
        f"source.path=[{market(d)['raw.trades']}, {market(d)['raw.marketdata']}]"]),
    ("trading/orderbook.yaml", 4, 24, lambda d: [f"source.path={market(d)['raw.orderbook']}"]),
    ("trading/enrichment.yaml", 4, 25, lambda d: [
        f"sources.trades.path={market(d)['raw.trades']}",
        f"sources.reference_updates.path={d / 'market' / 'reference_updates.jsonl'}",
        f"streams.enriched.steps[5].reference.path="
        f"{d / 'market' / 'reference' / 'symbols.parquet'}"]),
    ("flink/trades_windows.yaml", 2, 27, lambda d: [f"source.path={market(d)['raw.trades']}"]),
    ("flink/trades_routes.yaml", 2, 28, lambda d: [f"source.path={market(d)['raw.trades']}"]),
    # its own input, beside the spec; two kills: the hardened ISO template has its own
    # SIGKILL test through Iceberg and ClickHouse (tests/energy/test_iso_crash.py)
    ("iso/late_iso_lmp.yaml", 2, 26, lambda d: []),
]

#: the trading platform's examples: tests/test_crash_suite_trading.py
TRADING = [c for c in CASES if c[0].startswith("trading/")]
#: the others: tests/test_crash_suite.py
OTHERS = [c for c in CASES if not c[0].startswith("trading/")]


def make_data(folder: Path) -> Path:
    """The examples' inputs: simulated trades and a simulated market with its reference."""
    TradeSimulation(events=12_000, seed=11).write(str(folder / "trades.jsonl"))
    MarketSimulation(events=8_000, seed=11).write(folder / "market")
    prepare_reference(folder / "market", 11)
    return folder


def verify_passes(spec: Path, points: int, seed: int, sets: list[str], workdir: Path
                  ) -> list[str]:
    """``surestream verify SPEC`` with ``points`` seeded kills passes every check; its PASS
    lines (replay identity with the clean runs' figures first)."""
    proc = subprocess.run(
        [sys.executable, "-m", "surestream", "verify", str(spec), "--crash-points",
         str(points), "--seed", str(seed), *sets, "--workdir", str(workdir)],
        capture_output=True, text=True, timeout=900)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(("PASS", "FAIL"))]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [ln.split(":")[0] for ln in lines] == [
        "PASS replay identity", "PASS crash recovery", "PASS no duplicate keys",
        "PASS late path counted"]
    assert f"{points}/{points} runs killed with SIGKILL" in lines[1]
    return lines


def verify_with_kills(example: str, points: int, seed: int, overrides, data: Path,
                      workdir: Path) -> None:
    """``verify_passes`` on a shipped example, its inputs set by ``overrides(data)``."""
    sets = [arg for o in overrides(data) for arg in ("--set", o)]
    verify_passes(EXAMPLES / example, points, seed, sets, workdir)
