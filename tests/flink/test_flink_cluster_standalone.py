"""A standalone Flink cluster from the apache-flink package: listeners, submit, stop with a
savepoint through REST, restart from it, cancel. Real JVMs; one cluster for the module."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from flink_helpers import committed_ids, submit

from surestream.runners.flink.cluster import StandaloneCluster, listening_addresses
from surestream.runners.flink.rest import FlinkRestClient, FlinkRestError

LOOPBACK_FORMS = {"127.0.0.1", "::ffff:127.0.0.1"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with StandaloneCluster(tmp_path_factory.mktemp("flink-cluster"), slots=2) as running:
        yield running


@pytest.fixture(scope="module")
def rest(cluster) -> FlinkRestClient:
    return FlinkRestClient.for_address(cluster.address)


def test_every_listener_of_the_cluster_is_on_loopback(cluster, rest):
    overview = rest.overview()
    assert overview["flink-version"] == "2.3.0"
    assert overview["taskmanagers"] == 1
    pids = cluster.java_pids()
    assert len(pids) >= 2
    listeners = set().union(*(listening_addresses(pid) for pid in pids))
    assert any(port == cluster.rest_port for _, port in listeners)
    assert {host for host, _ in listeners} <= LOOPBACK_FORMS, listeners


def _wait_for_checkpoint(rest: FlinkRestClient, job_id: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while rest.checkpoint_counts(job_id)["completed"] < 1:
        assert time.monotonic() < deadline, "no checkpoint completed"
        time.sleep(0.2)


def test_stop_with_savepoint_and_restart_writes_every_record_exactly_once(cluster, rest,
                                                                           tmp_path: Path):
    rows = 3000
    out, checkpoints = tmp_path / "out", tmp_path / "ck"
    first = submit(out=out, checkpoint_dir=checkpoints, rows=rows, rate=200,
                   flink_address=cluster.address)
    rest.wait_for_state(first, {"RUNNING"})
    _wait_for_checkpoint(rest, first)
    savepoint = rest.stop_with_savepoint(first, (tmp_path / "savepoints").as_uri())
    assert rest.job_state(first) == "FINISHED"  # stopped, not failed
    assert Path(savepoint.removeprefix("file:")).is_dir()
    before = committed_ids(out)
    assert 0 < len(before) < rows, "the stop must land mid-stream for the test to mean much"

    second = submit(out=out, checkpoint_dir=checkpoints, rows=rows, rate=1000,
                    flink_address=cluster.address, savepoint=savepoint)
    assert rest.wait_for_state(second, {"FINISHED"}, timeout_s=240) == "FINISHED"
    ids = committed_ids(out)
    assert sorted(ids) == list(range(1, rows + 1))  # none lost, none twice
    assert {job["jid"] for job in rest.jobs()} >= {first, second}


def test_cancel_through_rest(cluster, rest, tmp_path: Path):
    job = submit(out=tmp_path / "out", checkpoint_dir=tmp_path / "ck", rows=1_000_000,
                 rate=100, flink_address=cluster.address)
    rest.wait_for_state(job, {"RUNNING"})
    rest.cancel(job)
    assert rest.wait_for_state(job, {"CANCELED"}) == "CANCELED"
    with pytest.raises(FlinkRestError, match="HTTP 404"):
        rest.job_state("0" * 32)
