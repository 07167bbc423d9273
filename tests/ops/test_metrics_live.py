"""Metrics scraped over HTTP from a running pipeline, checked against the run's own counts.

The runner runs in a thread with ``serve_metrics`` up; a telemetry listener (the runner's
own thread) holds the run still right after its first checkpoint and right after its final
one, while the test scrapes the endpoint. Every value is compared with what the test knows
of the input it wrote (records, duplicates, late records, bad lines and their reasons, the
watermark), with the outputs read back from their files, and with the ``RunResult``.
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from metrics_scrape import (
    DELAY_MS,
    WINDOW_MS,
    Input,
    build_input,
    lines_in,
    matching,
    pipeline_doc,
    scrape,
    value,
)

import surestream
from surestream.model.loader import build_spec
from surestream.ops.metrics import serve_metrics
from surestream.runners.local.runner import LocalRunner

WAIT_S = 60


class Pauses:
    """A telemetry listener that holds the run after its first checkpoint and after its
    final one, until the test lets it go on."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.go_on = threading.Event()
        self.seen: list[str] = []

    def __call__(self, snap: dict[str, Any]) -> None:
        history = snap["checkpoints"]["history"]
        if snap["state"] != "running" or not history:
            return
        at = "final" if history[-1].get("finished") else "first"
        if at in self.seen:
            return
        self.seen.append(at)
        self.go_on.clear()
        self.reached.set()
        self.go_on.wait(WAIT_S)

    def wait(self, at: str, run: RunThread) -> None:
        if not self.reached.wait(WAIT_S):
            raise AssertionError(f"the run never reached its {at} checkpoint: {run.error!r}")
        self.reached.clear()
        assert self.seen[-1] == at

    def release(self) -> None:
        self.go_on.set()


class RunThread(threading.Thread):
    def __init__(self, runner: LocalRunner) -> None:
        super().__init__(daemon=True)
        self.runner, self.result, self.error = runner, None, None

    def run(self) -> None:
        try:
            self.result = self.runner.run()
        except BaseException as e:  # reported by the test
            self.error = e


def processed(inp: Input, lines_read: int) -> list[tuple[int, int, str]]:
    """The good records among the first ``lines_read`` lines."""
    return [r for r in inp.records[:lines_read] if r is not None]


def on_time(records: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """The records the late step lets through: ts above the watermark before them (the
    newest time so far minus the out-of-orderness, minus 1)."""
    kept, newest = [], None
    for r in records:
        if newest is None or r[1] > newest - DELAY_MS - 1:
            kept.append(r)
        newest = r[1] if newest is None else max(newest, r[1])
    return kept


@pytest.fixture
def paused_run(tmp_path: Path):
    inp = build_input(tmp_path / "in")
    out = tmp_path / "out"
    runner = LocalRunner(build_spec(pipeline_doc(inp, out)))
    pauses = Pauses()
    runner.telemetry.listeners.append(pauses)
    with serve_metrics(runner.telemetry, "127.0.0.1", 0) as url:
        run = RunThread(runner)
        run.start()
        try:
            yield inp, out, runner, pauses, run, url
        finally:
            pauses.release()
            run.join(WAIT_S)
    with pytest.raises(urllib.error.URLError):  # the endpoint is gone with the block
        urllib.request.urlopen(url, timeout=5)


def test_metrics_mid_run_match_the_checkpoint_and_the_committed_outputs(paused_run):
    inp, out, runner, pauses, run, url = paused_run
    pauses.wait("first", run)
    m = scrape(url)
    assert value(m, "surestream_up") == 1
    assert value(m, "surestream_run_info", state="running",
                 version=surestream.__version__) == 1
    assert value(m, "surestream_checkpoints_total") == 1
    read = runner.store.latest().meta["records_in"]  # the checkpoint's own count
    assert 0 < read < len(inp.lines)
    assert value(m, "surestream_records_in_total") == read
    # what the outputs' files hold is exactly what was committed
    for tag, name in (("main", "windows.jsonl"), ("late", "late.jsonl"),
                      ("errors", "errors.jsonl")):
        assert value(m, "surestream_output_committed_records_total", output=tag) == \
            lines_in(out / name)
    # the watermark: the newest event time so far minus the out-of-orderness minus 1
    good = processed(inp, read)
    newest = max(t for _, t, _ in good)
    assert value(m, "surestream_watermark_ms", operator="event_time") == newest - DELAY_MS - 1
    assert value(m, "surestream_watermark_lag_ms", operator="event_time") == DELAY_MS + 1
    assert value(m, "flink_watermark_lag_ms", operator="event_time") == DELAY_MS + 1
    assert value(m, "surestream_partition_watermark_ms", operator="event_time",
                 partition=str(inp.path)) == newest - DELAY_MS - 1
    # state: every distinct id on time so far (ttl 1 h); windows not yet fired
    kept = on_time(good)
    assert value(m, "surestream_state_keys", operator="dedup_id") == \
        len({i for i, _, _ in kept})
    wm = newest - DELAY_MS - 1
    pending = {(s, t - t % WINDOW_MS) for _, t, s in kept
               if t - t % WINDOW_MS + WINDOW_MS - 1 > wm}
    assert value(m, "surestream_window_pending", operator="qty_10s") == len(pending)
    assert value(m, "surestream_state_keys", operator="qty_10s") == \
        len({s for s, _ in pending})
    assert value(m, "surestream_state_bytes", operator="dedup_id") > 0
    pauses.release()
    pauses.wait("final", run)


def test_metrics_at_the_final_checkpoint_match_the_input_and_the_result(paused_run):
    inp, out, runner, pauses, run, url = paused_run
    pauses.wait("first", run)
    pauses.release()
    pauses.wait("final", run)
    m = scrape(url)
    assert value(m, "surestream_up") == 1  # still running: the run has not ended yet
    assert value(m, "surestream_records_in_total") == len(inp.lines)
    assert value(m, "surestream_late_records_total", operator="late_trades") == inp.late
    assert value(m, "flink_late_records_total", operator="late_trades") == inp.late
    assert lines_in(out / "late.jsonl") == inp.late
    assert value(m, "surestream_duplicates_dropped_total", operator="dedup_id") == \
        inp.duplicates
    assert value(m, "flink_dedup_duplicates_dropped", operator="dedup_id") == inp.duplicates
    assert value(m, "surestream_errors_total", operator="source:source",
                 error_type="deserialization_error") == inp.bad_lines
    assert value(m, "surestream_errors_total", operator="event_time",
                 error_type="missing_timestamp") == inp.no_time
    assert value(m, "surestream_dlq_records_total", output="errors") == \
        inp.bad_lines + inp.no_time == lines_in(out / "errors.jsonl")
    # records through the operators: all that parsed, less what each step took out
    parsed = len(inp.lines) - inp.bad_lines
    assert value(m, "surestream_operator_records_in_total", operator="event_time") == parsed
    assert value(m, "surestream_operator_records_out_total", operator="event_time",
                 tag="errors") == inp.no_time
    assert value(m, "surestream_operator_records_out_total", operator="late_trades",
                 tag="late") == inp.late
    to_dedup = parsed - inp.no_time - inp.late
    assert value(m, "surestream_operator_records_in_total", operator="dedup_id") == to_dedup
    assert value(m, "surestream_operator_records_out_total", operator="dedup_id",
                 tag="main") == to_dedup - inp.duplicates
    # every output committed, and what it committed is in its file
    windows = lines_in(out / "windows.jsonl")
    assert value(m, "surestream_output_records_total", output="main", type="file") == \
        value(m, "surestream_output_committed_records_total", output="main") == windows
    # end-to-end latency: one observation per record published (errors outputs aside)
    for source in ("event_time", "ingestion"):
        assert value(m, "surestream_e2e_latency_seconds_count", **{"from": source}) == \
            windows + inp.late
    # checkpoints: each one counted, timed and sized
    taken = value(m, "surestream_checkpoints_total")
    assert taken == runner.store.latest().id
    assert value(m, "surestream_checkpoint_duration_seconds_count") == taken
    assert value(m, "surestream_checkpoint_failures_total") == 0
    assert value(m, "flink_checkpoint_duration_ms") > 0
    assert value(m, "surestream_checkpoint_size_bytes") > 0
    # the input has ended: the watermark is past every time, so no watermark gauge
    assert not matching(m, "surestream_watermark_ms")
    pauses.release()
    run.join(WAIT_S)
    result = run.result
    assert result is not None, run.error
    assert result.records_in == len(inp.lines)
    assert result.counters["duplicates"] == inp.duplicates
    assert result.counters["late"] == inp.late
    assert result.checkpoints == taken
    assert result.written["main"] == windows
