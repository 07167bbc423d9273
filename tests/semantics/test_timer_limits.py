"""Issue 7: process-function timers at the limits of time (SEMANTICS §1, §6).

A timer's timestamp must lie in -10^15 .. 10^15 ms (every valid event time is inside).
Before, a timer beyond int64 max never fired -- not even at the end of input, where W is
int64 max -- and vanished without a word; one at int64 max (or min) fired and stamped its
output with that time, which no later step can compute with. Now registering one outside
the range fails the call: its record goes to errors with the reason, as any failing user
call does (with its state changes undone).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from surestream.model.batch import POS_INF, Batch
from surestream.model.steps import ProcessStep, WatermarkStep, WindowStep
from surestream.semantics.operator import ERRORS, MAIN
from surestream.semantics.process import build_process_operator
from surestream.testing import run_steps

INT64_MAX, INT64_MIN = 2**63 - 1, -(2**63)
LIMIT = 10**15


class TimerAt:
    """Registers, for each record, a timer at the time its ``at`` field names (an offset
    from ``params``; the field only picks which), after counting the record in state."""

    def open(self, params):
        self.times = params["times"]

    def process_element(self, record, ctx):
        seen = ctx.value_state("seen")
        seen.update((seen.value() or 0) + 1)
        at = self.times[record["at"]]
        if at is not None:
            register = (ctx.timers.register_processing_time_timer if record.get("processing")
                        else ctx.timers.register_event_time_timer)
            register(at)
        yield {"id": record["id"], "seen": seen.value()}

    def on_timer(self, timestamp, ctx):
        yield {"fired": timestamp, "key": ctx.key[0]}


def run(times: dict, records: list[dict], **kw):
    steps = [WatermarkStep(timestamp_column="ts"),
             ProcessStep(name="alerts", key_fields=["k"], function=TimerAt,
                         params={"times": times}), *kw.pop("after", [])]
    return run_steps(records, steps, **kw)


def values(rows: list[dict]) -> list[dict]:
    """Rows without their nulls (a column of one record is null in the others)."""
    return [{k: v for k, v in r.items() if v is not None} for r in rows]


OUTSIDE = [INT64_MAX, INT64_MAX + 1, 2**64, INT64_MIN, INT64_MIN - 1, LIMIT + 1, -LIMIT - 1]


@pytest.mark.parametrize("at", OUTSIDE)
@pytest.mark.parametrize("batch_size", [1, 100])
def test_a_timer_outside_the_range_sends_its_record_to_errors(at, batch_size):
    records = [{"id": 0, "k": "a", "ts": 1_000, "at": "ok"},
               {"id": 1, "k": "a", "ts": 2_000, "at": "bad"},
               {"id": 2, "k": "a", "ts": 3_000, "at": "none"}]
    out = run({"ok": 5_000, "bad": at, "none": None}, records, batch_size=batch_size)
    # record 1 failed as a whole: no output, its state change undone (record 2 sees 2);
    # only the good timer fired, and no output carries an impossible time
    assert values(out["main"]) == [{"id": 0, "seen": 1}, {"id": 2, "seen": 2},
                                   {"fired": 5_000, "key": "a"}]
    (error,) = out["errors"]
    assert error["operator"] == "alerts"
    assert error["error_type"] == "TimerOutOfRangeError"
    assert f"event-time timer at {at} ms is outside the valid range" in error["error_message"]
    assert f"{-LIMIT} .. {LIMIT}" in error["error_message"]
    assert "ctx.timers.MAX_TIMESTAMP" in error["error_message"]
    assert json.loads(error["raw"])["id"] == 1


@pytest.mark.parametrize("at", [INT64_MAX, INT64_MAX + 1, INT64_MIN, LIMIT + 1])
def test_a_processing_time_timer_outside_the_range_too(at):
    out = run({"bad": at}, [{"id": 0, "k": "a", "ts": 1_000, "at": "bad", "processing": True}])
    (error,) = out["errors"]
    assert error["error_type"] == "TimerOutOfRangeError"
    assert f"processing-time timer at {at} ms" in error["error_message"]


def test_the_limits_themselves_are_valid_timers():
    from surestream.semantics.timers import TIMER_MAX_MS, TIMER_MIN_MS

    assert (TIMER_MIN_MS, TIMER_MAX_MS) == (-LIMIT, LIMIT)
    records = [{"id": 0, "k": "a", "ts": 1_000, "at": "max"},
               {"id": 1, "k": "b", "ts": 2_000, "at": "min"},
               {"id": 2, "k": "c", "ts": 3_000, "at": "near"}]
    out = run({"max": LIMIT, "min": -LIMIT, "near": LIMIT - 1}, records)
    assert out["errors"] == []
    fired = [(r["key"], r["fired"]) for r in out["main"] if r["fired"] is not None]
    # -10^15 fires at the first watermark; the other two at the end of input, in order
    assert fired == [("b", -LIMIT), ("c", LIMIT - 1), ("a", LIMIT)]


def test_a_timer_at_max_timestamp_fires_at_the_end_of_input_and_not_before():
    """No watermark but the final one reaches 10^15, even with event times at the top of
    the widest valid range."""
    class AtTheEnd:
        def process_element(self, record, ctx):
            ctx.timers.register_event_time_timer(ctx.timers.MAX_TIMESTAMP)

        def on_timer(self, timestamp, ctx):
            yield {"fired": timestamp}

    op = build_process_operator(ProcessStep(name="p", key_fields=["k"], function=AtTheEnd),
                                "pipe")
    ts = np.array([LIMIT - 5, LIMIT], dtype=np.int64)  # max_timestamp may be 10^15
    batch = Batch.from_rows([{"k": "a"}, {"k": "a"}], ts=ts, wm=ts - 1, wm_end=LIMIT - 1)
    assert len(op.process(batch)[MAIN]) == 0
    end = op.process(Batch.empty(POS_INF))
    assert end[MAIN].data.to_dicts() == [{"fired": LIMIT}]
    assert end[MAIN].ts.tolist() == [LIMIT] and ERRORS not in end


def test_output_of_a_timer_at_the_limit_is_usable_downstream():
    """What a timer at MAX_TIMESTAMP emits goes through a window like any record."""
    records = [{"id": 0, "k": "a", "ts": 1_000, "at": "max"}]
    window = WindowStep(name="w", kind="tumbling", size_ms=60_000,
                        aggregations={"n": "count()"})
    out = run({"max": LIMIT}, records, after=[window])
    assert out["errors"] == []
    # the record's own output (ts 1000) and the timer's (ts 10^15), each in its window
    assert [(r["window_start"], r["n"]) for r in out["main"]] == [
        (0, 1), (LIMIT - LIMIT % 60_000, 1)]
