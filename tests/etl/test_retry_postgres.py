"""A sink made to fail for real: the PostgreSQL server stopped in the middle of a run and
started again. The pipeline waits at a chosen record (``retry_gate``) while the test stops
the server, and the test watches the run's own metrics endpoint (the breaker open, a retry
made) before starting it again: no timing involved. In each case the table ends holding
every record of the input exactly once -- what a run without the outage writes."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from retry_harness import (
    expected_ids,
    finish,
    metric,
    reached,
    release,
    start,
    summary,
    wait_for,
    write_input,
    write_spec,
)

from surestream.connectors.tables.postgres_server import BIN, EmbeddedPostgres, _as_postgres


class StoppableServer:
    """A PostgreSQL server of this module's own (the session's must stay up for others)."""

    def __init__(self) -> None:
        self.server = EmbeddedPostgres().start()
        self.running = True

    def _ctl(self, *args: str) -> None:
        done = _as_postgres(BIN / "pg_ctl", "-D", self.server.data, "-l",
                            self.server.folder / "server.log", "-w", "-t", "60", *args)
        assert done.returncode == 0, done.stderr

    def stop(self) -> None:
        self._ctl("-m", "fast", "stop")  # clients cut off, as a server going down does
        self.running = False

    def start(self) -> None:
        self._ctl("start")
        self.running = True


@pytest.fixture(scope="module")
def pg() -> Iterator[StoppableServer]:
    s = StoppableServer()
    try:
        yield s
    finally:
        s.server.stop()


@pytest.fixture
def dsn(pg: StoppableServer) -> str:
    if not pg.running:  # an earlier test failed with the server stopped
        pg.start()
    return pg.server.dsn(pg.server.create_database())


def table_ids(dsn: str) -> list[int]:
    with psycopg.connect(dsn) as con:
        return [r[0] for r in con.execute("select id from events order by id").fetchall()]


def postgres_output(dsn: str, **keys: object) -> dict[str, object]:
    return {"type": "postgres", "dsn": dsn, "table": "events", "mode": "append", **keys}


def test_pause_waits_with_the_breaker_open_and_the_table_equals_a_run_without_the_outage(
        pg, dsn, tmp_path):
    spec = write_spec(tmp_path, write_input(tmp_path / "input.jsonl"), postgres_output(
        dsn, retry={"max_attempts": 2, "initial_backoff_ms": 20, "max_backoff_ms": 50},
        circuit_breaker={"failure_threshold": 2, "probe_interval_ms": 200},
        on_sink_failure="pause"), gates=[200])
    proc = start(spec, tmp_path, "--metrics-port", "0")
    try:
        wait_for(lambda: reached(tmp_path, 200), "record 200", proc)
        pg.stop()
        release(tmp_path, 200)
        # the run pauses: the breaker open (1), as its metrics endpoint says
        wait_for(lambda: metric(tmp_path, "surestream_sink_circuit_state") == 1,
                 "the breaker to open", proc)
        assert proc.poll() is None  # paused, not failed
        pg.start()
        code, text = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 0, text
    assert table_ids(dsn) == expected_ids()  # no row twice, none missing
    health = summary(tmp_path)["sinks"]["main"]
    assert health["breaker_opened"] >= 1 and health["probes"] >= 1
    assert health["circuit"] == "closed" and health["dlq_records"] == 0
    assert "breaker opened" in text


def test_retries_alone_ride_out_a_short_outage_exactly(pg, dsn, tmp_path):
    spec = write_spec(tmp_path, write_input(tmp_path / "input.jsonl"), postgres_output(
        dsn, retry={"max_attempts": 10_000, "initial_backoff_ms": 20, "max_backoff_ms": 200,
                    "jitter": 0.5}), gates=[200])
    proc = start(spec, tmp_path, "--metrics-port", "0")
    try:
        wait_for(lambda: reached(tmp_path, 200), "record 200", proc)
        pg.stop()
        release(tmp_path, 200)
        wait_for(lambda: (metric(tmp_path, "surestream_sink_retries_total") or 0) >= 1,
                 "a retry", proc)
        pg.start()
        code, text = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 0, text
    assert table_ids(dsn) == expected_ids()
    health = summary(tmp_path)["sinks"]["main"]
    assert health["retries"] >= 1 and health["breaker_opened"] == 0


def test_fail_stops_naming_the_output_and_a_rerun_after_the_restart_completes_exactly(
        pg, dsn, tmp_path):
    spec = write_spec(tmp_path, write_input(tmp_path / "input.jsonl"), postgres_output(
        dsn, retry={"max_attempts": 2, "initial_backoff_ms": 10, "max_backoff_ms": 20},
        on_sink_failure="fail"), gates=[200])
    proc = start(spec, tmp_path)
    try:
        wait_for(lambda: reached(tmp_path, 200), "record 200", proc)
        pg.stop()
        release(tmp_path, 200)
        code, text = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 1, text
    assert "failed: output 'main'" in text and "after 2 attempt(s)" in text
    assert "resumes from the last checkpoint" in text
    pg.start()
    committed = table_ids(dsn)
    assert committed == list(range(len(committed))) and len(committed) <= 200
    code, text = finish(start(spec, tmp_path))
    assert code == 0, text
    assert "resumed from checkpoint" in text
    assert table_ids(dsn) == expected_ids()
