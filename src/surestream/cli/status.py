"""``surestream status CHECKPOINT_DIR``: a pipeline's state from its checkpoint folder,
whether a run holds it now or it stopped long ago.

It shows who holds the folder (pid, alive, paused), the last checkpoint (id, time,
duration, size, final or not), where each partition stands, the records each output holds
committed, how the last run ended, and -- while a run serves them -- its metrics endpoint
(a few headline values, fetched with a 1 s timeout) and web view. ``--json`` prints the
same as one JSON object. Exit 0 for a checkpoint folder, 2 (naming the path) for anything
else. What is read and how: ``ops/status.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from surestream.cli.run_ops import read_endpoints
from surestream.io.lock import process_state
from surestream.ops.status import HEADLINE_METRICS, folder_status, headline_metrics

EXIT_OK, EXIT_USAGE = 0, 2


def add_status_parser(sub: Any) -> None:
    p = sub.add_parser(
        "status", help="a pipeline's state from its checkpoint folder: holder, last "
                       "checkpoint, positions, outputs, endpoints",
        description="Show a pipeline's state from its checkpoint folder, running or "
                    "stopped: who holds the folder (pid, alive or paused), the last "
                    "checkpoint (id, time, duration, bytes, final or not), the position of "
                    "every partition, the records each output holds committed, how the "
                    "last run ended, and the metrics endpoint and web view while a run "
                    "serves them. Exit 0; 2 when the folder is not a checkpoint folder.")
    p.add_argument("folder", metavar="CHECKPOINT_DIR",
                   help="the pipeline's checkpoint folder (its spec's checkpoint.dir)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object instead of text (default: text)")
    p.set_defaults(func=cmd_status)


def cmd_status(args: argparse.Namespace) -> int:
    folder = Path(args.folder)
    if not folder.exists():
        print(f"status: {folder} does not exist; give a pipeline's checkpoint folder (its "
              "spec's checkpoint.dir)", file=sys.stderr)
        return EXIT_USAGE
    status = folder_status(folder)
    if status is None:
        print(f"status: {folder} is not a checkpoint folder: it holds no checkpoint, no run "
              "history and no lock file; give a pipeline's checkpoint folder (its spec's "
              "checkpoint.dir)", file=sys.stderr)
        return EXIT_USAGE
    status["endpoints"] = endpoints(folder)
    if args.json:
        print(json.dumps(status, indent=2))
    else:
        print("\n".join(text_lines(status)))
    return EXIT_OK


def endpoints(folder: Path) -> dict[str, Any] | None:
    """The endpoints a run on ``folder`` serves (``run_ops.ENDPOINTS_FILE``), whether the
    process that wrote them is alive, and a few metrics when it is."""
    found = read_endpoints(folder)
    if not found:
        return None
    pid = found.get("pid")
    alive = isinstance(pid, int) and process_state(pid) not in (None, "Z")
    out: dict[str, Any] = {"pid": pid, "alive": alive, "metrics": found.get("metrics"),
                           "ui": found.get("ui"), "values": None, "error": None}
    if alive and out["metrics"]:
        try:
            out["values"] = headline_metrics(out["metrics"])
        except (OSError, ValueError) as e:  # a paused run does not answer either
            out["error"] = f"no answer within 1 s ({e})"
    return out


# -- text ------------------------------------------------------------------------------------
def text_lines(s: dict[str, Any]) -> list[str]:
    lines = [f"checkpoint folder {s['folder']}"]

    def row(label: str, text: str) -> None:
        lines.append(f"  {label:<12}{text}")

    row("pipeline", str(s["pipeline"] or "unknown"))
    row("state", _state_text(s))
    row("held by", _holder_text(s["holder"]))
    cp = s["last_checkpoint"]
    row("checkpoint", "none yet" if cp is None else _checkpoint_text(cp))
    if s["positions"]:
        width = max(len(p["partition"]) for p in s["positions"])
        for i, p in enumerate(s["positions"]):
            row("positions" if i == 0 else "",
                f"{p['partition']:<{width}}  {p['position']:>14,}"
                + ("  ended" if p["ended"] else ""))
    if s["outputs"]:
        width = max(len(o["output"]) for o in s["outputs"])
        for i, o in enumerate(s["outputs"]):
            committed = "unknown" if o["committed"] is None else f"{o['committed']:,}"
            as_of = f" (as of {o['as_of']})" if o["as_of"] else ""
            where = f"  {o['where']}" if o["where"] else ""
            row("committed" if i == 0 else "",
                f"{o['output']:<{width}}  {committed:>14}{as_of}{where}")
    lines += _endpoint_lines(s["endpoints"])
    return lines


def _state_text(s: dict[str, Any]) -> str:
    run = s["run"]
    state = s["state"]
    if state == "killed":
        state = "killed (the last run has no end: SIGKILL, a crash or a power loss)"
    if run is None:
        return state
    parts = [f"run {run['run_id']}", f"started {run['started_at']}"]
    if run["ended_at"]:
        parts.append(f"ended {run['ended_at']}")
    if run["restored_from"] is not None:
        parts.append(f"resumed from checkpoint {run['restored_from']}")
    if run["live"]:
        parts.append("live")
    return f"{state} ({', '.join(parts)})"


def _holder_text(h: dict[str, Any] | None) -> str:
    if h is None:
        return "nobody (no lock file)"
    who = f"{h['what']}, pid {h['pid'] if h['pid'] is not None else '?'}"
    if h["holds_folder"] is False or not h["alive"]:
        gone = "which has ended" if not h["alive"] else "which no longer holds it"
        return f"nobody: the folder is free (last held by {who}, {gone})"
    state = "paused (stopped by a signal; it still holds the folder)" if h["paused"] \
        else "alive"
    return f"{who}: {state}"


def _checkpoint_text(cp: dict[str, Any]) -> str:
    text = f"{cp['id']} at {cp['time']}"
    if cp["duration_ms"] is not None:
        text += f", {cp['duration_ms']:,.1f} ms"
    text += f", {cp['bytes_total'] or 0:,} bytes of state ({cp['bytes_written'] or 0:,} " \
            f"written), {cp['records_in'] or 0:,} records in"
    if cp["finished"]:
        text += ", final" + (", committed by every output" if cp["done"] else
                             ", not yet committed by every output (the next run does it)")
    return text


def _endpoint_lines(e: dict[str, Any] | None) -> list[str]:
    if e is None:
        return ["  endpoints   none"]
    if not e["alive"]:
        return [f"  endpoints   none (a stale record of pid {e['pid']}, which has ended)"]
    out = []
    if e["metrics"]:
        if e["values"] is not None:
            shown = "; ".join(f"{label} {e['values'][name]:,.0f}"
                              for name, label in HEADLINE_METRICS.items()
                              if name in e["values"])
            out.append(f"  metrics     {e['metrics']}" + (f"  ({shown})" if shown else ""))
        else:
            out.append(f"  metrics     {e['metrics']}  ({e['error']})")
    if e["ui"]:
        out.append(f"  web view    {e['ui']}")
    return out
