"""The differential harness's own logic, without a JVM: the order key, the multiset
comparison, floats bit for bit (and the sliding-window exception), ``raw`` as JSON, and the
driver batch going on past a failed job (a stand-in driver script: the real driver is run by
test_flink_differential.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from surestream.model.loader import build_spec
from surestream.runners.flink import differential
from surestream.runners.flink.differential import (
    compare_rows,
    flink_error,
    float_equal,
    loose_fields,
    normalise,
)
from surestream.runners.flink.job import FlinkJob


def test_window_rows_are_ordered_by_window_then_the_other_fields() -> None:
    rows = [{"k": "B", "window_start": 0, "window_end": 10, "c": 1},
            {"k": "A", "window_start": 10, "window_end": 20, "c": 1},
            {"k": "A", "window_start": 0, "window_end": 10, "c": 2}]
    ordered = normalise(rows, keys=("k",))
    assert [(r["window_start"], r["k"]) for r in ordered] == [(0, "A"), (0, "B"), (10, "A")]
    records = [{"id": "b", "ts": 1}, {"id": "a", "ts": 2}]
    assert [r["id"] for r in normalise(records)] == ["a", "b"]  # by every field by name


def test_duplicates_count_and_the_difference_is_both_sides() -> None:
    a = {"id": "x", "v": 1.0}
    diff = compare_rows("main", [a, a], [a])
    assert not diff.equal and diff.only_local == [a] and diff.only_flink == []
    diff = compare_rows("main", [a, {"id": "y", "v": None}], [{"id": "y", "v": None}, a])
    assert diff.equal


def test_floats_are_compared_bit_for_bit() -> None:
    assert not float_equal(0.1 + 0.2, 0.3)
    assert not float_equal(-0.0, 0.0)
    assert float_equal(float("nan"), float("nan"))
    assert not float_equal(1, 1.0)  # an int is not a float on the other side
    assert float_equal(0.1 + 0.2, 0.3, loose=True)
    assert not float_equal(1.0, 1.001, loose=True)


def test_only_sliding_window_sums_and_averages_are_loose(tmp_path: Path) -> None:
    doc = {"pipeline": "p", "source": {"type": "file", "path": "in.jsonl"},
           "steps": [{"type": "watermark", "timestamp_column": "ts"},
                     {"type": "window", "name": "w", "key_fields": ["k"], "kind": "sliding",
                      "size_ms": 10, "slide_ms": 5,
                      "aggregations": {"s": "sum(v)", "a": "avg(v)", "m": "max(v)",
                                       "c": "count()"}}],
           "outputs": {"main": {"type": "file", "path": "out.jsonl"},
                       "late_window": {"type": "file", "path": "late.jsonl"}}}
    assert loose_fields(build_spec(doc, base_dir=tmp_path)) == {"s", "a"}
    doc["steps"][1]["kind"] = "tumbling"
    del doc["steps"][1]["slide_ms"]
    assert loose_fields(build_spec(doc, base_dir=tmp_path)) == frozenset()
    row = {"window_start": 0, "window_end": 10, "k": "A", "s": 0.30000000000000004, "m": 0.2}
    other = dict(row, s=0.3)
    diff = compare_rows("main", [row], [other], frozenset({"s"}))
    assert diff.equal and diff.approx_values == 1
    assert not compare_rows("main", [row], [other]).equal
    assert not compare_rows("main", [row], [dict(other, m=0.20000000000000004)],
                            frozenset({"s"})).equal


def test_raw_is_compared_as_the_object_it_holds() -> None:
    local = {"error_type": "unroutable", "raw": '{"k": "C", "ts": 1, "v": null}'}
    flink = {"error_type": "unroutable", "raw": '{"ts":1,"k":"C","v":null}'}
    assert compare_rows("errors", [local], [flink]).equal
    assert not compare_rows("errors", [local], [dict(flink, raw='{"ts":1,"k":"C"}')]).equal


def test_a_failed_job_is_reported_and_the_jobs_after_it_still_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The driver stops at the first failing job; the harness records that job's cause and
    starts it again for the rest (a stand-in driver: prints what the real one prints)."""
    fake = tmp_path / "driver.py"
    fake.write_text(
        "import json, sys\n"
        "for f in sys.argv[1:]:\n"
        "    job = json.load(open(f))\n"
        "    print('JOB_ID', job['name'], 'id', flush=True)\n"
        "    if job['name'].startswith('bad'):\n"
        "        print('Traceback ...\\n    at x.y(Z.java:1)\\n"
        "org.apache.flink.table.api.TableException: HOP needs a multiple', file=sys.stderr)\n"
        "        sys.exit(1)\n"
        "    print('JOB_END', job['name'], 'FINISHED', flush=True)\n"
        "    open(f + '.ran', 'w').close()\n")
    monkeypatch.setattr(differential, "driver_command",
                        lambda files: [sys.executable, str(fake), *map(str, files)])
    monkeypatch.setattr(differential, "driver_environment", lambda work: None)
    jobs = [(i, FlinkJob(name=n, config={}, ddl=[], inserts=[]))
            for i, n in enumerate(["a", "bad1", "b", "bad2", "c"])]
    outcome = differential._run_flink_batch(jobs, tmp_path / "work", None)
    assert [i for i, failure in sorted(outcome.items()) if failure is None] == [0, 2, 4]
    assert "HOP needs a multiple" in outcome[1] and "HOP needs a multiple" in outcome[3]
    assert "Z.java" not in outcome[1]  # the cause, not the frames
    assert len(list((tmp_path / "work").glob("driver-*"))) == 3


def test_flink_error_keeps_cause_lines() -> None:
    text = ("Traceback (most recent call last):\n  File x\npy4j.protocol.Py4JJavaError: An "
            "error occurred\n\tat org.A.b(A.java:1)\nCaused by: java.lang.IllegalStateException:"
            " boom\n")
    assert flink_error(text) == ("py4j.protocol.Py4JJavaError: An error occurred\n  "
                                 "Caused by: java.lang.IllegalStateException: boom")
    assert json.dumps(flink_error("no cause"))  # the end of the text otherwise
