"""The pure rules of ``surestream run --runner flink`` and ``surestream flink`` (no JVM):
which savepoint paths are accepted, where ``flink stop`` puts a job's savepoint, and which
runs are refused before anything starts."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import yaml

from surestream.cli.flink import job_savepoint_dir
from surestream.cli.run_flink import savepoint_location
from surestream.runners.flink.submitted import (
    SubmittedJob,
    active_submission,
    record_submission,
)

JOB = "a" * 32


class _Checkpoints:
    """A stand-in for FlinkRestClient.latest_checkpoint_path (this test's pure logic)."""

    def __init__(self, path: str | None) -> None:
        self.path = path

    def latest_checkpoint_path(self, job_id: str) -> str | None:
        return self.path


def test_flink_stop_puts_the_savepoint_beside_the_jobs_checkpoints():
    rest = _Checkpoints(f"file:/data/ck/flink/checkpoints/{JOB}/chk-7")
    assert job_savepoint_dir(rest, JOB) == "file:/data/ck/flink/savepoints"
    assert job_savepoint_dir(_Checkpoints(None), JOB) is None  # no checkpoint yet
    other = _Checkpoints(f"file:/elsewhere/{JOB}/chk-7")  # not a surestream layout
    assert job_savepoint_dir(other, JOB) is None


def test_savepoint_locations(tmp_path: Path):
    (tmp_path / "sp").mkdir()
    assert savepoint_location(f"file:{tmp_path}/sp") == (str(tmp_path / "sp"), None)
    assert savepoint_location(str(tmp_path / "sp")) == (str(tmp_path / "sp"), None)
    location, problem = savepoint_location(str(tmp_path / "missing"))
    assert location is None and "does not exist" in problem
    assert savepoint_location("s3://bucket/sp-1") == ("s3://bucket/sp-1", None)


def test_a_job_on_a_cluster_that_does_not_answer_does_not_hold_the_folder(tmp_path: Path):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    record_submission(tmp_path, SubmittedJob(JOB, f"127.0.0.1:{port}", "p"))
    assert json.loads((tmp_path / "flink" / "submitted.json").read_text())["job_id"] == JOB
    assert active_submission(tmp_path) is None
    assert active_submission(tmp_path / "none") is None


def _run(tmp_path: Path, *options: str, env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess:
    (tmp_path / "in.jsonl").write_text('{"id": 1, "ts": 5}\n')
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump({
        "pipeline": "p", "source": {"type": "file", "path": "in.jsonl",
                                    "schema": {"id": "int", "ts": "int"}},
        "steps": [{"type": "watermark", "timestamp_column": "ts"}],
        "outputs": {"main": {"type": "file", "path": "out/main.jsonl"}},
        "checkpoint": {"dir": "ck"}}))
    return subprocess.run([sys.executable, "-m", "surestream", "run", "spec.yaml", "--runner",
                           "flink", *options], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env=env)


def test_misuse_is_refused_before_anything_starts(tmp_path: Path):
    r = _run(tmp_path, "--metrics-port", "0")
    assert r.returncode == 2 and "--metrics-port is an option of the local runner" in r.stderr
    r = _run(tmp_path, "--wait")
    assert r.returncode == 2 and "--wait goes with --flink-address" in r.stderr
    r = _run(tmp_path, "--flink-address", "nowhere")
    assert r.returncode == 2 and "expected host:port" in r.stderr
    no_flink = {k: v for k, v in os.environ.items()
                if k not in ("FLINK_HOME", "SURESTREAM_FLINK_PYTHON")}
    no_flink["SURESTREAM_FLINK_VENV"] = str(tmp_path / "no-venv")
    r = _run(tmp_path, env=no_flink)
    assert r.returncode == 2 and "scripts/flink-deps.sh" in r.stderr
    r = _run(tmp_path, "--from-savepoint", str(tmp_path / "no-such-savepoint"))
    assert r.returncode == 2 and "--from-savepoint" in r.stderr
    # records of an earlier run in an output: a fresh job would add them again
    (tmp_path / "out" / "main.jsonl").mkdir(parents=True)
    (tmp_path / "out" / "main.jsonl" / "part-0-0").write_text('{"id": 1, "ts": 5}\n')
    r = _run(tmp_path)
    assert r.returncode == 2 and "outputs.main" in r.stderr and "twice" in r.stderr
    assert not (tmp_path / "ck" / "flink" / "job").exists()  # no driver was started
