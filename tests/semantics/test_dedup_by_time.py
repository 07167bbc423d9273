"""SEMANTICS §4, keyed deduplication ``earliest`` / ``latest``: per key and window, the
record with the smallest / largest event time (ties by arrival), emitted once the watermark
passes the window -- the seeds' ``ROW_NUMBER() OVER (PARTITION BY id ORDER BY event_time)
= 1``.

Hand-computed cases first (``wm`` is the watermark *before* each record), then properties
against a reference written differently from the operator: records are first assigned to
windows in arrival order, and a window's survivor is then picked with ``min`` / ``max`` over
``(event time, arrival)`` among the records that reached it before it closed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from test_dedup import (
    NULL_KEY_ROWS,
    Record,
    batch,
    batch_bounds,
    ids,
    plain_copy,
    reference_first,
    step,
    streams,
)

from surestream.model.batch import NEG_INF, POS_INF, Batch
from surestream.semantics.dedup import (
    KeepEarliestDedup,
    KeepLastDedup,
    KeepLatestDedup,
    build_dedup_operator,
)
from surestream.semantics.operator import ERRORS, MAIN

BY_TIME = ("earliest", "latest")


def make(strategy: str, **kw) -> KeepLastDedup:
    return build_dedup_operator(step(strategy=strategy, **kw), "p")


def rows(*keys: str | None) -> list[dict]:
    return [{"k": k, "id": i} for i, k in enumerate(keys)]


# -- hand-computed -------------------------------------------------------------------------
def test_the_strategy_builds_its_operator_and_unknown_ones_are_refused():
    assert isinstance(make("earliest"), KeepEarliestDedup)
    assert isinstance(make("latest"), KeepLatestDedup)
    with pytest.raises(ValidationError, match="earliest"):
        step(strategy="oldest")  # the message lists the strategies there are


def test_earliest_keeps_the_smallest_event_time_of_the_window_not_the_first_arrival():
    op = make("earliest", window=100)
    out = op.process(batch(rows("a", "a", "a", "b", "b"), [150, 120, 130, 170, 175],
                           wm_end=200))
    # a's window opens at t0 = 150 (first arrival): [150, 250) -- 120 and 130 are in it
    # (a record earlier than t0 belongs to the open window, as for first/last)
    assert ids(out[MAIN]) == []  # due at W >= 249
    assert op.counters["duplicates"] == 3  # 150 replaced by 120; 130 and 175 not kept
    end = op.process(batch([], [], wm_end=POS_INF))
    assert ids(end[MAIN]) == [1, 3]  # a: 120 (id 1); b: 170 (id 3)
    assert end[MAIN].ts.tolist() == [120, 170]


def test_latest_keeps_the_largest_event_time_of_the_window_not_the_last_arrival():
    op = make("latest", window=100)
    op.process(batch(rows("a", "a", "a", "b", "b"), [150, 220, 130, 170, 165], wm_end=200))
    assert op.counters["duplicates"] == 3
    end = op.process(batch([], [], wm_end=POS_INF))
    assert ids(end[MAIN]) == [1, 3]  # a: 220 (id 1), not 130 (the last to arrive)
    assert end[MAIN].ts.tolist() == [220, 170]


@pytest.mark.parametrize(("strategy", "kept"), [("earliest", 1), ("latest", 4)])
def test_ties_are_broken_by_arrival(strategy, kept):
    """Equal smallest times: earliest keeps the first to arrive; equal largest times:
    latest keeps the last to arrive (the order (event time, arrival), up or down)."""
    op = make(strategy, window=10, tag="dups")
    out = op.process(batch(rows("a", "a", "a", "a", "a"), [102, 100, 100, 104, 104],
                           wm_end=POS_INF))
    assert ids(out[MAIN]) == [kept]
    assert sorted(ids(out["dups"])) == sorted(set(range(5)) - {kept})
    assert op.counters == {"duplicates": 4, "errors": 0}


@pytest.mark.parametrize(("strategy", "first_window"), [("earliest", 0), ("latest", 1)])
def test_a_record_at_the_window_edge(strategy, first_window):
    """t0 = 100, window 10: 109 = t0 + window - 1 is the window's last instant (in it), 110
    opens the next window. The window is out exactly when W reaches 109."""
    op = make(strategy, window=10, ttl=100)
    out = op.process(batch(rows("a", "a", "a"), [100, 109, 110], wm=[NEG_INF, 50, 108],
                           wm_end=108))
    assert ids(out[MAIN]) == []  # W = 108: not yet
    out = op.process(batch([], [], wm_end=109))
    assert ids(out[MAIN]) == [first_window]  # W = 109: [100, 110) is out
    assert op.counters["duplicates"] == 1
    end = op.process(batch([], [], wm_end=POS_INF))
    assert ids(end[MAIN]) == [2]  # 110's own window [110, 120)


@pytest.mark.parametrize(("strategy", "expected"), [("earliest", [1]), ("latest", [0])])
def test_out_of_order_arrival_within_the_watermark_is_on_time_after_the_step(strategy,
                                                                             expected):
    """300 comes after 500 but above the watermark (200): it takes part in a's window, and
    the survivor leaves with a watermark below its own event time -- on time for a late
    step or window after this one."""
    op = make(strategy, window=1_000)
    out = op.process(batch(rows("a", "a", "a", "z"), [500, 300, 450, 5_000],
                           wm=[NEG_INF, 200, 200, 400], wm_end=4_000))
    assert ids(out[MAIN]) == expected  # due at 1_499, released before z (W 4_000)
    assert out[MAIN].wm.tolist()[0] < out[MAIN].ts.tolist()[0]
    assert out[MAIN].seq.tolist() == [3]  # after the last input record before the release
    assert out[MAIN].wm_end < 5_000  # z is held: the watermark stays below it


def test_earliest_holds_the_output_watermark_below_a_newly_held_earlier_record():
    op = make("earliest", window=1_000)
    out = op.process(batch(rows("a", "b"), [500, 2_000], wm=[NEG_INF, 100], wm_end=350))
    # below 500; and while records are held, the watermark after the last record (100) is
    # passed on, not the batch end's 350 (a later release carries the former)
    assert out[MAIN].wm_end == 100
    out = op.process(batch(rows("a"), [400], wm=[350], wm_end=390))
    assert out[MAIN].wm_end == 350  # a now holds 400: below it
    out = op.process(batch([], [], wm_end=1_600))
    assert ids(out[MAIN]) == [0] and out[MAIN].ts.tolist() == [400]  # id 0 of that batch
    assert out[MAIN].wm.tolist() == [350]  # the watermark after the last record, below 400
    assert out[MAIN].wm_end == 350  # b (at 2000) is still held
    out = op.process(batch([], [], wm_end=POS_INF))
    assert ids(out[MAIN]) == [1] and out[MAIN].wm_end == POS_INF


@pytest.mark.parametrize("strategy", BY_TIME)
def test_a_record_for_a_window_already_out_is_a_duplicate_until_the_ttl(strategy):
    op = make(strategy, window=10, ttl=30, tag="dups")
    out = op.process(batch(rows("a"), [100], wm_end=109))
    assert ids(out[MAIN]) == [0]  # [100, 110) out at W 109; state kept until W >= 130
    out = op.process(batch(rows("a", "a"), [95, 105], wm=[120, 129], wm_end=129))
    assert ids(out[MAIN]) == [] and ids(out["dups"]) == [0, 1]  # an earlier one too
    assert op.state_gauges()["keys"] == 1
    out = op.process(batch(rows("a"), [106], wm=[130], wm_end=130))
    # W = 130 = t0 + ttl: the state is gone, 106 opens a new window [106, 116), which W
    # has passed already: out at once (late, as it came in)
    assert ids(out[MAIN]) == [0] and out[MAIN].ts.tolist() == [106] and "dups" not in out
    assert op.counters["duplicates"] == 2
    end = op.process(batch([], [], wm_end=POS_INF))
    assert ids(end[MAIN]) == []
    assert op.state_gauges() == {"keys": 0, "bytes": 0}  # all expired at the end


@pytest.mark.parametrize("strategy", BY_TIME)
def test_ttl_frees_the_state_of_emitted_windows(strategy):
    op = make(strategy, window=10, ttl=50)
    op.process(batch(rows("a", "b", "a"), [100, 120, 101], wm_end=140))
    assert op.state_gauges()["keys"] == 2  # a out (due 109), b out (due 129), both kept
    op.process(batch([], [], wm_end=150))  # a: 100 + 50 <= 150
    assert op.state_gauges()["keys"] == 1
    op.process(batch([], [], wm_end=170))  # b: 120 + 50 <= 170
    assert op.state_gauges()["keys"] == 0


def run_strategy(strategy: str, fields: Sequence[str], records: list[dict], ts: list[int],
                 on_null_key: str) -> dict:
    """One batch in one window (W = -inf), then the end of input: ids out, ids to errors,
    counters."""
    op = make(strategy, window=1_000, fields=fields, on_null_key=on_null_key)
    first = op.process(batch(records, ts, wm_end=NEG_INF))
    end = op.process(batch([], [], wm_end=POS_INF))
    errors = first.get(ERRORS)
    return {"main": ids(first[MAIN]) + ids(end[MAIN]),
            "errors": [] if errors is None else errors.seq.tolist(),
            "types": [] if errors is None else errors.data.get_column("error_type").to_list(),
            "counters": dict(op.counters)}


# NULL_KEY_ROWS: ids 0, 2, 3, 5 have no trade_id (3: not even the column); 1, 4 are "t1"
NULL_TS = [50, 40, 10, 30, 20, 60]


@pytest.mark.parametrize("strategy", BY_TIME)
def test_null_keys_go_to_errors_by_default_and_are_no_duplicates(strategy):
    got = run_strategy(strategy, ["trade_id"], NULL_KEY_ROWS, NULL_TS, "error")
    assert got["errors"] == [0, 2, 3, 5] and set(got["types"]) == {"null_key"}
    assert got["main"] == ([4] if strategy == "earliest" else [1])  # t1: ts 20 vs 40
    assert got["counters"] == {"duplicates": 1, "errors": 4}


@pytest.mark.parametrize("strategy", BY_TIME)
def test_on_null_key_keep_passes_null_keys_through_at_their_position(strategy):
    got = run_strategy(strategy, ["trade_id"], NULL_KEY_ROWS, NULL_TS, "keep")
    # null-key records pass at once; t1's survivor waits for the end of input
    assert got["main"] == [0, 2, 3, 5, 4 if strategy == "earliest" else 1]
    assert got["errors"] == [] and got["counters"] == {"duplicates": 1, "errors": 0}


@pytest.mark.parametrize(("strategy", "null_kept"), [("earliest", 2), ("latest", 5)])
def test_on_null_key_group_makes_null_one_key(strategy, null_kept):
    got = run_strategy(strategy, ["trade_id"], NULL_KEY_ROWS, NULL_TS, "group")
    # the null key's records: ts 50, 10, 30, 60 -> earliest 10 (id 2), latest 60 (id 5)
    t1 = 4 if strategy == "earliest" else 1
    assert sorted(got["main"]) == sorted([null_kept, t1])
    assert got["counters"] == {"duplicates": 4, "errors": 0}


@pytest.mark.parametrize("strategy", BY_TIME)
def test_snapshot_is_plain_data_and_restores_the_held_record(strategy):
    def fresh() -> KeepLastDedup:
        return make(strategy, window=100, ttl=300, fields=("k", "n"))

    op = fresh()
    op.process(batch([{"k": "a", "n": 1, "v": 1.5, "id": 0},
                      {"k": "a", "n": 1, "v": 2.5, "id": 1},
                      {"k": "a", "n": 1, "v": 0.5, "id": 2}], [150, 120, 180], wm_end=100))
    restored = fresh()
    restored.restore(plain_copy(op.snapshot()))
    assert restored.counters == op.counters == {"duplicates": 2, "errors": 0}
    tail = batch([{"k": "a", "n": 1, "v": 9.0, "id": 3}], [170], wm=[110], wm_end=POS_INF)
    got, expected = restored.process(tail), op.process(tail)
    # earliest keeps 120 (id 1); latest keeps 180 (id 2) over 170 (id 3)
    assert ids(got[MAIN]) == ids(expected[MAIN]) == ([1] if strategy == "earliest" else [2])
    assert got[MAIN].data.equals(expected[MAIN].data)
    assert got[MAIN].wm.tolist() == expected[MAIN].wm.tolist()


# -- properties ----------------------------------------------------------------------------
def reference_by_time(records: Sequence[Record], window: int, ttl: int, on_null_key: str,
                      strategy: str) -> tuple[list[tuple[int, int]], list[int]]:
    """SEMANTICS §4 for ``earliest`` / ``latest``: records go to windows in arrival order (a
    window opens with a key's first record, or one at or after t0 + window, or when the key's
    state expired: t0 + ttl <= W); a window closes when W >= t0 + window - 1 (in order of
    that time, then of opening) and its survivor is the min / max by (ts, arrival) of the
    records that reached it while open. Returns (input index, index of the input record it
    comes out after) per output record, and the indices sent to errors."""
    windows: list[dict] = []
    current: dict[tuple, dict] = {}
    out: list[tuple[int, int]] = []
    errors: list[int] = []
    last = -1
    pick = min if strategy == "earliest" else max

    def close(w: float) -> None:
        due = sorted((x for x in windows if not x["closed"] and x["t0"] + window - 1 <= w),
                     key=lambda x: (x["t0"] + window - 1, x["opened"]))
        for x in due:
            x["closed"] = True
            out.append((pick(x["members"], key=lambda i: (records[i][1], i)), last))

    for idx, (key, ts, wm) in enumerate(records):
        close(wm)
        if None in key and on_null_key != "group":
            (out.append((idx, idx)) if on_null_key == "keep" else errors.append(idx))
        else:
            cur = current.get(key)
            if cur is None or cur["t0"] + ttl <= wm or ts >= cur["t0"] + window:
                current[key] = {"t0": ts, "opened": idx, "members": [idx], "closed": False}
                windows.append(current[key])
            elif not cur["closed"]:
                cur["members"].append(idx)
        last = idx
    close(float("inf"))
    return out, errors


Released = tuple[int, int, int, int]  # (input index, ts, wm, seq) of an output record


def run_by_time(strategy: str, records: Sequence[Record], cuts: Sequence[int], window: int,
                ttl: int, on_null_key: str, restore_at: int | None = None
                ) -> tuple[list[Released], int, list[int]]:
    """The operator over the records cut at ``cuts`` (and at ``restore_at``, where it is
    snapshotted, copied as plain data and restored into a fresh operator). Returns the
    output records, the duplicates count and the error indices."""
    def fresh() -> KeepLastDedup:
        return make(strategy, window=window, ttl=ttl, fields=("a", "b"),
                    on_null_key=on_null_key)

    op = fresh()
    out: list[Released] = []
    errors: list[int] = []
    all_cuts = [*cuts, restore_at] if restore_at is not None else list(cuts)
    for lo, hi in batch_bounds(len(records), all_cuts):
        part = records[lo:hi]
        data = pl.DataFrame([{"a": k[0], "b": k[1], "i": lo + j}
                             for j, (k, _, _) in enumerate(part)], infer_schema_length=None) \
            if part else pl.DataFrame()
        result = op.process(Batch(
            data=data, ts=np.array([r[1] for r in part], dtype=np.int64),
            wm=np.array([r[2] for r in part], dtype=np.int64),
            seq=np.arange(lo, hi, dtype=np.int64),
            wm_end=records[hi][2] if hi < len(records) else POS_INF))
        main = result[MAIN]
        if len(main):
            out.extend(zip(main.data.get_column("i").to_list(), main.ts.tolist(),
                           main.wm.tolist(), main.seq.tolist(), strict=True))
        if ERRORS in result:
            errors.extend(result[ERRORS].seq.tolist())
        if hi == restore_at:
            state = plain_copy(op.snapshot())
            op = fresh()
            op.restore(state)
    assert op.counters["errors"] == len(errors)
    return out, op.counters["duplicates"], errors


PROPS = settings(max_examples=200, deadline=None)
POLICIES = st.sampled_from(["error", "keep", "group"])
STRATEGIES = st.sampled_from(BY_TIME)


@PROPS
@given(streams(), POLICIES, STRATEGIES)
def test_equals_the_reference(stream, on_null_key, strategy):
    records, cuts, window, ttl = stream
    out, dups, errors = run_by_time(strategy, records, cuts, window, ttl, on_null_key)
    expected, expected_errors = reference_by_time(records, window, ttl, on_null_key,
                                                  strategy)
    assert [(i, seq) for i, _, _, seq in out] == expected
    assert errors == expected_errors
    # conservation: every record is output, a duplicate or an error, exactly once
    assert len(out) + dups + len(errors) == len(records)
    assert len({i for i, _, _, _ in out}) == len(out)


@PROPS
@given(streams(), STRATEGIES)
def test_as_many_records_survive_per_key_as_with_first(stream, strategy):
    """Windows are the same for every strategy: only which record of a window survives
    differs, so each key keeps as many records as keep-first does."""
    records, cuts, window, ttl = stream
    out, _, _ = run_by_time(strategy, records, cuts, window, ttl, "group")
    kept_first, _ = reference_first(records, window, ttl, "group")
    per_key: dict[tuple, int] = {}
    for i, _, _, _ in out:
        per_key[records[i][0]] = per_key.get(records[i][0], 0) + 1
    for key, kept in zip([r[0] for r in records], kept_first, strict=True):
        per_key[key] = per_key.get(key, 0) - kept
    assert set(per_key.values()) <= {0}


@PROPS
@given(streams(), POLICIES, STRATEGIES)
def test_output_is_on_time_when_its_input_was(stream, on_null_key, strategy):
    records, cuts, window, ttl = stream
    out, _, _ = run_by_time(strategy, records, cuts, window, ttl, on_null_key)
    marks = [wm for _, _, wm, _ in out]
    assert marks == sorted(marks)
    for i, ts, wm, seq in out:
        _, in_ts, in_wm = records[i]
        assert ts == in_ts
        if in_ts > in_wm:
            assert wm < ts, (i, ts, wm)
        if seq >= 0:
            assert wm <= records[seq][2]


@PROPS
@given(streams(), st.lists(st.integers(0, 60), max_size=8), POLICIES, STRATEGIES)
def test_does_not_depend_on_batch_cuts(stream, other_cuts, on_null_key, strategy):
    records, cuts, window, ttl = stream
    whole = run_by_time(strategy, records, [], window, ttl, on_null_key)
    assert run_by_time(strategy, records, cuts, window, ttl, on_null_key) == whole
    assert run_by_time(strategy, records, other_cuts, window, ttl, on_null_key) == whole
    assert run_by_time(strategy, records, range(len(records) + 1), window, ttl,
                       on_null_key) == whole


@settings(max_examples=30, deadline=None)
@given(streams(), POLICIES, STRATEGIES)
def test_restored_at_any_cut_equals_the_uncut_run(stream, on_null_key, strategy):
    records, cuts, window, ttl = stream
    whole = run_by_time(strategy, records, [], window, ttl, on_null_key)
    for at in range(len(records) + 1):
        assert run_by_time(strategy, records, cuts, window, ttl, on_null_key,
                           restore_at=at) == whole, at
