"""``surestream.testing``: steps written as in a spec file, checked as a spec file is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from surestream.model.loader import SpecError, load_spec
from surestream.model.steps import LateDataStep, WatermarkStep
from surestream.testing import memory_spec, run_steps

# e3 arrives after e4 moved the watermark past it: late
RECORDS = [{"id": "e1", "ts": 1_000}, {"id": "e2", "ts": 2_000}, {"id": "e4", "ts": 9_000},
           {"id": "e3", "ts": 3_000}, {"id": "e5", "ts": 9_500}]


def test_run_steps_takes_the_dicts_of_a_spec_files_steps():
    out = run_steps(RECORDS, [
        {"type": "watermark", "timestamp_column": "ts", "max_out_of_orderness_ms": 1000},
        {"type": "late_data_side_output", "output_tag": "late"},
    ], batch_size=2)
    assert [r["id"] for r in out["late"]] == ["e3"]
    assert [r["id"] for r in out["main"]] == ["e1", "e2", "e4", "e5"]
    assert out["errors"] == []


def test_dicts_and_step_models_give_the_same_run():
    as_dicts = run_steps(RECORDS, [
        {"type": "watermark", "name": "wm", "timestamp_column": "ts"},
        {"type": "late_data_side_output", "output_tag": "late"},
        {"type": "window", "name": "w", "kind": "tumbling", "size_ms": 5000,
         "aggregations": {"n": "count()"}},
    ])
    from surestream.model.steps import WindowStep

    as_models = run_steps(RECORDS, [
        WatermarkStep(name="wm", timestamp_column="ts"), LateDataStep(output_tag="late"),
        WindowStep(name="w", kind="tumbling", size_ms=5000, aggregations={"n": "count()"}),
    ])
    assert as_dicts == as_models
    assert [(r["window_start"], r["n"]) for r in as_dicts["main"]] == [(0, 2), (5000, 2)]
    assert [r["id"] for r in as_dicts["late"]] == ["e3"]


BAD_STEPS = [
    # a value of the wrong type, a key that does not exist, a type that does not exist
    [{"type": "watermark", "timestamp_column": "ts"},
     {"type": "keyed_dedup", "key_fields": ["id"], "time_window_ms": "ten minutes"}],
    [{"type": "watermark", "timestamp_column": "ts", "max_out_of_order_ms": 5}],
    [{"type": "watermark", "timestamp_column": "ts"}, {"type": "dedupe", "key_fields": ["id"]}],
    # a whole-spec rule: step names identify state
    [{"type": "watermark", "timestamp_column": "ts"},
     {"type": "watermark", "timestamp_column": "ts"}],
    # user code is resolved before anything runs
    [{"type": "map", "name": "enrich", "function": "no_such_package.jobs:enrich"}],
]


@pytest.mark.parametrize("steps", BAD_STEPS, ids=["wrong-type", "unknown-key", "unknown-step",
                                                  "duplicate-name", "missing-code"])
def test_a_bad_step_is_the_spec_error_validate_gives(steps, tmp_path: Path):
    """The problems (field path and reason) are the ones ``surestream validate`` reports
    for the same entries in a spec file's ``steps:`` list."""
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(json.dumps({
        "pipeline": "test", "source": {"type": "memory", "records": RECORDS}, "steps": steps,
        "outputs": {"main": {"type": "memory"}}}))
    with pytest.raises(SpecError) as from_file:
        load_spec(spec_file)
    with pytest.raises(SpecError) as from_python:
        run_steps(RECORDS, steps)
    assert from_python.value.problems == from_file.value.problems
    assert from_python.value.problems  # and each names where, as a spec file would
    path, reason = from_python.value.problems[0]
    assert reason and str(from_python.value).startswith(f"run_steps: {path + ': ' if path else ''}")


def test_the_field_path_names_the_step_and_the_key():
    with pytest.raises(SpecError) as e:
        run_steps(RECORDS, BAD_STEPS[0])
    [(path, reason)] = e.value.problems
    assert path == "steps[1].time_window_ms"
    assert "valid integer" in reason
    assert "steps[1].time_window_ms: " in str(e.value)


def test_memory_spec_takes_dicts_and_routes_their_side_tags():
    spec = memory_spec(RECORDS, [{"type": "watermark", "timestamp_column": "ts"},
                                 {"type": "late_data_side_output", "output_tag": "too_late"}])
    assert set(spec.outputs) == {"main", "too_late", "errors"}
    assert isinstance(spec.steps[0], WatermarkStep)
