"""Triggers in a ``surestream run`` process (issue 14, item 3): a ``processing_time`` run
over a folder picks up files added while it runs and stops cleanly on SIGTERM; a run
killed (SIGKILL) mid-way and restarted commits exactly what a run never killed commits,
for ``processing_time`` and ``available_now``."""

from __future__ import annotations

import threading

import pytest
from trigger_helpers import (
    checkpoint_lines,
    committed,
    spec_doc,
    start,
    stop,
    surestream,
    wait_for,
    window_totals,
    write_events,
    write_spec,
)

from surestream.model.loader import build_spec
from surestream.runners.local.runner import LocalRunner


def test_processing_time_picks_up_new_files_and_stops_on_sigterm(tmp_path):
    write_events(tmp_path / "in", "a.jsonl", range(0, 40))
    doc = spec_doc(tmp_path, {"processing_time": "100ms"}, windows=False,
                   source=str(tmp_path / "in"))  # a folder: its files
    proc = start("run", str(write_spec(tmp_path, doc)))
    try:
        wait_for(lambda: len(committed(tmp_path)) == 40, proc, "the first file")
        write_events(tmp_path / "in", "b.jsonl", range(40, 100))
        wait_for(lambda: len(committed(tmp_path)) == 100, proc, "the second file")
        write_events(tmp_path / "in", "c.jsonl", range(100, 130))
        wait_for(lambda: len(committed(tmp_path)) == 130, proc, "the third file")
    finally:
        code, err = stop(proc)
    assert code == 0, err  # asked to stop, everything committed
    assert sorted(r["id"] for r in committed(tmp_path)) == list(range(130))
    assert checkpoint_lines(tmp_path) >= 3  # a trigger that found nothing takes none
    # run again (once): nothing new, nothing written twice
    doc["trigger"] = "once"
    again = surestream("run", str(write_spec(tmp_path, doc)))
    assert again.returncode == 0, again.stderr
    assert sorted(r["id"] for r in committed(tmp_path)) == list(range(130))


def test_processing_time_refuses_a_file_changed_after_it_was_read(tmp_path):
    """(In a thread: the refusal is the run's exception.)"""
    write_events(tmp_path / "in", "a.jsonl", range(0, 40))
    doc = spec_doc(tmp_path, {"processing_time": "100ms"}, windows=False)
    runner = LocalRunner(build_spec(doc))
    failure: list[BaseException] = []

    def run() -> None:
        try:
            runner.run()
        except Exception as e:  # noqa: BLE001 - the outcome under test
            failure.append(e)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        wait_for(lambda: len(committed(tmp_path)) == 40, None, "the first file")
        with open(tmp_path / "in" / "a.jsonl", "a") as f:
            f.write('{"id": 99, "key": "k0", "ts": 99000, "v": 1}\n')
        thread.join(120)
    finally:
        runner.request_stop()
        thread.join(120)
    assert failure, "the run went on over a changed file"
    assert "a.jsonl changed after it was read to its end" in str(failure[0])


def files_for_kill_tests(tmp_path) -> None:
    for n, lo in enumerate(range(0, 400, 100)):
        write_events(tmp_path / "in", f"part-{n}.jsonl", range(lo, lo + 100))


@pytest.mark.parametrize("fault", ["batch.mid:9", "checkpoint.durable:2"])
def test_available_now_killed_and_restarted_commits_what_a_clean_run_does(tmp_path, fault):
    trigger = {"available_now": True, "max_records_per_trigger": 60,
               "max_files_per_trigger": 2}
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    for tmp in (clean, killed):
        files_for_kill_tests(tmp)
    LocalRunner(build_spec(spec_doc(clean, trigger))).run()  # (in process: quicker)
    spec = write_spec(killed, spec_doc(killed, trigger))
    died = surestream("run", str(spec), env={"SURESTREAM_FAULT": fault})
    assert died.returncode == -9, died.stderr  # SIGKILL
    again = surestream("run", str(spec))
    assert again.returncode == 0, again.stderr
    assert window_totals(committed(killed)) == window_totals(committed(clean))
    assert committed(killed) == committed(clean)
    assert committed(killed, "late.jsonl") == committed(clean, "late.jsonl")


def test_processing_time_killed_and_restarted_commits_what_a_clean_run_does(tmp_path):
    """The clean run is ``available_now`` with the same limits: the same triggers over the
    same files; the processing_time run is killed in its third trigger, restarted, and
    stopped with SIGTERM once it has caught up."""
    limits = {"max_records_per_trigger": 60, "max_files_per_trigger": 2}
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    for tmp in (clean, killed):
        files_for_kill_tests(tmp)
    LocalRunner(build_spec(spec_doc(clean, {"available_now": True, **limits}))).run()
    want = committed(clean)
    spec = write_spec(killed, spec_doc(killed, {"processing_time": "50ms", **limits}))
    died = surestream("run", str(spec), env={"SURESTREAM_FAULT": "batch.mid:10"})
    assert died.returncode == -9, died.stderr
    assert 0 < len(committed(killed)) < len(want)  # killed mid-way
    proc = start("run", str(spec))
    try:
        wait_for(lambda: len(committed(killed)) >= len(want), proc, "the restarted run")
    finally:
        code, err = stop(proc)
    assert code == 0, err
    assert committed(killed) == want
    assert committed(killed, "late.jsonl") == committed(clean, "late.jsonl")
