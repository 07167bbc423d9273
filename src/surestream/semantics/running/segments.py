"""Where a key's state times out between its records (``state_timeout_ms``), vectorized.

A key's state is dropped when the watermark passes its last record's event time (the
largest among its records) by more than the timeout. A record arriving after that starts a
fresh result. Whether it does depends on the watermark in force when it arrives and on the
key's records before it *in the current result* -- which depends on where earlier fresh
starts were. The fixed point below finds them without a loop over records: start with no
fresh starts, mark every record whose predecessor's largest event time is timed out, and
repeat with the results cut there. Each round can only add starts (a shorter run has a
smaller largest event time), and the first start a round misses would be found by it, so
the fixed point is exactly the record-by-record answer; one or two rounds in practice.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from surestream.semantics.running.accumulators import LAST as TS

SEG = "__ss_seg"
_PRIOR, _WM, _START = "__ss_prior", "__ss_wm", "__ss_start"


def timeout_segments(pairs: pl.DataFrame, group: list[str], prior_last: pl.Series,
                     before_wm: np.ndarray, timeout_ms: int) -> np.ndarray:
    """The segment of each record within its group: 0 continues the state held before the
    batch (when it has not timed out), each fresh start adds one. ``pairs`` holds the group
    columns and ``LAST`` (each record's event time) in arrival order; ``prior_last`` the
    state's last event time of each record's group (null: no state); ``before_wm`` the
    watermark before each record."""
    n = pairs.height
    frame = pairs.select([*group, TS]).with_columns(
        prior_last.alias(_PRIOR), pl.Series(_WM, before_wm, dtype=pl.Int64))
    starts = np.zeros(n, dtype=bool)
    while True:
        seg = frame.with_columns(pl.Series(_START, starts)).select(
            pl.col(_START).cast(pl.Int64).cum_sum().over(group).alias(SEG)).to_series()
        found = frame.with_columns(seg).select(
            pl.when(pl.col(SEG) == 0)
            .then(pl.max_horizontal(pl.col(TS).cum_max().shift(1).over([*group, SEG]),
                                    pl.col(_PRIOR)))
            .otherwise(pl.col(TS).cum_max().shift(1).over([*group, SEG]))
            .alias("prev")).to_series()
        timed_out = (found.is_not_null() & (found + timeout_ms < frame.get_column(_WM))) \
            .fill_null(False).to_numpy()
        more = starts | timed_out
        if (more == starts).all():
            return seg.to_numpy()
        starts = more
