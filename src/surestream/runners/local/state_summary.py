"""What a checkpoint holds, operator by operator: ``surestream checkpoints --inspect``.

A summary reads the plain data an operator's ``snapshot()`` wrote (never the operator
itself: a savepoint can be inspected without its pipeline) and counts what an operator on
call cares about -- keys, windows, timers, rows -- next to the bytes on disk. Each
summarizer peeks at one operator kind's layout; a layout it does not know is shown with
its counters and bytes only, never as an error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from surestream.io import ChunkedState
from surestream.runners.local.checkpoint_store import Checkpoint


def _watermark(state: Any) -> dict[str, Any]:
    tracker = state["tracker"]
    return {"watermark": tracker["current"], "partitions": len(tracker["partitions"]),
            "ended": len(tracker["ended"])}


def _dedup(state: Any) -> dict[str, Any]:
    if isinstance(state, ChunkedState):  # keep-first: liveness bit per key slot
        head = state.head
        live = np.unpackbits(head["live"], count=int(head["n_slots"]))
        return {"keys": int(live.sum()), "key_slots": int(head["n_slots"]),
                "key_chunks": len(state.chunks)}
    if "t0" in state:  # keep-last: one held window per row
        return {"keys": len(state["t0"])}
    return {}


def _running(state: Any) -> dict[str, Any]:
    """The aggregate step, or a window in update/complete mode (``semantics/running``)."""
    live, kept = state["state"], state.get("finished")
    return {"groups": 0 if live is None else live.height,
            "results_kept": 0 if kept is None else kept.height}


def _window(state: Any) -> dict[str, Any]:
    if "mode" in state:  # output_mode update / complete
        return _running(state)
    if state.get("kind") == "session":
        sessions = state["sessions"]
        return {"windows": len(sessions), "keys": len({_key(s["key"]) for s in sessions}),
                "timers": sum(bool(s["timer"]) for s in sessions)}
    return {"windows": len(state["keys"]), "keys": len({_key(k) for k in state["keys"]}),
            "timers": int(np.asarray(state["timer"]).sum())}


def _process(state: Any) -> dict[str, Any]:
    tables = state["state"]["tables"]
    keys = set().union(*(table.keys() for table in tables.values())) if tables else set()
    return {"keys": len(keys), "states": len(tables),
            "timers": len(state["event_timers"]["timers"]),
            "processing_timers": len(state["processing_timers"]["timers"])}


def _broadcast(state: Any) -> dict[str, Any]:
    import io

    import polars as pl

    return {"reference_rows": pl.read_ipc(io.BytesIO(state["table"])).height}


def _key(k: Any) -> Any:
    return tuple(k) if isinstance(k, list) else k


SUMMARIZERS: dict[str, Callable[[Any], dict[str, Any]]] = {
    "watermark": _watermark,
    "keyed_dedup": _dedup,
    "window": _window,
    "aggregate": _running,
    "process": _process,
    "broadcast_enrich": _broadcast,
}


def _counters(state: Any) -> dict[str, Any]:
    head = state.head if isinstance(state, ChunkedState) else state
    if not isinstance(head, dict):
        return {}
    counters = head.get("counters", head if all(isinstance(v, int) for v in head.values())
                        else {})
    return {k: v for k, v in counters.items() if isinstance(v, int)}


def summarize(cp: Checkpoint) -> list[dict[str, Any]]:
    """One row per operator of checkpoint ``cp``: name, kind, bytes, counts, counters."""
    rows = []
    for name, entry in cp.meta["operators"].items():
        files = [entry, *entry.get("chunks", {}).values()]
        row: dict[str, Any] = {"operator": name, "kind": entry.get("kind", "-"),
                               "bytes": sum(int(e["bytes"]) for e in files),
                               "files": len(files)}
        state = cp.state(name)
        summarizer = SUMMARIZERS.get(row["kind"])
        try:
            row["state"] = summarizer(state) if summarizer and state is not None else {}
        except (KeyError, TypeError, ValueError, AttributeError):
            row["state"] = {}  # a layout this version does not know: bytes only
        if name == "__runner__":
            row["kind"], row["state"] = "runner", {"records_in": state.get("records_in", 0)}
        row["counters"] = {} if name == "__runner__" else _counters(state)
        rows.append(row)
    return rows


def inspect_lines(cp: Checkpoint) -> list[str]:
    """``summarize`` as lines for the terminal."""
    meta = cp.meta
    lines = [f"checkpoint {cp.id} of {meta['pipeline']!r} in {cp.store.dir} "
             f"({meta.get('wall_time', '?')}, {meta.get('bytes_total', 0):,} bytes of state"
             f"{', input finished' if cp.finished else ''})"]
    rows = summarize(cp)
    width = max(len(r["operator"]) for r in rows)
    lines.append(f"  {'operator':<{width}}  {'kind':<16}  {'bytes':>12}  {'files':>5}  state")
    for r in rows:
        parts = [f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}"
                 for k, v in {**r["state"], **r["counters"]}.items()]
        lines.append(f"  {r['operator']:<{width}}  {r['kind']:<16}  {r['bytes']:>12,}  "
                     f"{r['files']:>5}  {', '.join(parts) or '-'}")
    return lines
