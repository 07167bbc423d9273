"""Shared by the retry tests: a small pipeline held at chosen records (``retry_gate``), run
as ``surestream run`` in a subprocess, and the input it reads.

The pipeline: records ``{id, ts, v}`` (ids 0..n-1, each sent twice at a few places) ->
event time -> keyed dedup by id (state the run must keep across an outage) -> the gate ->
one output whose kind and resilience keys the test gives. Its correct output is known from
the input alone: every id once.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

import surestream
from surestream.cli.run_ops import read_endpoints

HERE = Path(__file__).parent
SRC = Path(surestream.__file__).parents[1]
#: records in the input, and ids sent twice (duplicates the dedup step drops)
RECORDS = 600
DUPLICATED = (5, 150, 333, 590)


def write_input(path: Path) -> Path:
    """The input: ids 0..RECORDS-1 in order, each of ``DUPLICATED`` again 3 records later."""
    lines = []
    for i in range(RECORDS):
        lines.append({"id": i, "ts": 1_000 * i, "v": f"value-{i}"})
        if i - 3 in DUPLICATED:
            lines.append({"id": i - 3, "ts": 1_000 * (i - 3), "v": f"value-{i - 3}"})
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    return path


def expected_ids() -> list[int]:
    return list(range(RECORDS))


def write_spec(folder: Path, data: Path, output: dict[str, Any], *,
               gates: list[int] = ()) -> Path:
    """The spec file; ``gates``: record ids the pipeline waits at (``retry_gate``)."""
    gate_dir = folder / "gates"
    gate_dir.mkdir(exist_ok=True)
    for g in gates:
        (gate_dir / f"gate-{g}").touch()
    doc = {
        "pipeline": "retry-test",
        "source": {"type": "file", "path": str(data), "format": "jsonl"},
        "steps": [
            {"type": "watermark", "timestamp_column": "ts", "max_out_of_orderness_ms": 0},
            {"type": "keyed_dedup", "name": "dedup", "key_fields": ["id"],
             "time_window_ms": 3_600_000},
            {"type": "map_batches", "name": "gate", "function": "retry_gate:gate"},
        ],
        "outputs": {"main": output,
                    "errors": {"type": "file", "path": str(folder / "errors.jsonl")}},
        "checkpoint": {"dir": str(folder / "chk"), "interval_records": 40},
        "runtime": {"batch_size": 20},
    }
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def env_for(folder: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(HERE)]),
           "SURESTREAM_TEST_GATES": str(folder / "gates")}
    env.pop("SURESTREAM_FAULT", None)
    return env


def start(spec: Path, folder: Path, *extra: str, without_dac_override: bool = False,
          fault: str | None = None) -> subprocess.Popen[str]:
    """``surestream run SPEC`` in the background (``fault``: killed at that point).
    ``without_dac_override``: as root without
    the capability to ignore file permissions (``setpriv``), so a folder of mode 0555
    refuses its writes -- tests run as root, whom ``chmod`` alone does not stop."""
    command = [sys.executable, "-m", "surestream", "run", str(spec),
               "--summary", str(folder / "summary.json"), *extra]
    if without_dac_override:
        command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--",
                   *command]
    env = env_for(folder)
    if fault:  # SIGKILL at a fault point (runners/local/faults.py)
        env["SURESTREAM_FAULT"] = fault
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen[str], timeout: float = 240) -> tuple[int, str]:
    """(exit code, stdout + stderr) of a started run."""
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out + err


def wait_for(predicate: Any, what: str, proc: subprocess.Popen[str] | None = None,
             timeout: float = 180) -> None:
    """Poll until ``predicate()``; fail naming ``what`` (and the run's output if it ended)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            code, text = finish(proc)
            raise AssertionError(f"the run ended (exit {code}) before {what}:\n{text}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def reached(folder: Path, gate: int) -> bool:
    return (folder / "gates" / f"reached-{gate}").exists()


def release(folder: Path, gate: int) -> None:
    (folder / "gates" / f"go-{gate}").touch()


def summary(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "summary.json").read_text())


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def metric(folder: Path, name: str, output: str = "main") -> float | None:
    """``name{output=...}`` as the run's metrics endpoint serves it now (None: not yet)."""
    ends = read_endpoints(folder / "chk")
    if not ends or not ends.get("metrics"):
        return None
    try:
        text = urllib.request.urlopen(ends["metrics"], timeout=5).read().decode()
    except OSError:
        return None
    found = re.search(rf'^{name}{{[^}}]*output="{output}"[^}}]*}} (\S+)$', text, re.M)
    return float(found.group(1)) if found else None
