"""Order book analytics, vectorized over a batch of snapshots (a ``map_batches`` function).

For each snapshot: best bid and ask, mid, spread, spread in basis points, and for the top
5, 10 and 20 levels the bid depth, ask depth (sums of quantities) and imbalance
``(bid - ask) / (bid + ask)``. A side with no levels gives zeros, never an error or a
division by zero: an empty book is a fact of the market (a halt), not bad data.
"""

from __future__ import annotations

import polars as pl

DEPTHS = (5, 10, 20)


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
        mid=pl.when(both).then((pl.col("best_bid") + pl.col("best_ask")) / 2).otherwise(0.0),
        spread=pl.when(both).then(pl.col("best_ask") - pl.col("best_bid")).otherwise(0.0),
        **{f"bid_depth_{n}": _depth("bids", n) for n in DEPTHS},
        **{f"ask_depth_{n}": _depth("asks", n) for n in DEPTHS},
    )
    out = out.with_columns(
        spread_bps=pl.when(pl.col("mid") > 0)
        .then(pl.col("spread") / pl.col("mid") * 10_000).otherwise(0.0),
        **{f"imbalance_{n}": pl.when(pl.col(f"bid_depth_{n}") + pl.col(f"ask_depth_{n}") > 0)
           .then((pl.col(f"bid_depth_{n}") - pl.col(f"ask_depth_{n}"))
                 / (pl.col(f"bid_depth_{n}") + pl.col(f"ask_depth_{n}")))
           .otherwise(0.0) for n in DEPTHS},
    )
    return out.drop("bids", "asks")
