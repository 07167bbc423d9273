"""data_quality and late data through ``surestream run``: unique within an event-time window
across batches and a SIGKILL + resume, the abort exit code, the run summary's lines, the
late-data summary line (also after a kill and resume) and the metrics file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from surestream.ops.run_summary import step_summary_lines
from surestream.runners.local import faults
from surestream.runners.local.runner import LocalRunner
from surestream.semantics.late_summary import LateSummary
from surestream.testing import memory_spec, run_steps

#: 2026-01-01T10:00:00Z
BASE = 1_767_261_600_000
MINUTE = 60_000


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "surestream", *args], capture_output=True,
                          text=True, timeout=300, env={**os.environ, **(env or {})})


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def spec_file(tmp_path: Path, steps: list[dict], outputs: list[str], *, batch_size: int = 2,
              interval_records: int | None = 2) -> Path:
    spec = {
        "pipeline": "dq-cli",
        "source": {"type": "file", "path": "in.jsonl", "format": "jsonl"},
        "steps": steps,
        "outputs": {tag: {"type": "file", "path": f"out/{tag}.jsonl"} for tag in outputs},
        "checkpoint": {"dir": "chk", **({"interval_records": interval_records}
                                        if interval_records else {})},
        "runtime": {"batch_size": batch_size, "interleave_records": 1},
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


WATERMARK = {"type": "watermark", "timestamp_column": "ts", "max_out_of_orderness_ms": 0}

# -- unique within an event-time window -------------------------------------------------------
#: (id, k, ts offset ms): a value passes, fails for 1000 ms of event time after the record
#: that passed, then passes again (a new window); null is never compared
WINDOW_RECORDS = [(1, "a", 0), (2, "a", 500), (3, "b", 600), (4, "a", 1000), (5, "b", 1200),
                  (6, "a", 1500), (7, "b", 1700), (8, None, 1800), (9, "a", 2600)]
WINDOW_FAILS = [2, 5, 6]
UNIQUE_STEP = {"type": "data_quality", "name": "checks", "rules": [
    {"name": "k_once", "rule": "unique", "column": "k", "within": {"window_ms": 1000}}]}


def window_records() -> list[dict]:
    return [{"id": i, "k": k, "ts": BASE + dt} for i, k, dt in WINDOW_RECORDS]


@pytest.mark.parametrize("batch_size", [1, 2, 3, 100])
def test_unique_within_a_window_is_the_same_at_every_batch_size(batch_size):
    out = run_steps(window_records(), [WATERMARK, UNIQUE_STEP], batch_size=batch_size)
    assert [r["id"] for r in out["dq_failed"]] == WINDOW_FAILS
    assert {r["dq_reason"] for r in out["dq_failed"]} == {
        "k a already seen within 1000 ms of event time",
        "k b already seen within 1000 ms of event time"}
    assert [r["id"] for r in out["main"]] == [1, 3, 4, 7, 8, 9]


def test_unique_within_a_window_survives_a_kill_and_a_resume_from_a_checkpoint(tmp_path):
    write_jsonl(tmp_path / "in.jsonl", window_records())
    spec = spec_file(tmp_path, [WATERMARK, UNIQUE_STEP], ["main", "dq_failed"])
    # killed at the 3rd checkpoint: records 1-6 are done, 2 and 5 already failed; the
    # value "a" of record 4 must still be remembered after the restart (record 6 fails)
    crashed = cli("run", str(spec), env={faults.ENV: "checkpoint.durable:3"})
    assert crashed.returncode == -9, crashed.stderr
    resumed = cli("run", str(spec))
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from checkpoint" in resumed.stderr
    assert [r["id"] for r in read_jsonl(tmp_path / "out/dq_failed.jsonl")] == WINDOW_FAILS
    assert [r["id"] for r in read_jsonl(tmp_path / "out/main.jsonl")] == [1, 3, 4, 7, 8, 9]
    # the run summary covers the whole job, not only the resumed part
    assert ("Data quality checks/k_once (unique, error, on_failure quarantine): 3 of 9 "
            "record(s) failed (3 quarantined)") in resumed.stderr


# -- abort ------------------------------------------------------------------------------------
def test_abort_exits_1_naming_the_rule_the_count_and_an_example(tmp_path):
    write_jsonl(tmp_path / "in.jsonl", [{"id": 1, "amount": 5}, {"id": 2, "amount": 12000},
                                        {"id": 3, "amount": 7}])
    step = {"type": "data_quality", "name": "checks", "rules": [
        {"name": "amount_range", "rule": "range", "column": "amount", "min": 0,
         "max": 10000, "on_failure": "abort"}]}
    spec = spec_file(tmp_path, [step], ["main"], batch_size=10, interval_records=None)
    r = cli("run", str(spec))
    assert r.returncode == 1, r.stderr
    assert "rule 'amount_range'" in r.stderr
    assert "failed for 1 record(s)" in r.stderr
    assert "amount 12000 > max 10000" in r.stderr
    assert '"id":2' in r.stderr
    assert read_jsonl(tmp_path / "out/main.jsonl") == []  # nothing of the run committed


# -- late data: the framework's names, the summary line ------------------------------------------
#: on-time records each minute from 10:20; late ones (behind the watermark) in between
LATE_INPUT = [(1, 20), (2, 21), (3, 15), (4, 22), (5, 23), (6, 18), (7, 24), (8, 25),
              (9, 26), (10, 27), (11, 16.5), (12, 28)]
LATE_IDS = [3, 6, 11]


def late_records() -> list[dict]:
    return [{"id": i, "ts": BASE + int(m * MINUTE)} for i, m in LATE_INPUT]


@pytest.mark.parametrize("strategy, emits", [
    ("SendToDLQ", True), ("SeparateStream", True), ("Drop", False), ("LogAndDrop", False),
    ("sendtodlq", True), ("LOGANDDROP", False)])
def test_the_framework_strategies_route_late_records_as_ours_do(strategy, emits):
    late = {"type": "late_data_side_output", "name": "late_step", "strategy": strategy,
            "output_tag": "late"}
    runner = LocalRunner(memory_spec(late_records(), [WATERMARK, late], batch_size=5))
    result = runner.run()
    assert [x["id"] for x in result.rows("main")] == [
        i for i, _ in LATE_INPUT if i not in LATE_IDS]
    if emits:
        assert [x["id"] for x in result.rows("late")] == LATE_IDS
    else:
        assert "late" not in result.outputs
    assert result.operator_counters["late_step"]["late"] == 3
    assert step_summary_lines(runner) == [
        "Late data: 3 record(s), event time range: 10:15:00 to 10:18:00"]


def test_surestream_run_prints_the_late_summary_line(tmp_path):
    write_jsonl(tmp_path / "in.jsonl", late_records())
    late = {"type": "late_data_side_output", "name": "late_step", "strategy": "SeparateStream",
            "output_tag": "late"}
    spec = spec_file(tmp_path, [WATERMARK, late], ["main", "late"], batch_size=100,
                     interval_records=None)
    r = cli("run", str(spec))
    assert r.returncode == 0, r.stderr
    assert "Late data: 3 record(s), event time range: 10:15:00 to 10:18:00" in r.stderr
    assert [x["id"] for x in read_jsonl(tmp_path / "out/late.jsonl")] == LATE_IDS


def test_the_range_carries_dates_when_it_spans_days():
    seen = LateSummary()
    seen.add(np.array([BASE + 14 * 60 * MINUTE - MINUTE, BASE + 10 * MINUTE], dtype=np.int64))
    seen.add(np.array([BASE + 14 * 60 * MINUTE + 90_000], dtype=np.int64))
    assert seen.line() == ("Late data: 3 record(s), event time range: "
                           "2026-01-01 10:10:00 to 2026-01-02 00:01:30")
    assert LateSummary().line() == "Late data: 0 record(s)"


def test_the_late_summary_counts_the_whole_job_across_a_kill_and_resume(tmp_path):
    write_jsonl(tmp_path / "in.jsonl", late_records())
    late = {"type": "late_data_side_output", "name": "late_step", "strategy": "SendToDLQ",
            "output_tag": "late"}
    spec = spec_file(tmp_path, [WATERMARK, late], ["main", "late"])
    # killed at the 4th checkpoint (8 records in: late ids 3 and 6 counted, 11 not yet)
    crashed = cli("run", str(spec), env={faults.ENV: "checkpoint.durable:4"})
    assert crashed.returncode == -9, crashed.stderr
    resumed = cli("run", str(spec), "--metrics-file", str(tmp_path / "metrics.prom"))
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from checkpoint" in resumed.stderr
    assert "Late data: 3 record(s), event time range: 10:15:00 to 10:18:00" in resumed.stderr
    assert [x["id"] for x in read_jsonl(tmp_path / "out/late.jsonl")] == LATE_IDS
    metrics = samples(tmp_path / "metrics.prom")
    assert metrics[("surestream_late_event_time_min_ms", "late_step")] == BASE + 15 * MINUTE
    assert metrics[("surestream_late_event_time_max_ms", "late_step")] == BASE + 18 * MINUTE
    assert metrics[("surestream_late_records_total", "late_step")] == 3


def samples(path: Path) -> dict[tuple, float]:
    """(metric name, operator[, rule, severity, action]) -> value, from a metrics file."""
    out = {}
    for family in text_string_to_metric_families(path.read_text()):
        for s in family.samples:
            key = tuple(s.labels[k] for k in ("operator", "rule", "severity", "action")
                        if k in s.labels)
            out[(s.name, *key)] = s.value
    return out


# -- the metrics and the run summary of a data_quality step ------------------------------------
def test_dq_metrics_and_summary_lines_give_each_rules_counts(tmp_path):
    records = [{"id": 1, "amount": 5, "email": "a@x"}, {"id": 2, "amount": 12000, "email": "b"},
               {"id": 3, "amount": None, "email": "c@x"}, {"id": 4, "amount": -3, "email": "d"}]
    write_jsonl(tmp_path / "in.jsonl", records)
    step = {"type": "data_quality", "name": "checks", "rules": [
        {"name": "amount_present", "rule": "not_null", "column": "amount"},
        {"name": "amount_range", "rule": "range", "column": "amount", "min": 0, "max": 10000},
        {"name": "email_at", "rule": "regex", "column": "email", "pattern": "@",
         "severity": "warning", "on_failure": "warn"},
        {"name": "never_fails", "rule": "not_null", "column": "id", "severity": "info",
         "on_failure": "continue"}]}
    spec = spec_file(tmp_path, [step], ["main", "dq_failed"], batch_size=3)
    r = cli("run", str(spec), "--metrics-file", str(tmp_path / "metrics.prom"))
    assert r.returncode == 0, r.stderr
    m = samples(tmp_path / "metrics.prom")
    for rule in ("amount_present", "amount_range", "email_at", "never_fails"):
        assert m[("surestream_dq_records_checked_total", "checks", rule)] == 4
    assert m[("surestream_dq_failures_total", "checks", "amount_present", "error",
              "quarantine")] == 1
    assert m[("surestream_dq_failures_total", "checks", "amount_range", "error",
              "quarantine")] == 2
    assert m[("surestream_dq_failures_total", "checks", "email_at", "warning", "warn")] == 2
    assert m[("surestream_dq_failures_total", "checks", "never_fails", "info",
              "continue")] == 0
    assert ("Data quality checks/amount_range (range, error, on_failure quarantine): 2 of 4 "
            "record(s) failed (2 quarantined)") in r.stderr
    assert ("Data quality checks/email_at (regex, warning, on_failure warn): 2 of 4 "
            "record(s) failed (passed, warned)") in r.stderr
    assert "never_fails" not in r.stderr.split("output")[-1]  # no line without failures
    assert [x["id"] for x in read_jsonl(tmp_path / "out/main.jsonl")] == [1]
    assert [(x["id"], x["dq_rule"]) for x in read_jsonl(tmp_path / "out/dq_failed.jsonl")] == [
        (2, "amount_range"), (3, "amount_present"), (4, "amount_range")]


def test_a_checkpoint_from_before_the_range_was_kept_restores_its_count():
    from surestream.model.steps import LateDataStep
    from surestream.semantics.late import LateDataOperator

    op = LateDataOperator(LateDataStep(strategy="Drop"), "p")
    op.restore({"late": 5})  # the late step's state before this version: its counters
    assert op.counters == {"late": 5}
    assert op.summary_lines() == ["Late data: 5 record(s), event time range: unknown "
                                  "(counted before the range was kept)"]
    again = LateDataOperator(LateDataStep(strategy="drop"), "p")
    again.restore(op.snapshot())
    assert again.summary_lines() == op.summary_lines()
