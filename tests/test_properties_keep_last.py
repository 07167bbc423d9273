"""Keep-last deduplication in whole pipelines (hypothesis): the promises hold for any input.

Each property draws the strategy too: ``last``, ``earliest`` and ``latest`` hold records
until the watermark passes their window, through the same operator (only which record of a
window is held differs), so every promise below is one they all make.

- conservation: every input record ends in exactly one of main, late, errors, duplicates;
- composition: a record on time when it reaches keep-last is on time for the late step or
  window after it (keep-last holds the watermark back, SEMANTICS §4), so nothing it
  releases is quarantined or lost to ``late_window``;
- outputs do not depend on the batch size;
- a run stopped after any record and resumed from its checkpoint gives the outputs of an
  uninterrupted run.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from surestream.model.spec import PipelineSpec
from surestream.model.steps import KeyedDedupStep, LateDataStep, WatermarkStep, WindowStep
from surestream.runners.local.checkpoint_store import CheckpointStore
from surestream.runners.local.runner import LocalRunner
from surestream.testing import run_steps

WINDOW = 1_000

good = st.fixed_dictionaries({
    "key": st.sampled_from(["a", "b", "c", "d"]),
    "ts": st.integers(0, 20_000),
    "v": st.integers(-100, 100).map(float),
})
bad = st.sampled_from([{"key": "a", "v": 1.0}, {"key": "b", "ts": "later", "v": 2.0},
                       {"ts": 500, "v": 3.0}, {"key": None, "ts": 700, "v": 4.0}])
records_st = st.lists(st.one_of(good, good, good, good, bad), min_size=1, max_size=120)
delay_st = st.integers(0, 3_000)
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def with_ids(records: list[dict]) -> list[dict]:
    return [{**r, "id": i} for i, r in enumerate(records)]


HOLDING = ("last", "earliest", "latest")
holding_st = st.sampled_from(HOLDING)


def keep_last(strategy: str = "last") -> KeyedDedupStep:
    return KeyedDedupStep(key_fields=["key"], time_window_ms=WINDOW, state_ttl_ms=4 * WINDOW,
                          strategy=strategy, duplicates_output_tag="dups")


def steps_with_late_after(delay: int, strategy: str = "last") -> list:
    """A late step before keep-last (only on-time records reach it) and one after it."""
    return [WatermarkStep(timestamp_column="ts", max_out_of_orderness_ms=delay),
            LateDataStep(output_tag="late"),
            keep_last(strategy),
            LateDataStep(name="late_after", output_tag="late_after")]


def window(lateness: int = 0) -> WindowStep:
    return WindowStep(name="w", key_fields=["key"], kind="tumbling", size_ms=2_000,
                      allowed_lateness_ms=lateness,
                      aggregations={"n": "count()", "s": "sum(v)", "last_v": "last(v)"})


def places(recs: list[dict], out: dict[str, list[dict]], tags: list[str]) -> dict:
    where = defaultdict(list)
    for tag in tags:
        for r in out[tag]:
            where[r["id"]].append(tag)
    for e in out["errors"]:
        where[json.loads(e["raw"])["id"]].append("errors")
    return where


@SETTINGS
@given(records_st, delay_st, st.integers(1, 40), holding_st)
def test_conservation_and_nothing_on_time_turns_late_after_keep_last(records, delay, size,
                                                                     strategy):
    recs = with_ids(records)
    out = run_steps(recs, steps_with_late_after(delay, strategy), batch_size=size)
    where = places(recs, out, ["main", "late", "late_after", "dups"])
    assert sorted(where) == [r["id"] for r in recs]
    assert all(len(p) == 1 for p in where.values()), where
    assert out["late_after"] == []  # before the fix: nearly every released record
    keys = Counter(r["key"] for r in out["main"])
    assert all(n >= 1 for n in keys.values())


@SETTINGS
@given(records_st, delay_st, st.integers(1, 40), holding_st)
def test_a_window_after_keep_last_loses_nothing_to_late_window(records, delay, size, strategy):
    recs = with_ids(records)
    steps = [WatermarkStep(timestamp_column="ts", max_out_of_orderness_ms=delay),
             LateDataStep(output_tag="late"), keep_last(strategy), window()]
    out = run_steps(recs, steps, batch_size=size)
    assert out["late_window"] == []
    released = len(recs) - len(out["late"]) - len(out["dups"]) - len(out["errors"])
    assert sum(r["n"] for r in out["main"]) == released  # L = 0: one firing per window


@SETTINGS
@given(records_st, delay_st, st.integers(1, 40), holding_st)
def test_outputs_do_not_depend_on_the_batch_size(records, delay, size, strategy):
    recs = with_ids(records)
    held = keep_last(strategy)
    pipelines = [
        steps_with_late_after(delay, strategy) + [window(lateness=500)],
        # no late step before: records late at input flow through keep-last
        [WatermarkStep(timestamp_column="ts", max_out_of_orderness_ms=delay), held,
         LateDataStep(name="late_after", output_tag="late_after"), window(lateness=300)],
        [WatermarkStep(timestamp_column="ts", max_out_of_orderness_ms=delay), held,
         window(lateness=300)],
    ]
    for steps in pipelines:
        assert run_steps(recs, steps, batch_size=size) == run_steps(recs, steps,
                                                                    batch_size=1000)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records_st, delay_st, holding_st)
def test_only_records_late_at_input_can_be_late_after_keep_last(records, delay, strategy):
    """Without a late step before keep-last, the late step after it quarantines only
    records that were late on the way in (some of those may be on time after it: the
    watermark it passes on is held back), with a real watermark, never +infinity."""
    recs = with_ids(records)
    steps = [WatermarkStep(timestamp_column="ts", max_out_of_orderness_ms=delay),
             LateDataStep(name="probe", output_tag="late", strategy="quarantine"),
             ]
    late_at_input = {r["id"] for r in run_steps(recs, steps)["late"]}
    out = run_steps(recs, [steps[0], keep_last(strategy),
                           LateDataStep(name="late_after", output_tag="late_after")],
                    batch_size=7)
    quarantined = {r["id"] for r in out["late_after"]}
    assert quarantined <= late_at_input
    assert all(r["watermark_ms"] < 2**63 - 1 for r in out["late_after"])
    assert all(r["lateness_ms"] >= 0 for r in out["late_after"])


# -- stop after every record, resume ---------------------------------------------------------
def file_spec(data: Path, out: Path, batch_size: int, strategy: str = "last") -> PipelineSpec:
    return PipelineSpec.model_validate({
        "pipeline": "keep-last-cuts",
        "source": {"type": "file", "path": str(data)},
        "steps": [
            {"type": "watermark", "timestamp_column": "ts", "max_out_of_orderness_ms": 300},
            {"type": "keyed_dedup", "name": "last", "key_fields": ["key"],
             "time_window_ms": WINDOW, "state_ttl_ms": 2 * WINDOW, "strategy": strategy,
             "duplicates_output_tag": "dups"},
            {"type": "late_data_side_output", "output_tag": "late"},
            {"type": "window", "name": "w", "key_fields": ["key"], "kind": "tumbling",
             "size_ms": 1_500, "allowed_lateness_ms": 200,
             "aggregations": {"n": "count()", "last_v": "last(v)"}},
        ],
        "outputs": {tag: {"type": "file", "path": str(out / f"{tag}.jsonl")}
                    for tag in ("main", "dups", "late", "late_window", "errors")},
        "checkpoint": {"dir": str(out / "chk"), "interval_records": batch_size},
        "runtime": {"batch_size": batch_size},
    })


def file_outputs(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.glob("*.jsonl"))}


@settings(max_examples=12, deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(good, min_size=1, max_size=30), st.integers(1, 3), holding_st)
def test_a_run_stopped_after_any_record_and_resumed_gives_the_uncut_outputs(
        tmp_path: Path, records, batch_size, strategy):
    case = tmp_path / f"case-{len(list(tmp_path.iterdir()))}"
    case.mkdir()
    data = case / "in.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in with_ids(records)))
    LocalRunner(file_spec(data, case / "clean", 1000, strategy)).run()
    cut = case / "cut"
    runs = 0
    while True:  # one batch of ``batch_size`` records per run, then a checkpoint and stop
        LocalRunner(file_spec(data, cut, batch_size, strategy),
                    stop_after_checkpoint=True).run()
        runs += 1
        latest = CheckpointStore(cut / "chk").latest()
        if latest is not None and latest.finished:
            break
        assert runs <= len(records) + 2, "no progress"
    assert runs >= len(records) // batch_size
    assert file_outputs(cut) == file_outputs(case / "clean")


@pytest.mark.parametrize("strategy", HOLDING)
def test_resuming_keeps_held_records_and_the_held_back_watermark(tmp_path: Path, strategy):
    """A hand case: a's held record is held across the stop; the run after it releases it
    on time for the window, exactly as the uninterrupted run does."""
    data = tmp_path / "in.jsonl"
    rows = [{"key": "a", "ts": 100, "v": 1.0}, {"key": "a", "ts": 900, "v": 2.0},
            {"key": "b", "ts": 1_000, "v": 3.0}, {"key": "b", "ts": 3_000, "v": 4.0},
            {"key": "c", "ts": 6_000, "v": 5.0}]
    data.write_text("".join(json.dumps({**r, "id": i}) + "\n" for i, r in enumerate(rows)))
    LocalRunner(file_spec(data, tmp_path / "clean", 1000, strategy)).run()
    for _ in range(len(rows) + 1):
        LocalRunner(file_spec(data, tmp_path / "cut", 1, strategy),
                    stop_after_checkpoint=True).run()
    assert file_outputs(tmp_path / "cut") == file_outputs(tmp_path / "clean")
    windows = [json.loads(line) for line in
               (tmp_path / "clean" / "main.jsonl").read_text().splitlines()]
    assert {(w["key"], w["window_start"], w["n"]) for w in windows} == {
        ("a", 0, 1), ("b", 0, 1), ("b", 3_000, 1), ("c", 6_000, 1)}
    assert (tmp_path / "clean" / "late.jsonl").read_text() == ""
    assert (tmp_path / "clean" / "late_window.jsonl").read_text() == ""


@pytest.mark.parametrize("delay", [0, 250])
def test_keep_last_then_late_step_hand_case(delay):
    """The issue's case: keep-last followed by a late step quarantined every released
    record, the last ones with watermark_ms = int64 max."""
    recs = [{"k": "a", "ts": 100, "id": 0}, {"k": "a", "ts": 105, "id": 1},
            {"k": "b", "ts": 110, "id": 2}, {"k": "c", "ts": 200, "id": 3},
            {"k": "d", "ts": 201, "id": 4}]
    steps = [WatermarkStep(timestamp_column="ts", max_out_of_orderness_ms=delay),
             KeyedDedupStep(key_fields=["k"], time_window_ms=10, strategy="last"),
             LateDataStep(output_tag="late")]
    for size in (1, 2, 5):
        out = run_steps(recs, steps, batch_size=size)
        assert [r["id"] for r in out["main"]] == [1, 2, 3, 4]
        assert out["late"] == []


@pytest.mark.parametrize("other", ["first", "earliest"])
def test_switching_a_dedup_step_between_first_and_last_is_refused_naming_it(tmp_path: Path,
                                                                           other: str):
    """Keep-first and keep-last keep different state under the same step name: a
    checkpoint of one cannot be restored into the other. Nor into keep-earliest, whose
    held record is chosen by another rule (the held ones would not be its choice)."""
    from surestream.runners.local.checkpointing import IncompatibleStateError

    data = tmp_path / "in.jsonl"
    data.write_text("".join(json.dumps({"key": "a", "ts": 100 * i, "v": 1.0, "id": i}) + "\n"
                            for i in range(6)))
    LocalRunner(file_spec(data, tmp_path / "out", 2), stop_after_checkpoint=True).run()
    first = file_spec(data, tmp_path / "out", 2, strategy=other)
    with pytest.raises(IncompatibleStateError, match=rf"'last'.*strategy last -> {other}"):
        LocalRunner(first, stop_after_checkpoint=True).run()
