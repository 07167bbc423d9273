"""Properties over whole pipelines (hypothesis): the promises hold for any input.

- conservation: every input record ends in exactly one of main, late, errors, duplicates;
- outputs do not depend on the batch size;
- keyed dedup never keeps two records of one key inside one window;
- the watermark never decreases.
"""

from __future__ import annotations

from collections import defaultdict

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from surestream.model.steps import KeyedDedupStep, LateDataStep, WatermarkStep, WindowStep
from surestream.testing import run_steps

WINDOW = 1_000

good = st.fixed_dictionaries({
    "key": st.sampled_from(["a", "b", "c", "d"]),
    "ts": st.integers(0, 20_000),
    "v": st.integers(-100, 100).map(float),
})
bad = st.sampled_from([{"key": "a", "v": 1.0}, {"key": "b", "ts": "later", "v": 2.0},
                       {"key": "c", "ts": None, "v": 3.0}])
records_st = st.lists(st.one_of(good, good, good, bad), min_size=1, max_size=120)
delay_st = st.integers(0, 3_000)
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def with_ids(records):
    return [{**r, "id": i} for i, r in enumerate(records)]


def clean_steps(delay):
    return [WatermarkStep(timestamp_column="ts", max_out_of_orderness_ms=delay),
            LateDataStep(output_tag="late"),
            KeyedDedupStep(key_fields=["key"], time_window_ms=WINDOW, state_ttl_ms=4 * WINDOW,
                           duplicates_output_tag="dups")]


@SETTINGS
@given(records_st, delay_st)
def test_conservation_every_record_ends_in_exactly_one_place(records, delay):
    recs = with_ids(records)
    out = run_steps(recs, clean_steps(delay), batch_size=7)
    places = defaultdict(list)
    for tag in ("main", "late", "dups"):
        for r in out[tag]:
            places[r["id"]].append(tag)
    import json
    for e in out["errors"]:
        places[json.loads(e["raw"])["id"]].append("errors")
    assert sorted(places) == [r["id"] for r in recs]
    assert all(len(p) == 1 for p in places.values()), places


@SETTINGS
@given(records_st, delay_st, st.integers(1, 40))
def test_outputs_do_not_depend_on_the_batch_size(records, delay, batch_size):
    recs = with_ids(records)
    steps = clean_steps(delay) + [WindowStep(
        name="w", key_fields=["key"], kind="tumbling", size_ms=2_000, allowed_lateness_ms=500,
        aggregations={"n": "count()", "s": "sum(v)", "first_v": "first(v)",
                      "last_v": "last(v)"})]
    whole = run_steps(recs, steps, batch_size=1000)
    cut = run_steps(recs, steps, batch_size=batch_size)
    assert cut == whole


@SETTINGS
@given(records_st, delay_st)
def test_dedup_never_keeps_two_records_of_one_key_inside_a_window(records, delay):
    out = run_steps(with_ids(records), clean_steps(delay), batch_size=5)
    last_kept: dict[str, int] = {}
    for r in out["main"]:  # arrival order
        t0 = last_kept.get(r["key"])
        assert t0 is None or r["ts"] >= t0 + WINDOW, (r, t0)
        last_kept[r["key"]] = r["ts"]


@SETTINGS
@given(records_st, delay_st)
def test_late_records_carry_a_watermark_that_never_decreases(records, delay):
    out = run_steps(with_ids(records), clean_steps(delay), batch_size=3)
    marks = [r["watermark_ms"] for r in out["late"]]
    assert marks == sorted(marks)
    assert all(r["original_timestamp"] <= r["watermark_ms"] for r in out["late"])
