"""Order book analytics: vectorized metrics per snapshot, then deltas vs the previous one.

``book_metrics`` (a ``map_batches`` function, vectorized over a batch of snapshots): best bid
and ask, ``mid_price``, ``spread``, ``spread_bps``, and for the top 5, 10 and 20 levels the
bid depth, ask depth (sums of quantities) and imbalance ``(bid - ask) / (bid + ask)``, with
the plan's rounding (mid and spread 4 decimals, spread_bps 2, imbalance 4; from the exact
values, so a rounded mid never feeds the bps). A side with no levels gives zeros, never an
error or a division by zero: an empty book is a fact of the market (a halt), not bad data.

``BookDeltas`` (a ``process`` step keyed by symbol): the previous snapshot of the symbol is
kept in keyed state, and each snapshot gets its changes against it -- ``mid_price_change``,
``spread_change``, ``spread_bps_change``, ``imbalance_N_change`` (N = 5, 10, 20) and
``ms_since_previous``; all null when the symbol has no previous snapshot within the TTL (5
minutes of event time: ``timestamp_ms - previous timestamp_ms <= ttl_ms``). The previous
snapshot is the one that arrived before (late snapshots are quarantined before this step,
so arrival order is event-time order up to the 5 s watermark delay). Keeping only the
latest snapshot per symbol bounds the state by the number of symbols.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from surestream.semantics.process import KeyedProcessFunction

DEPTHS = (5, 10, 20)
#: the snapshot fields a delta is taken of, and the decimals of the change
DELTA_FIELDS = {"mid_price": 4, "spread": 4, "spread_bps": 2,
                **{f"imbalance_{n}": 4 for n in DEPTHS}}
DELTA_COLUMNS = [f"{field}_change" for field in DELTA_FIELDS] + ["ms_since_previous"]


def _best(side: str) -> pl.Expr:
    return pl.col(side).list.first().struct.field("price").fill_null(0.0)


def _depth(side: str, levels: int) -> pl.Expr:
    return (pl.col(side).list.head(levels)
            .list.eval(pl.element().struct.field("quantity")).list.sum()
            .fill_null(0).cast(pl.Float64))


def book_metrics(frame: pl.DataFrame) -> pl.DataFrame:
    """The metrics columns added; the level lists dropped (they stay in the raw stream)."""
    both = (pl.col("best_bid") > 0) & (pl.col("best_ask") > 0)
    out = frame.with_columns(best_bid=_best("bids"), best_ask=_best("asks"))
    out = out.with_columns(
        mid_price=pl.when(both).then((pl.col("best_bid") + pl.col("best_ask")) / 2)
        .otherwise(0.0),
        spread=pl.when(both).then(pl.col("best_ask") - pl.col("best_bid")).otherwise(0.0),
        **{f"bid_depth_{n}": _depth("bids", n) for n in DEPTHS},
        **{f"ask_depth_{n}": _depth("asks", n) for n in DEPTHS},
    )
    out = out.with_columns(
        spread_bps=pl.when(pl.col("mid_price") > 0)
        .then(pl.col("spread") / pl.col("mid_price") * 10_000).otherwise(0.0).round(2),
        **{f"imbalance_{n}": pl.when(pl.col(f"bid_depth_{n}") + pl.col(f"ask_depth_{n}") > 0)
           .then((pl.col(f"bid_depth_{n}") - pl.col(f"ask_depth_{n}"))
                 / (pl.col(f"bid_depth_{n}") + pl.col(f"ask_depth_{n}")))
           .otherwise(0.0).round(4) for n in DEPTHS},
    )
    out = out.with_columns(pl.col("mid_price").round(4), pl.col("spread").round(4))
    return out.drop("bids", "asks")


class BookDeltas(KeyedProcessFunction):
    """Changes of each snapshot against the symbol's previous one (see the module doc).

    params: ``ttl_ms`` (300,000: a previous snapshot older than this does not count),
    ``timestamp_field`` (``timestamp_ms``)."""

    def open(self, params: dict[str, Any]) -> None:
        self.ttl_ms = int(params.get("ttl_ms", 300_000))
        self.ts_field = params.get("timestamp_field", "timestamp_ms")

    def process_element(self, record: dict[str, Any], ctx: Any) -> dict[str, Any]:
        state = ctx.value_state("previous")
        previous = state.value()  # [timestamp, then DELTA_FIELDS in order]
        ts = record[self.ts_field]
        values = [record[field] for field in DELTA_FIELDS]
        if previous is not None and ts - previous[0] <= self.ttl_ms:
            for (field, decimals), now, before in zip(DELTA_FIELDS.items(), values,
                                                      previous[1:], strict=True):
                record[f"{field}_change"] = round(now - before, decimals)
            record["ms_since_previous"] = ts - previous[0]
        else:
            for column in DELTA_COLUMNS:
                record[column] = None
        state.update([ts, *values])
        return record
