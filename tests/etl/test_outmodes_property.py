"""Property: the aggregate step's update rows are the same for batch sizes 1, 3 and 1000,
and equal a simple record-by-record reference written here (running count, exact integer
sum, float sum folded left to right, min, max, first/last by event time, a state timeout
judged against the watermark before each record)."""

from __future__ import annotations

import tempfile

from hypothesis import given, settings
from hypothesis import strategies as st

from surestream.model.spec import PipelineSpec
from surestream.runners.local.runner import run

LAG = 100  # max_out_of_orderness_ms
NEG_INF = -(2**63)


def reference(records: list[dict], timeout: int | None) -> list[dict]:
    """One row per record: its key's result after it (SEMANTICS §2 watermark: the largest
    timestamp so far - LAG - 1, judged before the record)."""
    state: dict = {}
    wm, out = NEG_INF, []
    for r in records:
        k, ts = r["k"], r["ts"]
        s = state.get(k)
        if s is not None and timeout is not None and s["last_ts"] + timeout < wm:
            s = None  # timed out before this record: a fresh result
        if s is None:
            s = state[k] = {"n": 0, "q": 0, "q_n": 0, "v": 0.0, "v_n": 0, "lo": None,
                            "hi": None, "first": None, "last": None, "last_ts": ts}
        s["n"] += 1
        s["last_ts"] = max(s["last_ts"], ts)
        if r["q"] is not None:
            s["q"] += r["q"]
            s["q_n"] += 1
        v = r["v"]
        if v is not None:
            s["v"] += v
            s["v_n"] += 1
            s["lo"] = v if s["lo"] is None else min(s["lo"], v)
            s["hi"] = v if s["hi"] is None else max(s["hi"], v)
            if s["first"] is None or ts < s["first"][0]:
                s["first"] = (ts, v)
            if s["last"] is None or ts >= s["last"][0]:
                s["last"] = (ts, v)
        out.append({"k": k, "n": s["n"], "q": s["q"] if s["q_n"] else None,
                    "v": s["v"] if s["v_n"] else None,
                    "avg": s["v"] / s["v_n"] if s["v_n"] else None,
                    "lo": s["lo"], "hi": s["hi"],
                    "f": s["first"][1] if s["first"] else None,
                    "l": s["last"][1] if s["last"] else None, "version": s["n"]})
        wm = max(wm, ts - LAG - 1)
    return out


record = st.fixed_dictionaries({
    "k": st.sampled_from(["a", "b", "c", None]),
    "ts": st.integers(0, 3000),
    "q": st.none() | st.integers(-10**12, 10**12),
    "v": st.none() | st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
})
first = st.fixed_dictionaries({"k": st.just("a"), "ts": st.integers(0, 3000),
                               "q": st.integers(-5, 5), "v": st.floats(-1e3, 1e3)})


@settings(max_examples=12, deadline=None)
@given(head=first, tail=st.lists(record, max_size=40),
       timeout=st.none() | st.sampled_from([50, 400]))
def test_update_rows_equal_the_reference_at_every_batch_size(head, tail, timeout):
    records = [head, *tail]
    step = {"type": "aggregate", "name": "agg", "key_fields": ["k"],
            "aggregations": {"n": "count()", "q": "sum(q)", "v": "sum(v)", "avg": "avg(v)",
                             "lo": "min(v)", "hi": "max(v)", "f": "first(v)",
                             "l": "last(v)"}, "state_timeout_ms": timeout}
    expected = reference(records, timeout)
    for batch_size in (1, 3, 1000):
        with tempfile.TemporaryDirectory() as d:
            spec = PipelineSpec(
                pipeline="prop", source={"type": "memory", "records": records},
                steps=[{"type": "watermark", "timestamp_column": "ts",
                        "max_out_of_orderness_ms": LAG}, step],
                outputs={"main": {"type": "memory"}}, checkpoint={"dir": d},
                runtime={"batch_size": batch_size, "interleave_records": 7})
            got = run(spec).rows("main")
        assert got == expected, batch_size


def window_reference(records: list[dict], size: int, slide: int, lateness: int
                     ) -> tuple[list[tuple], list[int]]:
    """(key, window_start, count, sum, version) per record and window it joins, newest
    window first; and the timestamps of the records that join no window (late): a window
    takes a record while its end - 1 + lateness is after the watermark (SEMANTICS §5)."""
    sums: dict = {}
    wm, out, late = NEG_INF, [], []
    for r in records:
        ts, joined = r["ts"], False
        start = ts - ts % slide
        while start > ts - size:
            if start + size - 1 + lateness > wm:
                n, s = sums.get((r["k"], start), (0, 0))
                sums[(r["k"], start)] = (n + 1, s + r["q"])
                out.append((r["k"], start, n + 1, s + r["q"], n + 1))
                joined = True
            start -= slide
        if not joined:
            late.append(ts)
        wm = max(wm, ts - LAG - 1)
    return out, late


window_record = st.fixed_dictionaries({"k": st.sampled_from(["a", "b"]),
                                       "ts": st.integers(0, 3000),
                                       "q": st.integers(-100, 100)})


@settings(max_examples=10, deadline=None)
@given(records=st.lists(window_record, min_size=1, max_size=40),
       shape=st.sampled_from([(500, 500, 0), (500, 250, 0), (400, 400, 150)]))
def test_window_update_rows_equal_the_reference_at_every_batch_size(records, shape):
    size, slide, lateness = shape
    window = {"type": "window", "name": "w", "key_fields": ["k"], "size_ms": size,
              "kind": "tumbling" if slide == size else "sliding",
              "aggregations": {"n": "count()", "s": "sum(q)"}, "output_mode": "update",
              "allowed_lateness_ms": lateness, **({} if slide == size else
                                                  {"slide_ms": slide})}
    expected, late = window_reference(records, size, slide, lateness)
    for batch_size in (1, 3, 1000):
        with tempfile.TemporaryDirectory() as d:
            spec = PipelineSpec(
                pipeline="prop", source={"type": "memory", "records": records},
                steps=[{"type": "watermark", "timestamp_column": "ts",
                        "max_out_of_orderness_ms": LAG}, window],
                outputs={"main": {"type": "memory"}, "late_window": {"type": "memory"}},
                checkpoint={"dir": d}, runtime={"batch_size": batch_size})
            result = run(spec)
        got = [(r["k"], r["window_start"], r["n"], r["s"], r["version"])
               for r in result.rows("main")]
        assert got == expected, batch_size
        assert [r["ts"] for r in result.rows("late_window")] == late
