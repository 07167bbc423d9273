"""One chunk of the market simulation: make events, place duplicates, count the truth.

The simulator works on chunks of primary events so that every step is a numpy or polars
operation over tens of thousands of events, and so that a long live run never holds more
than a chunk in memory. What crosses chunk boundaries is explicit: the price walk, the id
counters, each stream's largest timestamp (in ``Injector``), and the duplicates not yet
re-sent (``Resend``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from surestream.apps.trading.injection import (
    MARKETDATA,
    ORDERBOOK,
    STREAMS,
    TRADES,
    Faults,
    Injector,
)
from surestream.apps.trading.orderbook import book_columns
from surestream.apps.trading.prices import PriceWalk
from surestream.apps.trading.records import break_lines, json_lines, tick_frame
from surestream.apps.trading.trades import STATUS_VALUES, TradeFactory
from surestream.apps.trading.truth import MarketTruth


@dataclass(frozen=True)
class Events:
    """A chunk's primary events: faults, encoded lines per stream, trade statuses."""

    kind: np.ndarray          # stream index per primary event
    faults: Faults
    lines: list[pl.Series]    # per stream, in primary order; malformed ones already cut
    status: np.ndarray        # per primary event: index in STATUS_VALUES (-1: not a trade)


@dataclass
class EventMaker:
    """Turns a chunk's (stream, symbol) draws into encoded events."""

    walk: PriceWalk
    trades: TradeFactory
    injector: Injector
    empty_side_rate: float

    def make(self, first: int, kind: np.ndarray, symbol: np.ndarray,
             rng: np.random.Generator) -> Events:
        cents = self.walk.step(symbol, rng)
        faults = self.injector.plan(first, kind, rng)
        ts = faults.timestamp_ms
        t, m, b = (np.flatnonzero(kind == k) for k in (TRADES, MARKETDATA, ORDERBOOK))
        trades, codes = self.trades.frame(symbol[t], cents[t], ts[t], faults.unknown_status[t],
                                          rng)
        names = self.trades.symbols
        ticks = tick_frame(names.gather(symbol[m]), cents[m],
                           self.walk.half_spread(symbol[m], cents[m]), ts[m])
        books = pl.DataFrame({"symbol": names.gather(symbol[b]), "timestamp_ms": ts[b],
                              **book_columns(cents[b], self.walk.half_spread(symbol[b], cents[b]),
                                             self.walk.params.trade_size[symbol[b]],
                                             self.empty_side_rate, rng)})
        lines = []
        for idx, frame in ((t, trades), (m, ticks), (b, books)):
            cut = rng.random(len(idx))
            lines.append(break_lines(json_lines(frame), faults.malformed[idx], cut))
        status = np.full(len(kind), -1, dtype=np.int64)
        status[t] = codes
        return Events(kind, faults, lines, status)


@dataclass(frozen=True)
class Resend:
    """Duplicates waiting to be re-sent after primary event ``after``."""

    after: np.ndarray
    original: np.ndarray      # the original's primary index (orders ties)
    lines: pl.Series

    @classmethod
    def empty(cls) -> Resend:
        none = np.zeros(0, dtype=np.int64)
        return cls(none, none, pl.Series("line", [], dtype=pl.String))

    def split(self, end: int) -> tuple[Resend, Resend]:
        """(due before primary ``end``, later)."""
        due = self.after < end
        return (Resend(self.after[due], self.original[due], self.lines.filter(due)),
                Resend(self.after[~due], self.original[~due], self.lines.filter(~due)))


@dataclass(frozen=True)
class Chunk:
    """Lines in arrival order and what the truth needs to count them."""

    order: np.ndarray         # stream index per line
    lines: list[pl.Series]    # per stream, in arrival order
    events: Events
    kept: np.ndarray          # per primary event: within the line budget
    duplicates: int


def arrange(first: int, events: Events, resend: Resend, budget: int) -> tuple[Chunk, Resend]:
    """Interleave the chunk's primaries with the duplicates due in it; stop at ``budget``.

    A duplicate comes right after its ``after`` primary (several: by original). Cutting
    the arrival order at the budget keeps each stream a prefix of itself, so the files
    stay consistent: a duplicate is only counted if it was written."""
    kind, faults, n = events.kind, events.faults, len(events.kind)
    trade_rank = np.cumsum(kind == TRADES) - 1
    new = np.flatnonzero(faults.duplicate)
    fresh = Resend(faults.dup_after[new], first + new,
                   events.lines[TRADES].gather(trade_rank[new]))
    waiting = Resend(np.r_[resend.after, fresh.after], np.r_[resend.original, fresh.original],
                     pl.concat([resend.lines, fresh.lines]))
    due, later = waiting.split(first + n)
    g = first + np.arange(n, dtype=np.int64)
    m = len(due.after)
    perm = np.lexsort((np.r_[g, due.original], np.r_[np.zeros(n), np.ones(m)],
                       np.r_[g, due.after]))[:budget]
    order = np.r_[kind, np.full(m, TRADES, dtype=np.int8)][perm]
    trades = perm[order == TRADES]
    n_trades = len(events.lines[TRADES])
    trade_lines = pl.concat([events.lines[TRADES], due.lines]).gather(
        np.where(trades < n, trade_rank[np.minimum(trades, n - 1)], n_trades + trades - n))
    lines = [trade_lines] + [events.lines[k].head(int((order == k).sum()))
                             for k in (MARKETDATA, ORDERBOOK)]
    kept = np.zeros(n, dtype=bool)
    kept[perm[perm < n]] = True
    return Chunk(order, lines, events, kept, int((perm >= n).sum())), later


def count(truth: MarketTruth, chunk: Chunk) -> None:
    """Add the chunk's lines to ``truth`` (definitions in ``truth``)."""
    ev, f = chunk.events, chunk.events.faults
    truth.events += len(chunk.order)
    for k, name in enumerate(STREAMS):
        s = truth.streams[name]
        sel = chunk.kept & (ev.kind == k)
        well = sel & ~f.malformed
        s.events += int((chunk.order == k).sum())
        s.unique += int(well.sum())
        s.late += int((sel & f.late).sum())
        s.malformed += int((sel & f.malformed).sum())
        s.unknown_status += int((sel & f.unknown_status).sum())
        if k == TRADES:
            s.duplicates += chunk.duplicates
            s.add_statuses(_by_status(ev.status[well]), _by_status(ev.status[well & ~f.late]))


def _by_status(codes: np.ndarray) -> dict[str, int]:
    counts = np.bincount(codes, minlength=len(STATUS_VALUES))
    return {v: int(c) for v, c in zip(STATUS_VALUES, counts, strict=True)}
