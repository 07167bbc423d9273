"""A sink made to fail for real: its folder turned read-only in the middle of a run.

Tests run as root, whom file permissions do not stop; the pipeline runs as root without
the capability that ignores them (``setpriv --bounding-set=-dac_override``), so a folder
of mode 0555 refuses its writes as it would for any user. The pipeline waits at chosen
records (``retry_gate``) while the test changes the folder's mode: no timing involved.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from retry_harness import (
    expected_ids,
    finish,
    metric,
    reached,
    read_jsonl,
    release,
    start,
    summary,
    wait_for,
    write_input,
    write_spec,
)


def set_writable(folder: Path, writable: bool) -> None:
    """``folder`` and everything in it read-only (0555 / 0444), or writable again."""
    for root, dirs, files in os.walk(folder):
        for name in [*dirs, *files]:
            p = Path(root) / name
            mode = p.stat().st_mode
            p.chmod(mode | stat.S_IWUSR if writable else mode & ~0o222)
    folder.chmod(0o755 if writable else 0o555)


def output_ids(path: Path) -> list[int]:
    return [r["id"] for r in read_jsonl(path)]


def test_dlq_takes_the_batches_a_read_only_folder_refuses_and_every_record_is_in_one_place(
        tmp_path):
    data = write_input(tmp_path / "input.jsonl")
    out = tmp_path / "out"
    out.mkdir()
    dead = tmp_path / "dead" / "main.jsonl"
    spec = write_spec(tmp_path, data, {
        "type": "file", "path": str(out / "main.jsonl"),
        "retry": {"max_attempts": 2, "initial_backoff_ms": 10, "max_backoff_ms": 20},
        "on_sink_failure": "dlq", "dead_letter": {"type": "file", "path": str(dead)}},
        gates=[200, 400])
    proc = start(spec, tmp_path, without_dac_override=True)
    try:
        wait_for(lambda: reached(tmp_path, 200), "record 200", proc)
        set_writable(out, False)  # from here the output's folder refuses every write
        release(tmp_path, 200)
        wait_for(lambda: reached(tmp_path, 400), "record 400", proc)
        set_writable(out, True)  # and takes them again from here
        release(tmp_path, 400)
        code, text = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
        set_writable(out, True)
    assert code == 0, text
    table = output_ids(out / "main.jsonl")
    letters = read_jsonl(dead)
    dead_ids = [r["record"]["id"] for r in letters]
    # every input record in exactly one place: the table or the dead letter, never both
    assert sorted(table + dead_ids) == expected_ids()
    assert table and dead_ids
    # refused from record 200 (its batch was committed after the folder turned read-only),
    # taken again before the end
    assert 200 in dead_ids and 0 in table and 599 in table
    for letter in letters:
        assert letter["output"] == "main"
        assert "Permission denied" in letter["error"]
        assert isinstance(letter["batch_id"], int) and isinstance(letter["failed_at_ms"], int)
        assert letter["record"]["v"] == f"value-{letter['record']['id']}"
    # the batch id is the checkpoint the batch would have been committed at: one per batch
    batches = {r["batch_id"] for r in letters}
    health = summary(tmp_path)["sinks"]["main"]
    assert health["dlq_records"] == len(letters)
    assert health["dlq_batches"] == len(batches)
    assert sorted(health["dead_lettered_checkpoints"]) == sorted(batches)
    assert health["retries"] >= len(batches)  # each batch was tried again before giving up
    assert "dead-lettered" in text  # the run's summary says where the records went


def test_fail_fast_stops_at_the_first_failure_without_retrying(tmp_path):
    data = write_input(tmp_path / "input.jsonl")
    out = tmp_path / "out"
    out.mkdir()
    spec = write_spec(tmp_path, data, {
        "type": "file", "path": str(out / "main.jsonl"),
        "retry": {"max_attempts": 5, "initial_backoff_ms": 10, "max_backoff_ms": 20},
        "fail_fast": True}, gates=[200])
    proc = start(spec, tmp_path, without_dac_override=True)
    try:
        wait_for(lambda: reached(tmp_path, 200), "record 200", proc)
        set_writable(out, False)
        release(tmp_path, 200)
        code, text = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
        set_writable(out, True)
    assert code == 1, text
    assert "output 'main'" in text and str(out / "main.jsonl") in text
    assert "after 1 attempt(s) (fail_fast)" in text
    assert "Permission denied" in text
    committed = output_ids(out / "main.jsonl")
    # the checkpoints before the failure, each record once; nothing after it
    assert committed == list(range(len(committed))) and 0 < len(committed) <= 200
    # and a rerun, the folder writable again, resumes and completes exactly
    code, text = finish(start(spec, tmp_path, without_dac_override=True))
    assert code == 0, text
    assert output_ids(out / "main.jsonl") == expected_ids()


def test_a_crash_after_a_dead_lettered_checkpoint_keeps_every_record_in_one_place(tmp_path):
    """Killed (SIGKILL) when a checkpoint whose batch went to the dead letter is durable but
    not yet committed: the restart commits the dead letter's records of it, once, and the
    table never gets them."""
    data = write_input(tmp_path / "input.jsonl")
    out = tmp_path / "out"
    out.mkdir()
    dead = tmp_path / "dead" / "main.jsonl"
    spec = write_spec(tmp_path, data, {
        "type": "file", "path": str(out / "main.jsonl"),
        "on_sink_failure": "dlq", "dead_letter": {"type": "file", "path": str(dead)}},
        gates=[200, 400])
    # checkpoints take 40 records each: the 8th is taken between records 200 and 400
    proc = start(spec, tmp_path, without_dac_override=True, fault="checkpoint.durable:8")
    try:
        wait_for(lambda: reached(tmp_path, 200), "record 200", proc)
        set_writable(out, False)
        release(tmp_path, 200)
        code, text = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
        set_writable(out, True)
    assert code == -9, text  # killed at the fault point, before record 400
    letters = read_jsonl(dead)
    before = {r["batch_id"] for r in letters}
    release(tmp_path, 400)
    code, text = finish(start(spec, tmp_path, without_dac_override=True))
    assert code == 0, text
    assert "resumed from checkpoint 8" in text
    letters = read_jsonl(dead)
    dead_ids = [r["record"]["id"] for r in letters]
    assert 8 in {r["batch_id"] for r in letters} and 8 not in before
    assert sorted(output_ids(out / "main.jsonl") + dead_ids) == expected_ids()


def delta_ids(path: Path) -> list[int]:
    from deltalake import DeltaTable

    return sorted(DeltaTable(str(path)).to_pyarrow_table(columns=["id"]).column("id")
                  .to_pylist())


def test_pause_rides_out_a_delta_table_folder_that_refuses_commits_exactly(tmp_path):
    """A Delta table's commit (its new files and log entry) refused by a read-only folder:
    the checkpoint is durable, so the run pauses with the breaker open and retries the
    commit -- asking the table first whether it landed -- until the folder takes writes
    again; the table then holds every record once."""
    data = write_input(tmp_path / "input.jsonl")
    out = tmp_path / "out"
    out.mkdir()
    spec = write_spec(tmp_path, data, {
        "type": "delta", "path": str(out / "events"),
        "retry": {"max_attempts": 2, "initial_backoff_ms": 10, "max_backoff_ms": 20},
        "circuit_breaker": {"failure_threshold": 2, "probe_interval_ms": 100},
        "on_sink_failure": "pause"}, gates=[200])
    proc = start(spec, tmp_path, "--metrics-port", "0", without_dac_override=True)
    try:
        wait_for(lambda: reached(tmp_path, 200), "record 200", proc)
        set_writable(out, False)
        release(tmp_path, 200)
        # paused: the breaker open (1), as the run's metrics endpoint says
        wait_for(lambda: metric(tmp_path, "surestream_sink_circuit_state") == 1,
                 "the breaker to open", proc)
        assert proc.poll() is None
        set_writable(out, True)
        code, text = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
        set_writable(out, True)
    assert code == 0, text
    assert delta_ids(out / "events") == expected_ids()
    health = summary(tmp_path)["sinks"]["main"]
    assert health["breaker_opened"] >= 1 and health["circuit"] == "closed"
    assert "Permission denied" in health["last_error"]
