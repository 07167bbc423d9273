"""SEMANTICS §1: timestamps outside the valid range go to errors, and no arithmetic on
event time overflows -- not in the watermark, the late step, windows or dedup."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import polars as pl
import pytest
from pydantic import ValidationError

from surestream.model.batch import POS_INF, Batch
from surestream.model.steps import (
    KeyedDedupStep,
    LateDataStep,
    WatermarkStep,
    WindowStep,
)
from surestream.semantics.late import LateDataOperator
from surestream.semantics.operator import MAIN
from surestream.testing import run_steps

INT64_MAX, INT64_MIN = 2**63 - 1, -(2**63)
LIMIT = 10**15  # the largest duration / |timestamp bound| a spec may give


def epoch_ms(*args: int) -> int:
    since = dt.datetime(*args, tzinfo=dt.UTC) - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return since // dt.timedelta(milliseconds=1)


def late_pipeline(**watermark) -> list:
    return [WatermarkStep(timestamp_column="ts", max_out_of_orderness_ms=1000, **watermark),
            LateDataStep(output_tag="late")]


def iso(ms: int) -> str:
    return (dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=ms)).isoformat()


BASE = 1_700_000_000_000
#: a poison value, and how the other records write their timestamps (one type per column)
POISONS = [(INT64_MAX, int), (INT64_MIN, int), (1e300, float), (-1e300, float),
           (float("inf"), float), ("9999-12-31T00:00:00Z", iso), ("1e300", iso)]


@pytest.mark.parametrize(("poison", "write"), POISONS)
@pytest.mark.parametrize("batch_size", [1, 3, 100])
def test_an_absurd_timestamp_goes_to_errors_and_event_time_goes_on(poison, write, batch_size):
    records = [{"id": 0, "ts": write(BASE + 10_000)}, {"id": 1, "ts": poison},
               {"id": 2, "ts": write(BASE + 10_500)}, {"id": 3, "ts": write(BASE + 9_500)},
               {"id": 4, "ts": write(BASE + 12_000)}]
    out = run_steps(records, late_pipeline(), batch_size=batch_size)
    # before: int64 max moved W to the end of time and every later record was late
    assert [r["id"] for r in out["main"]] == [0, 2, 3, 4]
    assert out["late"] == []
    (error,) = out["errors"]
    assert json.loads(error["raw"])["id"] == 1
    assert error["error_type"] == "timestamp_out_of_range"
    assert error["operator"] == "watermark"
    message = error["error_message"]
    assert message.startswith("timestamp 'ts' = ")
    assert "1900-01-01T00:00:00.000Z .. 2500-12-31T23:59:59.999Z" in message
    assert "min_timestamp / max_timestamp" in message


def test_timestamps_before_1970_are_events_like_any_other():
    records = [{"id": 0, "ts": epoch_ms(1969, 7, 20)}, {"id": 1, "ts": epoch_ms(1900, 1, 1)},
               {"id": 2, "ts": epoch_ms(1955, 11, 5, 6)}, {"id": 3, "ts": epoch_ms(1899, 12, 31)}]
    out = run_steps(records, late_pipeline())
    assert [r["id"] for r in out["main"]] == [0]
    assert [r["id"] for r in out["late"]] == [1, 2]  # behind W, with a true lateness
    assert [r["lateness_ms"] for r in out["late"]] == [
        epoch_ms(1969, 7, 20) - 1001 - epoch_ms(1900, 1, 1),
        epoch_ms(1969, 7, 20) - 1001 - epoch_ms(1955, 11, 5, 6)]
    assert [json.loads(e["raw"])["id"] for e in out["errors"]] == [3]


def test_the_valid_range_is_a_watermark_step_option():
    steps = late_pipeline(min_timestamp="2020-01-01T00:00:00Z", max_timestamp=epoch_ms(2030, 1, 1))
    records = [{"id": 0, "ts": epoch_ms(2019, 12, 31)}, {"id": 1, "ts": epoch_ms(2025, 1, 1)},
               {"id": 2, "ts": epoch_ms(2030, 1, 1)}, {"id": 3, "ts": epoch_ms(2030, 1, 1) + 1}]
    out = run_steps(records, steps)
    assert [r["id"] for r in out["main"]] == [1, 2]
    assert [json.loads(e["raw"])["id"] for e in out["errors"]] == [0, 3]
    assert "2020-01-01T00:00:00.000Z .. 2030-01-01T00:00:00.000Z" in \
        out["errors"][0]["error_message"]


@pytest.mark.parametrize(("field", "value", "problem"), [
    ("max_timestamp", INT64_MAX, "limit that keeps time arithmetic exact"),
    ("min_timestamp", "2020-01-01T00:00:00", "has no zone"),
    ("max_timestamp", "not a time", "is not an ISO-8601 timestamp"),
])
def test_a_bad_range_is_refused_at_validation(field, value, problem):
    with pytest.raises(ValidationError, match=problem):
        WatermarkStep(timestamp_column="ts", **{field: value})
    with pytest.raises(ValidationError, match="is after max_timestamp"):
        WatermarkStep(timestamp_column="ts", min_timestamp=10, max_timestamp=9)


@pytest.mark.parametrize("build", [
    lambda: WatermarkStep(timestamp_column="ts", max_out_of_orderness_ms=INT64_MAX),
    lambda: KeyedDedupStep(key_fields=["k"], time_window_ms=2**62),
    lambda: KeyedDedupStep(key_fields=["k"], time_window_ms=10, state_ttl_ms=LIMIT + 1),
    lambda: WindowStep(kind="tumbling", size_ms=2**63 - 1, aggregations="n:count"),
    lambda: WindowStep(kind="tumbling", size_ms=1000, offset_ms=-(2**62),
                       aggregations="n:count"),
    lambda: WindowStep(kind="session", gap_ms=LIMIT + 1, aggregations="n:count"),
    lambda: WindowStep(kind="tumbling", size_ms=1000, allowed_lateness_ms=INT64_MAX,
                       aggregations="n:count"),
])
def test_durations_that_could_overflow_event_time_are_refused(build):
    with pytest.raises(ValidationError, match=str(LIMIT)):
        build()


def test_lateness_never_wraps_negative():
    """A late record behind a watermark of +infinity (a record released at the end of
    input) before 1970: W - ts does not fit in int64; it saturates."""
    op = LateDataOperator(LateDataStep(output_tag="late"), "p")
    late = op.process(Batch(data=pl.DataFrame({"id": [0, 1]}), ts=np.array([-5, 10]),
                            wm=np.array([POS_INF, POS_INF]), seq=np.array([0, 1]),
                            wm_end=POS_INF))["late"]
    assert late.data.get_column("lateness_ms").to_list() == [POS_INF, POS_INF - 10]


EARLIEST, LATEST = epoch_ms(1900, 1, 1), epoch_ms(2501, 1, 1) - 1


@pytest.mark.parametrize("window", [
    WindowStep(name="w", kind="tumbling", size_ms=LIMIT, offset_ms=-LIMIT,
               allowed_lateness_ms=LIMIT, aggregations="n:count"),
    WindowStep(name="w", kind="sliding", size_ms=LIMIT, slide_ms=LIMIT // 1000,
               offset_ms=LIMIT, aggregations="n:count"),
    WindowStep(name="w", kind="session", gap_ms=LIMIT, allowed_lateness_ms=LIMIT,
               aggregations="n:count"),
], ids=["tumbling", "sliding", "session"])
def test_windows_of_the_largest_sizes_at_the_ends_of_the_range_stay_exact(window):
    records = [{"id": 0, "ts": EARLIEST}, {"id": 1, "ts": LATEST}]
    steps = [WatermarkStep(timestamp_column="ts", max_out_of_orderness_ms=LIMIT), window]
    out = run_steps(records, steps)
    assert out["late_window"] == [] and out["errors"] == []
    rows = out["main"]
    assert rows
    for row in rows:
        assert row["window_start"] < row["window_end"]
        assert row["window_end"] - row["window_start"] in (LIMIT, LATEST + LIMIT - EARLIEST)
    for ts in (EARLIEST, LATEST):  # every record is counted in a window that contains it
        assert any(r["window_start"] <= ts < r["window_end"] for r in rows)
    if window.kind == "sliding":
        assert sum(r["n"] for r in rows) == 2 * 1000


@pytest.mark.parametrize("strategy", ["first", "last"])
def test_dedup_of_the_largest_window_and_ttl_at_the_end_of_the_range(strategy):
    records = [{"k": "a", "id": 0, "ts": LATEST - 5}, {"k": "a", "id": 1, "ts": LATEST},
               {"k": "b", "id": 2, "ts": EARLIEST}, {"k": "b", "id": 3, "ts": EARLIEST + 1}]
    steps = [WatermarkStep(timestamp_column="ts", max_out_of_orderness_ms=LIMIT),
             KeyedDedupStep(key_fields=["k"], time_window_ms=LIMIT, state_ttl_ms=LIMIT,
                            strategy=strategy)]
    out = run_steps(records, steps)
    assert sorted(r["id"] for r in out[MAIN]) == ([0, 2] if strategy == "first" else [1, 3])
