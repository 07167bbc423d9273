"""Validation of output modes (docs/etl.md): a mode a sink cannot honour is
refused at `validate`, naming the output, the reason and the mode that works; the
aggregate step's own rules; `enable_idempotence`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

import surestream
from surestream.model.spec import PipelineSpec

WATERMARK = {"type": "watermark", "timestamp_column": "ts"}
COMPLETE = {"type": "aggregate", "name": "totals", "key_fields": ["k"],
            "aggregations": "v:sum", "output_mode": "complete"}


def pipeline(steps: list[dict], main: dict, **outputs: dict) -> dict:
    return {"pipeline": "p", "source": {"type": "file", "path": "in.jsonl"},
            "steps": steps, "outputs": {"main": main, **outputs}}


def refusal(doc: dict) -> str:
    with pytest.raises(ValidationError) as e:
        PipelineSpec(**doc)
    return str(e.value)


@pytest.mark.parametrize(("sink", "reason"), [
    ({"type": "file", "path": "out.jsonl"}, "a file only appends"),
    ({"type": "kafka", "topic": "totals"}, "a topic only appends"),
    ({"type": "iceberg", "table": "gold.totals"}, "appends each checkpoint"),
    ({"type": "delta", "path": "gold/totals"}, "appends each checkpoint"),
    ({"type": "clickhouse", "table": "totals", "key_columns": ["k"],
      "version_column": "version"}, "never removes a key"),
])
def test_complete_into_an_append_only_sink_is_refused_with_the_reason(sink, reason):
    message = refusal(pipeline([COMPLETE], sink))
    assert "outputs.main" in message and "output_mode complete" in message
    assert "'totals'" in message and reason in message
    assert "mode: replace" in message  # what works instead


@pytest.mark.parametrize("mode", ["append", "upsert"])
def test_complete_into_a_table_sink_in_a_mode_that_does_not_replace_is_refused(mode):
    sink = {"type": "postgres", "dsn": "postgresql://x@127.0.0.1/db", "table": "totals",
            "mode": mode}
    if mode == "upsert":
        sink.update(key_columns=["k"], version_column="version")
    message = refusal(pipeline([COMPLETE], sink))
    assert f"mode {mode} does not replace the table" in message
    assert "set `mode: replace` on this output" in message
    duck = refusal(pipeline([COMPLETE], {"type": "duckdb", "path": "t.db", "table": "t"}))
    assert "mode append does not replace the table" in duck


def test_complete_into_replace_tables_memory_and_stdout_is_accepted():
    for sink in ({"type": "postgres", "dsn": "postgresql://x@h/db", "table": "t",
                  "mode": "replace"},
                 {"type": "duckdb", "path": "t.db", "table": "t", "mode": "replace"},
                 {"type": "memory"}, {"type": "stdout"}):
        PipelineSpec(**pipeline([COMPLETE], sink))
    # a stream reading the complete result is one too
    doc = {"pipeline": "p", "source": {"type": "file", "path": "in.jsonl"},
           "streams": {"totals": {"from": "source", "steps": [COMPLETE]},
                       "big": {"from": "totals", "steps": [{"type": "where",
                                                            "condition": "v > 10"}]}},
           "outputs": {"totals": {"type": "memory"},
                       "big": {"type": "file", "path": "big.jsonl"}}}
    assert "outputs.big" in refusal(doc)


def test_a_memory_output_told_to_append_refuses_a_complete_result():
    assert "set `mode: replace`" in refusal(pipeline([COMPLETE], {"type": "memory",
                                                                  "mode": "append"}))


def test_a_replace_table_fed_by_anything_but_a_complete_result_is_refused():
    update = {**COMPLETE, "output_mode": "update"}
    message = refusal(pipeline([update], {"type": "duckdb", "path": "t.db", "table": "t",
                                          "mode": "replace"}))
    assert "outputs.main.mode" in message and "not an output_mode complete result" in message


def test_append_without_a_state_timeout_is_refused_because_it_would_never_emit():
    message = refusal(pipeline([{**COMPLETE, "output_mode": "append"}], {"type": "memory"}))
    assert "without state_timeout_ms" in message and "never emit" in message


def test_a_state_timeout_needs_a_watermark_and_names_the_step():
    step = {**COMPLETE, "output_mode": "update", "state_timeout_ms": 1000}
    message = refusal(pipeline([step], {"type": "memory"}))
    assert "steps[0].state_timeout_ms" in message and "'totals'" in message
    assert "watermark" in message
    PipelineSpec(**pipeline([WATERMARK, step], {"type": "memory"}))


def test_session_windows_and_user_functions_stay_in_append_mode():
    session = {"type": "window", "kind": "session", "gap_ms": 10, "aggregations": "v:sum",
               "output_mode": "update"}
    assert "session" in refusal(pipeline([WATERMARK, session], {"type": "memory"},
                                         late_window={"type": "memory"}))

    class Udaf:
        def create(self): return 0
        def add(self, acc, record): return acc + 1
        def merge(self, a, b): return a + b
        def result(self, acc): return acc

    step = {**COMPLETE, "aggregations": {"n": Udaf()}}
    assert "user aggregate functions" in refusal(pipeline([step], {"type": "memory"}))


def test_version_is_a_result_column():
    step = {**COMPLETE, "aggregations": {"version": "count()"}}
    assert "`version`" in refusal(pipeline([step], {"type": "memory"}))


def test_enable_idempotence():
    stdout = refusal(pipeline([], {"type": "stdout", "enable_idempotence": True}))
    assert "enable_idempotence: true" in stdout and "standard output" in stdout
    kafka = PipelineSpec(**pipeline([], {"type": "kafka", "topic": "t",
                                         "enable_idempotence": False}))
    assert kafka.outputs["main"].delivery == "at_least_once"
    assert PipelineSpec(**pipeline([], {"type": "kafka", "topic": "t",
                                        "enable_idempotence": True})
                        ).outputs["main"].delivery == "exactly_once"
    assert "contradicts delivery" in refusal(pipeline([], {
        "type": "kafka", "topic": "t", "enable_idempotence": True,
        "delivery": "at_least_once"}))
    assert "contradicts delivery exactly_once" in refusal(pipeline([], {
        "type": "kafka", "topic": "t", "enable_idempotence": False,
        "delivery": "exactly_once"}))
    for sink in ({"type": "file", "path": "o.jsonl"}, {"type": "memory"},
                 {"type": "postgres", "dsn": "postgresql://x@h/db", "table": "t"}):
        PipelineSpec(**pipeline([], {**sink, "enable_idempotence": True}))


def test_surestream_validate_names_the_output_and_exits_nonzero(tmp_path: Path):
    doc = pipeline([COMPLETE], {"type": "file", "path": "out.jsonl"})
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(doc))
    env_path = str(Path(surestream.__file__).parents[1])
    done = subprocess.run([sys.executable, "-m", "surestream", "validate",
                           str(tmp_path / "spec.yaml")], capture_output=True, text=True,
                          env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"}, timeout=60)
    assert done.returncode != 0
    text = done.stdout + done.stderr
    assert "outputs.main" in text and "a file only appends" in text


def test_a_stateful_step_after_a_complete_result_is_refused():
    again = {"type": "aggregate", "name": "again", "aggregations": "v:sum"}
    message = refusal(pipeline([COMPLETE, again], {"type": "memory"}))
    assert "steps[1]" in message and "'again'" in message
    assert "once per checkpoint" in message
