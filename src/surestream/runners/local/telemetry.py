"""What a run is doing, for the people watching it: counts, timings, state sizes, checkpoints.

The runner feeds a ``RunTelemetry`` from its loop (a few counter additions per operator per
step, nothing per record) and, at most every ``PUBLISH_INTERVAL_S`` and after every
checkpoint, *publishes* a snapshot: one plain, JSON-ready dict built in the runner's own
thread. Everything that reads a run from outside -- the Prometheus endpoint
(``ops/metrics``), the web view (``ops/web``), ``surestream status``, the metrics file --
reads only the last published snapshot (an attribute swapped whole, so a reader on another
thread never sees half an update), never the operators themselves.

Telemetry is never part of a result: the wall clock it reads (rates, latencies, checkpoint
durations) goes only into snapshots and the run history. The history
(``RUN_HISTORY_FILE`` in the checkpoint folder, JSON lines) keeps the run's course -- the
spec, samples of the counters and the watermark, every checkpoint, the end, with the
process's per-operator counts at each checkpoint and at the end -- for ``surestream
report``; it is written at checkpoints only.

Snapshot shape (``RunTelemetry.snapshot``; docs/metrics.md lists the metrics made of it)::

    pipeline, run_id, pid, state ("running" | "finished" | "stopped" | "failed"), live,
    started_at_ms, now_ms, uptime_s, records_in, records_per_s, watermark, watermark_lag_ms,
    counters {late, duplicates, errors, ...},
    operators [{name, stream, kind, records_in, records_out, emitted {tag: n},
                seconds, records_per_s, counters {...}, state {keys, bytes, windows, ...},
                watermark, watermark_lag_ms (watermark steps only),
                late {count, min_ms, max_ms} (late steps: the job's late records),
                quality [{rule, kind, severity, action, checked, failed, quarantined}]
                (data_quality steps)}],
    partitions [{source, partition, index, position, ended, watermark, lag_ms, kafka {...}}],
    outputs [{tag, type, written, committed, records_per_s, sink {...},
              by_severity {value: n} (outputs with a ``severity`` column: alerts)}],
    checkpoints {taken, failures, last_success_ms, last_failure, history [...]},
    errors {by_reason {"operator|error_type": n}, latest [{...}]},
    histograms {operator_seconds {op: H}, checkpoint_seconds H,
                latency_event_time_seconds H, latency_ingestion_seconds H}
      where H = {buckets [upper bounds], counts [per bucket, non-cumulative; last = +Inf],
                 sum, count}
"""

from __future__ import annotations

import bisect
import contextlib
import json
import os
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from surestream.model.batch import NEG_INF, POS_INF

#: an output with this column counts its records by value (alerts fired by severity)
SEVERITY_COLUMN = "severity"
#: how often (wall time) the runner builds a snapshot between checkpoints
PUBLISH_INTERVAL_S = 0.25
#: the run's course, beside its checkpoints, for ``surestream report``
RUN_HISTORY_FILE = "run-history.jsonl"
#: a history sample at most this often (wall time); checkpoints always add one
HISTORY_SAMPLE_S = 0.2
#: rates (records/s) are taken over at least this much wall time
RATE_WINDOW_S = 1.0
#: error records kept for the web view (the newest)
LATEST_ERRORS = 20
#: checkpoints kept in the snapshot's history
CHECKPOINT_HISTORY = 50

#: upper bounds (seconds) of the histograms: operator time per step, checkpoint duration
STEP_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                2.5, 5.0)
CHECKPOINT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                      60.0, 120.0)
#: end-to-end latency: from event time or from ingestion to the commit that published it
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                   300.0, 900.0, 3600.0, 86400.0)


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Histogram:
    """Counts per bucket (non-cumulative; the last one is +Inf), their sum and count."""

    buckets: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    sum: float = 0.0

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.buckets) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.sum += value

    def observe_many(self, values: np.ndarray) -> None:
        """Many observations at once (vectorized): ``values`` in the buckets' unit."""
        if not len(values):
            return
        idx = np.searchsorted(np.asarray(self.buckets), values, side="left")
        for i, n in enumerate(np.bincount(idx, minlength=len(self.counts)).tolist()):
            self.counts[i] += n
        self.sum += float(values.sum())

    def observe_weighted(self, value: float, weight: int) -> None:
        """``weight`` observations of one value (a step's records)."""
        self.counts[bisect.bisect_left(self.buckets, value)] += weight
        self.sum += value * weight

    def to_dict(self) -> dict[str, Any]:
        return {"buckets": list(self.buckets), "counts": list(self.counts),
                "sum": self.sum, "count": sum(self.counts)}


@dataclass
class OperatorTally:
    """One operator's figures since the process started."""

    name: str
    stream: str
    kind: str
    records_in: int = 0
    records_out: int = 0
    emitted: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    histogram: Histogram = field(default_factory=lambda: Histogram(STEP_BUCKETS))


class RunTelemetry:
    """Fed by the runner's loop; publishes snapshots (see the module docstring)."""

    def __init__(self, pipeline: str, *, live: bool = False) -> None:
        self.pipeline = pipeline
        self.live = live
        self.run_id = uuid.uuid4().hex[:12]
        self.started_ms = now_ms()
        self.state = "running"
        #: the checkpoint the run resumed from (None: it started afresh), once started
        self.restored_from: int | None = None
        self.operators: dict[str, OperatorTally] = {}
        self.checkpoint_seconds = Histogram(CHECKPOINT_BUCKETS)
        self.latency_event = Histogram(LATENCY_BUCKETS)
        self.latency_ingest = Histogram(LATENCY_BUCKETS)
        self.checkpoints: deque[dict[str, Any]] = deque(maxlen=CHECKPOINT_HISTORY)
        self.checkpoints_taken = 0
        self.checkpoint_failures = 0
        self.last_success_ms: int | None = None
        self.last_failure: str | None = None
        self.errors_by_reason: dict[str, int] = {}
        #: output tag -> severity -> records written (outputs with a severity column)
        self.severities: dict[str, dict[str, int]] = {}
        self.latest_errors: deque[dict[str, Any]] = deque(maxlen=LATEST_ERRORS)
        #: what the open checkpoint's outputs hold, for the latencies at its commit:
        #: event times written, and (read wall time, records) per step
        self._open_event_times: list[np.ndarray] = []
        self._open_steps: list[tuple[int, int]] = []
        self._step_read_ms = 0
        self._step_out = 0
        self.snapshot: dict[str, Any] = {}
        self._last_publish = 0.0
        #: recent snapshots' (time, records in, per-operator, per-output counts): rates are
        #: taken against the newest one at least ``RATE_WINDOW_S`` old, so two snapshots a
        #: few ms apart (a checkpoint's right after a periodic one) give no wild rate
        self._rate_refs: deque[tuple[float, int, dict[str, int], dict[str, int]]] = deque()
        self._history: list[dict[str, Any]] = []
        self._last_sample = 0.0
        #: called with every published snapshot (``--metrics-file``, logs); runner thread
        self.listeners: list[Any] = []

    # -- fed by the loop (hot path: keep it to additions) --------------------------------
    def declare_operator(self, name: str, stream: str, kind: str) -> None:
        self.operators[name] = OperatorTally(name, stream, kind)

    def step_started(self) -> None:
        self._step_read_ms = now_ms()
        self._step_out = 0

    def operator_step(self, name: str, records_in: int, outputs: dict[str, Any],
                      seconds: float) -> None:
        """One operator's part of a step: records in, records out by tag, time spent."""
        t = self.operators[name]
        t.records_in += records_in
        t.seconds += seconds
        t.histogram.observe(seconds)
        for tag, out in outputs.items():
            n = len(out)
            if tag == "main":
                t.records_out += n
            elif n:
                t.emitted[tag] = t.emitted.get(tag, 0) + n

    def written(self, n: int, ts: np.ndarray | None, tag: str | None = None,
                data: Any = None) -> None:
        """Records given to an output (not an errors output) in this step; their event
        times, for the event-time latency at the commit; and, when they have a
        ``severity`` column (alerts), their count by severity (one value_counts)."""
        self._step_out += n
        if ts is not None and len(ts):
            self._open_event_times.append(ts)
        if data is not None and SEVERITY_COLUMN in data.columns:
            counts = self.severities.setdefault(tag or "", {})
            for value, k in data.get_column(SEVERITY_COLUMN).value_counts().iter_rows():
                name = "none" if value is None else str(value)
                counts[name] = counts.get(name, 0) + int(k)

    def errors(self, data: Any) -> None:
        """A step's error records (a polars frame with ``operator``, ``error_type``,
        ``error_message``): counted by reason, the newest kept."""
        if not data.height:
            return
        counts = data.group_by(["operator", "error_type"]).len()
        for op, kind, n in counts.iter_rows():
            key = f"{op}|{kind}"
            self.errors_by_reason[key] = self.errors_by_reason.get(key, 0) + int(n)
        cols = [c for c in ("operator", "error_type", "category", "error_message", "raw")
                if c in data.columns]
        for row in data.tail(LATEST_ERRORS).select(cols).to_dicts():
            self.latest_errors.append({k: _plain(v) for k, v in row.items()})

    def step_done(self) -> None:
        if self._step_out:
            self._open_steps.append((self._step_read_ms, self._step_out))

    def checkpoint_done(self, meta: dict[str, Any], seconds: float,
                        committed: dict[str, int] | None = None) -> None:
        """A checkpoint landed (durable and committed): its figures, the records each
        output holds committed (``committed``, for ``surestream status``), and the
        end-to-end latency of every record it published."""
        wall = now_ms()
        self.checkpoints_taken += 1
        self.last_success_ms = wall
        self.checkpoint_seconds.observe(seconds)
        self.checkpoints.append({
            "id": meta.get("id"), "at_ms": wall, "duration_ms": round(seconds * 1000, 3),
            "store_ms": meta.get("duration_ms"), "bytes_written": meta.get("bytes_written"),
            "bytes_total": meta.get("bytes_total"), "records_in": meta.get("records_in"),
            "finished": bool(meta.get("finished")), "ok": True,
            **({"committed": committed} if committed is not None else {})})
        if self._open_event_times:
            ts = np.concatenate(self._open_event_times)
            ts = ts[(ts != NEG_INF) & (ts != POS_INF)]
            self.latency_event.observe_many((wall - ts) / 1000.0)
        for read_ms, n in self._open_steps:
            self.latency_ingest.observe_weighted((wall - read_ms) / 1000.0, n)
        self._open_event_times.clear()
        self._open_steps.clear()
        self._last_sample = 0.0  # the snapshot published after a checkpoint is sampled

    def checkpoint_failed(self, checkpoint_id: int, error: BaseException) -> None:
        self.checkpoint_failures += 1
        self.last_failure = f"{type(error).__name__}: {error}"
        self.checkpoints.append({"id": checkpoint_id, "at_ms": now_ms(), "ok": False,
                                 "error": self.last_failure})

    # -- publishing ----------------------------------------------------------------------
    def due(self) -> bool:
        return time.monotonic() - self._last_publish >= PUBLISH_INTERVAL_S

    def publish(self, runner: Any) -> dict[str, Any]:
        """Build the snapshot from the runner (its thread) and swap it in."""
        self._last_publish = time.monotonic()
        snap = build_snapshot(self, runner)
        self.snapshot = snap
        if time.monotonic() - self._last_sample >= HISTORY_SAMPLE_S or \
                snap["state"] != "running":
            self._sample(snap)
        for listener in self.listeners:
            listener(snap)
        return snap

    def _sample(self, snap: dict[str, Any]) -> None:
        self._last_sample = time.monotonic()
        self._history.append({
            "kind": "sample", "at_ms": snap["now_ms"], "records_in": snap["records_in"],
            "watermark": snap["watermark"], "watermark_lag_ms": snap["watermark_lag_ms"],
            "counters": snap["counters"],
            "written": {o["tag"]: o["written"] for o in snap["outputs"]}})

    # -- the run's history, for ``surestream report`` -----------------------------------
    def start_history(self, folder: Path, spec_json: dict[str, Any], fresh: bool,
                      restored_from: int | None, base_dir: str | None = None) -> None:
        """Begin (a fresh run: replace) the history file with this run's first line.
        ``base_dir``: where the spec's relative paths resolve (None: the working folder),
        so a report finds the outputs."""
        self._history_path = folder / RUN_HISTORY_FILE
        self.restored_from = restored_from
        if fresh:
            self._history_path.unlink(missing_ok=True)
        self._history.append({"kind": "run", "run_id": self.run_id, "pid": os.getpid(),
                              "pipeline": self.pipeline, "started_at_ms": self.started_ms,
                              "live": self.live, "restored_from": restored_from,
                              "base_dir": str(base_dir or os.getcwd()), "spec": spec_json})

    def _figures(self) -> dict[str, Any]:
        """This process's own counts so far (records in/out per operator, error reasons)
        and each operator's state size (``state``: keys, bytes, ... of the snapshot just
        published, for a state-over-time view): at every checkpoint line, so a report can
        add them up over the processes a resumed run took (each counts from its restore;
        operator ``counters`` are restored and need no adding up)."""
        state = {o["name"]: o["state"] for o in (self.snapshot or {}).get("operators", ())
                 if o.get("state")}
        return {"operators": {n: {"records_in": t.records_in, "records_out": t.records_out,
                                  "emitted": dict(t.emitted),
                                  **({"state": state[n]} if n in state else {})}
                              for n, t in self.operators.items()},
                "errors_by_reason": dict(self.errors_by_reason)}

    def flush_history(self, checkpoint: dict[str, Any] | None = None) -> None:
        """Append what happened since the last flush (at a checkpoint and at the end)."""
        path = getattr(self, "_history_path", None)
        if path is None:
            return
        if checkpoint is not None:
            self._history.append({"kind": "checkpoint", **checkpoint, **self._figures()})
        if not self._history:
            return
        with open(path, "a", encoding="utf-8") as f:
            for line in self._history:
                f.write(json.dumps(line, default=str, separators=(",", ":")) + "\n")
        self._history.clear()

    def end(self, runner: Any, state: str) -> dict[str, Any]:
        """The run is over (``finished``, ``stopped`` or ``failed``): a last snapshot, and
        the history's last line."""
        self.state = state
        snap = self.publish(runner)
        self._history.append({"kind": "end", "at_ms": snap["now_ms"], "state": state,
                              "records_in": snap["records_in"], "counters": snap["counters"],
                              "written": {o["tag"]: o["written"] for o in snap["outputs"]},
                              "errors_by_reason": snap["errors"]["by_reason"],
                              "operators": {o["name"]: {k: o[k] for k in (
                                  "stream", "kind", "records_in", "records_out", "emitted",
                                  "counters")} for o in snap["operators"]}})
        with contextlib.suppress(OSError):  # a full disk must not hide the run's error
            self.flush_history()
        return snap


def read_history(folder: Path) -> list[dict[str, Any]]:
    """The lines of a checkpoint folder's run history (empty if it has none)."""
    path = Path(folder) / RUN_HISTORY_FILE
    if not path.exists():
        return []
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            continue  # a line cut by a crash
    return lines


def _plain(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def _finite(v: int) -> int | None:
    return None if v in (NEG_INF, POS_INF) else int(v)


def build_snapshot(t: RunTelemetry, runner: Any) -> dict[str, Any]:
    """The snapshot of ``runner`` now (see the module docstring for its shape)."""
    from surestream.semantics.watermark_step import WatermarkOperator

    wall = now_ms()
    mono = time.monotonic()
    progress = runner._progress(0.0)
    ops = []
    partitions: dict[int, dict[str, Any]] = {}
    inter = runner.interleaver
    for i, p in enumerate(inter.partitions):
        entry: dict[str, Any] = {"index": i, "source": p.source, "partition": p.name,
                                 "position": _plain(p.reader.position), "ended": p.done}
        probe = getattr(p.reader, "telemetry", None)
        if probe is not None:
            entry["kafka"] = probe()
        partitions[i] = entry
    for stream in runner.streams:
        for op in stream.operators:
            tally = t.operators.get(op.name)
            row: dict[str, Any] = {
                "name": op.name, "stream": stream.name,
                "kind": tally.kind if tally else type(op).__name__,
                "records_in": tally.records_in if tally else 0,
                "records_out": tally.records_out if tally else 0,
                "emitted": dict(tally.emitted) if tally else {},
                "seconds": round(tally.seconds, 6) if tally else 0.0,
                "counters": dict(getattr(op, "counters", {})),
                "state": op.state_gauges() if hasattr(op, "state_gauges") else {}}
            for key, probe in (("late", "late_range"), ("quality", "quality")):
                if hasattr(op, probe):  # late steps; data_quality steps (issue 14)
                    row[key] = getattr(op, probe)()
            ops.append(row)
            if isinstance(op, WatermarkOperator):
                tr = op.tracker
                newest = max((v for v in tr.max_ts.values() if v != NEG_INF), default=None)
                for pid, max_ts in tr.max_ts.items():
                    entry = partitions.get(pid)
                    if entry is None:
                        continue
                    own = NEG_INF if max_ts == NEG_INF else max_ts - tr.delay - 1
                    entry["watermark"] = _finite(own)
                    entry["lag_ms"] = (newest - own) if newest is not None and \
                        _finite(own) is not None else None
                    entry["operator"] = op.name
                row["watermark"] = _finite(op.watermark)
                row["watermark_lag_ms"] = tr.lag_ms()
    outputs = []
    for tag, sink in runner.sinks.items():
        row = {"tag": tag, "type": getattr(runner.spec.outputs.get(tag), "type", "file"),
               "written": progress.written.get(tag, 0), "committed": sink.records,
               "errors_output": tag in runner.error_outputs.tags}
        probe = getattr(sink, "telemetry", None)
        if probe is not None:
            row["sink"] = probe()
        if tag in t.severities:
            row["by_severity"] = dict(t.severities[tag])
        outputs.append(row)
    # rates over the last second or more (``RunTelemetry._rate_refs``)
    refs = t._rate_refs
    while len(refs) > 1 and mono - refs[1][0] >= RATE_WINDOW_S:
        refs.popleft()  # refs[0] stays the newest one at least RATE_WINDOW_S old
    prev = refs[0] if refs else None
    op_counts = {o["name"]: o["records_in"] for o in ops}
    out_counts = {o["tag"]: o["written"] for o in outputs}
    dt = mono - prev[0] if prev else 0.0

    def rate(now: int, before: int) -> float:
        return round((now - before) / dt, 1) if dt > 0 else 0.0

    for o in ops:
        o["records_per_s"] = rate(o["records_in"], prev[2].get(o["name"], 0)) if prev else 0.0
    for o in outputs:
        o["records_per_s"] = rate(o["written"], prev[3].get(o["tag"], 0)) if prev else 0.0
    records_per_s = rate(runner.records_in, prev[1]) if prev else 0.0
    refs.append((mono, runner.records_in, op_counts, out_counts))
    return {
        "pipeline": t.pipeline, "run_id": t.run_id, "pid": os.getpid(), "state": t.state,
        "live": t.live, "started_at_ms": t.started_ms, "now_ms": wall,
        "uptime_s": round((wall - t.started_ms) / 1000, 3),
        "records_in": runner.records_in, "records_per_s": records_per_s,
        "watermark": _finite(progress.watermark), "watermark_lag_ms": progress.watermark_lag_ms,
        "counters": dict(progress.counters),
        "operators": ops, "partitions": list(partitions.values()), "outputs": outputs,
        "checkpoints": {"taken": t.checkpoints_taken, "failures": t.checkpoint_failures,
                        "last_success_ms": t.last_success_ms, "last_failure": t.last_failure,
                        "history": list(t.checkpoints)},
        "errors": {"by_reason": dict(t.errors_by_reason), "latest": list(t.latest_errors)},
        "histograms": {
            "operator_seconds": {n: o.histogram.to_dict() for n, o in t.operators.items()},
            "checkpoint_seconds": t.checkpoint_seconds.to_dict(),
            "latency_event_time_seconds": t.latency_event.to_dict(),
            "latency_ingestion_seconds": t.latency_ingest.to_dict()},
    }
