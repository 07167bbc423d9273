"""A deterministic trade simulator that knows the truth it injects.

Trades arrive about 1 ms apart in event time with bounded disorder; on top of that the
simulator injects exact duplicates (re-sent shortly after), late trades (far behind the
stream), and malformed lines -- and counts each, so a run can be reconciled exactly.
Everything comes from one seeded ``random.Random``: the same seed gives the same bytes.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field

import orjson

BASE_TS_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
STATUSES = ("FILLED", "FILLED", "FILLED", "PARTIALLY_FILLED", "NEW", "CANCELLED", "REJECTED")


@dataclass
class SimulationTruth:
    """What the simulator injected: a run's counters must equal these."""

    events: int = 0
    trades: int = 0
    duplicates: int = 0
    late: int = 0
    malformed: int = 0
    symbols: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TradeSimulation:
    events: int = 100_000
    seed: int = 42
    symbols: int = 50
    disorder_ms: int = 2_000
    duplicate_rate: float = 0.02
    late_rate: float = 0.001
    malformed_rate: float = 0.0005
    late_behind_ms: tuple[int, int] = (120_000, 600_000)

    def lines(self, truth: SimulationTruth | None = None) -> Iterator[bytes]:
        """JSON lines (one per event, duplicates and malformed ones included)."""
        truth = truth if truth is not None else SimulationTruth()
        rng = random.Random(self.seed)
        names = [f"SYM{i:03d}" for i in range(self.symbols)]
        truth.symbols = names
        prices = [rng.uniform(10.0, 500.0) for _ in names]
        resend: list[tuple[int, bytes]] = []  # (due event number, line)
        next_id = 0
        for n in range(self.events):
            truth.events += 1
            if resend and resend[0][0] <= n:
                truth.duplicates += 1
                yield resend.pop(0)[1]
                continue
            if rng.random() < self.malformed_rate:
                truth.malformed += 1
                yield b'{"trade_id": "broken", "price": ' + str(n).encode()
                continue
            s = rng.randrange(self.symbols)
            prices[s] = max(0.01, prices[s] * (1.0 + rng.gauss(0.0, 0.001)))
            next_id += 1
            nominal = BASE_TS_MS + n
            if rng.random() < self.late_rate:
                truth.late += 1
                ts = nominal - rng.randint(*self.late_behind_ms)
            else:
                ts = nominal - rng.randint(0, self.disorder_ms)
            trade = {
                "trade_id": f"T{next_id:09d}", "symbol": names[s],
                "side": "BUY" if rng.random() < 0.5 else "SELL",
                "quantity": float(rng.randint(1, 500)), "price": round(prices[s], 2),
                "status": STATUSES[rng.randrange(len(STATUSES))], "timestamp_ms": ts,
            }
            truth.trades += 1
            line = orjson.dumps(trade)
            if ts >= nominal - self.disorder_ms and rng.random() < self.duplicate_rate:
                resend.append((n + rng.randint(1, 1000), line))
                resend.sort(key=lambda x: x[0])
            yield line

    def write(self, path: str) -> SimulationTruth:
        truth = SimulationTruth()
        with open(path, "wb") as f:
            for line in self.lines(truth):
                f.write(line + b"\n")
        return truth
