"""Error records split by kind into outputs of their own, shaped as each output asks
(issue 9, item 3): input that does not parse to one dead-letter output, exceptions in user
code to another, the rest to ``errors``; every error record in exactly one of them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from surestream.model.loader import SpecError, build_spec
from surestream.runners.local.error_budget import budget_problem
from surestream.runners.local.runner import LocalRunner

PLAN_FIELDS = {"original_value": "raw", "error_type": "exception",
               "error_message": "error_message", "stacktrace": "traceback",
               "timestamp_ms": "recorded_at_ms"}
HUGE = '{"id": 99, "ts": 1, "note": "' + "x" * 12_000  # not JSON, and long


def ratio(record: dict) -> dict:
    """User code that fails on a zero quantity."""
    return {**record, "ratio": 10 / record["qty"]}


def write_lines(path: Path, lines: list) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n"
                            for x in lines))
    return path


def lines() -> list:
    return [
        {"id": 1, "ts": 1000, "qty": 2},
        '{"id": 2, "ts": 2000, "qty": ',  # cut short
        {"id": 3, "ts": 3000, "qty": 0},  # the user function divides by it
        HUGE,
        {"id": 4, "qty": 1},  # no event time
        {"id": 5, "ts": 5000, "qty": 5},
        {"id": 6, "ts": 6000, "qty": 0},
    ]


def split_spec(tmp_path: Path, **overrides) -> dict:
    src = write_lines(tmp_path / "in.jsonl", lines())
    doc = {
        "pipeline": "split",
        "source": {"type": "file", "path": str(src), "format": "jsonl"},
        "steps": [{"type": "watermark", "name": "wm", "timestamp_column": "ts",
                   "max_out_of_orderness_ms": 0},
                  {"type": "map", "name": "compute_ratio", "function": ratio}],
        "outputs": {
            "main": {"type": "memory"},
            "errors": {"type": "memory"},
            "dlq.deserialization": {"type": "memory", "error_kinds": ["input"],
                                    "error_fields": PLAN_FIELDS},
            "dlq.processing-errors": {"type": "memory", "error_kinds": ["processing"],
                                      "error_fields": {**PLAN_FIELDS,
                                                       "operator": "operator"}},
        },
        "runtime": {"batch_size": 2, "interleave_records": 2},
        "checkpoint": {"dir": str(tmp_path / "checkpoints")},
    }
    doc.update(overrides)
    return doc


def run(doc: dict, clock=lambda: 1_700_000_000_000, **kwargs):
    return LocalRunner(build_spec(doc), clock=clock, **kwargs).run()


def test_input_that_does_not_parse_lands_in_its_dlq_with_exactly_the_planned_fields(tmp_path):
    result = run(split_spec(tmp_path))
    dlq = result.rows("dlq.deserialization")
    assert [list(r) for r in dlq] == [list(PLAN_FIELDS)] * 3  # exactly these, in this order
    cut, huge, no_time = dlq
    assert cut["original_value"] == '{"id": 2, "ts": 2000, "qty": '
    assert cut["error_type"] == "JSONDecodeError"  # the exception class, not our category
    assert "not valid JSON" in cut["error_message"] and "in.jsonl" in cut["error_message"]
    assert cut["stacktrace"] is None
    assert cut["timestamp_ms"] == 1_700_000_000_000
    assert huge["original_value"] == HUGE[:10_000] and len(HUGE) > 10_000
    assert no_time["error_type"] == "ValueError"
    assert no_time["error_message"] == "missing timestamp 'ts'"
    assert json.loads(no_time["original_value"])["id"] == 4


def test_an_exception_in_user_code_lands_in_processing_errors_with_its_operator(tmp_path):
    result = run(split_spec(tmp_path))
    failed = result.rows("dlq.processing-errors")
    assert [json.loads(r["original_value"])["id"] for r in failed] == [3, 6]
    for r in failed:
        assert list(r) == [*PLAN_FIELDS, "operator"]
        assert (r["operator"], r["error_type"]) == ("compute_ratio", "ZeroDivisionError")
        assert r["error_message"] == "division by zero"
        assert "ZeroDivisionError" in r["stacktrace"] and "ratio" in r["stacktrace"]
    assert [r["id"] for r in result.rows("main")] == [1, 5]


def test_every_error_record_lands_in_exactly_one_output(tmp_path):
    result = run(split_spec(tmp_path))
    w = result.written
    assert (w["main"], w["dlq.deserialization"], w["dlq.processing-errors"], w["errors"]) \
        == (2, 3, 2, 0)
    assert result.records_in == len(lines()) == w["main"] + result.counters["errors"]
    assert result.counters["errors"] == 5  # counted across the three error outputs


def test_kinds_no_output_claims_stay_on_errors(tmp_path):
    doc = split_spec(tmp_path)
    del doc["outputs"]["dlq.processing-errors"]
    result = run(doc)
    assert result.written["dlq.deserialization"] == 3
    rest = result.rows("errors")
    assert [e["error_type"] for e in rest] == ["ZeroDivisionError"] * 2
    assert result.counters["errors"] == 5


def test_a_spec_without_the_split_keeps_the_single_errors_output_as_it_was(tmp_path):
    doc = split_spec(tmp_path)
    for tag in ("dlq.deserialization", "dlq.processing-errors"):
        del doc["outputs"][tag]
    errors = run(doc).rows("errors")
    assert [list(e) for e in errors] == \
        [["pipeline", "operator", "error_type", "error_message", "raw", "traceback"]] * 5
    assert [e["error_type"] for e in errors] == [
        "deserialization_error", "ZeroDivisionError", "deserialization_error",
        "missing_timestamp", "ZeroDivisionError"]  # in input order, categories as before


def test_single_categories_and_the_category_field(tmp_path):
    doc = split_spec(tmp_path)
    doc["outputs"]["dlq.deserialization"] = {
        "type": "memory", "error_kinds": ["deserialization_error"],
        "error_fields": ["category", "exception", "operator"]}
    del doc["outputs"]["dlq.processing-errors"]
    result = run(doc)
    assert result.rows("dlq.deserialization") == [
        {"category": "deserialization_error", "exception": "JSONDecodeError",
         "operator": "source:source"}] * 2
    assert [e["error_type"] for e in result.rows("errors")] == [
        "ZeroDivisionError", "missing_timestamp", "ZeroDivisionError"]


def test_recorded_at_is_taken_once_per_checkpoint_and_a_resumed_run_reuses_it(tmp_path):
    """The first run stops at its first checkpoint; the second resumes from it with a
    clock far ahead: what it records before its own next checkpoint carries the time
    stored in the checkpoint, not its own clock's; after that checkpoint, its clock's."""
    doc = split_spec(tmp_path, checkpoint={"dir": str(tmp_path / "checkpoints"),
                                           "interval_records": 4})
    for tag, sink in doc["outputs"].items():  # files: they outlive a run
        sink.update(type="file", path=str(tmp_path / f"{tag}.jsonl"))
    run(doc, clock=lambda: 1_000, stop_after_checkpoint=True)
    resumed = run(doc, clock=lambda: 9_000_000)
    assert resumed.restored_from is not None and resumed.checkpoints >= 2
    recorded = [(r["original_value"][:9], r["timestamp_ms"])
                for tag in ("dlq.deserialization", "dlq.processing-errors")
                for r in resumed.rows(tag)]
    assert recorded[0] == ('{"id": 2,', 1_000)  # committed by the first run
    assert ('{"id":3,"', 1_000) in recorded  # resumed run, before its first checkpoint
    assert ('{"id":6,"', 9_000_000) in recorded  # after it
    assert {t for _, t in recorded} == {1_000, 9_000_000}


def test_the_error_budget_counts_every_error_output(tmp_path):
    doc = split_spec(tmp_path, runtime={"batch_size": 2, "max_error_ratio": 0.5})
    result = run(doc)
    problem = budget_problem(result, 0.5)
    assert problem is not None and problem.startswith("5 of the 7 input records")


@pytest.mark.parametrize(("outputs", "path", "reason"), [
    ({"errors": {"type": "memory", "error_kinds": ["input"]}}, "outputs.errors.error_kinds",
     "takes every error record"),
    ({"main": {"type": "memory", "error_kinds": ["input"]}}, "outputs.main.error_kinds",
     "cannot also hold error records"),
    ({"dlq": {"type": "memory", "error_kinds": ["input"]},
      "dlq2": {"type": "memory", "error_kinds": ["missing_timestamp"]}},
     "outputs.dlq2.error_kinds", "'missing_timestamp' already goes to output 'dlq'"),
    ({"main": {"type": "memory", "error_fields": ["raw"]}}, "outputs.main.error_fields",
     "takes no error records"),
    ({"dlq": {"type": "memory", "error_kinds": ["inputs"]}}, "outputs.dlq.error_kinds",
     "'input'"),
    ({"dlq": {"type": "memory", "error_kinds": ["input"], "error_fields": {"x": "stack"}}},
     "outputs.dlq.error_fields", "recorded_at_ms"),
])
def test_error_outputs_are_validated_with_the_field_to_change(tmp_path, outputs, path, reason):
    doc = split_spec(tmp_path)
    doc["outputs"] = {"main": {"type": "memory"}, **outputs}
    with pytest.raises(SpecError) as e:
        build_spec(doc)
    assert path in str(e.value) and reason in str(e.value)
