"""Helpers of the trigger tests: input files, specs, committed outputs read back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

#: how long a test waits for a run in another process to get somewhere (not a timing
#: assertion: a loaded machine only makes the wait longer)
PATIENCE_S = 180


def write_events(folder: Path, name: str, ids: range) -> Path:
    """A JSON-lines file of events ``ids`` (event time 1 s apart, 3 keys), moved into
    ``folder`` complete (written beside it first, as a live file source requires)."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".{name}.tmp"
    tmp.write_text("".join(json.dumps({"id": i, "key": f"k{i % 3}", "ts": i * 1000,
                                       "v": i % 7}) + "\n" for i in ids))
    os.replace(tmp, folder / name)
    return folder / name


def spec_doc(tmp: Path, trigger: Any, *, windows: bool = True, batch_size: int = 16,
             source: str | None = None, **extra: Any) -> dict[str, Any]:
    """Events from ``tmp/in/*.jsonl`` (or ``source``) through a watermark and 10-second
    windows (or as they are), to files under ``tmp/out``; checkpoints in ``tmp/cp``."""
    steps: list[dict[str, Any]] = [
        {"type": "watermark", "name": "wm", "timestamp_column": "ts",
         "max_out_of_orderness_ms": 2000}]
    outputs: dict[str, Any] = {
        "main": {"type": "file", "path": str(tmp / "out" / "main.jsonl")},
        "errors": {"type": "file", "path": str(tmp / "out" / "errors.jsonl")}}
    if windows:
        steps.append({"type": "window", "name": "w", "kind": "tumbling", "size_ms": 10_000,
                      "key_fields": ["key"],
                      "aggregations": {"n": "count()", "v": "sum(v)"}})
        outputs["late_window"] = {"type": "file", "path": str(tmp / "out" / "late.jsonl")}
    doc = {"pipeline": "trig",
           "source": {"type": "file", "path": source or str(tmp / "in" / "*.jsonl")},
           "steps": steps, "outputs": outputs,
           "checkpoint": {"dir": str(tmp / "cp")},
           "runtime": {"batch_size": batch_size, "interleave_records": 8}, **extra}
    if trigger is not None:
        doc["trigger"] = trigger
    return doc


def write_spec(tmp: Path, doc: dict[str, Any]) -> Path:
    path = tmp / "spec.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def committed(tmp: Path, name: str = "main.jsonl") -> list[dict[str, Any]]:
    """The records an output file holds (complete lines only: a run may be writing)."""
    path = tmp / "out" / name
    if not path.exists():
        return []
    lines = path.read_text().split("\n")[:-1]
    return [json.loads(x) for x in lines if x]


def window_totals(rows: list[dict[str, Any]]) -> dict[tuple[str, int], tuple[int, int]]:
    """(key, window start) -> (count, sum): one row per window, so no repeats."""
    out: dict[tuple[str, int], tuple[int, int]] = {}
    for r in rows:
        k = (r["key"], r["window_start"])
        assert k not in out, f"window {k} written twice"
        out[k] = (r["n"], r["v"])
    return out


def surestream(*args: str, env: dict[str, str] | None = None,
               timeout: float = PATIENCE_S) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "surestream", *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "surestream", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})


def wait_for(condition: Any, proc: subprocess.Popen | None = None,
             what: str = "the run") -> None:
    """Until ``condition()`` holds; fails (with the run's stderr) if the run ends first."""
    deadline = time.monotonic() + PATIENCE_S
    while not condition():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what} ended early ({proc.returncode}): "
                                 f"{proc.stderr.read() if proc.stderr else ''}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not get there in {PATIENCE_S} s")
        time.sleep(0.1)


def stop(proc: subprocess.Popen) -> tuple[int, str]:
    """SIGTERM, as a service manager stops a run: (exit code, stderr)."""
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=PATIENCE_S)
    return proc.returncode, err


def checkpoint_lines(tmp: Path) -> int:
    """Checkpoints the runs on ``tmp/cp`` took (the run history's checkpoint lines)."""
    path = tmp / "cp" / "run-history.jsonl"
    if not path.exists():
        return 0
    return sum(1 for x in path.read_text().splitlines()
               if x and json.loads(x).get("kind") == "checkpoint")
