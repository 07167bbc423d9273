"""Logs: readable lines by default, one JSON object per line with ``--log-format json``.

Every line carries the same context fields -- pipeline, operator, checkpoint id, partition
(``None`` where a line is not about one) -- so a log search can filter on them whatever
emitted the line. ``log_run`` subscribes to a run's telemetry and writes one INFO line per
checkpoint (its id, duration and size), one WARNING per failed checkpoint, and the run's
start and end.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import orjson

LOGGER = "surestream"
#: the context every line carries (None where it does not apply)
CONTEXT_FIELDS = ("pipeline", "operator", "checkpoint_id", "partition")


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"),
            "level": record.levelname, "logger": record.name,
            "message": record.getMessage()}
        for key in CONTEXT_FIELDS:
            line[key] = getattr(record, key, None)
        extra = getattr(record, "fields", None)
        if extra:
            line.update(extra)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, UTC).strftime("%H:%M:%S.%f")[:-3]
        context = " ".join(f"{k}={getattr(record, k)}" for k in CONTEXT_FIELDS
                           if getattr(record, k, None) is not None)
        text = f"{when} {record.levelname:<7} {record.getMessage()}"
        return f"{text}  [{context}]" if context else text


def configure_logging(fmt: str = "text", level: str = "WARNING") -> None:
    """surestream's log lines to standard error, as ``fmt`` (text | json), from ``level``."""
    logger = logging.getLogger(LOGGER)
    for h in list(logger.handlers):
        logger.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if fmt == "json" else _TextFormatter())
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False


def log(level: int, message: str, *, pipeline: str | None = None,
        operator: str | None = None, checkpoint_id: int | None = None,
        partition: str | None = None, **fields: Any) -> None:
    """One line with the context fields set (and ``fields`` added to a JSON line)."""
    logging.getLogger(LOGGER).log(level, message, extra={
        "pipeline": pipeline, "operator": operator, "checkpoint_id": checkpoint_id,
        "partition": partition, "fields": fields})


@contextmanager
def log_run(telemetry: Any) -> Iterator[None]:
    """Log a run's start, each checkpoint (INFO), each failed one (WARNING), its end."""
    pipeline = telemetry.pipeline
    seen = {"checkpoints": 0, "failures": 0}

    def on_snapshot(snap: dict[str, Any]) -> None:
        cps = snap["checkpoints"]
        new = cps["taken"] + cps["failures"] - seen["checkpoints"] - seen["failures"]
        for cp in cps["history"][-new:] if new > 0 else []:
            if cp.get("ok"):
                log(logging.INFO, f"checkpoint {cp['id']} taken in {cp['duration_ms']:.1f} ms"
                    f", {cp.get('bytes_written') or 0:,} bytes written "
                    f"({cp.get('bytes_total') or 0:,} bytes of state), "
                    f"{cp.get('records_in') or 0:,} records in",
                    pipeline=pipeline, checkpoint_id=cp["id"],
                    duration_ms=cp["duration_ms"], bytes_written=cp.get("bytes_written"),
                    bytes_total=cp.get("bytes_total"), records_in=cp.get("records_in"))
            else:
                log(logging.WARNING, f"checkpoint {cp['id']} failed: {cp.get('error')}",
                    pipeline=pipeline, checkpoint_id=cp["id"], error=cp.get("error"))
        seen["checkpoints"], seen["failures"] = cps["taken"], cps["failures"]

    log(logging.INFO, f"pipeline {pipeline!r} starting (run {telemetry.run_id})",
        pipeline=pipeline, run_id=telemetry.run_id)
    telemetry.listeners.append(on_snapshot)
    try:
        yield
    finally:
        telemetry.listeners.remove(on_snapshot)
        snap = telemetry.snapshot or {}
        log(logging.INFO, f"pipeline {pipeline!r} {telemetry.state}: "
            f"{snap.get('records_in', 0):,} records in, counters {snap.get('counters', {})}",
            pipeline=pipeline, state=telemetry.state, records_in=snap.get("records_in"),
            counters=snap.get("counters"))
