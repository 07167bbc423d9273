"""SEMANTICS §2: per-partition bounded-out-of-orderness watermarks, per record."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from surestream.model.batch import NEG_INF, POS_INF
from surestream.semantics.watermarks import WatermarkTracker


def advance(tracker, ts, part=None, ended=()):
    wm, end = tracker.advance(np.array(ts, dtype=np.int64),
                              None if part is None else np.array(part), ended)
    return wm.tolist(), end


def test_watermark_is_max_minus_delay_minus_one_before_each_record():
    t = WatermarkTracker(2000)
    wm, end = advance(t, [10000, 8000, 12000, 9999])
    # before the first record: -inf; after 10000: 7999; 8000 keeps it; after 12000: 9999
    assert wm == [NEG_INF, 7999, 7999, 9999]
    assert end == 9999


def test_watermark_never_decreases_across_batches():
    t = WatermarkTracker(0)
    advance(t, [5000])
    wm, end = advance(t, [100, 200])
    assert wm == [4999, 4999] and end == 4999


def test_unstarted_partition_holds_the_watermark_at_minus_infinity():
    t = WatermarkTracker(0)
    t.declare_partitions([0, 1])
    wm, end = advance(t, [1000, 2000], part=[0, 0])
    assert wm == [NEG_INF, NEG_INF] and end == NEG_INF
    wm, end = advance(t, [500], part=[1])
    assert wm == [NEG_INF] and end == 499  # min(2000, 500) - 1


def test_ended_partition_no_longer_holds_the_watermark_back():
    t = WatermarkTracker(0)
    t.declare_partitions([0, 1])
    # partition 1 ends after row 0 (its only record); partition 0 goes on
    wm, end = advance(t, [100, 5000, 6000], part=[1, 0, 0], ended=[(0, 1)])
    assert wm == [NEG_INF, NEG_INF, 4999] and end == 5999


def test_end_of_every_partition_is_plus_infinity():
    t = WatermarkTracker(1000)
    t.declare_partitions([0, 1])
    advance(t, [100, 200], part=[0, 1])
    wm, end = advance(t, [], part=[], ended=[(-1, 0), (-1, 1)])
    assert end == POS_INF


@pytest.mark.parametrize(("silent_ms", "idle"), [(59_999, False), (60_000, True),
                                                 (120_000, True)])
def test_idle_partition_left_out_of_the_minimum_until_its_next_record(silent_ms, idle):
    now = [0]
    t = WatermarkTracker(0, idle_timeout_ms=60_000, clock=lambda: now[0])
    t.declare_partitions([0, 1])
    advance(t, [1000, 1000], part=[0, 1])
    now[0] = silent_ms  # partition 1 silent for this long (processing time)
    wm, end = advance(t, [50_000, 60_000], part=[0, 0])
    if idle:  # left out: the watermark moves on with partition 0 alone
        assert wm == [999, 49_999] and end == 59_999
    else:  # not idle yet: partition 1 (at 1000) holds the watermark back
        assert wm == [999, 999] and end == 999
    # its next record brings it back: it holds the watermark (which never goes down)
    wm, end = advance(t, [2000, 70_000], part=[1, 0])
    assert wm == ([59_999, 59_999] if idle else [999, 1999])
    assert end == (59_999 if idle else 1999)


@pytest.mark.parametrize("idle", [False, True])
def test_all_partitions_idle_keeps_the_watermark_until_one_delivers(idle):
    now = [0]
    t = WatermarkTracker(0, idle_timeout_ms=10, clock=lambda: now[0])
    t.declare_partitions([0, 1])
    advance(t, [5000, 1000], part=[0, 1])
    now[0] = 100 if idle else 5  # both silent past the timeout, or not
    wm, end = advance(t, [])
    assert end == 999  # every partition idle: W stays (no jump to +infinity), never drops
    wm, end = advance(t, [8000], part=[0])
    # partition 0 is active again; partition 1 (at 1000) is idle and left out, or holds W
    assert wm == [999] and end == (7999 if idle else 999)


@pytest.mark.parametrize("silent_ms", [59_999, 60_000])
def test_a_partition_that_never_delivered_is_idle_after_the_timeout(silent_ms):
    """A live partition with no record yet (a quiet Kafka partition, one created mid-run)
    holds W at -infinity only until it has been silent for the timeout since it was first
    seen; then partition 0 alone moves W."""
    now = [0]
    t = WatermarkTracker(0, idle_timeout_ms=60_000, clock=lambda: now[0])
    t.declare_partitions([0, 1])
    _, end = advance(t, [1000], part=[0])
    assert end == NEG_INF
    now[0] = silent_ms
    _, end = advance(t, [5000], part=[0])
    assert end == (4999 if silent_ms >= 60_000 else NEG_INF)


def test_bounded_replay_never_judges_idleness_without_a_clock():
    t = WatermarkTracker(0, idle_timeout_ms=1)
    t.declare_partitions([0, 1])
    advance(t, [1000], part=[0])
    wm, end = advance(t, [9000], part=[0])
    assert end == NEG_INF  # partition 1 never delivered: still -inf


@given(st.lists(st.integers(-10**6, 10**6), min_size=1, max_size=200),
       st.integers(0, 5000), st.lists(st.integers(1, 50), min_size=1, max_size=10))
def test_watermark_is_monotonic_and_independent_of_cuts(ts, delay, cuts):
    whole, whole_end = advance(WatermarkTracker(delay), ts)
    t = WatermarkTracker(delay)
    pieces, i, k = [], 0, 0
    while i < len(ts):
        n = cuts[k % len(cuts)]
        wm, end = advance(t, ts[i:i + n])
        pieces.extend(wm)
        i, k = i + n, k + 1
    assert pieces == whole and end == whole_end
    assert all(a <= b for a, b in zip(whole, whole[1:], strict=False))
    # the definition, record by record
    running, w = NEG_INF, NEG_INF
    for x, got in zip(ts, whole, strict=True):
        assert got == w
        running = max(running, x)
        w = max(w, running - delay - 1)
