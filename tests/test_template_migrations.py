"""The hardening plan's migration "add deduplication to a running job": a job that ran
with checkpoints and no dedup step is stopped, its spec gains a keyed_dedup step, and it
resumes from the old checkpoint. The new step starts with empty state, says so in the log,
and from then on the output holds no duplicates; nothing is lost."""

from __future__ import annotations

import json
import logging

import yaml
from template_example import lmp_feed, write_feed

from surestream.model.loader import load_spec
from surestream.runners.local.runner import LocalRunner

KEY = ("iso", "node", "interval_start")

V1 = """
pipeline: add-dedup
source: {type: file, path: lmp.jsonl, format: jsonl}
steps:
  - {type: watermark, name: event_time, timestamp_column: interval_start,
     max_out_of_orderness_ms: 600000}
  - {type: late_data_side_output, name: quarantine_late, output_tag: late}
outputs:
  main: {type: file, path: out/curated.jsonl}
  late: {type: file, path: out/late.jsonl}
checkpoint: {dir: out/checkpoints, interval_records: 20}
runtime: {batch_size: 10}
"""
DEDUP = {"type": "keyed_dedup", "name": "dedup", "key_fields": list(KEY),
         "time_window_ms": 600000, "state_ttl_ms": 3600000}


class Said(logging.Handler):
    """The lines logged while it is attached."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[tuple[int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.levelno, record.getMessage()))


def run_until_stopped(spec, batches: int):
    """Run, and ask the runner to stop (as Ctrl-C does: a final checkpoint) after
    ``batches`` micro-batches."""
    seen = []

    def progress(_):
        seen.append(1)
        if len(seen) == batches:
            runner.request_stop()

    runner = LocalRunner(spec, progress=progress)
    return runner.run()


def keys(lines: list[dict]) -> list[tuple]:
    return [tuple(r[k] for k in KEY) for r in lines]


def test_a_dedup_step_added_to_a_stopped_job_starts_empty_and_dedups_from_then_on(
        tmp_path):
    records, truth = lmp_feed()
    write_feed(tmp_path / "lmp.jsonl", records)
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(V1)
    first = run_until_stopped(load_spec(spec_path), batches=8)
    assert first.interrupted
    written_before = first.written["main"]
    curated = tmp_path / "out/curated.jsonl"
    before = [json.loads(x) for x in curated.open()]
    assert len(before) == written_before
    assert len(set(keys(before))) < len(before)  # no dedup yet: duplicates went through

    doc = yaml.safe_load(V1)
    doc["steps"].append(DEDUP)
    spec_path.write_text(yaml.safe_dump(doc))
    said = Said()  # on the logger itself: an earlier test may have configured logging
    logger = logging.getLogger("surestream.checkpoints")
    logger.addHandler(said)
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        runner = LocalRunner(load_spec(spec_path))
        second = runner.run()
    finally:
        logger.removeHandler(said)
        logger.setLevel(level)
    assert runner.restored is not None  # it resumed from the old checkpoint
    assert runner.started_empty == ["dedup"]
    lines = [m for level, m in said.lines if "new since checkpoint" in m]
    assert len(lines) == 1 and "'dedup'" in lines[0] and "empty state" in lines[0]
    assert [level for level, m in said.lines if m in lines] == [logging.WARNING]
    assert not second.interrupted

    everything = [json.loads(x) for x in curated.open()]
    after = everything[written_before:]
    assert len(set(keys(after))) == len(after)  # no duplicates from then on
    # nothing lost: every on-time key of the input is in the output
    assert set(keys(everything)) == {k for k in keys(records) if k[1] != "LATE"}
    assert len(set(keys(everything))) == truth["curated"]
    # a duplicate written twice is one whose first copy came before the migration only
    doubled = {k for k in keys(everything) if keys(everything).count(k) > 1}
    assert doubled <= set(keys(before))
