"""Which Flink job a pipeline's checkpoint folder belongs to while it runs on a cluster.

A run on the local mini-cluster holds the checkpoint folder's lock for as long as the job
lives (the job lives in its process). A job submitted to a cluster with ``--flink-address``
outlives the command that submitted it, and so outlives the lock: a second ``run`` of the
same spec would start a second job writing into the same outputs. So the submitting run
writes ``<checkpoint dir>/flink/submitted.json`` (job id, cluster address), and a later run
asks that cluster for the job's state and is refused while it is not over.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from surestream.io.durable import write_atomic
from surestream.runners.flink.rest import TERMINAL_STATES, FlinkRestClient, FlinkRestError

RECORD = "submitted.json"


@dataclass(frozen=True)
class SubmittedJob:
    job_id: str
    address: str
    pipeline: str


def record_path(checkpoint_dir: Path) -> Path:
    return Path(checkpoint_dir) / "flink" / RECORD


def record_submission(checkpoint_dir: Path, job: SubmittedJob) -> None:
    path = record_path(checkpoint_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(job.__dict__, indent=2).encode())


def last_submission(checkpoint_dir: Path) -> SubmittedJob | None:
    try:
        data = json.loads(record_path(checkpoint_dir).read_text())
        return SubmittedJob(data["job_id"], data["address"], data["pipeline"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def active_submission(checkpoint_dir: Path) -> tuple[SubmittedJob, str] | None:
    """(the job, its state) when the last job submitted from this folder is not over yet.

    A cluster that refuses the connection (stopped, gone) cannot be running the job: None.
    One that is slow to answer may still run it: its state is then ``UNKNOWN``, and the
    caller refuses rather than start a second job beside it.
    """
    job = last_submission(checkpoint_dir)
    if job is None:
        return None
    try:
        state = FlinkRestClient.for_address(job.address, timeout_s=30.0).job_state(job.job_id)
    except FlinkRestError as exc:
        cause = exc.__cause__
        refused = isinstance(cause, ConnectionRefusedError) or isinstance(
            getattr(cause, "reason", None), ConnectionRefusedError)  # (urllib's URLError)
        if refused or "HTTP 404" in str(exc):
            return None  # no cluster there any more, or it no longer knows the job
        return job, f"UNKNOWN: the cluster did not answer ({exc})"
    return None if state in TERMINAL_STATES else (job, state)
