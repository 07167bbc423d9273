"""Deterministic simulators that know the truth they inject.

``MarketSimulation`` is the trading application's market: trades, market-data ticks and
order book snapshots for a universe of symbols, with duplicates, disorder, late events,
malformed lines and unknown statuses injected at chosen rates and counted exactly
(``MarketTruth``), so a pipeline run can be reconciled to the record. The same seed gives
the same bytes. ``TradeSimulation`` is the original single-stream trade generator, kept
byte for byte because the demo and the crash suite are calibrated on it.

TradeSimulation: trades arrive about 1 ms apart in event time with bounded disorder; on
top of that it injects exact duplicates (re-sent shortly after), late trades (far behind
the stream), and malformed lines -- and counts each. Everything comes from one seeded
``random.Random``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import orjson
import polars as pl

from surestream.apps.trading.chunks import EventMaker, Resend, arrange, count
from surestream.apps.trading.injection import LATE_THRESHOLD_MS, STREAMS, Injector
from surestream.apps.trading.prices import PriceWalk, SymbolParams
from surestream.apps.trading.records import write_lines
from surestream.apps.trading.reference import load_reference
from surestream.apps.trading.sessions import Sessions
from surestream.apps.trading.trades import TradeFactory
from surestream.apps.trading.truth import MarketTruth

BASE_TS_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z (TradeSimulation's, kept)
#: the market simulation's first session opens 2026-01-05T14:30:00Z (Monday, 09:30 New York)
MARKET_OPEN_TS_MS = 1_767_623_400_000
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


#: primary events generated per step; part of the seed's meaning (changing it changes bytes)
CHUNK = 1 << 16


@dataclass(frozen=True)
class MarketSimulation:
    """Trades, ticks and order books with injected faults; ``write`` returns the truth.

    ``events`` counts lines over all three streams (duplicates and malformed included).
    The session opens at ``base_ts_ms``; event time starts ``late_behind_ms[1]`` later (room
    for late events inside the session) and advances ``event_spacing_ms`` per primary
    event; with ``days`` > 1 the events are spread evenly over that many
    trading days, each day's inside its 6.5-hour session (``sessions``), so the warehouse
    holds a history. ``events_per_s`` paces the output in real time (None: as fast as
    possible).
    The rates and bounds are explained in ``surestream.apps.trading.injection``.
    """

    events: int = 100_000
    seed: int = 42
    symbols: Sequence[str] | None = None     # None: the whole reference universe
    mix: tuple[float, float, float] = (0.80, 0.15, 0.05)  # trades, ticks, order books
    duplicate_rate: float = 0.02
    out_of_order_ms: int = 2_000
    late_rate: float = 0.001
    late_behind_ms: tuple[int, int] = (120_000, 600_000)
    malformed_rate: float = 0.0005
    unknown_status_rate: float = 0.002
    jump_probability: float = 0.00005         # per event, on average over symbols
    jump_size: tuple[float, float] = (0.02, 0.12)
    empty_side_rate: float = 0.01             # order books with one side empty
    event_spacing_ms: float = 1.0
    base_ts_ms: int = MARKET_OPEN_TS_MS
    events_per_s: float | None = None
    days: int = 1

    def __post_init__(self) -> None:
        if self.symbols is not None:
            object.__setattr__(self, "symbols", tuple(self.symbols))
        problems = _problems(self)
        if problems:
            raise ValueError("MarketSimulation: " + "; ".join(problems))

    def sessions(self) -> Sessions:
        """The trading days and the nominal time of each primary event."""
        return Sessions(self.base_ts_ms, self.event_spacing_ms, self.days, self.events,
                        lead_ms=max(self.late_behind_ms[1], self.out_of_order_ms))

    def universe(self) -> pl.DataFrame:
        """The reference rows of the simulated symbols (defaults for unknown names)."""
        reference = load_reference()
        if self.symbols is None:
            return reference
        known = reference.filter(pl.col("symbol").is_in(list(self.symbols)))
        extra = [s for s in self.symbols if s not in set(known["symbol"].to_list())]
        rows = pl.DataFrame({"symbol": extra, "company_name": extra,
                             "sector": ["Unknown"] * len(extra),
                             "industry": ["Unknown"] * len(extra),
                             "market_cap_tier": ["MID"] * len(extra),
                             "exchange": ["NYSE"] * len(extra)}, schema=reference.schema)
        order = {s: i for i, s in enumerate(self.symbols)}
        return (pl.concat([known, rows]).with_columns(
            _o=pl.col("symbol").replace_strict(order, return_dtype=pl.Int64))
            .sort("_o").drop("_o"))

    def streams(self, truth: MarketTruth | None = None) -> Iterator[tuple[str, bytes]]:
        """``(stream name, line)`` in arrival order, paced if ``events_per_s`` is set.

        ``truth`` is updated a chunk (65,536 primary events) ahead of the lines yielded;
        it is exact once the iterator is exhausted."""
        truth = truth if truth is not None else MarketTruth()
        started, sent = time.monotonic(), 0
        for order, lines in self._chunks(truth):
            pending = [iter(s.to_list()) for s in lines]
            for k in order.tolist():
                if self.events_per_s:
                    delay = started + sent / self.events_per_s - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                yield STREAMS[k], next(pending[k]).encode()
                sent += 1

    def write(self, folder: str | Path) -> MarketTruth:
        """Write ``<stream>.jsonl`` for each stream and ``truth.json`` into ``folder``."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        truth = MarketTruth()
        files = {name: open(out / f"{name}.jsonl", "wb") for name in STREAMS}  # noqa: SIM115
        try:
            if self.events_per_s:  # live: every line as it is due, flushed for tailers
                for name, line in self.streams(truth):
                    files[name].write(line + b"\n")
                    files[name].flush()
            else:
                for _, lines in self._chunks(truth):
                    for name, series in zip(STREAMS, lines, strict=True):
                        write_lines(files[name], series)
        finally:
            for f in files.values():
                f.close()
        (out / "truth.json").write_bytes(
            orjson.dumps(truth.to_dict(), option=orjson.OPT_INDENT_2) + b"\n")
        return truth

    def _chunks(self, truth: MarketTruth) -> Iterator[tuple[np.ndarray, list[pl.Series]]]:
        """Each chunk's arrival order (stream index per line) and per-stream lines.

        All randomness comes from one ``numpy`` generator seeded with ``seed``, drawn in
        a fixed order, chunk after chunk: the same settings give the same bytes, and a run
        of N events over one day is, stream by stream, a prefix of a longer one with the
        same seed (over several days, N sets the events per day, hence every time)."""
        rng = np.random.default_rng(self.seed)
        params = SymbolParams.from_reference(self.universe(), rng, self.event_spacing_ms)
        maker = EventMaker(
            PriceWalk(params, self.jump_probability, self.jump_size),
            TradeFactory(params, rng),
            Injector(self.sessions(), self.out_of_order_ms,
                     self.late_behind_ms, self.late_rate, self.malformed_rate,
                     self.unknown_status_rate, self.duplicate_rate),
            self.empty_side_rate)
        truth.seed, truth.symbols = self.seed, list(params.names)
        truth.settings = {k: list(v) if isinstance(v, tuple) else v  # as JSON reads back
                          for k, v in asdict(self).items() if k != "symbols"}
        mix = np.asarray(self.mix, dtype=float) / sum(self.mix)
        resend, first, written = Resend.empty(), 0, 0
        while written < self.events:
            kind = rng.choice(len(STREAMS), CHUNK, p=mix).astype(np.int8)
            symbol = rng.choice(len(params.names), CHUNK, p=params.weight)
            events = maker.make(first, kind, symbol, rng)
            chunk, resend = arrange(first, events, resend, self.events - written)
            count(truth, chunk)
            written += len(chunk.order)
            yield chunk.order, chunk.lines
            first += CHUNK


def _problems(sim: MarketSimulation) -> list[str]:
    """What is wrong with the settings, each saying what is allowed."""
    out = []
    rates = ("duplicate_rate", "late_rate", "malformed_rate", "unknown_status_rate",
             "jump_probability", "empty_side_rate")
    out += [f"{r} must be in [0, 1], got {getattr(sim, r)}" for r in rates
            if not 0.0 <= getattr(sim, r) <= 1.0]
    if sim.events < 0:
        out.append(f"events must be >= 0, got {sim.events}")
    if len(sim.mix) != len(STREAMS) or min(sim.mix) < 0 or sum(sim.mix) <= 0:
        out.append(f"mix must be {len(STREAMS)} shares >= 0 (trades, ticks, order books) "
                   f"with a positive sum, got {sim.mix}")
    if not 0 <= sim.out_of_order_ms <= LATE_THRESHOLD_MS:
        out.append(f"out_of_order_ms must be in [0, {LATE_THRESHOLD_MS}] (on-time events "
                   f"must not look late), got {sim.out_of_order_ms}")
    lo, hi = sim.late_behind_ms
    if not 2 * LATE_THRESHOLD_MS <= lo <= hi:
        out.append(f"late_behind_ms must be (lo, hi) with {2 * LATE_THRESHOLD_MS} <= lo <= hi"
                   f" (late for any watermark delay <= 30 s), got {sim.late_behind_ms}")
    a, b = sim.jump_size
    if not 0.0 < a <= b < 1.0:
        out.append(f"jump_size must be (lo, hi) with 0 < lo <= hi < 1, got {sim.jump_size}")
    if sim.event_spacing_ms <= 0:
        out.append(f"event_spacing_ms must be > 0, got {sim.event_spacing_ms}")
    if sim.event_spacing_ms > 0:
        out += sim.sessions().problems()
    if sim.events_per_s is not None and sim.events_per_s <= 0:
        out.append(f"events_per_s must be > 0 or None, got {sim.events_per_s}")
    if sim.symbols is not None and (not sim.symbols or len(set(sim.symbols)) != len(sim.symbols)):
        out.append("symbols must be distinct names, at least one (or None for the universe)")
    return out
