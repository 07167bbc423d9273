"""Triggers over files, in process (issue 14, item 3): what each mode commits, how many
triggers (= checkpoints) it takes, when it stops, and that a rerun reads only new files.

Ten-second windows over events 1 s apart: every record is counted exactly once in a
window or in the late output, and a window still open when a ``once`` / ``available_now``
run stops stays open (in the checkpoint) until later events close it -- windows close by
watermark, never by trigger.
"""

from __future__ import annotations

import threading

import pytest
from trigger_helpers import committed, spec_doc, wait_for, window_totals, write_events

from surestream.model.loader import build_spec
from surestream.runners.local.runner import LocalRunner


def run(doc: dict):
    return LocalRunner(build_spec(doc)).run()


def expected_windows(ids: range, closed_below_ms: int) -> dict:
    """(key, window start) -> (count, sum of v) of the events ``ids``, for the windows that
    end at or before ``closed_below_ms`` (the rest are still open)."""
    out: dict = {}
    for i in ids:
        k = (f"k{i % 3}", (i * 1000) // 10_000 * 10_000)
        if k[1] + 10_000 <= closed_below_ms:
            n, v = out.get(k, (0, 0))
            out[k] = (n + 1, v + i % 7)
    return out


def three_files(tmp) -> None:
    for name, ids in (("a.jsonl", range(0, 100)), ("b.jsonl", range(100, 200)),
                      ("c.jsonl", range(200, 300))):
        write_events(tmp / "in", name, ids)


def test_once_reads_what_is_there_in_one_trigger_and_stops(tmp_path):
    three_files(tmp_path)
    result = run(spec_doc(tmp_path, "once"))
    assert not result.interrupted
    assert result.records_in == 300
    assert result.checkpoints == 1  # one trigger, one checkpoint
    # W = 299 s - 2 s: the windows up to 290 s are final; [290, 300) is still open
    assert window_totals(committed(tmp_path)) == expected_windows(range(300), 290_000)
    assert committed(tmp_path, "late.jsonl") == []


def test_once_run_again_reads_only_the_new_files(tmp_path):
    three_files(tmp_path)
    run(spec_doc(tmp_path, "once"))
    write_events(tmp_path / "in", "d.jsonl", range(300, 400))
    again = run(spec_doc(tmp_path, "once"))
    assert again.restored_from == 1
    assert again.checkpoints == 1
    assert again.records_in == 400  # counted from the start: 100 more than the first run
    assert window_totals(committed(tmp_path)) == expected_windows(range(400), 390_000)
    nothing_new = run(spec_doc(tmp_path, "once"))
    assert nothing_new.records_in == 400 and nothing_new.checkpoints == 1
    assert window_totals(committed(tmp_path)) == expected_windows(range(400), 390_000)


@pytest.mark.parametrize(("limits", "triggers"), [
    ({"max_files_per_trigger": 1}, 3),
    ({"max_files_per_trigger": 2}, 2),
    ({"max_records_per_trigger": 70}, 5),  # 70, 140, 210, 280, 300
    ({"max_records_per_trigger": 250, "max_files_per_trigger": 1}, 3),
])
def test_available_now_splits_what_is_there_into_triggers(tmp_path, limits, triggers):
    three_files(tmp_path)
    result = run(spec_doc(tmp_path, {"available_now": True, **limits}))
    assert not result.interrupted
    assert result.records_in == 300
    assert result.checkpoints == triggers
    assert window_totals(committed(tmp_path)) == expected_windows(range(300), 290_000)
    write_events(tmp_path / "in", "d.jsonl", range(300, 400))
    again = run(spec_doc(tmp_path, {"available_now": True, **limits}))
    assert again.records_in == 400
    assert window_totals(committed(tmp_path)) == expected_windows(range(400), 390_000)


def test_max_files_per_trigger_reads_the_files_in_order_a_trigger_each(tmp_path):
    """With one file a trigger, each checkpoint holds exactly one more file's records."""
    three_files(tmp_path)
    doc = spec_doc(tmp_path, {"available_now": True, "max_files_per_trigger": 1},
                   windows=False)
    runner = LocalRunner(build_spec(doc))
    seen: list[int] = []
    taken = runner.checkpoint

    def checkpoint(*args, **kwargs):
        meta = taken(*args, **kwargs)
        seen.append(runner.records_in)
        return meta

    runner.checkpoint = checkpoint
    runner.run()
    assert seen == [100, 200, 300]
    assert sorted(r["id"] for r in committed(tmp_path)) == list(range(300))


def test_available_now_with_no_files_yet_takes_one_empty_trigger(tmp_path):
    (tmp_path / "in").mkdir()
    result = run(spec_doc(tmp_path, "available_now"))
    assert result.records_in == 0 and result.checkpoints == 1
    write_events(tmp_path / "in", "a.jsonl", range(0, 50))
    again = run(spec_doc(tmp_path, "available_now"))
    assert again.records_in == 50
    assert window_totals(committed(tmp_path)) == expected_windows(range(50), 40_000)


@pytest.mark.parametrize("batch_size", [1, 7, 64, 4096])
@pytest.mark.parametrize("trigger", [None, {"processing_time": "50ms"},
                                     {"processing_time": "20ms",
                                      "max_records_per_trigger": 90}, "continuous"])
def test_bounded_input_gives_the_same_results_whatever_the_trigger(tmp_path, batch_size,
                                                                    trigger):
    """Named files (no glob) are a bounded input: under processing_time and continuous
    the run reads them to their end and closes every window, as without a trigger, and
    the results never depend on the interval or the batch size."""
    three_files(tmp_path)
    files = [str(tmp_path / "in" / n) for n in ("a.jsonl", "b.jsonl", "c.jsonl")]
    doc = spec_doc(tmp_path, trigger, batch_size=batch_size)
    doc["source"]["path"] = files
    result = run(doc)
    assert not result.interrupted
    assert result.records_in == 300
    assert window_totals(committed(tmp_path)) == expected_windows(range(300), 10**9)


def test_a_file_read_and_then_removed_is_refused_naming_it(tmp_path):
    three_files(tmp_path)
    run(spec_doc(tmp_path, "once"))
    (tmp_path / "in" / "b.jsonl").unlink()
    with pytest.raises(Exception, match="b.jsonl was read before checkpoint but is gone"):
        run(spec_doc(tmp_path, "once"))


def test_a_file_read_and_then_changed_is_refused_naming_it(tmp_path):
    three_files(tmp_path)
    run(spec_doc(tmp_path, "once"))
    write_events(tmp_path / "in", "b.jsonl", range(500, 600))
    with pytest.raises(Exception, match="b.jsonl changed since the checkpoint"):
        run(spec_doc(tmp_path, "once"))


def test_continuous_over_a_glob_reads_new_files_as_they_come_until_stopped(tmp_path):
    write_events(tmp_path / "in", "a.jsonl", range(0, 30))
    doc = spec_doc(tmp_path, "continuous", windows=False,
                   checkpoint={"dir": str(tmp_path / "cp"), "interval_ms": 50})
    runner = LocalRunner(build_spec(doc))
    outcome: list = []
    thread = threading.Thread(target=lambda: outcome.append(runner.run()))
    thread.start()
    try:
        wait_for(lambda: len(committed(tmp_path)) == 30, None, "the first file")
        write_events(tmp_path / "in", "b.jsonl", range(30, 75))
        wait_for(lambda: len(committed(tmp_path)) == 75, None, "the second file")
    finally:
        runner.request_stop()
        thread.join(120)
    assert outcome and outcome[0].interrupted
    assert sorted(r["id"] for r in committed(tmp_path)) == list(range(75))


@pytest.mark.parametrize("trigger", ["once", {"available_now": True,
                                              "max_records_per_trigger": 200}])
def test_a_stop_asked_in_a_trigger_checkpoints_and_the_rerun_finishes(tmp_path, trigger):
    """A stop request (Ctrl-C, SIGTERM) in a trigger: the batch in hand ends it, with a
    checkpoint; the next run reads the rest, and the output is a clean run's."""
    three_files(tmp_path)
    doc = spec_doc(tmp_path, trigger)
    runner = LocalRunner(build_spec(doc))
    step = runner.step

    def step_then_stop(*args, **kwargs):
        step(*args, **kwargs)
        if runner.records_in >= 48:
            runner.request_stop()

    runner.step = step_then_stop
    stopped = runner.run()
    assert stopped.interrupted and stopped.resume_from is not None
    assert stopped.records_in == 48  # three batches of 16
    rest = run(doc)
    assert rest.records_in == 300 and not rest.interrupted
    assert window_totals(committed(tmp_path)) == expected_windows(range(300), 290_000)
