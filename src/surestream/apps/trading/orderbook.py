"""Order book snapshots: 20 price levels a side around the walk's price, best first.

Bids descend from just below the price, asks ascend from just above it, each level one to
three ticks from the next (a tick is a cent, or 1/10,000 of the price for dear stocks), so
levels are strictly ordered and always positive. A small share of snapshots has one side
empty -- a halted or one-sided market -- because depth and spread analytics must cope
with that instead of dividing by zero.

The levels are built as flat numpy arrays and turned into Arrow list-of-struct columns
(``[{"price": ..., "quantity": ...}, ...]``) without a Python loop per level.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

LEVELS = 20


def _side(best: np.ndarray, tick: np.ndarray, direction: int, size: np.ndarray,
          present: np.ndarray, rng: np.random.Generator) -> pl.Series:
    """One side of ``len(best)`` books as a list-of-struct series; absent sides are []."""
    n = len(best)
    gaps = rng.integers(1, 4, (n, LEVELS)) * tick[:, None]
    gaps[:, 0] = 0
    prices = best[:, None] + direction * np.cumsum(gaps, axis=1)
    depth = 1.0 + 0.08 * np.arange(LEVELS)
    qty = np.maximum(np.round(size[:, None] * depth * rng.lognormal(0.0, 0.6, (n, LEVELS))), 1)
    keep = np.repeat(present, LEVELS)
    flat_price = (prices.reshape(-1) / 100.0)[keep]
    flat_qty = qty.reshape(-1).astype(np.int64)[keep]
    offsets = np.zeros(n + 1, dtype=np.int32)
    offsets[1:] = np.cumsum(np.where(present, LEVELS, 0))
    levels = pa.StructArray.from_arrays([pa.array(flat_price), pa.array(flat_qty)],
                                        names=["price", "quantity"])
    return pl.Series(pa.ListArray.from_arrays(pa.array(offsets), levels))


def book_columns(mid_cents: np.ndarray, half_spread: np.ndarray, size: np.ndarray,
                 empty_side_rate: float, rng: np.random.Generator) -> dict[str, pl.Series]:
    """``bids`` and ``asks`` columns for books around ``mid_cents`` (one book per entry)."""
    n = len(mid_cents)
    tick = np.maximum(mid_cents // 10_000, 1)
    empty = rng.random(n) < empty_side_rate
    empty_bids = rng.random(n) < 0.5
    bids = _side(mid_cents - half_spread, tick, -1, size, ~(empty & empty_bids), rng)
    asks = _side(mid_cents + half_spread, tick, 1, size, ~(empty & ~empty_bids), rng)
    return {"bids": bids, "asks": asks}
