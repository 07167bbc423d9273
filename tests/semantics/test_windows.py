"""Window operators against SEMANTICS §5: hand-computed cases, a record-at-a-time oracle of
Flink's WindowOperator, batch-cut independence and checkpoint/restore."""

from __future__ import annotations

import pickle
import statistics
from itertools import pairwise
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from surestream.model.batch import NEG_INF, POS_INF, Batch, concat
from surestream.model.steps import WindowStep
from surestream.semantics.operator import MAIN
from surestream.semantics.windows import (
    build_window_operator,
    sliding_assignment,
    tumbling_starts,
)

AGGS = {"count": "count()", "sum": "sum(v)", "min": "min(v)", "max": "max(v)",
        "first": "first(v)", "last": "last(v)"}
SCHEMA = {"k": pl.String, "ts": pl.Int64, "v": pl.Float64}


# -- helpers -------------------------------------------------------------------------------------
def punctuated(ts: list[int], d: int) -> tuple[list[int], int]:
    """W before each record and after the last, W = max(W, max_ts - d - 1) per record."""
    w, top, before = NEG_INF, NEG_INF, []
    for t in ts:
        before.append(w)
        top = max(top, t)
        w = max(w, top - d - 1)
    return before, w


def cut(rows: list[dict], before: list[int], final: int, cuts: list[int] = ()) -> list[Batch]:
    """The logical sequence as batches cut at ``cuts`` (repeats make empty batches), then the
    end of input (an empty batch with ``wm_end = POS_INF``)."""
    frame = pl.DataFrame(rows, schema=SCHEMA, orient="row")
    ts, wm = frame["ts"].to_numpy(), np.array(before, dtype=np.int64)
    n = len(rows)
    out = []
    for a, b in pairwise([0, *sorted(cuts), n]):
        end = before[b] if b < n else final
        out.append(Batch(data=frame.slice(a, b - a), ts=ts[a:b], wm=wm[a:b],
                         seq=np.arange(a, b, dtype=np.int64), wm_end=end))
    out.append(Batch.empty(POS_INF))
    return out


def run(op: Any, batches: list[Batch], late_tag: str = "late_window") -> tuple[Batch, Batch]:
    outs = [op.process(b) for b in batches]
    return concat([o[MAIN] for o in outs]), concat([o.get(late_tag) for o in outs])


def records(spec: list[tuple]) -> list[dict]:
    return [{"k": k, "ts": t, "v": v} for k, t, v in spec]


def window(kind: str = "tumbling", aggs: dict | None = None, **kw: Any) -> WindowStep:
    return WindowStep(name="win", key_fields=kw.pop("key_fields", ["k"]), kind=kind,
                      aggregations=aggs or AGGS, **kw)


def operate(step: WindowStep, spec: list[tuple], d: int = 0, cuts: list[int] = ()
            ) -> tuple[Batch, Batch]:
    rows = records(spec)
    before, final = punctuated([r["ts"] for r in rows], d)
    return run(build_window_operator(step, "pipe"), cut(rows, before, final, cuts))


def signature(main: Batch, late: Batch) -> tuple:
    """Everything an output carries, for exact comparisons."""
    return (main.data.to_dicts(), main.ts.tolist(), main.wm.tolist(), main.seq.tolist(),
            late.data.to_dicts(), late.seq.tolist(), late.wm.tolist())


class Median:
    """A user aggregate (AggregateFunction protocol) keeping every value."""

    def create(self) -> list:
        return []

    def add(self, acc: list, record: dict) -> list:
        if record["v"] is not None:
            acc.append(record["v"])
        return acc

    def merge(self, a: list, b: list) -> list:
        return a + b

    def result(self, acc: list) -> float | None:
        return float(statistics.median(acc)) if acc else None


class Collect(Median):
    """Values in accumulation order, to show the merge order."""

    def result(self, acc: list) -> list:
        return list(acc)


# -- assignment ----------------------------------------------------------------------------------
def test_tumbling_starts_floor_negative_and_offset():
    ts = np.array([-1, 0, 9_999, 10_000, -10_000, -10_001])
    assert tumbling_starts(ts, 10_000).tolist() == [-10_000, 0, 0, 10_000, -10_000, -20_000]
    assert tumbling_starts(np.array([0, 2_999, 3_000]), 10_000, 3_000).tolist() == \
        [-7_000, -7_000, 3_000]


def test_sliding_newest_first_with_negative_starts():
    a = sliding_assignment(np.array([-3, 0]), size=10, slide=5)
    assert a.rows.tolist() == [0, 0, 1, 1]
    assert a.starts.tolist() == [-5, -10, 0, -5]
    assert a.order.tolist() == [0, 1, 0, 1]
    # offset 1 s, 6 s / 2 s: the three windows of ts=0 (flink case s03, e1)
    b = sliding_assignment(np.array([0]), size=6_000, slide=2_000, offset=1_000)
    assert b.starts.tolist() == [-1_000, -3_000, -5_000]


def test_sliding_size_not_multiple_of_slide():
    a = sliding_assignment(np.array([0, 2]), size=5, slide=3)
    # ts=0 is in [0,5) and [-3,2); ts=2 only in [0,5) ([-3,2) ends before it)
    assert list(zip(a.rows.tolist(), a.starts.tolist(), strict=True)) == [(0, 0), (0, -3),
                                                                          (1, 0)]


# -- tumbling -------------------------------------------------------------------------------------
def test_tumbling_fires_when_watermark_crosses_with_emission_metadata():
    step = window(size_ms=10)
    main, late = operate(step, [("a", 1, 1.0), ("b", 5, 2.0), ("a", 12, 3.0), ("b", 3, 4.0)])
    assert main.data.to_dicts() == [
        {"k": "a", "window_start": 0, "window_end": 10, "revision": 0, "count": 1, "sum": 1.0,
         "min": 1.0, "max": 1.0, "first": 1.0, "last": 1.0},
        {"k": "b", "window_start": 0, "window_end": 10, "revision": 0, "count": 1, "sum": 2.0,
         "min": 2.0, "max": 2.0, "first": 2.0, "last": 2.0},
        {"k": "a", "window_start": 10, "window_end": 20, "revision": 0, "count": 1, "sum": 3.0,
         "min": 3.0, "max": 3.0, "first": 3.0, "last": 3.0},
    ]
    # W before record 2 is 4; the advance to 11 after it fires [0,10): wm 4, seq 2.
    # End of input fires [10,20) from W=11 after the last record (seq 3).
    assert main.ts.tolist() == [9, 9, 19]
    assert main.wm.tolist() == [4, 4, 11]
    assert main.seq.tolist() == [2, 2, 3]
    assert late.data.to_dicts() == [
        {"k": "b", "ts": 3, "v": 4.0, "watermark_ms": 11, "lateness_ms": 8,
         "original_timestamp": 3, "pipeline": "pipe", "operator": "win"}]
    assert late.seq.tolist() == [3] and late.ts.tolist() == [3] and late.wm.tolist() == [11]


def test_late_but_allowed_refires_with_revisions_then_cleanup():
    step = window(size_ms=10, allowed_lateness_ms=5)
    spec = [("k", 2, 1.0), ("k", 10, 2.0), ("k", 3, 4.0), ("k", 14, 8.0), ("k", 5, 16.0),
            ("j", 1, 5.0), ("k", 15, 1.0), ("k", 6, 32.0)]
    main, late = operate(step, spec)
    got = [(r["k"], r["window_start"], r["revision"], r["count"], r["sum"], r["first"])
           for r in main.data.to_dicts()]
    assert got == [
        ("k", 0, 0, 1, 1.0, 1.0),    # W 1 -> 9 after ts=10
        ("k", 0, 1, 2, 5.0, 1.0),    # ts=3 at W=9: max_ts 9 <= W < cleanup 14
        ("k", 0, 2, 3, 21.0, 1.0),   # ts=5 at W=13
        ("j", 0, 0, 1, 5.0, 5.0),    # first record arrives late-but-allowed: fires, revision 0
        ("k", 10, 0, 3, 11.0, 2.0),  # end of input
    ]
    assert main.wm.tolist() == [1, 9, 13, 13, 14]
    assert main.seq.tolist() == [1, 2, 4, 5, 7]
    # ts=15 moves W to 14 = cleanup of [0,10): ts=6 is then late
    assert [(r["ts"], r["watermark_ms"], r["lateness_ms"]) for r in late.data.to_dicts()] == \
        [(6, 14, 8)]


def test_sliding_record_counts_in_its_newer_window_only():
    step = window("sliding", size_ms=10, slide_ms=5)
    main, late = operate(step, [("k", 1, 1.0), ("k", 12, 2.0), ("k", 8, 4.0), ("k", 3, 8.0)])
    got = [(r["window_start"], r["window_end"], r["count"], r["sum"])
           for r in main.data.to_dicts()]
    assert got == [(-5, 5, 1, 1.0), (0, 10, 1, 1.0), (5, 15, 2, 6.0), (10, 20, 1, 2.0)]
    assert main.seq.tolist() == [1, 1, 3, 3]
    assert late.data["ts"].to_list() == [3]  # late for both its windows


def test_sliding_allowed_late_fires_newest_window_first():
    step = window("sliding", size_ms=10, slide_ms=5, allowed_lateness_ms=100)
    main, _ = operate(step, [("k", 6, 1.0), ("k", 40, 2.0), ("k", 7, 4.0)])
    rows = main.data.to_dicts()
    immediate = [(r["window_start"], r["revision"], r["count"]) for r in rows[2:4]]
    assert immediate == [(5, 1, 2), (0, 1, 2)]  # Flink adds ts=7 to [5,15) then [0,10)
    assert [r["window_start"] for r in rows[:2]] == [0, 5]  # watermark order: max_ts asc


def test_null_keys_and_key_order():
    step = window(size_ms=10)
    main, _ = operate(step, [("b", 1, 1.0), (None, 2, 2.0), ("a", 3, 3.0), (None, 4, 4.0)])
    assert [(r["k"], r["count"], r["sum"]) for r in main.data.to_dicts()] == \
        [(None, 2, 6.0), ("a", 1, 3.0), ("b", 1, 1.0)]


def test_global_window_without_key_fields():
    step = window(size_ms=10, key_fields=[])
    main, _ = operate(step, [("b", 1, 1.0), (None, 2, 2.0), ("a", 13, 3.0)])
    assert main.data.to_dicts()[0] == {"window_start": 0, "window_end": 10, "revision": 0,
                                       "count": 2, "sum": 3.0, "min": 1.0, "max": 2.0,
                                       "first": 1.0, "last": 2.0}
    assert main.data.columns[:3] == ["window_start", "window_end", "revision"]


def test_vwap_null_when_weights_sum_to_zero():
    step = window(size_ms=10, aggs={"vwap": "vwap(v, w)", "n": "count()"})
    frame = pl.DataFrame({"k": ["a", "a", "b", "b", "c"], "v": [10.0, 20.0, 5.0, 7.0, 1.0],
                          "w": [1.0, 3.0, 2.0, -2.0, None]})
    op = build_window_operator(step, "p")
    b = Batch(data=frame, ts=np.arange(5, dtype=np.int64), wm=np.full(5, NEG_INF),
              seq=np.arange(5, dtype=np.int64), wm_end=NEG_INF)
    main, _ = run(op, [b, Batch.empty(POS_INF)])
    assert main.data.select("k", "vwap", "n").rows() == [("a", 17.5, 2), ("b", None, 2),
                                                        ("c", None, 1)]


def test_user_aggregate_on_tumbling():
    step = window(size_ms=10, aggs={"median": Median(), "n": "count()"})
    main, _ = operate(step, [("a", 1, 3.0), ("a", 2, None), ("a", 3, 1.0), ("a", 4, 2.0)])
    assert main.data.select("median", "n").rows() == [(2.0, 4)]


def test_empty_batch_moves_the_watermark_and_fires():
    op = build_window_operator(window(size_ms=10), "p")
    b = Batch(data=pl.DataFrame(records([("a", 1, 1.0)]), schema=SCHEMA), ts=np.array([1]),
              wm=np.array([NEG_INF]), seq=np.array([7]), wm_end=0)
    assert len(op.process(b)[MAIN]) == 0
    out = op.process(Batch.empty(9))[MAIN]
    assert out.data["count"].to_list() == [1]
    assert out.wm.tolist() == [0] and out.seq.tolist() == [7] and out.wm_end == 9
    empty = op.process(Batch.empty(POS_INF))[MAIN]
    assert len(empty) == 0 and empty.wm_end == POS_INF
    assert empty.data.columns == ["k", "window_start", "window_end", "revision", *AGGS]


def test_records_without_event_time_are_refused():
    op = build_window_operator(window(size_ms=10), "p")
    with pytest.raises(ValueError, match="watermark step"):
        op.process(Batch.from_rows(records([("a", 1, 1.0)])))


def test_factory_builds_the_kind_asked_for_and_checks_names():
    # records 4 ms apart: tumbling windows of 5 ms keep them apart, a 5 ms session gap joins
    spec = [("a", 1, 1.0), ("a", 5, 2.0)]
    tumbling, _ = operate(window(size_ms=5), spec)
    assert [(r["window_start"], r["window_end"], r["count"])
            for r in tumbling.data.to_dicts()] == [(0, 5, 1), (5, 10, 1)]
    session, _ = operate(window("session", gap_ms=5), spec)
    assert [(r["window_start"], r["window_end"], r["count"])
            for r in session.data.to_dicts()] == [(1, 10, 2)]
    with pytest.raises(ValueError, match="supersedes"):
        build_window_operator(window("session", gap_ms=5, aggs={"supersedes": "count()"}), "p")
    with pytest.raises(ValueError, match="window_start"):
        build_window_operator(window(size_ms=5, key_fields=["window_start"]), "p")


# -- sessions -------------------------------------------------------------------------------------
def test_session_merges_supersedes_and_user_aggregate_merge():
    step = window("session", gap_ms=10, allowed_lateness_ms=100,
                  aggs={"n": "count()", "sum": "sum(v)", "median": Median(), "vals": Collect()})
    spec = [("a", 0, 1.0), ("a", 30, 2.0), ("a", 20, 3.0), ("a", 10, 4.0), ("a", 50, 5.0),
            ("a", 5, 6.0)]
    main, late = operate(step, spec)
    got = [(r["window_start"], r["window_end"], r["revision"], r["n"], r["median"], r["vals"],
            r["supersedes"]) for r in main.data.to_dicts()]
    assert got == [
        (0, 10, 0, 1, 1.0, [1.0], []),
        # ts=20 joins [30,40) (touching); ts=10 bridges the fired [0,10) and [20,40): the new
        # window waits for the watermark, then supersedes the fired one
        (0, 40, 1, 4, 2.5, [1.0, 2.0, 3.0, 4.0], [[0, 10, 0]]),
        # ts=5 falls inside the fired [0,40): same window, fires again at once
        (0, 40, 2, 5, 3.0, [1.0, 2.0, 3.0, 4.0, 6.0], []),
        (50, 60, 0, 1, 5.0, [5.0], []),
    ]
    assert main.seq.tolist() == [1, 4, 5, 5]
    assert len(late) == 0


def test_session_late_new_window_and_cleanup():
    step = window("session", gap_ms=10)
    main, late = operate(step, [("a", 0, 1.0), ("a", 100, 2.0), ("a", 5, 3.0), ("b", 95, 4.0)])
    assert [(r["k"], r["window_start"], r["window_end"]) for r in main.data.to_dicts()] == \
        [("a", 0, 10), ("b", 95, 105), ("a", 100, 110)]
    assert late.data["ts"].to_list() == [5]


# -- a record-at-a-time oracle for tumbling/sliding ---------------------------------------
def oracle(rows: list[dict], before: list[int], final: int, *, size: int, slide: int,
           offset: int, lateness: int) -> tuple[list[tuple], list[int]]:
    """Flink's WindowOperator + EventTimeTrigger written plainly: what the vectorized
    operator must reproduce, row for row, with each firing's (wm, seq)."""
    windows: dict[tuple, dict] = {}
    out: list[tuple] = []
    late: list[int] = []
    state = {"w": NEG_INF, "seq": -1}

    def fire(key: Any, start: int, w: dict, wm: int, seq: int) -> None:
        vals = [(r["ts"], i, r["v"]) for i, r in w["recs"] if r["v"] is not None]
        total = 0.0
        for _, _, v in vals:
            total += v
        row = {"k": key, "window_start": start, "window_end": start + size,
               "revision": w["fires"], "count": len(w["recs"]),
               "sum": total if vals else None,
               "min": min(v for *_, v in vals) if vals else None,
               "max": max(v for *_, v in vals) if vals else None,
               "first": min(vals)[2] if vals else None, "last": max(vals)[2] if vals else None}
        w["fires"] += 1
        out.append((row, wm, seq))

    def advance(new: int) -> None:
        old = state["w"]
        if new <= old:
            return
        state["w"] = new
        due = sorted((s + size - 1, k is not None, k or "", k, s)
                     for (k, s), w in windows.items() if w["timer"] and s + size - 1 <= new)
        for *_, k, s in due:
            windows[(k, s)]["timer"] = False
            fire(k, s, windows[(k, s)], old, state["seq"])
        for ks in [ks for ks in windows if ks[1] + size - 1 + lateness <= new]:
            del windows[ks]

    for i, r in enumerate(rows):
        advance(before[i])
        wm = state["w"]
        state["seq"] = i
        start = r["ts"] - (r["ts"] - offset) % slide
        added = False
        while start > r["ts"] - size:
            if start + size - 1 + lateness > wm:
                added = True
                w = windows.setdefault((r["k"], start), {"recs": [], "fires": 0, "timer": False})
                w["recs"].append((i, r))
                if start + size - 1 <= wm:
                    fire(r["k"], start, w, wm, i)
                else:
                    w["timer"] = True
            start -= slide
        if not added:
            late.append(i)
    advance(final)
    advance(POS_INF)
    return out, late


values = st.one_of(st.none(), st.integers(-50, 50).map(lambda x: x / 4),
                   st.floats(-1e12, 1e12, allow_nan=False, allow_infinity=False))
stream = st.lists(st.tuples(st.sampled_from(["a", "b", "c", None]), st.integers(-40, 8),
                            values), min_size=1, max_size=60)


def logical(spec: list[tuple]) -> list[tuple]:
    """Records whose event time mostly advances (3 ms per record) with disorder and jumps."""
    return [(k, 3 * i + off - 30, v) for i, (k, off, v) in enumerate(spec)]


configs = st.sampled_from([
    {"kind": "tumbling", "size_ms": 10},
    {"kind": "tumbling", "size_ms": 7, "offset_ms": 3, "allowed_lateness_ms": 12},
    {"kind": "sliding", "size_ms": 12, "slide_ms": 4, "allowed_lateness_ms": 5},
    {"kind": "sliding", "size_ms": 10, "slide_ms": 3, "offset_ms": -1},
    {"kind": "sliding", "size_ms": 9, "slide_ms": 9, "allowed_lateness_ms": 30},
])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=stream, config=configs, d=st.integers(0, 12), data=st.data())
def test_aligned_matches_flink_oracle_for_any_cut(spec, config, d, data):
    spec = logical(spec)
    rows = records(spec)
    before, final = punctuated([r["ts"] for r in rows], d)
    cuts = data.draw(st.lists(st.integers(0, len(rows)), max_size=6))
    main, late = run(build_window_operator(window(**config), "p"),
                     cut(rows, before, final, cuts))
    expected, expected_late = oracle(
        rows, before, final, size=config["size_ms"],
        slide=config.get("slide_ms", config["size_ms"]), offset=config.get("offset_ms", 0),
        lateness=config.get("allowed_lateness_ms", 0))
    assert main.data.to_dicts() == [row for row, _, _ in expected]
    assert main.wm.tolist() == [wm for _, wm, _ in expected]
    assert main.seq.tolist() == [seq for *_, seq in expected]
    assert main.ts.tolist() == [row["window_end"] - 1 for row, _, _ in expected]
    assert late.seq.tolist() == expected_late
    assert np.all(np.diff(main.wm) >= 0)


# -- determinism: batch cuts and checkpoints ----------------------------------------------
all_configs = st.sampled_from([
    {"kind": "tumbling", "size_ms": 10, "allowed_lateness_ms": 8},
    {"kind": "sliding", "size_ms": 12, "slide_ms": 5, "allowed_lateness_ms": 6},
    {"kind": "session", "gap_ms": 6},
    {"kind": "session", "gap_ms": 4, "allowed_lateness_ms": 20},
])
RICH_AGGS = {**AGGS, "avg": "avg(v)", "median": Median(), "vals": Collect()}


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=stream, config=all_configs, d=st.integers(0, 12), data=st.data())
def test_any_cut_and_any_restore_point_gives_the_same_output(spec, config, d, data):
    rows = records(logical(spec))
    before, final = punctuated([r["ts"] for r in rows], d)
    step = window(aggs=RICH_AGGS, **config)
    reference = signature(*run(build_window_operator(step, "p"), cut(rows, before, final)))

    batches = cut(rows, before, final, data.draw(st.lists(st.integers(0, len(rows)),
                                                          max_size=8)))
    assert signature(*run(build_window_operator(step, "p"), batches)) == reference

    # stop after any batch, checkpoint through pickle, resume in a new operator
    stop = data.draw(st.integers(0, len(batches)))
    first = build_window_operator(step, "p")
    outs = [first.process(b) for b in batches[:stop]]
    state = pickle.loads(pickle.dumps(first.snapshot()))
    second = build_window_operator(step, "p")
    second.restore(state)
    outs += [second.process(b) for b in batches[stop:]]
    main = concat([o[MAIN] for o in outs])
    late = concat([o.get("late_window") for o in outs])
    assert signature(main, late) == reference
    if main is not None and len(main):
        assert np.all(np.diff(main.wm) >= 0)


def test_large_sliding_batches_are_cut_internally(monkeypatch):
    from surestream.semantics.windows import aligned

    step = window("sliding", size_ms=12, slide_ms=4, allowed_lateness_ms=5,
                  aggs={**AGGS, "vals": Collect()})
    spec = [(k, 3 * i + (i * 7) % 11 - 5, float(i)) for i, k in enumerate("abcab" * 12)]
    whole = signature(*operate(step, spec, d=3))
    monkeypatch.setattr(aligned, "_MAX_PAIRS", 7)  # two records per piece
    assert signature(*operate(step, spec, d=3)) == whole


def test_snapshot_is_a_copy():
    step = window(size_ms=10, aggs={"vals": Collect(), "sum": "sum(v)"})
    rows = records([("a", 1, 1.0), ("a", 2, 2.0), ("a", 3, 3.0)])
    before, final = punctuated([r["ts"] for r in rows], 0)
    batches = cut(rows, before, final, [1])
    op = build_window_operator(step, "p")
    op.process(batches[0])
    state = op.snapshot()
    frozen = pickle.dumps(state)
    for b in batches[1:]:
        op.process(b)
    assert pickle.dumps(state) == frozen


# -- resource limits (issue 7, item 12) ---------------------------------------------------------
def test_a_sliding_window_with_too_many_windows_per_record_is_refused_at_validation():
    """1 day sliding by 1 ms validated, then died of MemoryError on three records."""
    from pydantic import ValidationError

    from surestream.model.spec import PipelineSpec

    doc = {"pipeline": "p", "source": {"type": "memory", "records": []},
           "steps": [{"type": "watermark", "timestamp_column": "ts"},
                     {"type": "window", "name": "w", "kind": "sliding", "size_ms": 86_400_000,
                      "slide_ms": 1, "aggregations": "n:count"}],
           "outputs": {"main": {"type": "memory"}, "late_window": {"type": "memory"}}}
    with pytest.raises(ValidationError) as info:
        PipelineSpec.model_validate(doc)
    message = str(info.value)
    assert "size_ms 86400000 / slide_ms 1 = 86,400,000 windows per record, above the limit " \
           "of 1,000 (max_windows_per_record)" in message
    assert "steps.1" in message  # where in the spec


def test_the_windows_per_record_limit_is_configurable():
    with pytest.raises(ValueError, match="= 1,001 windows per record, above the limit of 1,000"):
        WindowStep(kind="sliding", size_ms=1_001, slide_ms=1, aggregations="n:count")
    with pytest.raises(ValueError, match="= 3 windows per record, above the limit of 2 "):
        WindowStep(kind="sliding", size_ms=5, slide_ms=2, aggregations="n:count",
                   max_windows_per_record=2)
    step = WindowStep(kind="sliding", size_ms=86_400_000, slide_ms=1_000, aggregations="n:count",
                      max_windows_per_record=86_400)
    assert step.max_windows_per_record == 86_400


def test_a_sliding_window_at_the_limit_runs():
    from surestream.model.steps import WatermarkStep
    from surestream.testing import run_steps

    steps = [WatermarkStep(timestamp_column="ts"),
             WindowStep(name="w", kind="sliding", size_ms=1_000, slide_ms=1,
                        aggregations="n:count")]
    out = run_steps([{"ts": 5_000}, {"ts": 5_000}, {"ts": 7_000}], steps)
    assert len(out["main"]) == 2_000 and sum(r["n"] for r in out["main"]) == 3_000
