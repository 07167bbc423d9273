"""Issue 7: a user aggregate function that raises costs its record, not the run (SEMANTICS §5,
§6; docs/concepts.md "A value that does not fit costs its record").

Before, an ``AggregateFunction`` whose ``add`` raised on one record stopped the pipeline on
every run, forever. Now:

- ``add`` raises: the record goes to errors (the window, the aggregation, the function and
  the exception) and joins no window -- the built-in aggregations of the step do not count
  it either -- and every accumulator is as it was before the call, even when the function
  changed it in place before raising;
- ``merge`` raises (a record that would merge sessions): the record goes to errors, the
  sessions stay as they were;
- ``result`` raises: that firing goes to errors with its window, key and revision; the run
  and the other firings go on, and the window's next firing (if any) replaces it.

Results do not depend on the batch size or on where a checkpoint was taken.
"""

from __future__ import annotations

import json
import pickle
from itertools import pairwise
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from surestream.model.batch import NEG_INF, POS_INF, Batch, concat
from surestream.model.steps import WatermarkStep, WindowStep
from surestream.semantics.operator import ERRORS, MAIN
from surestream.semantics.windows import build_window_operator
from surestream.testing import run_steps


# -- user functions --------------------------------------------------------------------------
class Values:
    """Keeps every value; ``add`` appends *before* it checks, so a failing call has already
    changed the accumulator in place -- which must not show."""

    def create(self) -> list:
        return []

    def add(self, acc: list, record: dict) -> list:
        acc.append(record["v"])
        if record["v"] < 0:
            raise ValueError(f"negative value {record['v']}")
        return acc

    def merge(self, a: list, b: list) -> list:
        return a + b

    def result(self, acc: list) -> list:
        return list(acc)


class AtMostThree(Values):
    """Fails on a window's fourth value: whether a record fails depends on the window."""

    def add(self, acc: list, record: dict) -> list:
        acc.append(record["v"])
        if len(acc) > 3:
            raise OverflowError("a window holds at most three values")
        return acc


class NoBigMerges(Values):
    def merge(self, a: list, b: list) -> list:
        a.extend(b)
        if len(a) > 2:
            raise RuntimeError("sessions too big to merge")
        return a


class UnluckyResult(Values):
    def result(self, acc: list) -> list:
        if 13 in acc:
            raise ZeroDivisionError("13 in the window")
        return list(acc)


def window_steps(function: Any, delay: int = 0, **window: Any) -> list:
    window.setdefault("kind", "tumbling")
    if window["kind"] == "tumbling":
        window.setdefault("size_ms", 10)
    return [WatermarkStep(timestamp_column="ts", max_out_of_orderness_ms=delay),
            WindowStep(name="w", key_fields=["k"],
                       aggregations={"vals": function, "n": "count()"}, **window)]


def results(out: dict) -> list[tuple]:
    return [(r["k"], r["window_start"], r["revision"], r["vals"], r["n"]) for r in out["main"]]


def errors(out: dict) -> list[tuple]:
    return [(json.loads(e["raw"]).get("id"), e["error_type"]) for e in out["errors"]]


BATCH_SIZES = [1, 2, 3, 100]


# -- add ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("batch_size", BATCH_SIZES)
def test_a_record_add_raises_on_goes_to_errors_and_joins_no_window(batch_size):
    records = [{"id": 0, "k": "a", "ts": 1, "v": 1}, {"id": 1, "k": "a", "ts": 2, "v": -5},
               {"id": 2, "k": "a", "ts": 3, "v": 2}, {"id": 3, "k": "b", "ts": 4, "v": -1},
               {"id": 4, "k": "a", "ts": 30, "v": 7}]
    out = run_steps(records, window_steps(Values()), batch_size=batch_size)
    # -5 is in no accumulator (it was appended before the raise) and count() skips it too;
    # key b's only record failed: no window for b at all
    assert results(out) == [("a", 0, 0, [1, 2], 2), ("a", 30, 0, [7], 1)]
    assert errors(out) == [(1, "ValueError"), (3, "ValueError")]
    error = out["errors"][0]
    assert error["operator"] == "w"
    assert error["error_message"] == ("window 'w': aggregation 'vals' (Values.add) raised "
                                      "ValueError: negative value -5; the record is added "
                                      "to no window")
    assert "raise ValueError" in error["traceback"]
    assert out["late_window"] == []


@pytest.mark.parametrize("batch_size", BATCH_SIZES)
def test_a_failure_that_depends_on_the_window_state(batch_size):
    records = [{"id": i, "k": "a", "ts": i, "v": i} for i in range(6)]
    out = run_steps(records, window_steps(AtMostThree()), batch_size=batch_size)
    assert results(out) == [("a", 0, 0, [0, 1, 2], 3)]
    assert errors(out) == [(3, "OverflowError"), (4, "OverflowError"), (5, "OverflowError")]


@pytest.mark.parametrize("batch_size", BATCH_SIZES)
def test_a_sliding_record_failing_in_one_of_its_windows_joins_none(batch_size):
    """Windows [0,20) and [10,30): id 3 (ts 12) is the fourth value of [0,20) but only the
    first of [10,30). It joins neither, and neither counts it."""
    records = [{"id": i, "k": "a", "ts": t, "v": i} for i, t in enumerate([1, 2, 3, 12, 25])]
    out = run_steps(records, window_steps(AtMostThree(), kind="sliding", size_ms=20,
                                          slide_ms=10), batch_size=batch_size)
    assert results(out) == [("a", -10, 0, [0, 1, 2], 3), ("a", 0, 0, [0, 1, 2], 3),
                            ("a", 10, 0, [4], 1), ("a", 20, 0, [4], 1)]
    assert errors(out) == [(3, "OverflowError")]


@pytest.mark.parametrize("batch_size", BATCH_SIZES)
def test_a_late_but_allowed_record_that_fails_does_not_refire(batch_size):
    records = [{"id": 0, "k": "a", "ts": 1, "v": 1}, {"id": 1, "k": "a", "ts": 15, "v": 2},
               {"id": 2, "k": "a", "ts": 5, "v": -3},  # late but allowed: fails
               {"id": 3, "k": "a", "ts": 6, "v": 4}]  # late but allowed: re-fires
    out = run_steps(records, window_steps(Values(), allowed_lateness_ms=100),
                    batch_size=batch_size)
    assert results(out) == [("a", 0, 0, [1], 1), ("a", 0, 1, [1, 4], 2),
                            ("a", 10, 0, [2], 1)]
    assert errors(out) == [(2, "ValueError")]
    assert out["late_window"] == []


@pytest.mark.parametrize("batch_size", BATCH_SIZES)
def test_sessions_a_failing_add_and_a_failing_merge_change_nothing(batch_size):
    records = [
        {"id": 0, "k": "a", "ts": 0, "v": 1},
        {"id": 1, "k": "a", "ts": 3, "v": -1},   # add raises inside session [0, 10)
        {"id": 2, "k": "a", "ts": 50, "v": -2},  # add raises on a new session: none opens
        {"id": 3, "k": "a", "ts": 20, "v": 2},
        {"id": 4, "k": "a", "ts": 22, "v": 3},   # session [20, 32) holds [2, 3]
        {"id": 5, "k": "a", "ts": 10, "v": 5},   # would merge [0,10) + [20,32): merge raises
        {"id": 6, "k": "a", "ts": 8, "v": 6}]    # joins [0, 10) -> [0, 18): no merge
    steps = window_steps(NoBigMerges(), delay=100, kind="session", gap_ms=10)
    out = run_steps(records, steps, batch_size=batch_size)
    assert [(r["window_start"], r["window_end"], r["vals"], r["n"]) for r in out["main"]] \
        == [(0, 18, [1, 6], 2), (20, 32, [2, 3], 2)]
    assert errors(out) == [(1, "ValueError"), (2, "ValueError"), (5, "RuntimeError")]
    assert "(NoBigMerges.merge) raised RuntimeError" in out["errors"][2]["error_message"]


def test_create_raising_costs_the_records_of_new_windows():
    class NoCreate(Values):
        def create(self) -> list:
            raise KeyError("no accumulator today")

    records = [{"id": 0, "k": "a", "ts": 1, "v": 1}, {"id": 1, "k": "b", "ts": 2, "v": 2}]
    out = run_steps(records, window_steps(NoCreate()))
    assert out["main"] == []
    assert errors(out) == [(0, "KeyError"), (1, "KeyError")]
    assert "(NoCreate.create) raised KeyError" in out["errors"][0]["error_message"]


# -- result ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("batch_size", BATCH_SIZES)
def test_a_firing_whose_result_raises_goes_to_errors_and_the_next_replaces_it(batch_size):
    records = [{"id": 0, "k": "a", "ts": 1, "v": 13}, {"id": 1, "k": "b", "ts": 2, "v": 1},
               {"id": 2, "k": "a", "ts": 15, "v": 2},
               {"id": 3, "k": "a", "ts": 3, "v": 4}]  # late but allowed: revision 1
    steps = window_steps(UnluckyResult(), allowed_lateness_ms=100)
    out = run_steps(records, steps, batch_size=batch_size)
    # a's window [0, 10) fails twice (13 stays in it); b's and a's [10, 20) are emitted
    assert results(out) == [("b", 0, 0, [1], 1), ("a", 10, 0, [2], 1)]
    failed = [(e["error_type"], json.loads(e["raw"])) for e in out["errors"]]
    assert failed == [
        ("ZeroDivisionError", {"k": "a", "window_start": 0, "window_end": 10, "revision": 0,
                               "vals": None, "n": 1}),
        ("ZeroDivisionError", {"k": "a", "window_start": 0, "window_end": 10, "revision": 1,
                               "vals": None, "n": 2})]
    assert out["errors"][0]["error_message"] == (
        "window 'w': aggregation 'vals' (UnluckyResult.result) raised ZeroDivisionError: 13 "
        "in the window; the firing of window [0, 10) revision 0 for key {'k': 'a'} is not "
        "emitted (a later firing of the window, if any, replaces it)")


class NotTwo(Values):
    def result(self, acc: list) -> list:
        if len(acc) == 2:
            raise ValueError("two values")
        return list(acc)


def test_a_failed_session_firing_keeps_what_it_supersedes_for_the_next():
    records = [{"id": 0, "k": "a", "ts": 0, "v": 1},
               {"id": 1, "k": "a", "ts": 30, "v": 2},  # [0, 10) fires: revision 0
               {"id": 2, "k": "a", "ts": 9, "v": 3},   # [0, 19) fires at once: result fails
               {"id": 3, "k": "a", "ts": 12, "v": 4}]  # [0, 22) fires at once: revision 2
    steps = window_steps(NotTwo(), delay=5, kind="session", gap_ms=10,
                         allowed_lateness_ms=100)
    out = run_steps(records, steps)
    main = [(r["window_start"], r["window_end"], r["revision"], r["vals"], r["supersedes"])
            for r in out["main"]]
    # the sink saw [0, 10) revision 0; the failed revision 1 could not retract it, so
    # revision 2 does (and names revision 1 too, which the sink never saw: harmless)
    assert main == [(0, 10, 0, [1], []), (0, 22, 2, [1, 3, 4], [[0, 10, 0], [0, 19, 1]]),
                    (30, 40, 0, [2], [])]
    (error,) = out["errors"]
    assert json.loads(error["raw"]) == {"k": "a", "window_start": 0, "window_end": 19,
                                        "revision": 1, "vals": None, "n": 2,
                                        "supersedes": [[0, 10, 0]]}


# -- batch cuts, checkpoints, and the rule itself (properties) --------------------------------
class Picky:
    """Fails on a negative value when its window holds an odd number of values, after
    appending it; its result, (count, total), must match count() and sum(v)."""

    def create(self) -> list:
        return []

    def add(self, acc: list, record: dict) -> list:
        acc.append(record["v"])
        if record["v"] < 0 and len(acc) % 2 == 0:
            raise ValueError("odd")
        return acc

    def merge(self, a: list, b: list) -> list:
        return a + b

    def result(self, acc: list) -> list:
        return [len(acc), sum(acc)]


def picky_fails(acc: list, v: int) -> bool:
    return v < 0 and (len(acc) + 1) % 2 == 0


SCHEMA = {"k": pl.String, "ts": pl.Int64, "v": pl.Int64}
AGGS = {"picky": Picky(), "n": "count()", "total": "sum(v)"}


def watermarks(ts: list[int], d: int) -> tuple[list[int], int]:
    w, top, before = NEG_INF, NEG_INF, []
    for t in ts:
        before.append(w)
        top = max(top, t)
        w = max(w, top - d - 1)
    return before, w


TEXT_SCHEMA = {**SCHEMA, "v": pl.String}


def batches(rows: list[dict], before: list[int], final: int, cuts: list[int],
            schema: dict = SCHEMA) -> list[Batch]:
    """The records as batches cut at ``cuts``, then the end of input."""
    frame = pl.DataFrame(rows, schema=schema, orient="row")
    ts, wm = frame["ts"].to_numpy(), np.array(before, dtype=np.int64)
    seq = np.arange(len(rows), dtype=np.int64)
    out = []
    for a, b in pairwise([0, *sorted(cuts), len(rows)]):
        out.append(Batch(data=frame.slice(a, b - a), ts=ts[a:b], wm=wm[a:b], seq=seq[a:b],
                         wm_end=before[b] if b < len(rows) else final))
    return [*out, Batch.empty(POS_INF)]


def seqs(b: Batch | None) -> list[tuple[int, int]]:
    return [] if b is None else list(zip(b.seq.tolist(), b.wm.tolist(), strict=True))


def outputs(step: WindowStep, parts: list[Batch], stop: int | None = None) -> dict:
    """Every output over ``parts``; with ``stop``, a checkpoint (through pickle) after that
    many batches and a new operator from there."""
    op = build_window_operator(step, "p")
    outs = []
    for i, b in enumerate(parts):
        if i == stop:
            state = pickle.loads(pickle.dumps(op.snapshot()))
            op = build_window_operator(step, "p")
            op.restore(state)
        outs.append(op.process(b))
    return {tag: concat([o.get(tag) for o in outs]) for tag in (MAIN, "late_window", ERRORS)}


def as_rows(b: Batch | None) -> list[tuple]:
    if b is None or not len(b):
        return []
    return [(r, s, w) for r, s, w in zip(b.data.to_dicts(), b.seq.tolist(), b.wm.tolist(),
                                         strict=True)]


def expected_failures(rows: list[dict], before: list[int], *, size: int, slide: int,
                      lateness: int) -> list[int]:
    """The rule, record by record: a record is tried into each of its windows that is not
    late (cleanup > W before it); it fails if Picky fails in any; only then it counts."""
    accs: dict[tuple, list] = {}
    failed = []
    for i, r in enumerate(rows):
        starts = []
        start = r["ts"] - r["ts"] % slide
        while start > r["ts"] - size:
            if start + size - 1 + lateness > before[i]:
                starts.append(start)
            start -= slide
        if any(picky_fails(accs.get((r["k"], s), []), r["v"]) for s in starts):
            failed.append(i)
            continue
        for s in starts:
            accs.setdefault((r["k"], s), []).append(r["v"])
    return failed


stream = st.lists(st.tuples(st.sampled_from(["a", "b"]), st.integers(-30, 6),
                            st.integers(-3, 5)), min_size=1, max_size=50)
aligned_configs = st.sampled_from([
    {"kind": "tumbling", "size_ms": 10},
    {"kind": "tumbling", "size_ms": 7, "allowed_lateness_ms": 12},
    {"kind": "sliding", "size_ms": 12, "slide_ms": 4, "allowed_lateness_ms": 5},
    {"kind": "sliding", "size_ms": 9, "slide_ms": 3}])
all_configs = st.one_of(aligned_configs, st.sampled_from([
    {"kind": "session", "gap_ms": 6}, {"kind": "session", "gap_ms": 4,
                                         "allowed_lateness_ms": 20}]))


def make_rows(spec: list[tuple]) -> list[dict]:
    return [{"k": k, "ts": 3 * i + off, "v": v} for i, (k, off, v) in enumerate(spec)]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=stream, config=aligned_configs, d=st.integers(0, 10), data=st.data())
def test_aligned_windows_follow_the_rule_record_by_record(spec, config, d, data):
    """Which records fail is what the rule says; the others give exactly the results of a
    window over the input without the failed ones; the user function agrees with count()
    and sum(v) in every firing (nothing of a failed call stayed in its accumulator)."""
    rows = make_rows(spec)
    before, final = watermarks([r["ts"] for r in rows], d)
    cuts = data.draw(st.lists(st.integers(0, len(rows)), max_size=6))
    step = WindowStep(name="w", key_fields=["k"], aggregations=AGGS, **config)
    out = outputs(step, batches(rows, before, final, cuts))

    failed = expected_failures(rows, before, size=config["size_ms"],
                               slide=config.get("slide_ms", config["size_ms"]),
                               lateness=config.get("allowed_lateness_ms", 0))
    got = [] if out[ERRORS] is None else out[ERRORS].seq.tolist()
    assert got == failed
    assert all(e["error_type"] == "ValueError" for e in as_dicts(out[ERRORS]))

    # the reference: the built-ins alone, the failed records made values sum() refuses
    # (a record refused for its value is skipped the same way: added to no window, not late)
    builtins = WindowStep(name="w", key_fields=["k"],
                          aggregations={"n": "count()", "total": "sum(v)"}, **config)
    text = [{**r, "v": "n/a" if i in failed else str(r["v"])} for i, r in enumerate(rows)]
    reference = outputs(builtins, batches(text, before, final, cuts, schema=TEXT_SCHEMA))
    main = as_rows(out[MAIN])
    assert [({k: v for k, v in r.items() if k != "picky"}, s, w) for r, s, w in main] == \
        as_rows(reference[MAIN])  # (sum over text is a float: 3 == 3.0)
    assert all(r["picky"] == [r["n"], r["total"] or 0] for r, _, _ in main)
    assert seqs(out["late_window"]) == seqs(reference["late_window"])


def as_dicts(b: Batch | None) -> list[dict]:
    return [] if b is None or not len(b) else b.data.to_dicts()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=stream, config=all_configs, d=st.integers(0, 10), data=st.data())
def test_any_cut_and_any_checkpoint_give_the_same_outputs(spec, config, d, data):
    rows = make_rows(spec)
    before, final = watermarks([r["ts"] for r in rows], d)
    step = WindowStep(name="w", key_fields=["k"], aggregations=AGGS, **config)
    whole = outputs(step, batches(rows, before, final, []))
    parts = batches(rows, before, final, data.draw(st.lists(st.integers(0, len(rows)),
                                                            max_size=8)))
    stop = data.draw(st.integers(0, len(parts)))
    cut = outputs(step, parts, stop=stop)
    for tag in (MAIN, "late_window", ERRORS):
        assert as_rows(cut[tag]) == as_rows(whole[tag]), tag
    # every firing: the user function saw exactly what count() and sum(v) saw
    assert all(r["picky"] == [r["n"], r["total"] or 0] for r in as_dicts(whole[MAIN]))
    # every record is in a window, late, or in errors -- never two of them, never none
    errors_at = set() if whole[ERRORS] is None else set(whole[ERRORS].seq.tolist())
    late_at = set() if whole["late_window"] is None else set(whole["late_window"].seq.tolist())
    assert not errors_at & late_at
