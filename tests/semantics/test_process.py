"""Keyed process functions: state, timers, side outputs, errors, checkpoints (SEMANTICS §6).

Expectations are computed by hand from the rules in ``surestream.semantics.process``:
timers fire when the watermark advances past them, in (timestamp, registration) order,
before the next record; their output carries the watermark *before* that advance.
"""

from __future__ import annotations

import pickle

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from surestream.model.batch import NEG_INF, POS_INF, Batch
from surestream.model.steps import ProcessStep
from surestream.semantics.errors import UNDECLARED_SIDE_OUTPUT
from surestream.semantics.operator import ERRORS, MAIN, Operator
from surestream.semantics.process import KeyedProcessFunction, build_process_operator


# -- helpers ----------------------------------------------------------------------------
def make_op(function, *, key_fields=("k",), side_outputs=(), params=None, clock=None):
    step = ProcessStep(name="proc", key_fields=list(key_fields), function=function,
                       side_outputs=list(side_outputs), params=params or {})
    return build_process_operator(step, "pipe", clock=clock)


def make_batch(rows, ts, wm, seq=None, wm_end=None):
    return Batch.from_rows(rows, ts=ts, wm=wm, seq=seq,
                           wm_end=wm[-1] if wm_end is None else wm_end)


def records(b: Batch) -> list[tuple[dict, int | None, int, int]]:
    """Rows with their time and position; null fields dropped (a column exists in a batch
    only if some record there has it, so cuts may differ in which nulls they show)."""
    rows = b.data.to_dicts() if len(b) else []
    ts = [None] * len(b) if b.ts is None else b.ts.tolist()
    return [({k: v for k, v in r.items() if v is not None}, t, w, s)
            for r, t, w, s in zip(rows, ts, b.wm.tolist(), b.seq.tolist(), strict=True)]


def run(op, batches) -> dict[str, list]:
    """Every output of ``op`` over ``batches``, by tag, checking ``wm`` never decreases."""
    out: dict[str, list] = {}
    for b in batches:
        for tag, produced in op.process(b).items():
            out.setdefault(tag, []).extend(records(produced))
            assert produced.wm_end == b.wm_end
    for tag, recs in out.items():
        wms = [w for _, _, w, _ in recs]
        assert wms == sorted(wms), f"wm decreases on {tag}"
    return {tag: recs for tag, recs in out.items() if recs}


def main_rows(outputs) -> list[dict]:
    return [r for r, *_ in outputs.get(MAIN, [])]


# -- state --------------------------------------------------------------------------------
class Totals(KeyedProcessFunction):
    def process_element(self, record, ctx):
        count = (ctx.value_state("count").value() or 0) + 1
        ctx.value_state("count").update(count)
        sides = ctx.map_state("by_side")
        sides.put(record["side"], sides.get(record["side"], 0) + record["qty"])
        ctx.list_state("qtys").add(record["qty"])
        return {"sym": ctx.key[0], "count": count, "buy": sides.get("B", 0),
                "sell": sides.get("S", 0), "qtys": ctx.list_state("qtys").get()}


def test_value_map_and_list_state_per_key():
    rows = [{"k": "A", "side": "B", "qty": 10}, {"k": "B", "side": "S", "qty": 5},
            {"k": "A", "side": "S", "qty": 3}, {"k": "A", "side": "B", "qty": 1}]
    out = make_op(Totals).process(make_batch(rows, ts=[1, 2, 3, 4], wm=[0, 0, 0, 0]))
    assert out[MAIN].data.to_dicts() == [
        {"sym": "A", "count": 1, "buy": 10, "sell": 0, "qtys": [10]},
        {"sym": "B", "count": 1, "buy": 0, "sell": 5, "qtys": [5]},
        {"sym": "A", "count": 2, "buy": 10, "sell": 3, "qtys": [10, 3]},
        {"sym": "A", "count": 3, "buy": 11, "sell": 3, "qtys": [10, 3, 1]},
    ]
    assert out[MAIN].ts.tolist() == [1, 2, 3, 4] and out[MAIN].seq.tolist() == [0, 1, 2, 3]


class StateApi(KeyedProcessFunction):
    def process_element(self, record, ctx):
        v, m, lst = ctx.value_state("v"), ctx.map_state("m"), ctx.list_state("l")
        v.update(record["x"])
        m.put_all({"a": 1, "b": 2})
        m.remove("a")
        lst.update([1, 2])
        lst.add_all([3])
        seen = {"v": v.value(), "m": m.items(), "has_b": m.contains("b"), "l": lst.get()}
        v.update(None)  # clears, as in Flink
        m.clear()
        lst.update([])
        seen.update(v_after=v.value(), m_after=m.items(), l_after=lst.get(),
                    empty=m.is_empty())
        return {"seen": orjson.dumps(seen).decode()}


def test_state_handles_and_clearing_frees_the_key():
    op = make_op(StateApi)
    out = op.process(make_batch([{"k": 1, "x": 7}], ts=[1], wm=[0]))
    assert orjson.loads(out[MAIN].data["seen"][0]) == {
        "v": 7, "m": [["b", 2]], "has_b": True, "l": [1, 2, 3],
        "v_after": None, "m_after": [], "l_after": [], "empty": True}
    assert op.state.key_count() == 0


def test_composite_keys_are_tuples_and_missing_key_columns_are_null():
    keys = []
    op = make_op(lambda r, ctx: keys.append(ctx.key), key_fields=("a", "b"))
    op.process(make_batch([{"a": 1, "b": "x"}, {"a": 2, "b": None}], ts=[1, 2], wm=[0, 0]))
    op.process(make_batch([{"a": 3}], ts=[3], wm=[0]))
    assert keys == [(1, "x"), (2, None), (3, None)]


# -- event-time timers ----------------------------------------------------------------------
class TimerLog(KeyedProcessFunction):
    """Registers a timer at ``fire_at`` and reports records and timers."""

    def process_element(self, record, ctx):
        if record.get("fire_at") is not None:
            ctx.timers.register_event_time_timer(record["fire_at"])
        if record.get("cancel") is not None:
            ctx.timers.delete_event_time_timer(record["cancel"])
        yield {"k": ctx.key[0], "event": f"rec{record['id']}"}

    def on_timer(self, timestamp, ctx):
        assert ctx.timestamp == timestamp and ctx.time_domain == "event_time"
        yield {"k": ctx.key[0], "event": f"timer@{timestamp}", "seen_wm": ctx.watermark}
        if ctx.key[0] == "chain" and timestamp < 14:  # registered from on_timer, <= W
            ctx.timers.register_event_time_timer(timestamp + 2)


def test_timers_fire_in_order_before_later_records_and_at_end_of_input():
    rows = [
        {"id": 0, "k": "a", "fire_at": 150},
        {"id": 1, "k": "b", "fire_at": 150},  # same time as a's: fires after it
        {"id": 2, "k": "c", "fire_at": 140},
        {"id": 3, "k": "a", "fire_at": 300},
        {"id": 4, "k": "b", "fire_at": 170},
    ]
    op = make_op(TimerLog)
    first = make_batch(rows, ts=[100, 110, 120, 200, 205], wm=[NEG_INF, 0, 10, 160, 160],
                       seq=[10, 11, 12, 13, 14], wm_end=165)
    out = run(op, [first, Batch.empty(POS_INF)])
    assert out[MAIN] == [
        ({"k": "a", "event": "rec0"}, 100, NEG_INF, 10),
        ({"k": "b", "event": "rec1"}, 110, 0, 11),
        ({"k": "c", "event": "rec2"}, 120, 10, 12),
        # W advances 10 -> 160 before rec3: three timers, emitted under W = 10
        ({"k": "c", "event": "timer@140", "seen_wm": 160}, 140, 10, 12),
        ({"k": "a", "event": "timer@150", "seen_wm": 160}, 150, 10, 12),
        ({"k": "b", "event": "timer@150", "seen_wm": 160}, 150, 10, 12),
        ({"k": "a", "event": "rec3"}, 200, 160, 13),
        ({"k": "b", "event": "rec4"}, 205, 160, 14),
        # nothing is due at wm_end = 165; end of input fires the rest
        ({"k": "b", "event": "timer@170", "seen_wm": POS_INF}, 170, 165, 14),
        ({"k": "a", "event": "timer@300", "seen_wm": POS_INF}, 300, 165, 14),
    ]
    assert len(op.event_timers) == 0


def test_timer_at_or_before_the_watermark_fires_at_the_next_advance():
    rows = [{"id": 0, "k": "a", "fire_at": 40}, {"id": 1, "k": "b"}, {"id": 2, "k": "c"}]
    out = run(make_op(TimerLog), [make_batch(rows, ts=[100, 101, 102], wm=[50, 50, 51])])
    assert [r["event"] for r in main_rows(out)] == ["rec0", "rec1", "timer@40", "rec2"]


def test_timer_registered_by_on_timer_at_or_before_w_fires_in_the_same_advance():
    rows = [{"id": 0, "k": "chain", "fire_at": 10}, {"id": 1, "k": "x"}]
    out = run(make_op(TimerLog), [make_batch(rows, ts=[5, 30], wm=[0, 20])])
    assert [r["event"] for r in main_rows(out)] == [
        "rec0", "timer@10", "timer@12", "timer@14", "rec1"]


def test_timer_registered_twice_fires_once_and_deleted_timer_never():
    rows = [{"id": 0, "k": "a", "fire_at": 50}, {"id": 1, "k": "a", "fire_at": 50},
            {"id": 2, "k": "b", "fire_at": 60}, {"id": 3, "k": "b", "cancel": 60}]
    out = run(make_op(TimerLog), [make_batch(rows, ts=[1, 2, 3, 4], wm=[0, 0, 0, 0]),
                                  Batch.empty(POS_INF)])
    assert [r["event"] for r in main_rows(out)] == [
        "rec0", "rec1", "rec2", "rec3", "timer@50"]


def test_timer_fired_by_the_end_of_a_batch_is_emitted_in_that_batch():
    op = make_op(TimerLog)
    out = op.process(make_batch([{"id": 0, "k": "a", "fire_at": 20}], ts=[10], wm=[0],
                                wm_end=25))
    assert [r["event"] for r in out[MAIN].data.to_dicts()] == ["rec0", "timer@20"]
    assert out[MAIN].wm.tolist() == [0, 0] and out[MAIN].wm_end == 25


# -- side outputs -------------------------------------------------------------------------
class Splitter(KeyedProcessFunction):
    def process_element(self, record, ctx):
        if record["v"] > 100:
            ctx.output("large", {"id": record["id"]})
        if record["v"] < 0:
            ctx.output("typo", {"id": record["id"]})  # not declared
        return {"id": record["id"]}


def test_side_outputs_and_undeclared_tags():
    op = make_op(Splitter, side_outputs=["large", "audit"])
    rows = [{"k": 1, "id": 1, "v": 5}, {"k": 1, "id": 2, "v": 500}, {"k": 2, "id": 3, "v": -1}]
    out = op.process(make_batch(rows, ts=[1, 2, 3], wm=[0, 1, 2], seq=[7, 8, 9]))
    assert op.output_tags() == {"large", "audit", ERRORS}
    assert out[MAIN].data["id"].to_list() == [1, 2, 3]
    assert out["large"].data.to_dicts() == [{"id": 2}]
    assert (out["large"].ts.tolist(), out["large"].wm.tolist(), out["large"].seq.tolist()) \
        == ([2], [1], [8])
    assert len(out["audit"]) == 0 and out["audit"].wm_end == 2  # declared tags always flow
    (error,) = out[ERRORS].data.to_dicts()
    assert error["error_type"] == UNDECLARED_SIDE_OUTPUT
    assert "'typo'" in error["error_message"] and orjson.loads(error["raw"]) == {"id": 3}
    assert out[ERRORS].seq.tolist() == [9]


# -- processing-time timers -------------------------------------------------------------
class Heartbeat(KeyedProcessFunction):
    def process_element(self, record, ctx):
        now = ctx.timers.current_processing_time()
        ctx.timers.register_processing_time_timer(now + 100)
        yield {"event": f"rec{record['id']}@{now}"}

    def on_timer(self, timestamp, ctx):
        assert ctx.time_domain == "processing_time"
        yield {"event": f"ptimer@{timestamp}"}


def test_processing_time_timers_fire_at_batch_start_when_due():
    now = [1000]
    op = make_op(Heartbeat, clock=lambda: now[0])

    def step(t, rows, wm_end=0):
        now[0] = t
        b = make_batch(rows, ts=[1] * len(rows), wm=[0] * len(rows), wm_end=wm_end) \
            if rows else Batch.empty(wm_end)
        out = op.process(b)
        return [r["event"] for r in out[MAIN].data.to_dicts()] if len(out[MAIN]) else []

    assert step(1000, [{"k": "a", "id": 0}]) == ["rec0@1000"]
    assert step(1050, [{"k": "b", "id": 1}]) == ["rec1@1050"]  # a's timer (1100) not due
    assert step(1120, [{"k": "a", "id": 2}]) == ["ptimer@1100", "rec2@1120"]
    # end of a bounded input fires only what is due (b@1150 is; a@1220 is not)
    assert step(1160, [], wm_end=POS_INF) == ["ptimer@1150"]
    assert len(op.processing_timers) == 1
    assert op.snapshot()["processing_timers"]["timers"][0][0] == 1220


# -- errors in user code --------------------------------------------------------------------
class Fragile(KeyedProcessFunction):
    def process_element(self, record, ctx):
        count = (ctx.value_state("count").value() or 0) + 1
        ctx.value_state("count").update(count)
        ctx.list_state("ids").add(record["id"])
        ctx.map_state("m").put(record["id"], True)
        ctx.timers.register_event_time_timer(record["id"] * 100)
        ctx.output("side", {"id": record["id"]})
        yield {"id": record["id"], "count": count}
        if record["id"] == 2:
            raise ValueError("bad record 2")

    def on_timer(self, timestamp, ctx):
        if timestamp == 300:
            raise RuntimeError("timer trouble")
        yield {"timer": timestamp, "ids": ctx.list_state("ids").get(),
               "keys": ctx.map_state("m").keys()}


def test_user_error_goes_to_errors_and_the_failing_call_has_no_effect():
    op = make_op(Fragile, side_outputs=["side"])
    rows = [{"k": "a", "id": 1}, {"k": "a", "id": 2}, {"k": "a", "id": 3}]
    out = run(op, [make_batch(rows, ts=[10, 20, 30], wm=[0, 0, 0], seq=[1, 2, 3]),
                   Batch.empty(POS_INF)])
    # record 2 failed: its output, side output, state writes and timer are all gone
    assert main_rows(out) == [
        {"id": 1, "count": 1}, {"id": 3, "count": 2},
        {"timer": 100, "ids": [1, 3], "keys": [1, 3]},
    ]
    assert [r for r, *_ in out["side"]] == [{"id": 1}, {"id": 3}]
    element_error, timer_error = out[ERRORS]
    record, ts, wm, seq = element_error
    assert (record["operator"], record["error_type"], record["error_message"]) == \
        ("proc", "ValueError", "bad record 2")
    assert "in process_element" in record["traceback"]
    assert orjson.loads(record["raw"]) == {"k": "a", "id": 2}
    assert (ts, wm, seq) == (20, 0, 2)
    record, ts, wm, seq = timer_error
    assert (record["error_type"], record["error_message"]) == ("RuntimeError", "timer trouble")
    assert orjson.loads(record["raw"]) == {"key": ["a"], "timer_timestamp": 300,
                                           "time_domain": "event_time"}
    assert (ts, wm, seq) == (300, 0, 3)
    assert len(op.event_timers) == 0  # a fired timer stays consumed even if it failed
    assert op.counters == {"errors": 2}


def test_state_name_used_with_two_kinds_is_a_user_error():
    def confused(record, ctx):
        ctx.value_state("x").update(1)
        ctx.list_state("x").add(1)

    out = make_op(confused).process(make_batch([{"k": 1}], ts=[1], wm=[0]))
    (error,) = out[ERRORS].data.to_dicts()
    assert error["error_type"] == "TypeError" and "is a value state" in error["error_message"]


def test_function_forms_and_open_params():
    class WithParams(KeyedProcessFunction):
        def open(self, params):
            self.factor = params["factor"]

        def process_element(self, record, ctx):
            return {"v": record["v"] * self.factor}

    b = make_batch([{"k": 1, "v": 2}], ts=[1], wm=[0])
    assert make_op(WithParams, params={"factor": 3}).process(b)[MAIN].data.to_dicts() == \
        [{"v": 6}]
    op = make_op(f"{__name__}:Totals")  # "module:Class" as written in a YAML spec
    assert isinstance(op, Operator) and op.name == "proc"
    rows = [{"k": "A", "side": "S", "qty": 4}]
    assert op.process(make_batch(rows, ts=[1], wm=[0]))[MAIN].data.to_dicts() == [
        {"sym": "A", "count": 1, "buy": 0, "sell": 4, "qtys": [4]}]
    with pytest.raises(TypeError, match="no process_element"):
        make_op(42)


# -- checkpoints and batch-size independence -------------------------------------------
class Workload(KeyedProcessFunction):
    """Uses every feature, so that equivalence tests cover all of the operator's state."""

    def open(self, params):
        self.window = params["window"]

    def process_element(self, record, ctx):
        if record["v"] < 0:
            ctx.value_state("sum").update(-1000)
            raise ValueError("negative")
        total = (ctx.value_state("sum").value() or 0) + record["v"]
        ctx.value_state("sum").update(total)
        ctx.list_state("seen").add(record["id"])
        ctx.map_state("last").put(record["v"] % 3, record["id"])
        ctx.timers.register_event_time_timer(ctx.timestamp + self.window)
        if record["v"] % 5 == 0:
            ctx.output("fives", {"id": record["id"], "v": record["v"]})
        yield {"k": ctx.key[0], "id": record["id"], "sum": total}

    def on_timer(self, timestamp, ctx):
        seen = ctx.list_state("seen").get()
        last = ",".join(f"{k}:{v}" for k, v in ctx.map_state("last").items())
        ctx.list_state("seen").clear()
        yield {"k": ctx.key[0], "timer": timestamp, "seen": len(seen), "last": last}


D = 5


def scenario(items) -> Batch:
    """Records (key, ts, v) with the bounded-out-of-orderness watermark of SEMANTICS §2."""
    rows, ts, wm = [], [], []
    high = None
    for i, (key, t, v) in enumerate(items):
        rows.append({"k": key, "id": i, "v": v})
        ts.append(t)
        wm.append(NEG_INF if high is None else high - D - 1)
        high = t if high is None else max(high, t)
    return make_batch(rows, ts=ts, wm=wm, seq=[1000 + i for i in range(len(rows))],
                      wm_end=high - D - 1)


def cut(b: Batch, bounds) -> list[Batch]:
    edges = [0, *sorted(set(bounds)), len(b)]
    return [
        Batch(data=b.data[i:j], wm=b.wm[i:j], seq=b.seq[i:j], ts=b.ts[i:j],
              wm_end=int(b.wm[j]) if j < len(b) else b.wm_end)
        for i, j in zip(edges, edges[1:], strict=False)
    ]


def workload_op():
    return make_op(Workload, side_outputs=["fives"], params={"window": 20})


FIXED = scenario([("a", 10, 1), ("b", 12, 5), ("a", 8, 2), ("c", 30, -1), ("a", 31, 10),
                  ("b", 29, 3), ("c", 55, 15), ("a", 54, 4), ("b", 80, 7), ("c", 60, 20),
                  ("a", 81, -3), ("b", 100, 25)])


def test_snapshot_restore_at_every_batch_boundary_gives_identical_output():
    whole = run(workload_op(), [FIXED, Batch.empty(POS_INF)])
    assert whole[ERRORS] and whole["fives"] and any("timer" in r for r in main_rows(whole))
    for k in range(len(FIXED) + 1):
        head, tail = cut(FIXED, [k])  # an empty head or tail still moves the watermark
        first = workload_op()
        got = run(first, [head])
        second = workload_op()
        second.restore(first.snapshot())
        rest = run(second, [tail, Batch.empty(POS_INF)])
        for tag, recs in rest.items():
            got.setdefault(tag, []).extend(recs)
        assert got == whole, f"cut at {k}"


def test_snapshot_is_a_copy_not_a_view():
    op = workload_op()
    op.process(cut(FIXED, [3])[0])
    snap = op.snapshot()
    frozen = pickle.dumps(snap)
    op.process(cut(FIXED, [3])[1])
    assert pickle.dumps(snap) == frozen


events = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 200), st.integers(-1, 30)),
    min_size=1, max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(items=events, data=st.data())
def test_batch_size_independence_and_restore_anywhere(items, data):
    whole_input = scenario(items)
    n = len(whole_input)
    expected = run(workload_op(), [whole_input, Batch.empty(POS_INF)])
    bounds = data.draw(st.lists(st.integers(1, max(1, n - 1)), max_size=6)) if n > 1 else []
    pieces = cut(whole_input, [b for b in bounds if 0 < b < n])
    restore_at = data.draw(st.integers(0, len(pieces)))
    op, got = workload_op(), {}
    for i, piece in enumerate([*pieces, Batch.empty(POS_INF)]):
        if i == restore_at:  # crash here: a fresh operator from the last snapshot
            fresh = workload_op()
            fresh.restore(op.snapshot())
            op = fresh
        for tag, recs in run(op, [piece]).items():
            got.setdefault(tag, []).extend(recs)
    assert got == expected


def test_output_time_arrays_match_the_rules():
    out = workload_op().process(FIXED)
    main = out[MAIN]
    assert np.all(main.wm[1:] >= main.wm[:-1])  # (np.diff would overflow at NEG_INF)
    assert set(main.seq.tolist()) <= set(FIXED.seq.tolist())
