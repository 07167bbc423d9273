"""SEMANTICS §4 and §8, keep-last / earliest / latest: the watermark a holding dedup step
passes on, and what the records it releases carry, do not depend on where batches are cut.

The case hypothesis found: a record already late when it reaches the step (b@0 below
W = 1300) is held, a batch ends with the input watermark at 2299, and the step passed 2299
on while still holding b@0, then released b@0 stamped 1300. The window after it had seen
2299 and judged b's window [0, 2000) (cleanup 1999 + 300 = 2299) closed: b went to
``late_window`` with batches of one record, to the main output in one batch. The rule
(docs/concepts.md, "Keep-last and the watermark after it"): while the step holds a record,
the watermark it passes on moves only with its input records, so it never exceeds what the
next release carries. Expected outputs below are worked out by hand from that rule.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_dedup import Record, batch_bounds, step, streams

from surestream.model.batch import NEG_INF, POS_INF, Batch
from surestream.model.steps import KeyedDedupStep, WatermarkStep, WindowStep
from surestream.semantics.dedup import build_dedup_operator
from surestream.semantics.operator import MAIN
from surestream.testing import run_steps

BATCH_SIZES = (1, 2, 3, 4, 5, 1000)


def pipeline(strategy: str) -> list:
    """Watermark (no out-of-orderness), a holding dedup step, a window with lateness 300."""
    return [WatermarkStep(timestamp_column="ts", max_out_of_orderness_ms=0),
            KeyedDedupStep(key_fields=["key"], time_window_ms=1_000, state_ttl_ms=4_000,
                           strategy=strategy, duplicates_output_tag="dups"),
            WindowStep(name="w", key_fields=["key"], kind="tumbling", size_ms=2_000,
                       allowed_lateness_ms=300, aggregations={"n": "count()"})]


def records(*key_ts: tuple[str, int]) -> list[dict]:
    return [{"key": k, "ts": t, "id": i} for i, (k, t) in enumerate(key_ts)]


# The case. a@0 (id 0) is replaced by a@0 (id 1) (earliest: id 1 is the duplicate);
# b@1301 opens b's window [1301, 2301), due at 2300; b@0 arrives with W = 1300 -- late at
# input -- and takes b@1301's place (last: the last seen; earliest: 0 < 1301), holding
# nothing back. a@2300 opens a's next window. Released: a (W 999 passed, stamped -1), then
# at the end b@0 and a@2300, stamped 1300: the output watermark after a@2300 is held at
# 1300 while b@0 is held. b's window [0, 2000) closes at W >= 2299: on time at 1300.
LATE_REPLACEMENT = records(("a", 0), ("a", 0), ("b", 1301), ("b", 0), ("a", 2300))

# For latest, a late record cannot replace one that holds the watermark; a late *first*
# record of a window can be held too. z@1000 opens [1000, 2000) (due 1999), z@1700 replaces
# it (W 999); b@1500 arrives with W = 1699 (late) and opens its own window (due 2499);
# a@2400 comes with W = 1699. After a@2400 the input watermark is 2399: z's window is out
# (stamped 1699), but b@1500 is still held, so 1699 is passed on, not 2399; at the end b and
# a are released stamped 1699, and b's window [0, 2000) (cleanup 2299) is on time.
LATE_FIRST = records(("z", 1000), ("z", 1700), ("b", 1500), ("a", 2400))


#: (key, window_start, count) of every window result: b's window [0, 2000) among them
REPLACEMENT_WINDOWS = {("a", 0, 1), ("b", 0, 1), ("a", 2_000, 1)}
FIRST_WINDOWS = {("z", 0, 1), ("b", 0, 1), ("a", 2_000, 1)}


@pytest.mark.parametrize(("strategy", "recs", "windows", "dups"), [
    ("last", LATE_REPLACEMENT, REPLACEMENT_WINDOWS, [0, 2]),
    ("earliest", LATE_REPLACEMENT, REPLACEMENT_WINDOWS, [1, 2]),
    ("last", LATE_FIRST, FIRST_WINDOWS, [0]),
    ("latest", LATE_FIRST, FIRST_WINDOWS, [0]),
])
@pytest.mark.parametrize("size", BATCH_SIZES)
def test_a_held_late_record_is_judged_the_same_by_a_window_for_every_batch_size(
        strategy, recs, windows, dups, size):
    out = run_steps(recs, pipeline(strategy), batch_size=size)
    assert {(r["key"], r["window_start"], r["n"]) for r in out["main"]} == windows
    assert out["late_window"] == []  # before the fix: b, with batches of 1
    assert sorted(r["id"] for r in out["dups"]) == dups
    assert out["errors"] == []


def feed_one_by_one(strategy: str, key_ts: list[tuple[str, int]]) -> list[Batch]:
    """The operator's main outputs, one input record per batch, each batch ending with the
    watermark after its record (max ts - 1, no out-of-orderness), then the end of input."""
    op = build_dedup_operator(KeyedDedupStep(key_fields=["key"], time_window_ms=1_000,
                                             state_ttl_ms=4_000, strategy=strategy), "p")
    outputs, top = [], NEG_INF
    for seq, (key, ts) in enumerate(key_ts):
        before = top - 1 if top > NEG_INF else NEG_INF
        top = max(top, ts)
        outputs.append(op.process(Batch(
            data=pl.DataFrame({"key": [key], "id": [seq]}), ts=np.array([ts], dtype=np.int64),
            wm=np.array([before], dtype=np.int64), seq=np.array([seq], dtype=np.int64),
            wm_end=top - 1))[MAIN])
    outputs.append(op.process(Batch.empty(POS_INF))[MAIN])
    return outputs


@pytest.mark.parametrize("strategy", ["last", "earliest"])
def test_the_watermark_passed_on_never_exceeds_what_a_later_release_carries(strategy):
    """Operator level, the issue's case cut after every record: the batch ends' watermarks
    and the released records' stamps, by hand. Downstream the watermark never goes down."""
    outs = feed_one_by_one(strategy, [("a", 0), ("a", 0), ("b", 1301), ("b", 0),
                                      ("a", 2300)])
    # Held records all along, so each batch passes on the output watermark after its
    # record: -inf (a@0 came first), -1 (after a@0 (id 1), held), -1 (after b@1301: the
    # advance to 1300 at that batch's end releases a, stamped -1, but b@1301 is held),
    # 1300 (after b@0), 1300 (after a@2300: b@0 is still held), then +inf with all out.
    assert [b.wm_end for b in outs] == [NEG_INF, -1, -1, 1300, 1300, POS_INF]
    # (before the fix: [-1, -1, 1300, 1300, 2299, +inf], and b@0 came out stamped 1300)
    released = [(b.data.get_column("id").to_list(), b.wm.tolist()) for b in outs if len(b)]
    kept_a = 1 if strategy == "last" else 0
    assert released == [([kept_a], [-1]), ([3, 4], [1300, 1300])]
    passed = NEG_INF
    for b in outs:
        assert all(b.wm >= passed)
        passed = b.wm_end


# -- properties --------------------------------------------------------------------------
Seen = tuple[int, int, int]  # (input index, ts, the watermark downstream sees before it)


def downstream_view(strategy: str, records: Sequence[Record], cuts: Sequence[int],
                    after_last: int | None, window: int, ttl: int) -> list[Seen]:
    """What a step after the operator sees: each released record with the watermark in
    force before it there -- its own ``wm``, or a batch end passed on before it if higher.
    Batches are cut at ``cuts``; each ends with the watermark before the next record, the
    last one with ``after_last`` (the watermark after the last record) and then an empty
    batch with the end of input, or (``after_last`` None) with the end of input at once,
    as one batch size gives it and another does not. Also checks that what is passed on
    never goes down."""
    op = build_dedup_operator(step(window, ttl, fields=("a", "b"), strategy=strategy,
                                   on_null_key="group"), "p")
    n, passed, seen = len(records), NEG_INF, []
    ends = [] if after_last is None else [POS_INF]
    for lo, hi in batch_bounds(n, cuts):
        part = records[lo:hi]
        end = records[hi][2] if hi < n else (POS_INF if after_last is None else after_last)
        data = pl.DataFrame([{"a": k[0], "b": k[1], "i": lo + j}
                             for j, (k, _, _) in enumerate(part)], infer_schema_length=None) \
            if part else pl.DataFrame()
        ends_here = [end] + (ends if hi == n else [])
        for number, wm_end in enumerate(ends_here):
            rows = part if number == 0 else []
            out = op.process(Batch(
                data=data if number == 0 else pl.DataFrame(),
                ts=np.array([r[1] for r in rows], dtype=np.int64),
                wm=np.array([r[2] for r in rows], dtype=np.int64),
                seq=np.arange(lo, lo + len(rows), dtype=np.int64), wm_end=wm_end))[MAIN]
            assert all(out.wm >= passed), "a record behind a watermark passed on before it"
            if len(out):
                seen.extend(zip(out.data.get_column("i").to_list(), out.ts.tolist(),
                                np.maximum(out.wm, passed).tolist(), strict=True))
            assert out.wm_end >= passed
            passed = out.wm_end
    assert passed == POS_INF
    return seen


@settings(max_examples=200, deadline=None)
@given(streams(), st.integers(0, 80), st.sampled_from(["last", "earliest", "latest"]))
def test_what_follows_sees_the_same_for_every_batch_cut(stream, beyond, strategy):
    """Cut anywhere, and with the end of input merged into the last batch or not, a step
    after the operator sees the same records with the same watermark before each."""
    records, cuts, window, ttl = stream
    last_wm = records[-1][2] if records else NEG_INF
    after_last = max(last_wm, -10) + beyond  # the watermark after the last record
    whole = downstream_view(strategy, records, [], None, window, ttl)
    assert downstream_view(strategy, records, cuts, after_last, window, ttl) == whole
    assert downstream_view(strategy, records, range(len(records) + 1), after_last, window,
                           ttl) == whole
