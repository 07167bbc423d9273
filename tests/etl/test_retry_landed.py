"""A retried commit asks the sink first: a real DuckDB table whose commit lands and then
reports a failure (the acknowledgement lost, as when a connection drops just after the
server committed) is not committed twice; a pre-commit that fails half-way through staging
leaves nothing behind once retried. The sink is the real one, driven through the retry
wrapper as the runner drives it; only the failure is injected."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from surestream.connectors.duckdb_sink import DuckDBTableSink
from surestream.model.sink_resilience import RetryPolicy, SinkResilience
from surestream.runners.local.sink_retry import ResilientSink, RunnerHooks


class LosesAcknowledgements(DuckDBTableSink):
    """Commits for real, then raises -- the first ``left[0]`` times (shared by the new
    sinks a reset makes)."""

    def __init__(self, path: Path, left: list[int], where: str) -> None:
        super().__init__(path, "events")
        self.left, self.where = left, where

    def commit(self, committable):
        super().commit(committable)
        if self.where == "commit" and self.left[0]:
            self.left[0] -= 1
            raise OSError("connection reset by peer (after the commit)")

    def pre_commit(self, checkpoint_id):
        if self.where == "pre_commit" and self.left[0]:
            self.left[0] -= 1
            self._con.execute("begin")  # a transaction left open, half staged
            self._con.execute(f"create table {self._q(self.staging(checkpoint_id))} (id bigint)")
            raise OSError("connection reset by peer (mid-staging)")
        return super().pre_commit(checkpoint_id)


def wrapped(path: Path, failures: int, where: str) -> ResilientSink:
    policy = SinkResilience(retry=RetryPolicy(max_attempts=3, initial_backoff_ms=0,
                                              max_backoff_ms=0, jitter=0))
    left = [failures]

    def new() -> LosesAcknowledgements:
        return LosesAcknowledgements(path, left, where)

    return ResilientSink(new(), policy, tag="main", label="output 'main'", factory=new,
                         hooks=RunnerHooks(recorded_at_ms=lambda: 0, sleep=lambda s: None))


def checkpoint(sink: ResilientSink, n: int, ids: list[int]) -> None:
    sink.write(pl.DataFrame({"id": ids}))
    sink.commit(sink.pre_commit(n))


def table(path: Path) -> list[int]:
    with duckdb.connect(str(path), read_only=True) as con:
        return [r[0] for r in con.execute("select id from events order by id").fetchall()]


def test_a_commit_that_landed_before_its_failure_is_not_committed_again(tmp_path):
    path = tmp_path / "db.duckdb"
    sink = wrapped(path, failures=1, where="commit")
    sink.open(fresh=True)
    checkpoint(sink, 1, [1, 2])
    checkpoint(sink, 2, [3])
    sink.close()
    assert table(path) == [1, 2, 3]
    assert sink.health.retries == 1 and sink.health.attempts_failed == 1


def test_a_pre_commit_that_failed_half_way_is_staged_afresh_and_lands_once(tmp_path):
    path = tmp_path / "db.duckdb"
    sink = wrapped(path, failures=2, where="pre_commit")
    sink.open(fresh=True)
    checkpoint(sink, 1, [1, 2])
    checkpoint(sink, 2, [3, 4])
    sink.close()
    assert table(path) == [1, 2, 3, 4]
    assert sink.health.retries == 2
    with duckdb.connect(str(path), read_only=True) as con:
        names = [r[0] for r in con.execute("select table_name from information_schema.tables"
                                           ).fetchall()]
    assert not [n for n in names if "staging" in n]  # nothing half-staged left behind
