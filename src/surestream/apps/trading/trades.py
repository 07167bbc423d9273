"""Trade records: ids, orders, traders, accounts, venues, sizes and statuses.

Built column by column for a chunk of trades (numpy draws, polars string columns), never
one dict per trade: that is what lets the simulator produce hundreds of thousands of
events per second. Partial fills look real: a trade continues its symbol's previous order
about a third of the time, so several trades share an ``order_id``.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from surestream.apps.trading.prices import SymbolParams

STATUSES = ("FILLED", "PARTIALLY_FILLED", "NEW", "CANCELLED", "REJECTED")
_STATUS_WEIGHTS = (0.55, 0.15, 0.15, 0.10, 0.05)
#: values the unknown-status rate injects: anything outside STATUSES is unknown
UNKNOWN_STATUSES = ("PENDING_REVIEW", "XX", "EXPIRED", "SUSPENDED", "UNKNOWN")
#: every status value a trade can carry; a trade's status code indexes this
STATUS_VALUES = STATUSES + UNKNOWN_STATUSES
#: the kind of event each known status comes from (an unknown status keeps its original's)
EVENT_TYPES = ("EXECUTION", "EXECUTION", "NEW_ORDER", "CANCEL", "REJECT")
VENUES = ("NYSE", "NASDAQ", "ARCA", "BATS", "IEX")
SIDES = ("BUY", "SELL")
TRADE_FIELDS = ("trade_id", "order_id", "symbol", "side", "quantity", "price", "status",
                "exchange", "trader_id", "account_id", "timestamp_ms", "event_type")
_TRADERS = 240
_NEW_ORDER_SHARE = 0.7
_ROUND_LOT_SHARE = 0.35


class TradeFactory:
    """Makes trade columns chunk by chunk; keeps the id counters and open orders."""

    def __init__(self, params: SymbolParams, rng: np.random.Generator) -> None:
        self.params = params
        weights = 1.0 / (np.arange(_TRADERS) + 5.0)  # a few traders do much of the flow
        self.trader_weight = weights / weights.sum()
        per_trader = rng.integers(1, 4, _TRADERS)
        self.first_account = np.r_[0, np.cumsum(per_trader)[:-1]]
        self.accounts_of = per_trader
        self.symbols = pl.Series(params.names, dtype=pl.String)
        self.traders = pl.Series([f"TR{i:04d}" for i in range(_TRADERS)])
        self.accounts = pl.Series([f"AC{i:06d}" for i in range(int(per_trader.sum()))])
        self.listing = np.array([VENUES.index(x) if x in VENUES else 0 for x in params.listing])
        self.next_trade = 0
        self.next_order = 0
        self.last_order = np.full(len(params.names), -1, dtype=np.int64)

    def frame(self, symbol: np.ndarray, cents: np.ndarray, ts: np.ndarray,
              unknown: np.ndarray, rng: np.random.Generator) -> tuple[pl.DataFrame, np.ndarray]:
        """Trades for the chunk's trade events, and each one's index in STATUS_VALUES."""
        n = len(symbol)
        known = rng.choice(len(STATUSES), n, p=_STATUS_WEIGHTS)
        status = np.where(unknown, len(STATUSES) + rng.integers(0, len(UNKNOWN_STATUSES), n),
                          known)
        size = self.params.trade_size[symbol] * rng.lognormal(0.0, 0.8, n)
        lots = rng.random(n) < _ROUND_LOT_SHARE
        quantity = np.where(lots, np.maximum(np.round(size / 100) * 100, 100),
                            np.maximum(np.round(size), 1)).astype(np.int64)
        trader = rng.choice(_TRADERS, n, p=self.trader_weight)
        account = self.first_account[trader] + np.floor(
            rng.random(n) * self.accounts_of[trader]).astype(np.int64)
        venue = np.where(rng.random(n) < 0.6, self.listing[symbol],
                         rng.integers(0, len(VENUES), n))
        side = (rng.random(n) < 0.5).astype(np.int64)
        orders = self._orders(symbol, rng.random(n) < _NEW_ORDER_SHARE)
        seq = self.next_trade + np.arange(n, dtype=np.int64)
        self.next_trade += n
        frame = pl.DataFrame({
            "trade_id": _ids("T", seq),
            "order_id": _ids("O", orders),
            "symbol": self.symbols.gather(symbol),
            "side": _pick(SIDES, side),
            "quantity": quantity,
            "price": cents / 100.0,
            "status": _pick(STATUS_VALUES, status),
            "exchange": _pick(VENUES, venue),
            "trader_id": self.traders.gather(trader),
            "account_id": self.accounts.gather(account),
            "timestamp_ms": ts,
            "event_type": _pick(EVENT_TYPES, known),
        })
        return frame, status

    def _orders(self, symbol: np.ndarray, new: np.ndarray) -> np.ndarray:
        """Order numbers: new ones in arrival order, else the symbol's last order."""
        if len(symbol) == 0:
            return np.zeros(0, dtype=np.int64)
        new = new | (self.last_order[symbol] < 0)  # a symbol's first trade opens an order
        numbers = np.full(len(symbol), -1, dtype=np.int64)
        numbers[new] = self.next_order + np.arange(int(new.sum()), dtype=np.int64)
        self.next_order += int(new.sum())
        order = np.argsort(symbol, kind="stable")
        sym_sorted, num = symbol[order], numbers[order]
        starts = np.r_[True, sym_sorted[1:] != sym_sorted[:-1]]
        num = np.where(starts & (num < 0), self.last_order[sym_sorted], num)
        # forward-fill within each symbol: every group's first entry is filled by now
        pos = np.maximum.accumulate(np.where(num >= 0, np.arange(len(num)), 0))
        num = num[pos]
        ends = np.r_[np.flatnonzero(starts)[1:] - 1, len(num) - 1]
        self.last_order[sym_sorted[ends]] = num[ends]
        out = np.empty_like(num)
        out[order] = num
        return out


def _ids(prefix: str, numbers: np.ndarray) -> pl.Series:
    """``prefix`` + the number zero-padded to 10 digits, as a string column."""
    return pl.select(pl.lit(prefix) + pl.Series(numbers).cast(pl.String).str.zfill(10)
                     ).to_series()


def _pick(values: tuple[str, ...], codes: np.ndarray) -> pl.Series:
    """The string column ``values[codes]``."""
    return pl.Series(values, dtype=pl.String).gather(codes)
