"""The watermark of an open-ended input (a trigger's run): partitions that end leave W at
the watermark of the last one to end -- never +infinity -- and W never depends on how the
rows are cut into micro-batches (SEMANTICS §2, for any rows: hypothesis)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from surestream.model.batch import POS_INF
from surestream.semantics.watermarks import WatermarkTracker


def tracker(delay: int, partitions: int) -> WatermarkTracker:
    t = WatermarkTracker(delay)
    t.open_ended = True
    t.declare_partitions(range(partitions))
    return t


def run_in_batches(rows: list[tuple[int, int]], ends: dict[int, int], delay: int,
                   partitions: int, cuts: list[int]) -> tuple[list[int], int]:
    """W before each row and after the last, the rows fed in batches cut at ``cuts``;
    partition p ends after row ``ends[p]`` (global index)."""
    t = tracker(delay, partitions)
    bounds = [0, *sorted(c for c in set(cuts) if 0 < c < len(rows)), len(rows)]
    before: list[int] = []
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        part = np.array([p for p, _ in rows[lo:hi]], dtype=np.int64)
        ts = np.array([x for _, x in rows[lo:hi]], dtype=np.int64)
        ended = tuple((at - lo, p) for p, at in ends.items() if lo <= at < hi)
        wm, _ = t.advance(ts, part, ended)
        before += wm.tolist()
    return before, t.current


rows_st = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 50_000)), min_size=1,
                   max_size=60)


@settings(max_examples=80, deadline=None)
@given(rows_st, st.integers(0, 3000), st.lists(st.integers(1, 59), max_size=8),
       st.sets(st.integers(0, 2)))
def test_open_ended_watermark_does_not_depend_on_the_batches(rows, delay, cuts, ending):
    last = {p: i for i, (p, _) in enumerate(rows)}
    ends = {p: last[p] for p in ending if p in last}
    whole = run_in_batches(rows, ends, delay, 3, [])
    assert run_in_batches(rows, ends, delay, 3, cuts) == whole
    assert whole[1] != POS_INF  # the input has not ended
    if ends and set(ends) == {p for p, _ in rows} == {0, 1, 2}:
        # every partition ended: W is the last one to end's own watermark (or higher)
        p = max(ends, key=ends.get)
        own = max(x for q, x in rows if q == p) - delay - 1
        assert whole[1] >= own


def test_every_file_ended_holds_at_the_last_ones_watermark_not_infinity():
    t = tracker(1000, 2)
    wm, end = t.advance(np.array([5000, 9000, 7000]), np.array([0, 1, 0]),
                        ((2, 0),))  # partition 0 ends after its 7000
    assert end == 7999  # min(7000, 9000) - 1000 - 1, while 1 is open
    wm, end = t.advance(np.array([12000]), np.array([1]), ((0, 1),))
    assert end == 10999  # 1 ended last: its own watermark, not +infinity
    wm, end = t.advance(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), ())
    assert end == 10999  # nothing open: W stays
    t.declare_partitions([2])  # a new file: held at -infinity until its first record
    wm, end = t.advance(np.array([11500]), np.array([2]), ())
    assert wm.tolist() == [10999] and end == 10999


def test_without_open_ended_every_partition_ended_is_the_end_of_the_input():
    t = WatermarkTracker(1000)
    t.declare_partitions([0])
    _, end = t.advance(np.array([5000]), np.array([0]), ((0, 0),))
    assert end == POS_INF
