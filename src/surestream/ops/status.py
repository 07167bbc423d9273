"""What a checkpoint folder says about its pipeline, running or stopped (``surestream
status``): who holds it, the last checkpoint, where each partition stands, what each output
holds committed, and how the last run went.

Everything is read without disturbing a run that may be writing the folder: the lock file
is read, never locked (``io/lock.lock_holder``); the newest manifest is read without its
state files (``CheckpointStore.newest_manifest``); the run history
(``runners/local/telemetry``) is streamed for its last run's lines, skipping its samples
(a long live run's history holds millions of them).

Records committed per output, in order of preference: the checkpoint's commit record
(``before`` + ``rows``: Kafka, Parquet, DuckDB and the table sinks), the run history's line
for that checkpoint (every sink, since the history has kept them), the run's end line (a
run that finished or stopped with a final checkpoint). ``as_of`` says which.
"""

from __future__ import annotations

import json
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from surestream.io.lock import lock_holder
from surestream.runners.local.checkpoint_store import CheckpointStore
from surestream.runners.local.telemetry import RUN_HISTORY_FILE

#: how long fetching a run's metrics may take
METRICS_TIMEOUT_S = 1.0
#: the metrics ``surestream status`` shows (summed over their labels; max for the lag)
HEADLINE_METRICS = {
    "surestream_up": "up",
    "surestream_records_in_total": "records in",
    "surestream_errors_total": "errors",
    "surestream_late_records_total": "late",
    "surestream_duplicates_dropped_total": "duplicates",
    "surestream_watermark_lag_ms": "watermark lag ms",
    "surestream_source_lag_records": "source lag records",
    "surestream_checkpoints_total": "checkpoints",
    "surestream_seconds_since_last_checkpoint": "seconds since last checkpoint",
}
_MAX_METRICS = {"surestream_watermark_lag_ms", "surestream_seconds_since_last_checkpoint"}
#: a history sample's line starts so (``json.dumps`` of ``{"kind": "sample", ...}``):
#: skipped unparsed, they are nearly all of a long run's history
_SAMPLE = b'{"kind":"sample"'


def folder_status(folder: Path) -> dict[str, Any] | None:
    """The status of checkpoint folder ``folder`` (a JSON-ready dict), or None when it is
    not one: no checkpoint, no run history, no lock file."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    holder = lock_holder(folder)
    meta = CheckpointStore(folder).newest_manifest()
    run, last_cp, end = last_run(folder / RUN_HISTORY_FILE)
    if meta is None and run is None and holder is None:
        return None
    spec = (run or {}).get("spec") or {}
    return {
        "folder": str(folder),
        "pipeline": (meta or {}).get("pipeline") or (run or {}).get("pipeline"),
        "state": _state(holder, run, end),
        "holder": None if holder is None else {
            "pid": holder.pid, "what": holder.what, "holds_folder": holder.locked,
            "alive": holder.alive, "paused": holder.paused},
        "run": None if run is None else {
            "run_id": run.get("run_id"), "pid": run.get("pid"),
            "started_at": _iso(run.get("started_at_ms")), "live": run.get("live"),
            "restored_from": run.get("restored_from"),
            "ended_at": _iso((end or {}).get("at_ms")), "end": (end or {}).get("state"),
            "records_in": (end or {}).get("records_in")},
        "last_checkpoint": _checkpoint(folder, meta, last_cp),
        "positions": [{"partition": name, "position": position, "ended": bool(ended)}
                      for name, position, ended in
                      ((meta or {}).get("positions") or {}).get("partitions", [])],
        "outputs": _outputs(meta, last_cp, end, spec.get("outputs") or {}),
    }


def last_run(path: Path) -> tuple[dict[str, Any] | None, dict[str, Any] | None,
                                  dict[str, Any] | None]:
    """(the last run's first line, its last checkpoint line, its end line) of a run
    history, each None where missing. Streams the file; samples are not parsed."""
    run = cp = end = None
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below, read line by line
    except OSError:
        return None, None, None
    with f:
        for line in f:
            if line.startswith(_SAMPLE):
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a line cut by a crash
            kind = entry.get("kind")
            if kind == "run":
                run, cp, end = entry, None, None
            elif kind == "checkpoint" and entry.get("ok", True):
                cp = entry
            elif kind == "end":
                end = entry
    return run, cp, end


def _state(holder: Any, run: dict[str, Any] | None, end: dict[str, Any] | None) -> str:
    """running | paused (a live process holds the folder), else how the last run ended:
    finished | stopped | failed | killed (no end line: SIGKILL, a crash, a power loss)."""
    if holder is not None and holder.alive and holder.locked is not False:
        return "paused" if holder.paused else "running"
    if end is not None:
        return str(end.get("state"))
    return "killed" if run is not None else "unknown"


def _checkpoint(folder: Path, meta: dict[str, Any] | None,
                line: dict[str, Any] | None) -> dict[str, Any] | None:
    """The newest checkpoint: the manifest's figures, the history's full duration (the
    manifest has only the time its store write took) when the history has its line."""
    if meta is None:
        return None
    cp_id = meta.get("id")
    same = line is not None and line.get("id") == cp_id
    finished = bool(meta.get("finished"))
    return {
        "id": cp_id, "time": meta.get("wall_time"),
        "duration_ms": line.get("duration_ms") if same else meta.get("duration_ms"),
        "store_ms": meta.get("duration_ms"), "bytes_total": meta.get("bytes_total"),
        "bytes_written": meta.get("bytes_written"), "records_in": meta.get("records_in"),
        "finished": finished,
        # a finished checkpoint is the run's end once every sink committed it
        "done": CheckpointStore(folder).is_done(cp_id) if finished else None}


def _outputs(meta: dict[str, Any] | None, line: dict[str, Any] | None,
             end: dict[str, Any] | None, specs: dict[str, Any]) -> list[dict[str, Any]]:
    """Each output's committed records, and where it writes (see the module docstring)."""
    commits = (meta or {}).get("sinks") or {}
    cp_id = (meta or {}).get("id")
    same = line is not None and line.get("id") == cp_id
    from_history = ((line or {}).get("committed") or {}) if same else {}
    ended = end is not None and end.get("state") in ("finished", "stopped")
    tags = list(commits) or list((end or {}).get("written") or {})
    out = []
    for tag in tags:
        c = commits.get(tag)
        committed, as_of = None, None
        if isinstance(c, dict) and type(c.get("before")) is int and type(c.get("rows")) is int:
            committed, as_of = c["before"] + c["rows"], f"checkpoint {cp_id}"
        elif tag in from_history:
            committed, as_of = from_history[tag], f"checkpoint {cp_id}"
        elif ended and tag in (end.get("written") or {}):
            committed, as_of = end["written"][tag], "run end"
        spec = specs.get(tag) or {}
        out.append({"output": tag, "type": spec.get("type"),
                    "where": spec.get("path") or spec.get("topic") or spec.get("table"),
                    "committed": committed, "as_of": as_of})
    return out


def _iso(ms: Any) -> str | None:
    if not isinstance(ms, int | float):
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def headline_metrics(url: str, timeout_s: float = METRICS_TIMEOUT_S) -> dict[str, float]:
    """A few values of a run's Prometheus endpoint (``HEADLINE_METRICS``: summed over their
    labels, the lags' maximum); raises OSError when it does not answer in time."""
    with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - ours
        text = response.read(8 << 20).decode("utf-8", "replace")
    values: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name not in HEADLINE_METRICS:
            continue
        rest = line.rsplit("}", 1)[1] if "{" in line else line[len(name):]
        try:
            value = float(rest.split()[0])
        except (ValueError, IndexError):
            continue
        if name in _MAX_METRICS:
            values[name] = max(values.get(name, value), value)
        else:
            values[name] = values.get(name, 0.0) + value
    return values
