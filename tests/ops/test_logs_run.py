"""`surestream run --log-format json|text --log-level L`: structured lines with the same
context in every one, exactly one INFO line per checkpoint (duration and size), error
records summarized per operator, a resume named with its checkpoint, the run's end with its
counts -- and nothing else on standard error cutting a JSON line."""

from __future__ import annotations

import json
import re

from status_logs_helpers import BAD, GOOD, INTERVAL, line_count, surestream, write_pipeline

from surestream.runners.local.checkpoint_store import CheckpointStore

CONTEXT = {"pipeline", "operator", "checkpoint_id", "partition"}
#: what `surestream run` prints after the run: the checkpoint it resumed from, the summary
#: table (header, rule, one row per output)
SUMMARY_LINE = re.compile(r"^(  resumed from checkpoint \d+|output\s+records\s+where|─+|"
                          r"\S+\s+[\d,]+\s+\S+)\s*$")


def json_lines(stderr: str) -> list[dict]:
    """The log lines of ``stderr``; every other line must be one of the command's summary
    after the run's last log line."""
    logs, after_end = [], False
    for line in stderr.splitlines():
        if line.startswith("{"):
            assert not after_end, f"a log line after the summary: {line}"
            logs.append(json.loads(line))
        else:
            assert SUMMARY_LINE.match(line), f"neither a JSON log line nor the summary: " \
                                             f"{line!r}"
            after_end = True
    return logs


def checkpoints_taken(folder) -> int:
    """Checkpoint ids count from 1 in a fresh folder: the newest is how many were taken."""
    return CheckpointStore(folder / "cp").latest().id


def test_json_logs_carry_context_and_one_line_per_checkpoint(tmp_path) -> None:
    spec = write_pipeline(tmp_path)
    r = surestream("run", str(spec), "--log-format", "json", "--log-level", "INFO")
    assert r.returncode == 0, r.stderr
    logs = json_lines(r.stderr)
    assert logs and all(set(line) >= CONTEXT and line["pipeline"] == "logs-demo"
                        for line in logs)
    assert {line["level"] for line in logs} <= {"INFO", "WARNING"}

    taken = checkpoints_taken(tmp_path)
    assert taken >= (GOOD + BAD) // INTERVAL
    checkpoints = [line for line in logs if line["event"] == "checkpoint"]
    assert [c["checkpoint_id"] for c in checkpoints] == list(range(1, taken + 1))
    for c in checkpoints:
        assert c["level"] == "INFO" and c["duration_ms"] > 0 and c["bytes"] > 0
        assert c["operator"] is None and c["partition"] is None
    assert checkpoints[-1]["finished"] is True

    # error records: summarized per operator, never one line per record
    errors = [line for line in logs if line["event"] == "errors"]
    assert errors and all(e["level"] == "WARNING" and e["operator"] == "source:source"
                          for e in errors)
    assert sum(e["by_error_type"]["deserialization_error"] for e in errors) == BAD
    assert len(errors) <= BAD

    end = logs[-1]
    assert end["event"] == "run_end" and end["state"] == "finished"
    assert end["records_in"] == GOOD + BAD
    assert end["written"] == {"main": line_count(tmp_path / "out" / "main.jsonl"),
                              "errors": BAD}
    assert logs[0]["event"] == "run_start"


def test_text_logs_are_readable_lines(tmp_path) -> None:
    spec = write_pipeline(tmp_path)
    r = surestream("run", str(spec), "--log-level", "INFO")
    assert r.returncode == 0, r.stderr
    assert not any(line.startswith("{") for line in r.stderr.splitlines())
    found = [int(m.group(1)) for m in re.finditer(
        r"^\d\d:\d\d:\d\d\.\d{3} INFO +checkpoint (\d+) taken in [\d.]+ ms: [\d,]+ bytes of "
        r"state .*\[pipeline=logs-demo checkpoint_id=\1\]$", r.stderr, flags=re.MULTILINE)]
    assert found == list(range(1, checkpoints_taken(tmp_path) + 1))
    assert re.search(r"^\S+ WARNING 1 record\(s\) of operator 'source:source' went to "
                     r"errors \(deserialization_error 1\)", r.stderr, flags=re.MULTILINE)


def test_warning_level_shows_no_info(tmp_path) -> None:
    spec = write_pipeline(tmp_path)
    r = surestream("run", str(spec), "--log-format", "json", "--log-level", "WARNING")
    assert r.returncode == 0, r.stderr
    logs = json_lines(r.stderr)
    assert {line["level"] for line in logs} == {"WARNING"}
    assert {line["event"] for line in logs} == {"errors"}


def test_a_resumed_run_names_its_checkpoint_and_partitions(tmp_path) -> None:
    """Killed after a few checkpoints, run again at DEBUG: the resume names its checkpoint
    (INFO); the partition read, from where, and where it ended (DEBUG)."""
    spec = write_pipeline(tmp_path)
    killed = surestream("run", str(spec), env={"SURESTREAM_FAULT": "batch.mid:17"})
    assert killed.returncode == -9
    latest = CheckpointStore(tmp_path / "cp").latest()
    assert latest.id >= 2
    r = surestream("run", str(spec), "--log-format", "json", "--log-level", "DEBUG")
    assert r.returncode == 0, r.stderr
    logs = json_lines(r.stderr)
    restored = [line for line in logs if line["event"] == "restored"]
    assert [(line["level"], line["checkpoint_id"]) for line in restored] == \
        [("INFO", latest.id)]
    assert logs.index(restored[0]) < min(i for i, line in enumerate(logs)
                                         if line["event"] == "checkpoint")
    # the checkpoints after it: one line each, numbered on from it
    ids = [line["checkpoint_id"] for line in logs if line["event"] == "checkpoint"]
    assert ids == list(range(latest.id + 1, checkpoints_taken(tmp_path) + 1))

    path = str((tmp_path / "in.jsonl").resolve())
    (_, restored_position, _), = latest.positions["partitions"]
    by_event = {line["event"]: line for line in logs}
    start = by_event["partition_start"]
    assert (start["level"], start["partition"], start["position"]) == \
        ("DEBUG", path, restored_position)
    ended = by_event["partition_ended"]
    assert (ended["level"], ended["partition"], ended["position"]) == \
        ("DEBUG", path, (tmp_path / "in.jsonl").stat().st_size)
    assert by_event["source_ended"]["source"] == "source"


def test_a_failure_is_one_json_error_line(tmp_path) -> None:
    spec = write_pipeline(tmp_path)
    text = spec.read_text().replace("out/main.jsonl", "blocker/main.jsonl")
    spec.write_text(text)
    (tmp_path / "blocker").write_text("a file, not a folder")
    r = surestream("run", str(spec), "--log-format", "json", "--log-level", "INFO")
    assert r.returncode == 1
    logs = [json.loads(line) for line in r.stderr.splitlines()]  # every line parses
    failed = [line for line in logs if line["event"] == "run_failed"]
    assert len(failed) == 1 and failed[0]["level"] == "ERROR"
    assert str(tmp_path / "blocker" / "main.jsonl") in failed[0]["message"]
    assert logs[-1]["event"] == "run_end" and logs[-1]["state"] == "failed"
