"""Shared helpers of the Flink cluster tests: run the sequence job, read its output files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from surestream.runners.flink.distribution import flink_python

SEQUENCE_JOB = Path(__file__).with_name("flink_sequence_job.py")
SRC = Path(__file__).resolve().parents[2] / "src"


def job_command(*, out: Path, checkpoint_dir: Path, rows: int, rate: int,
                flink_address: str | None = None, savepoint: str | None = None,
                wait: bool = False, python_udf: bool = False) -> list[str]:
    cmd = [flink_python(), str(SEQUENCE_JOB), "--out", str(out), "--checkpoint-dir",
           str(checkpoint_dir), "--rows", str(rows), "--rate", str(rate)]
    if flink_address:
        cmd += ["--flink-address", flink_address]
    if savepoint:
        cmd += ["--savepoint", savepoint]
    if wait:
        cmd.append("--wait")
    if python_udf:
        cmd.append("--python-udf")
    return cmd


def job_env() -> dict[str, str]:
    """This source tree first on the path (the driver imports surestream.runners.flink)."""
    path = os.environ.get("PYTHONPATH")
    return dict(os.environ, PYTHONPATH=f"{SRC}{os.pathsep}{path}" if path else str(SRC))


def submit(**kwargs) -> str:
    """Submit the sequence job to a cluster; return its job id."""
    done = subprocess.run(job_command(**kwargs), env=job_env(), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith("JOB_ID ")]
    assert lines, f"no job id printed: {done.stdout[-2000:]} {done.stderr[-2000:]}"
    return lines[-1].split()[1]


def committed_ids(out: Path) -> list[int]:
    """The ids in the sink's committed files (in-progress files are hidden: '.part-...')."""
    ids: list[int] = []
    for path in sorted(out.rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            ids.extend(int(token) for token in path.read_text().split())
    return ids


__all__ = ["committed_ids", "job_command", "job_env", "submit", "sys"]
