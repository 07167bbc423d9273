"""The local mini-cluster (no --flink-address): a job (with a Python UDF, so PyFlink's
Python-worker pool runs too) runs in the driver's own JVM with every listener of the driver
and its JVM on 127.0.0.1, and writes every record exactly once."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from flink_helpers import committed_ids, job_command, job_env

from surestream.runners.flink.cluster import listening_addresses
from surestream.runners.flink.distribution import flink_python

LOOPBACK_FORMS = {"127.0.0.1", "::ffff:127.0.0.1"}


def _child_pids(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in children.read_text().split()] if children.exists() else []


def test_local_mini_cluster_binds_loopback_and_writes_every_record_once(tmp_path: Path):
    rows = 2000
    out = tmp_path / "out"
    driver = subprocess.Popen(job_command(out=out, checkpoint_dir=tmp_path / "ck", rows=rows,
                                          rate=400, wait=True, python_udf=True),
                              env=job_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    listeners: set[tuple[str, int]] = set()
    try:
        line = driver.stdout.readline()  # "JOB_ID ..." once the job is submitted
        assert line.startswith("JOB_ID"), line + driver.stderr.read()[-3000:]
        time.sleep(1.0)  # the job's tasks are deployed: their listeners are open
        for pid in [driver.pid, *_child_pids(driver.pid)]:
            listeners |= listening_addresses(pid)
        assert driver.wait(timeout=300) == 0, driver.stderr.read()[-3000:]
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    assert listeners, "the driver's JVM listens somewhere (py4j at least)"
    assert {host for host, _ in listeners} <= LOOPBACK_FORMS, listeners
    assert sorted(committed_ids(out)) == list(range(1, rows + 1))


PROBE = """
import json, sys
from surestream.runners.flink.environment import create_stream_environment
env = create_stream_environment(checkpoint_dir=sys.argv[1], checkpoint_interval_ms=1234,
                                parallelism=2)
checkpoints = env.get_checkpoint_config()
print(json.dumps({"interval": checkpoints.get_checkpoint_interval(),
                  "mode": str(checkpoints.get_checkpointing_mode()),
                  "parallelism": env.get_parallelism(),
                  "watermark": env.get_config().get_auto_watermark_interval()}))
"""


def test_stream_environment_checkpoints_exactly_once_at_the_spec_interval(tmp_path: Path):
    done = subprocess.run([flink_python(), "-c", PROBE, str(tmp_path)], env=job_env(),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {"interval": 1234, "mode": "CheckpointingMode.EXACTLY_ONCE",
                    "parallelism": 2, "watermark": 0}
