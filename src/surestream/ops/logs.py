"""Logs: readable lines by default, one JSON object per line with ``--log-format json``.

Every line carries the same context fields -- pipeline, operator, checkpoint id, partition
(``null`` where a line is not about one) -- so a log search can filter on them whatever
emitted the line, and an ``event`` naming what it reports. Lines from the lower layers
(``logging.getLogger("surestream.<module>")``, which must not import this package) pass
their context with ``extra={"operator": ..., "partition": ...}``; the handler fills in the
run's pipeline and ``None`` for the rest.

What a run logs comes from its telemetry snapshots (``log_run`` listens to them, in the
runner's thread, at most every 0.25 s, after every checkpoint and at the end), so nothing
is logged per record and the runner holds no logging calls:

========  =================  ==========================================================
INFO      run_start          the run begins (its run id)
INFO      restored           it resumed from a checkpoint (``checkpoint_id``)
DEBUG     partition_start    a partition it reads at start, and from which position
INFO      partition_added    a live run found a new partition (``partition``)
DEBUG     partition_ended    a partition ended (``partition``; bounded inputs)
DEBUG     source_ended       every partition of a source ended
WARNING   errors             records sent to the errors outputs, one line per operator
                             (``operator``) with counts by error type: at once the first
                             time, then at most every ``ERRORS_LINE_EVERY_S`` (what came
                             since) and at the end -- never one line per record or batch
INFO      checkpoint         one per checkpoint: ``duration_ms``, ``bytes`` (its state's
                             size), ``bytes_written``, ``records_in``
WARNING   checkpoint_failed  a checkpoint that failed, with the error
INFO      run_end            the run is over (``state``: finished, stopped, failed):
                             records in, records written per output, the counters. A
                             failure's reason is the command's own one line (with
                             ``--log-format json``: an ERROR line, ``run_failed``)
========  =================  ==========================================================

Standard error is shared with the progress display: the handler writes each line with one
``write`` to whatever ``sys.stderr`` is at that moment, so on a terminal the live line's
redirection (``ops/progress``) prints log lines above it instead of through it; with
``--log-format json`` the progress display is off (``surestream run``: the log carries the
run's progress), so JSON lines are never cut by it.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

LOGGER = "surestream"
#: the context every line carries (None where it does not apply)
CONTEXT_FIELDS = ("pipeline", "operator", "checkpoint_id", "partition")
#: an operator sending records to errors gets a line at once, then at most one this often
#: (seconds) with what came since, and one at the end: a steady trickle of bad records is a
#: line every few seconds, not a line per batch
ERRORS_LINE_EVERY_S = 10.0


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"),
            "level": record.levelname, "logger": record.name,
            "event": getattr(record, "event", None),
            "message": record.getMessage()}
        for key in CONTEXT_FIELDS:
            line[key] = getattr(record, key, None)
        extra = getattr(record, "fields", None)
        if extra:
            line.update({k: v for k, v in extra.items() if k not in line})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, UTC).strftime("%H:%M:%S.%f")[:-3]
        context = " ".join(f"{k}={getattr(record, k)}" for k in CONTEXT_FIELDS
                           if getattr(record, k, None) is not None)
        text = f"{when} {record.levelname:<7} {record.getMessage()}"
        line = f"{text}  [{context}]" if context else text
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class _Context(logging.Filter):
    """Every line gets the context fields: the run's pipeline where the emitter did not
    name one, None for the others it did not set."""

    def __init__(self) -> None:
        super().__init__()
        self.pipeline: str | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        for key in CONTEXT_FIELDS:
            if getattr(record, key, None) is None:
                setattr(record, key, self.pipeline if key == "pipeline" else None)
        return True


class _StandardError(logging.StreamHandler):
    """Writes to ``sys.stderr`` as it is when a line is written, not when the handler was
    made: a live progress line redirects it to print above itself."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:  # the base class sets it; always stderr
        pass


_context = _Context()


def configure_logging(fmt: str = "text", level: str = "WARNING",
                      pipeline: str | None = None) -> None:
    """surestream's log lines to standard error, as ``fmt`` (text | json), from ``level``;
    ``pipeline``: the context of lines that do not name one. Call it before the runner is
    built: opening the inputs may log (a topic that does not exist yet)."""
    _context.pipeline = pipeline
    logger = logging.getLogger(LOGGER)
    for h in list(logger.handlers):
        logger.removeHandler(h)
    handler = _StandardError()
    handler.setFormatter(_JsonFormatter() if fmt == "json" else _TextFormatter())
    handler.addFilter(_context)
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False


def log(level: int, message: str, *, event: str | None = None, pipeline: str | None = None,
        operator: str | None = None, checkpoint_id: int | None = None,
        partition: str | None = None, **fields: Any) -> None:
    """One line with the context fields set (and ``fields`` added to a JSON line)."""
    logging.getLogger(LOGGER).log(level, message, extra={
        "event": event, "pipeline": pipeline, "operator": operator,
        "checkpoint_id": checkpoint_id, "partition": partition, "fields": fields})


class _RunLog:
    """What one run's snapshots tell, as log lines (see the module docstring)."""

    def __init__(self, telemetry: Any) -> None:
        self.telemetry = telemetry
        self.pipeline: str = telemetry.pipeline
        self.started = False
        self.checkpoints_seen = 0
        self.partitions: set[tuple[str, str]] = set()
        self.ended: set[tuple[str, str]] = set()
        self.sources_ended: set[str] = set()
        #: error records already logged, by "operator|error_type"
        self.errors: dict[str, int] = {}
        #: when (monotonic) an operator's next errors line may be written
        self.next_errors_line: dict[str, float] = {}

    def __call__(self, snap: dict[str, Any]) -> None:
        if not self.started:
            self.started = True
            self._start(snap)
        self._partitions(snap)
        self._errors(snap)
        self._checkpoints(snap)

    def _line(self, level: int, event: str, message: str, **context: Any) -> None:
        log(level, message, event=event, pipeline=self.pipeline, **context)

    def _start(self, snap: dict[str, Any]) -> None:
        restored = getattr(self.telemetry, "restored_from", None)
        if restored is not None:
            self._line(logging.INFO, "restored",
                       f"resumed from checkpoint {restored} ({snap['records_in']:,} records "
                       "in before it)", checkpoint_id=restored,
                       records_in=snap["records_in"])

    def _partitions(self, snap: dict[str, Any]) -> None:
        first = not self.partitions
        for p in snap["partitions"]:
            key = (p["source"], p["partition"])
            if key not in self.partitions:
                self.partitions.add(key)
                where = p.get("position")
                if first:
                    self._line(logging.DEBUG, "partition_start",
                               f"reading partition {p['partition']} of source "
                               f"{p['source']!r} from position {where}",
                               partition=p["partition"], source=p["source"], position=where)
                else:
                    self._line(logging.INFO, "partition_added",
                               f"new partition {p['partition']} of source {p['source']!r} "
                               f"is read too (at position {where})",
                               partition=p["partition"], source=p["source"], position=where)
            if p.get("ended") and key not in self.ended:
                self.ended.add(key)
                self._line(logging.DEBUG, "partition_ended",
                           f"partition {p['partition']} of source {p['source']!r} ended at "
                           f"position {p.get('position')}", partition=p["partition"],
                           source=p["source"], position=p.get("position"))
        by_source: dict[str, list[bool]] = {}
        for p in snap["partitions"]:
            by_source.setdefault(p["source"], []).append(bool(p.get("ended")))
        for source, ended in by_source.items():
            if all(ended) and source not in self.sources_ended:
                self.sources_ended.add(source)
                self._line(logging.DEBUG, "source_ended",
                           f"source {source!r} ended (all {len(ended)} partition(s))",
                           source=source)

    def _errors(self, snap: dict[str, Any]) -> None:
        """A WARNING for an operator whose records went to errors: at once the first time,
        then at most every ``ERRORS_LINE_EVERY_S`` with what came since, and at the end."""
        now = snap["errors"]["by_reason"]
        pending: dict[str, dict[str, int]] = {}
        for reason, n in now.items():
            added = n - self.errors.get(reason, 0)
            if added > 0:
                operator, _, kind = reason.partition("|")
                pending.setdefault(operator, {})[kind] = added
        clock = time.monotonic()
        final = snap["state"] != "running"
        for operator, kinds in pending.items():
            due = self.next_errors_line.get(operator)
            if not final and due is not None and clock < due:
                continue
            self.next_errors_line[operator] = clock + ERRORS_LINE_EVERY_S
            for kind, n in kinds.items():
                reason = f"{operator}|{kind}"
                self.errors[reason] = self.errors.get(reason, 0) + n
            total = sum(kinds.values())
            so_far = sum(n for reason, n in self.errors.items()
                         if reason.partition("|")[0] == operator)
            detail = ", ".join(f"{kind} {n:,}" for kind, n in sorted(kinds.items()))
            self._line(logging.WARNING, "errors",
                       f"{total:,} record(s) of operator {operator!r} went to errors "
                       f"({detail}); {so_far:,} so far", operator=operator,
                       records=total, by_error_type=kinds, total_so_far=so_far)

    def _checkpoints(self, snap: dict[str, Any]) -> None:
        cps = snap["checkpoints"]
        seen = cps["taken"] + cps["failures"]
        new = seen - self.checkpoints_seen
        self.checkpoints_seen = seen
        for cp in cps["history"][-new:] if new > 0 else []:
            if cp.get("ok"):
                size = cp.get("bytes_total") or 0
                self._line(logging.INFO, "checkpoint",
                           f"checkpoint {cp['id']} taken in {cp['duration_ms']:.1f} ms: "
                           f"{size:,} bytes of state ({cp.get('bytes_written') or 0:,} "
                           f"written), {cp.get('records_in') or 0:,} records in"
                           + (", final" if cp.get("finished") else ""),
                           checkpoint_id=cp["id"], duration_ms=cp["duration_ms"],
                           bytes=size, bytes_written=cp.get("bytes_written"),
                           records_in=cp.get("records_in"), finished=cp.get("finished"))
            else:
                self._line(logging.WARNING, "checkpoint_failed",
                           f"checkpoint {cp['id']} failed: {cp.get('error')}",
                           checkpoint_id=cp["id"], error=cp.get("error"))

    def end(self) -> None:
        snap = self.telemetry.snapshot or {}
        state = self.telemetry.state
        written = {o["tag"]: o["written"] for o in snap.get("outputs", [])}
        outputs = ", ".join(f"{tag} {n:,}" for tag, n in written.items())
        counters = snap.get("counters", {})
        self._line(logging.INFO, "run_end",
                   f"pipeline {self.pipeline!r} {state}: {snap.get('records_in', 0):,} "
                   f"records in; written: {outputs or 'nothing'}; "
                   + ", ".join(f"{k} {v:,}" for k, v in counters.items()),
                   state=state, run_id=self.telemetry.run_id,
                   records_in=snap.get("records_in"), written=written, counters=counters,
                   checkpoints=snap.get("checkpoints", {}).get("taken"))


@contextmanager
def log_run(telemetry: Any) -> Iterator[None]:
    """Log a run from its snapshots: its start, what happens to its partitions, its error
    records, each checkpoint, its end (see the module docstring)."""
    run = _RunLog(telemetry)
    _context.pipeline = telemetry.pipeline
    log(logging.INFO, f"pipeline {telemetry.pipeline!r} starting (run {telemetry.run_id})",
        event="run_start", pipeline=telemetry.pipeline, run_id=telemetry.run_id)
    telemetry.listeners.append(run)
    try:
        yield
    finally:
        telemetry.listeners.remove(run)
        run.end()
