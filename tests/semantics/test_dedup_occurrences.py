"""SEMANTICS §4, keyed deduplication ``occurrences_output_tag`` (``last`` / ``earliest`` /
``latest``): as a window is released, one record per window seen more than once -- its key
fields, ``first_occurrence_ms`` (the smallest event time among the window's records) and
``occurrences`` (the window's records, the kept one included). A duplicates audit that costs
one record per duplicated key instead of an aggregation over every record.

Hand-computed cases first, then properties against a reference that assigns records to
windows in arrival order (as ``test_dedup_by_time.reference_by_time``) and counts each
window's members: equal for every batch cut and after a restore at any cut.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from test_dedup import Record, batch, batch_bounds, plain_copy, streams

from surestream.model.batch import POS_INF, Batch
from surestream.model.steps import KeyedDedupStep
from surestream.semantics.dedup import KeepLastDedup, build_dedup_operator
from surestream.semantics.operator import MAIN

HOLDING = ("last", "earliest", "latest")
TAG = "occurrences"


def make(strategy: str, window: int = 100, ttl: int | None = None,
         fields: Sequence[str] = ("k",), on_null_key: str = "error") -> KeepLastDedup:
    return build_dedup_operator(KeyedDedupStep(
        key_fields=list(fields), time_window_ms=window, state_ttl_ms=ttl, strategy=strategy,
        duplicates_output_tag="dups", occurrences_output_tag=TAG, on_null_key=on_null_key),
        "p")


def rows(*keys: str | None) -> list[dict]:
    return [{"k": k, "id": i} for i, k in enumerate(keys)]


def occurrences(out: dict) -> list[tuple]:
    got = out.get(TAG)
    return [] if got is None else got.data.rows()


# -- hand-computed -------------------------------------------------------------------------
def test_keep_first_refuses_the_option():
    with pytest.raises(ValidationError, match="occurrences_output_tag"):
        KeyedDedupStep(key_fields=["k"], time_window_ms=10, strategy="first",
                       occurrences_output_tag=TAG)


@pytest.mark.parametrize("strategy", HOLDING)
def test_one_record_per_window_seen_more_than_once_at_its_release(strategy):
    op = make(strategy)
    out = op.process(batch(rows("a", "a", "b", "a", "c", "c"), [150, 120, 170, 130, 180, 181],
                           wm_end=200))
    assert TAG not in out  # nothing released yet: the count is final only at the release
    end = op.process(batch([], [], wm_end=POS_INF))
    # a: 120 (the smallest, though 150 came first), 3 records; b: once, no record; c: 2
    assert occurrences(end) == [("a", 120, 3), ("c", 180, 2)]
    assert end[TAG].data.schema == {"k": pl.String, "first_occurrence_ms": pl.Int64,
                                    "occurrences": pl.Int64}
    assert end[TAG].ts.tolist() == [120, 180]
    # every occurrence beyond the first is a duplicate
    assert op.counters["duplicates"] == sum(n - 1 for *_, n in occurrences(end))


@pytest.mark.parametrize("strategy", HOLDING)
def test_a_new_window_of_the_key_is_a_new_record(strategy):
    op = make(strategy, window=100)
    op.process(batch(rows("a", "a", "a", "a"), [0, 50, 100, 120], wm_end=10))
    end = op.process(batch([], [], wm_end=POS_INF))
    assert occurrences(end) == [("a", 0, 2), ("a", 100, 2)]


def test_a_format_2_snapshot_restores_with_windows_counted_once():
    op = make("earliest")
    op.process(batch(rows("a"), [150], wm_end=160))
    state = plain_copy(op.snapshot())
    state["format"] = 2
    del state["count"], state["first_ts"]
    restored = make("earliest")
    restored.restore(state)
    restored.process(batch(rows("a"), [140], wm_end=170))
    assert occurrences(restored.process(batch([], [], wm_end=POS_INF))) == [("a", 140, 2)]


# -- properties ----------------------------------------------------------------------------
def reference_occurrences(records: Sequence[Record], window: int, ttl: int,
                          on_null_key: str) -> list[tuple]:
    """Windows in arrival order (a window opens with a key's first record, one at or after
    t0 + window, or when the key's state expired: t0 + ttl <= W); a window closes when
    W >= t0 + window - 1 (in order of that time, then of opening); a closed window with
    two or more members gives (key..., min ts of its members, members)."""
    windows: list[dict] = []
    current: dict[tuple, dict] = {}
    out: list[tuple] = []

    def close(w: float) -> None:
        due = sorted((x for x in windows if not x["closed"] and x["t0"] + window - 1 <= w),
                     key=lambda x: (x["t0"] + window - 1, x["opened"]))
        for x in due:
            x["closed"] = True
            if len(x["members"]) > 1:
                out.append((*x["key"], min(records[i][1] for i in x["members"]),
                            len(x["members"])))

    for idx, (key, ts, wm) in enumerate(records):
        close(wm)
        if None in key and on_null_key != "group":
            continue
        cur = current.get(key)
        if cur is None or cur["t0"] + ttl <= wm or ts >= cur["t0"] + window:
            current[key] = {"key": key, "t0": ts, "opened": idx, "members": [idx],
                            "closed": False}
            windows.append(current[key])
        elif not cur["closed"]:
            cur["members"].append(idx)
    close(float("inf"))
    return out


def run(strategy: str, records: Sequence[Record], cuts: Sequence[int], window: int, ttl: int,
        on_null_key: str, restore_at: int | None = None) -> list[tuple]:
    """The occurrence records of the operator over the records cut at ``cuts`` (and at
    ``restore_at``, where it is snapshotted, copied as plain data and restored)."""
    def fresh() -> KeepLastDedup:
        return make(strategy, window=window, ttl=ttl, fields=("a", "b"),
                    on_null_key=on_null_key)

    op = fresh()
    got: list[tuple] = []
    all_cuts = [*cuts, restore_at] if restore_at is not None else list(cuts)
    for lo, hi in batch_bounds(len(records), all_cuts):
        part = records[lo:hi]
        data = pl.DataFrame([{"a": k[0], "b": k[1]} for k, _, _ in part],
                            schema={"a": pl.Int64, "b": pl.String})
        result = op.process(Batch(
            data=data, ts=np.array([r[1] for r in part], dtype=np.int64),
            wm=np.array([r[2] for r in part], dtype=np.int64),
            seq=np.arange(lo, hi, dtype=np.int64),
            wm_end=records[hi][2] if hi < len(records) else POS_INF))
        if TAG in result:
            assert result[TAG].ts.tolist() == result[TAG].data["first_occurrence_ms"].to_list()
            got.extend(result[TAG].data.rows())
            assert result[TAG].wm_end == result[MAIN].wm_end
        if hi == restore_at:
            state = plain_copy(op.snapshot())
            op = fresh()
            op.restore(state)
    return got


PROPS = settings(max_examples=150, deadline=None)
POLICIES = st.sampled_from(["error", "keep", "group"])
STRATEGIES = st.sampled_from(HOLDING)


@PROPS
@given(streams(), POLICIES, STRATEGIES)
def test_equals_the_reference_for_every_batch_cut(stream, on_null_key, strategy):
    records, cuts, window, ttl = stream
    want = reference_occurrences(records, window, ttl, on_null_key)
    assert run(strategy, records, [], window, ttl, on_null_key) == want
    assert run(strategy, records, cuts, window, ttl, on_null_key) == want
    assert run(strategy, records, range(len(records) + 1), window, ttl, on_null_key) == want


@settings(max_examples=25, deadline=None)
@given(streams(), POLICIES, STRATEGIES)
def test_restored_at_any_cut_equals_the_uncut_run(stream, on_null_key, strategy):
    records, cuts, window, ttl = stream
    whole = run(strategy, records, [], window, ttl, on_null_key)
    for at in range(len(records) + 1):
        assert run(strategy, records, cuts, window, ttl, on_null_key, restore_at=at) == whole
