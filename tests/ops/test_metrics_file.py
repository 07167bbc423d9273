"""``metrics_file_writer``: when the file is written, and what a failed write does.

A stand-in telemetry (its ``snapshot``, ``listeners`` and ``pipeline``, nothing else) is
fed snapshots by hand, as the runner would publish them: the file must follow the
checkpoints and the run's end, not every snapshot; a write that fails mid-run is logged
and the run goes on; a file that cannot be written at start stops the start."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from metrics_scrape import parse, value

from surestream.ops.logs import LOGGER
from surestream.ops.metrics import metrics_file_writer


class Telemetry:
    def __init__(self) -> None:
        self.pipeline = "p"
        self.snapshot: dict[str, Any] = {}
        self.listeners: list[Any] = []

    def publish(self, records_in: int, taken: int, state: str = "running",
                failures: int = 0) -> None:
        self.snapshot = {"pipeline": "p", "run_id": "r", "state": state,
                         "started_at_ms": 0, "records_in": records_in,
                         "checkpoints": {"taken": taken, "failures": failures,
                                         "last_success_ms": None, "history": []}}
        for listener in self.listeners:
            listener(self.snapshot)


def records_in(path: Path) -> float | None:
    samples = parse(path.read_text())
    names = {name for name, _, _ in samples}
    return value(samples, "surestream_records_in_total") \
        if "surestream_records_in_total" in names else None


def test_the_file_follows_checkpoints_and_the_end_not_every_snapshot(tmp_path):
    t = Telemetry()
    path = tmp_path / "m" / "run.prom"
    with metrics_file_writer(t, path):
        assert value(parse(path.read_text()), "surestream_up") == 0  # written at start
        t.publish(10, taken=0)
        t.publish(20, taken=0)
        assert records_in(path) is None  # no checkpoint yet: not rewritten
        t.publish(30, taken=1)
        assert records_in(path) == 30
        t.publish(40, taken=1)
        assert records_in(path) == 30
        t.publish(50, taken=1, failures=1)  # a failed checkpoint is news too
        assert records_in(path) == 50
        t.publish(60, taken=2, state="finished")
        assert records_in(path) == 60
        assert value(parse(path.read_text()), "surestream_up") == 0
    assert t.listeners == []


def test_on_exit_the_latest_snapshot_is_written(tmp_path):
    t = Telemetry()
    path = tmp_path / "run.prom"
    with metrics_file_writer(t, path):
        t.publish(10, taken=1)
        t.publish(25, taken=1)  # e.g. a run that failed before its next checkpoint
    assert records_in(path) == 25


def test_a_failed_write_mid_run_is_logged_and_the_run_goes_on(tmp_path):
    t = Telemetry()
    path = tmp_path / "run.prom"
    # a handler on surestream's logger itself: pytest's caplog sits on the root, which
    # (depending on what other tests in this process configured) sees a record once,
    # twice, or not at all
    logger, kept = logging.getLogger(LOGGER), _Kept()
    logger.addHandler(kept)
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with metrics_file_writer(t, path):
            path.unlink()
            path.mkdir()  # the file's place taken by a folder: every write fails
            t.publish(10, taken=1)
            t.publish(20, taken=2)
    finally:
        logger.removeHandler(kept)
        logger.setLevel(level)
    warnings = [r.getMessage() for r in kept.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # once per distinct problem
    assert f"cannot write the metrics file {path}" in warnings[0]


class _Kept(logging.Handler):
    """Keeps every record of the logger it is attached to."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_file_that_cannot_be_written_stops_the_start(tmp_path):
    (tmp_path / "taken").write_text("a file, not a folder")
    with pytest.raises(OSError), metrics_file_writer(Telemetry(), tmp_path / "taken" / "m.prom"):
        pass
