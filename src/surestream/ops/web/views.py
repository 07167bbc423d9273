"""What each ``/api/*`` endpoint of the web view answers, made from one telemetry snapshot.

Pure functions of a snapshot (``runners/local/telemetry``; its shape is in that module's
docstring) and, for the graph, of the pipeline graph: the server (``server.py``) reads
``telemetry.snapshot`` -- swapped whole by the runner, so never half updated -- and hands
it here. Nothing here touches the runner or its operators.

Before the runner publishes its first snapshot every view answers ``state: starting``.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from surestream.ops.pipeline_graph import PipelineGraph, graph_counts

#: the states of a run that has ended: nothing flows any more
ENDED = ("finished", "stopped", "failed")
#: rates on the graph are taken over at least this much of the run (snapshots' clock)
RATE_WINDOW_MS = 1000


def status_view(snap: dict[str, Any], now_ms: int) -> dict[str, Any]:
    """``/api/status``: the run at a glance -- state, records in and their rate, the
    watermark and its lag, late / duplicate / error counts, checkpoints, outputs."""
    if not snap:
        return {"state": "starting"}
    counters = snap.get("counters", {})
    cp = snap.get("checkpoints", {})
    last_ok = cp.get("last_success_ms")
    return {
        "pipeline": snap["pipeline"], "run_id": snap["run_id"], "pid": snap["pid"],
        "state": snap["state"], "live": snap["live"],
        "started_at_ms": snap["started_at_ms"], "snapshot_at_ms": snap["now_ms"],
        # a running run publishes every quarter second: an old snapshot means the runner
        # is stuck (a source that blocks, a long step, a slow checkpoint)
        "snapshot_age_s": round(max(0, now_ms - snap["now_ms"]) / 1000, 3),
        "uptime_s": snap["uptime_s"],
        "records_in": snap["records_in"], "records_per_s": snap["records_per_s"],
        "watermark": snap["watermark"], "watermark_lag_ms": snap["watermark_lag_ms"],
        "late": counters.get("late", 0), "duplicates": counters.get("duplicates", 0),
        "errors": counters.get("errors", 0), "counters": counters,
        "checkpoints": {
            "taken": cp.get("taken", 0), "failed": cp.get("failures", 0),
            "last_success_ms": last_ok, "last_failure": cp.get("last_failure"),
            "seconds_since_last_success":
                None if last_ok is None else round((now_ms - last_ok) / 1000, 3)},
        "outputs": [{k: o.get(k) for k in ("tag", "type", "written", "committed",
                                           "records_per_s", "errors_output")}
                    for o in snap.get("outputs", [])],
    }


def operators_view(snap: dict[str, Any]) -> dict[str, Any]:
    """``/api/operators``: each operator's records in and out (by side tag), rate, time
    spent, its own counters and its state gauges, in pipeline order."""
    if not snap:
        return {"state": "starting", "operators": []}
    return {"state": snap["state"], "operators": [
        {"name": o["name"], "stream": o["stream"], "kind": o["kind"],
         "records_in": o["records_in"], "records_out": o["records_out"],
         "emitted": o.get("emitted", {}), "records_per_s": o.get("records_per_s", 0.0),
         "seconds": o.get("seconds", 0.0), "counters": o.get("counters", {}),
         "state": o.get("state", {})}
        for o in snap.get("operators", [])]}


def partitions_view(snap: dict[str, Any]) -> dict[str, Any]:
    """``/api/partitions``: each input partition's position, its own watermark and how
    far it is behind the newest (lag ms), and what a Kafka reader reports (lag in
    records)."""
    if not snap:
        return {"state": "starting", "partitions": []}
    return {"state": snap["state"], "watermark": snap.get("watermark"),
            "partitions": [dict(p) for p in snap.get("partitions", [])]}


def checkpoints_view(snap: dict[str, Any]) -> dict[str, Any]:
    """``/api/checkpoints``: how many were taken or failed, the last failure, and the
    recent history (oldest first: id, time, duration, bytes, records in, ok)."""
    if not snap:
        return {"state": "starting", "taken": 0, "failed": 0, "history": []}
    cp = snap.get("checkpoints", {})
    return {"state": snap["state"], "taken": cp.get("taken", 0),
            "failed": cp.get("failures", 0), "last_success_ms": cp.get("last_success_ms"),
            "last_failure": cp.get("last_failure"), "history": list(cp.get("history", []))}


def errors_view(snap: dict[str, Any]) -> dict[str, Any]:
    """``/api/errors``: error records by operator and reason (most first), their total,
    and the latest ones with their messages (newest first)."""
    if not snap:
        return {"state": "starting", "total": 0, "by_reason": [], "latest": []}
    errors = snap.get("errors", {})
    reasons = []
    for key, n in errors.get("by_reason", {}).items():
        op, _, reason = key.partition("|")
        reasons.append({"operator": op, "error_type": reason, "count": n})
    reasons.sort(key=lambda r: (-r["count"], r["operator"], r["error_type"]))
    return {"state": snap["state"], "total": sum(r["count"] for r in reasons),
            "by_reason": reasons, "latest": list(reversed(errors.get("latest", [])))}


class FigureRates:
    """Records per second of named counts, over the last ``RATE_WINDOW_MS`` or more of
    snapshots (the snapshots' own clock), for any number of readers polling at their
    own pace."""

    def __init__(self, window_ms: int = RATE_WINDOW_MS) -> None:
        self.window_ms = window_ms
        self._seen: deque[tuple[int, dict[str, int | None]]] = deque(maxlen=256)
        self._lock = threading.Lock()

    def rates(self, at_ms: int, counts: dict[str, int | None], running: bool
              ) -> dict[str, float | None]:
        with self._lock:
            if not self._seen or self._seen[-1][0] < at_ms:
                self._seen.append((at_ms, counts))
            base = next(((t, c) for t, c in reversed(self._seen)
                         if at_ms - t >= self.window_ms), self._seen[0])
        t0, before = base
        out: dict[str, float | None] = {}
        for key, n in counts.items():
            b = before.get(key)
            if n is None:
                out[key] = None
            elif not running or at_ms <= t0 or b is None:
                out[key] = 0.0
            else:
                out[key] = round((n - b) * 1000 / (at_ms - t0), 1)
        return out


def graph_view(graph: PipelineGraph, snap: dict[str, Any],
               rates: FigureRates) -> dict[str, Any]:
    """``/api/graph``: the graph's nodes and edges with their records so far and, for
    edges, records per second."""
    nodes, edges = graph_counts(graph, snap) if snap else ({}, {})
    running = bool(snap) and snap.get("state") not in ENDED
    per_s = rates.rates(snap["now_ms"], edges, running) if snap else {}
    ops = {o["name"]: o for o in snap.get("operators", [])} if snap else {}
    return {
        "pipeline": graph.pipeline, "state": snap.get("state", "starting"),
        "nodes": [{"id": n.id, "kind": n.kind, "name": n.name, "detail": n.detail,
                   "stream": n.stream, "count": nodes.get(n.id),
                   "records_per_s": ops.get(n.id, {}).get("records_per_s")}
                  for n in graph.nodes],
        "edges": [{"id": e.id, "source": e.source, "target": e.target, "tag": e.tag,
                   "label": e.text(), "role": e.role, "updates": e.updates,
                   "count": edges.get(e.id), "records_per_s": per_s.get(e.id)}
                  for e in graph.edges],
    }
