"""Per-symbol prices: a geometric random walk with occasional jumps, in integer cents.

Alerting jobs look for moves of 2 %, 5 % and 10 % within minutes. A plain diffusion at
realistic volatility almost never does that in a short run, so the walk adds rare jumps of
several percent. ``jump_probability`` is the chance that an event carries a jump, on
average over symbols; per symbol it is scaled by activity, so that a quiet stock jumps as
often per minute of event time as a busy one. Jump sizes are log-uniform in
``jump_size`` (with 2-12 %: about half are 5 % or more, one in ten 10 % or more).

Prices are integer cents: ``bid < price < ask`` and strictly ordered book levels then hold
exactly, and dividing by 100 gives the float closest to the two-decimal price, which JSON
encoders print as e.g. ``101.23``. Everything is vectorized over a chunk of events and
draws from the caller's ``numpy.random.Generator`` in a fixed order (determinism).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

#: milliseconds in a trading year (252 days of 6.5 h): annual volatility -> per event
MS_PER_TRADING_YEAR = 252 * 6.5 * 3600 * 1000
MIN_PRICE_CENTS = 100  # the walk never goes below $1.00: books keep 20 positive levels

# per market-cap tier: (activity weight, typical trade size, annual volatility, spread bps)
_TIER_PROFILE: dict[str, tuple[float, float, float, float]] = {
    "MEGA": (8.0, 300.0, 0.25, 2.0),
    "LARGE": (4.0, 200.0, 0.32, 4.0),
    "MID": (2.0, 150.0, 0.42, 8.0),
    "SMALL": (1.0, 100.0, 0.60, 20.0),
}


@dataclass(frozen=True)
class SymbolParams:
    """What makes symbols differ: how often they trade, in what size, how they move."""

    names: tuple[str, ...]
    listing: tuple[str, ...]        # listing exchange
    weight: np.ndarray              # probability that an event is about this symbol
    start_cents: np.ndarray         # first price
    sigma_step: np.ndarray          # std of the log return per event of this symbol
    trade_size: np.ndarray          # typical shares per trade
    spread_bps: np.ndarray          # bid-ask spread in basis points

    @classmethod
    def from_reference(cls, reference: pl.DataFrame, rng: np.random.Generator,
                       event_spacing_ms: float) -> SymbolParams:
        """Draw per-symbol parameters around the profile of each symbol's tier."""
        n = reference.height
        profile = np.array([_TIER_PROFILE.get(t, _TIER_PROFILE["MID"])
                            for t in reference["market_cap_tier"].to_list()], dtype=float)
        activity = profile[:, 0] * rng.lognormal(0.0, 0.5, n)
        weight = activity / activity.sum()
        start = np.exp(rng.uniform(np.log(8.0), np.log(900.0), n))  # $8 .. $900
        vol = profile[:, 2] * rng.uniform(0.7, 1.4, n)
        # a symbol's events are event_spacing_ms / weight apart on average
        sigma = vol * np.sqrt(event_spacing_ms / weight / MS_PER_TRADING_YEAR)
        return cls(names=tuple(reference["symbol"].to_list()),
                   listing=tuple(reference["exchange"].to_list()), weight=weight,
                   start_cents=np.maximum(np.round(start * 100), MIN_PRICE_CENTS),
                   sigma_step=sigma, trade_size=profile[:, 1] * rng.uniform(0.6, 1.6, n),
                   spread_bps=profile[:, 3] * rng.uniform(0.7, 1.5, n))


class PriceWalk:
    """The state of every symbol's price; ``step`` moves it along a chunk of events."""

    def __init__(self, params: SymbolParams, jump_probability: float,
                 jump_size: tuple[float, float]) -> None:
        self.params = params
        # the same jump rate per unit of event time for every symbol
        self.jump_per_event = np.minimum(
            jump_probability / (len(params.names) * params.weight), 1.0)
        self.jump_size = jump_size
        self.log_price = np.log(params.start_cents.astype(float))

    def step(self, symbol: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Prices in cents after each event of ``symbol`` (one symbol index per event)."""
        n = len(symbol)
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        ret = self.params.sigma_step[symbol] * rng.standard_normal(n)
        jumps = rng.random(n) < self.jump_per_event[symbol]
        lo, hi = self.jump_size
        size = lo * (hi / lo) ** rng.random(n)
        up = rng.random(n) < 0.5
        ret += np.where(jumps, np.log(np.where(up, 1.0 + size, 1.0 - size)), 0.0)
        # cumulative sum of returns within each symbol, in event order
        order = np.argsort(symbol, kind="stable")
        sym_sorted = symbol[order]
        csum = np.cumsum(ret[order])
        starts = np.flatnonzero(np.r_[True, sym_sorted[1:] != sym_sorted[:-1]])
        counts = np.diff(np.r_[starts, n])
        before = np.where(starts > 0, csum[starts - 1], 0.0)
        floor = np.log(MIN_PRICE_CENTS)
        path = np.maximum(self.log_price[sym_sorted] + csum - np.repeat(before, counts), floor)
        self.log_price[sym_sorted[starts]] = path[starts + counts - 1]
        out = np.empty(n, dtype=np.int64)
        out[order] = np.round(np.exp(path)).astype(np.int64)
        return np.maximum(out, MIN_PRICE_CENTS)

    def half_spread(self, symbol: np.ndarray, cents: np.ndarray) -> np.ndarray:
        """Half the bid-ask spread in cents, at least one cent (so bid < price < ask)."""
        half = cents * self.params.spread_bps[symbol] / 2e4
        return np.maximum(np.round(half), 1).astype(np.int64)
