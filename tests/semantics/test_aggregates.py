"""Columnar accumulators: values, null rules, determinism of float folds, merges, state."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from surestream.io.state_codec import round_trip
from surestream.model.aggregations import AggregationSpec, parse_aggregations
from surestream.semantics.aggregates import AggregateSet, BatchInput, Pairs

BUILTINS = {"n": "count()", "nv": "count(v)", "sum": "sum(v)", "avg": "avg(v)",
            "min": "min(v)", "max": "max(v)", "first": "first(v)", "last": "last(v)",
            "vwap": "vwap(v, w)"}


def make(aggs: dict, capacity: int = 8) -> AggregateSet:
    specs = {}
    for name, spec in aggs.items():
        if spec == "count(v)":  # count over a column: the spec form the parser does not take
            specs[name] = AggregationSpec("count", ("v",))
        else:
            specs.update(parse_aggregations({name: spec}))
    out = AggregateSet(specs)
    out.grow(capacity)
    out.reset(np.arange(capacity))
    return out


def batch_input(columns: dict, ts: list[int], seq0: int = 0) -> BatchInput:
    frame = pl.DataFrame(columns)
    n = frame.height
    return BatchInput(frame, np.array(ts, dtype=np.int64), np.arange(seq0, seq0 + n))


def feed(aggs: AggregateSet, inp: BatchInput, slots: list[int]) -> None:
    """Vectorized add, every row to its slot, in row order."""
    slots_arr = np.array(slots, dtype=np.int64)
    gslots, gid = np.unique(slots_arr, return_inverse=True)
    aggs.add(Pairs(np.arange(len(slots)), slots_arr, gid.astype(np.int64), gslots), inp)


def row(aggs: AggregateSet, slot: int) -> dict:
    return dict(zip(aggs.names, aggs.values(slot), strict=True))


def test_builtins_by_hand():
    aggs = make(BUILTINS)
    inp = batch_input({"v": [4.0, None, 1.0, 3.0, 2.0], "w": [1.0, 5.0, 3.0, 0.0, 1.0]},
                      ts=[10, 11, 12, 5, 20])
    feed(aggs, inp, [0, 0, 0, 0, 1])
    assert row(aggs, 0) == {"n": 4, "nv": 3, "sum": 8.0, "avg": 8.0 / 3, "min": 1.0,
                            "max": 4.0, "first": 3.0, "last": 1.0, "vwap": 7.0 / 4}
    assert row(aggs, 1) == {"n": 1, "nv": 1, "sum": 2.0, "avg": 2.0, "min": 2.0, "max": 2.0,
                            "first": 2.0, "last": 2.0, "vwap": 2.0}
    empty = row(aggs, 2)
    assert empty == {"n": 0, "nv": 0, "sum": None, "avg": None, "min": None, "max": None,
                     "first": None, "last": None, "vwap": None}
    series = aggs.results(np.array([0, 2]))
    assert [s.to_list() for s in series][2] == [8.0, None]
    assert series[0].dtype == pl.Int64 and series[2].dtype == pl.Float64


def test_vwap_is_null_when_weights_sum_to_zero():
    aggs = make({"vwap": "vwap(v, w)"})
    feed(aggs, batch_input({"v": [10.0, 20.0, 5.0], "w": [2.0, -2.0, None]}, [1, 2, 3]),
         [0, 0, 1])
    assert aggs.values(0) == [None] and aggs.values(1) == [None]
    assert aggs.results(np.array([0, 1]))[0].to_list() == [None, None]


def test_sum_is_a_sequential_fold_in_arrival_order():
    values = [1e16, 1.0, -1e16, 1.0, 3.5, 1e-3] * 50
    expected = 0.0
    for v in values:
        expected += v
    assert expected != float(np.sum(values))  # pairwise summation would differ
    for cut in (0, 1, 7, 150, 299, 300):
        aggs = make({"sum": "sum(v)"})
        for part, ts0 in ((values[:cut], 0), (values[cut:], cut)):
            if part:
                feed(aggs, batch_input({"v": part}, list(range(ts0, ts0 + len(part)))),
                     [3] * len(part))
        assert aggs.values(3) == [expected]


@settings(max_examples=80, deadline=None)
@given(data=st.data(), n=st.integers(1, 40))
def test_vectorized_add_equals_record_at_a_time(data, n):
    v = data.draw(st.lists(st.one_of(st.none(), st.floats(-1e9, 1e9)), min_size=n, max_size=n))
    w = data.draw(st.lists(st.one_of(st.none(), st.floats(-10, 10)), min_size=n, max_size=n))
    ts = data.draw(st.lists(st.integers(0, 5), min_size=n, max_size=n))
    slots = data.draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    inp = batch_input({"v": pl.Series(v, dtype=pl.Float64), "w": pl.Series(w, dtype=pl.Float64)},
                      ts)
    vectorized, one_by_one = make(BUILTINS), make(BUILTINS)
    feed(vectorized, inp, slots)
    for r, s in enumerate(slots):
        one_by_one.add_one(s, r, inp)
    for s in range(4):
        a, b = row(vectorized, s), row(one_by_one, s)
        assert a.keys() == b.keys()
        for k in a:  # NaN-aware, bit-exact
            assert (a[k] is None and b[k] is None) or np.array_equal(a[k], b[k], equal_nan=True), k


def test_first_last_ties_go_by_arrival_across_batches():
    aggs = make({"first": "first(v)", "last": "last(v)"})
    feed(aggs, batch_input({"v": [1.0, 2.0, 3.0]}, [5, 5, 7]), [0, 0, 0])
    assert aggs.values(0) == [1.0, 3.0]
    feed(aggs, batch_input({"v": [4.0, 5.0, 6.0]}, [5, 7, 7], seq0=3), [0, 0, 0])
    assert aggs.values(0) == [1.0, 6.0]  # ts 5 tie: the earlier stays first; ts 7: later wins


def test_merge_combines_states():
    aggs = make(BUILTINS)
    inp = batch_input({"v": [5.0, 1.0, 7.0, None], "w": [1.0, 1.0, 2.0, 1.0]}, [20, 30, 10, 40])
    feed(aggs, inp, [0, 0, 1, 1])
    aggs.merge(0, 1)
    assert row(aggs, 0) == {"n": 4, "nv": 3, "sum": 13.0, "avg": 13.0 / 3, "min": 1.0,
                            "max": 7.0, "first": 7.0, "last": 1.0, "vwap": 20.0 / 4}


def test_string_columns_keep_their_type():
    aggs = make({"min": "min(s)", "max": "max(s)", "first": "first(s)", "last": "last(s)"})
    feed(aggs, batch_input({"s": ["m", None, "c", "x"]}, [3, 1, 2, 4]), [0, 0, 0, 0])
    assert aggs.values(0) == ["c", "x", "c", "x"]
    assert all(s.dtype == pl.String for s in aggs.results(np.array([0, 1])))
    with pytest.raises(TypeError, match="changed type"):
        feed(aggs, batch_input({"s": [1.0]}, [1]), [0])


def test_null_only_column_adds_nothing():
    aggs = make({"n": "count()", "sum": "sum(v)", "min": "min(v)"})
    feed(aggs, batch_input({"v": [None, None]}, [1, 2]), [0, 0])
    assert aggs.values(0) == [2, None, None]


class SetCollector:
    def create(self) -> set:
        return set()

    def add(self, acc: set, record: dict) -> set:
        acc.add(record["v"])
        return acc

    def merge(self, a: set, b: set) -> set:
        return a | b

    def result(self, acc: set) -> list:
        return sorted(acc)


def test_user_function_create_add_merge_result_and_snapshot_copies():
    aggs = make({"set": SetCollector()})
    feed(aggs, batch_input({"v": [3, 1, 3, 2]}, [1, 2, 3, 4]), [0, 0, 1, 1])
    assert aggs.values(0) == [[1, 3]] and aggs.values(1) == [[2, 3]]
    state = aggs.snapshot(np.array([0, 1]))
    aggs.merge(0, 1)
    assert aggs.values(0) == [[1, 2, 3]]
    assert aggs.results(np.array([0]))[0] == [[1, 2, 3]]
    fresh = make({"set": SetCollector()})
    fresh.restore(round_trip(state), np.array([5, 6]))
    assert fresh.values(5) == [[1, 3]] and fresh.values(6) == [[2, 3]]


def test_snapshot_restore_roundtrip_into_other_slots():
    aggs = make({**BUILTINS, "smin": "min(s)"})
    feed(aggs, batch_input({"v": [2.0, 8.0, None], "w": [1.0, 3.0, 1.0], "s": ["b", "a", "c"]},
                           [4, 2, 9]), [1, 1, 2])
    state = round_trip(aggs.snapshot(np.array([1, 2])))
    fresh = make({**BUILTINS, "smin": "min(s)"})
    fresh.restore(state, np.array([6, 0]))
    assert row(fresh, 6) == row(aggs, 1) and row(fresh, 0) == row(aggs, 2)
    # the restored first/last still compare by (ts, seq) with new records
    feed(fresh, batch_input({"v": [1.0], "w": [1.0], "s": ["z"]}, [1], seq0=10), [6])
    assert row(fresh, 6)["first"] == 1.0 and row(fresh, 6)["last"] == 2.0


# -- sum over integers: an exact integer, never wrapped ------------------------------------------
I64_MAX, I64_MIN = 2**63 - 1, -(2**63)


def int_input(values: list, ts0: int = 0, dtype: pl.DataType = pl.Int64) -> BatchInput:
    return batch_input({"v": pl.Series(values, dtype=dtype)},
                       list(range(ts0, ts0 + len(values))), seq0=ts0)


def test_sum_of_integers_is_an_integer():
    aggs = make({"sum": "sum(v)", "avg": "avg(v)"})
    feed(aggs, int_input([5, None, 7]), [0, 0, 0])
    total, avg = aggs.values(0)
    assert total == 12 and type(total) is int
    assert avg == 6.0 and type(avg) is float  # an average is a float, as in SQL
    series = aggs.results(np.array([0, 1]))[0]
    assert series.dtype == pl.Int64 and series.to_list() == [12, None]


@pytest.mark.parametrize("dtype", [pl.Int8, pl.Int32, pl.UInt16, pl.UInt32])
def test_sum_of_any_integer_type_is_an_int64(dtype):
    aggs = make({"sum": "sum(v)"})
    feed(aggs, int_input([100, 27], dtype=dtype), [0, 0])
    assert aggs.values(0) == [127] and type(aggs.values(0)[0]) is int
    assert aggs.results(np.array([0]))[0].dtype == pl.Int64


def test_sum_of_booleans_counts_the_true_ones():
    aggs = make({"sum": "sum(v)"})
    feed(aggs, batch_input({"v": [True, False, None, True]}, [1, 2, 3, 4]), [0, 0, 0, 0])
    assert aggs.values(0) == [2] and type(aggs.values(0)[0]) is int


def test_sum_of_floats_stays_a_float():
    aggs = make({"sum": "sum(v)"})
    feed(aggs, batch_input({"v": [1.5, 2.5]}, [1, 2]), [0, 0])
    assert aggs.values(0) == [4.0] and type(aggs.values(0)[0]) is float
    assert aggs.results(np.array([0]))[0].dtype == pl.Float64


def test_integer_sums_are_exact_where_a_float_would_round():
    big = 2**53 + 1  # no float64 holds it
    aggs = make({"sum": "sum(v)"})
    feed(aggs, int_input([big, 2, big]), [0, 0, 0])
    assert aggs.values(0) == [2 * big + 2]


def test_a_sum_may_pass_beyond_int64_on_the_way_and_stays_exact():
    values = [I64_MAX, I64_MAX, 5, -I64_MAX, -I64_MAX]  # partial sums reach 2**64
    for cuts in ([], [1], [2], [1, 2, 3, 4]):
        aggs = make({"sum": "sum(v)"})
        for a, b in zip([0, *cuts], [*cuts, len(values)], strict=True):
            feed(aggs, int_input(values[a:b], ts0=a), [0] * (b - a))
        assert aggs.values(0) == [5], cuts
        assert aggs.results(np.array([0]))[0].to_list() == [5]


def test_a_sum_beyond_int64_is_refused_not_wrapped():
    aggs = make({"sum": "sum(v)"})
    feed(aggs, int_input([I64_MAX, 1]), [0, 0])
    with pytest.raises(OverflowError, match=r"sum\(v\) of a window is 9223372036854775808"):
        aggs.values(0)
    with pytest.raises(OverflowError, match="CAST\\(v AS DOUBLE\\)"):
        aggs.results(np.array([0]))
    low = make({"sum": "sum(v)"})
    feed(low, int_input([I64_MIN, -1]), [0, 0])
    with pytest.raises(OverflowError, match="-9223372036854775809"):
        low.results(np.array([0]))


def test_unsigned_values_beyond_int64_sum_exactly():
    aggs = make({"sum": "sum(v)"})
    feed(aggs, int_input([2**64 - 1, 3], dtype=pl.UInt64), [0, 1])
    assert aggs.values(1) == [3]
    with pytest.raises(OverflowError):
        aggs.values(0)  # 2**64 - 1 is beyond int64
    for _ in range(2):
        aggs.add_one(0, 0, int_input([-(2**62)]))
    aggs.add_one(0, 0, int_input([-(2**63)]))  # 2**64 - 1 - 2**63 - 2**63 = -1
    assert aggs.values(0) == [-1]


@settings(max_examples=150, deadline=None)
@given(data=st.data(), n=st.integers(1, 30))
def test_integer_sums_equal_python_sums_however_added(data, n):
    """Vectorized over any cuts, record by record, and merged: always Python's exact sum,
    or a refusal when it is beyond int64 -- never another number."""
    huge = st.integers(I64_MIN, I64_MAX)
    small = st.integers(-1000, 1000)
    values = data.draw(st.lists(st.one_of(st.none(), huge, small), min_size=n, max_size=n))
    slots = data.draw(st.lists(st.integers(0, 2), min_size=n, max_size=n))
    cuts = sorted(data.draw(st.sets(st.integers(1, n), max_size=4)))
    exact = {s: [v for v, t in zip(values, slots, strict=True) if t == s and v is not None]
             for s in range(3)}
    vectorized, one_by_one = make({"sum": "sum(v)"}), make({"sum": "sum(v)"})
    for a, b in zip([0, *cuts], [*cuts, n], strict=True):
        if a < b:
            part = int_input(values[a:b], ts0=a)
            feed(vectorized, part, slots[a:b])
            for r in range(b - a):
                one_by_one.add_one(slots[a + r], r, part)
    for aggs in (vectorized, one_by_one):
        aggs.merge(0, 2)  # slot 0 absorbs slot 2, as merging sessions do
    exact[0] = exact[0] + exact[2]
    for aggs in (vectorized, one_by_one):
        for s in range(2):
            expected = sum(exact[s]) if exact[s] else None
            if expected is not None and not I64_MIN <= expected <= I64_MAX:
                with pytest.raises(OverflowError):
                    aggs.values(s)
            else:
                assert aggs.values(s) == [expected]


def test_integer_sums_survive_a_snapshot_even_beyond_int64():
    aggs = make({"sum": "sum(v)"})
    feed(aggs, int_input([I64_MAX, I64_MAX, 7]), [0, 0, 1])
    fresh = make({"sum": "sum(v)"})
    fresh.restore(round_trip(aggs.snapshot(np.array([0, 1]))), np.array([3, 4]))
    assert fresh.values(4) == [7] and type(fresh.values(4)[0]) is int
    feed(fresh, int_input([-I64_MAX, -I64_MAX + 1], ts0=3), [3, 3])
    assert fresh.values(3) == [1]


def test_an_integer_sum_cannot_turn_into_a_float_sum():
    aggs = make({"sum": "sum(v)"})
    feed(aggs, int_input([1, 2]), [0, 0])
    feed(aggs, batch_input({"v": pl.Series([None], dtype=pl.Float64)}, [3]), [0])  # no value
    with pytest.raises(TypeError, match=r"held integers.*CAST\(v AS DOUBLE\)"):
        feed(aggs, batch_input({"v": [2.5]}, [4]), [0])
    floats = make({"sum": "sum(v)"})
    feed(floats, batch_input({"v": [0.5]}, [1]), [0])
    feed(floats, int_input([2], ts0=2), [0])  # integers join a float sum as floats
    assert floats.values(0) == [2.5]


# -- values kept as they are (issue 7: nothing changes a good value) ---------------------------
def _window(aggs: dict, kind: str = "tumbling"):
    from surestream.model.steps import WatermarkStep, WindowStep

    size = {"gap_ms": 10} if kind == "session" else {"size_ms": 10}
    return [WatermarkStep(timestamp_column="ts"),
            WindowStep(name="w", key_fields=["key"], kind=kind, aggregations=aggs, **size)]


@pytest.mark.parametrize("kind", ["tumbling", "session"])
@pytest.mark.parametrize("batch_size", [1, 2, 1000])
def test_min_max_first_last_keep_integers_and_booleans_exact(kind, batch_size):
    from surestream.testing import run_steps

    big = 2**60 + 1  # not a float64: it would come back as 2**60
    records = [{"key": "a", "ts": 0, "n": big, "b": True},
               {"key": "a", "ts": 1, "n": None, "b": False},
               {"key": "a", "ts": 2, "n": 3, "b": None}]
    out = run_steps(records, _window({"lo": "min(n)", "hi": "max(n)", "f": "first(n)",
                                      "l": "last(n)", "bmin": "min(b)", "bl": "last(b)"},
                                     kind), batch_size=batch_size)
    (row,) = out["main"]
    assert (row["lo"], row["hi"], row["f"], row["l"]) == (3, big, big, 3)
    assert all(type(row[c]) is int for c in ("lo", "hi", "f", "l"))
    assert row["bmin"] is False and row["bl"] is False


def test_an_aggregated_field_no_record_has_gives_nulls_not_a_crash():
    from surestream.testing import run_steps

    out = run_steps([{"key": "a", "ts": 0}, {"key": "a", "ts": 1}],
                    _window({"n": "count()", "s": "sum(v)", "lo": "min(v)", "f": "first(v)",
                             "a": "avg(v)", "w": "vwap(v, v)"}))
    (row,) = out["main"]
    assert row["n"] == 2 and out["errors"] == []
    assert [row[c] for c in ("s", "lo", "f", "a", "w")] == [None] * 5
