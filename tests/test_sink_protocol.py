"""The two-phase sink protocol (sink_protocol.py) on every exactly-once sink.

A "crash" is simulated the way a killed process leaves things: the sink object is
abandoned mid-protocol (nothing closed, nothing flushed beyond what the protocol itself
made durable) and a new sink object is opened on the same path, as a restarted run would,
and recovered to the checkpoint the run restores."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import polars as pl
import pytest

from surestream.connectors.duckdb_sink import DuckDBTableSink
from surestream.connectors.file_sinks import (
    LineFileSink,
    ParquetDatasetSink,
    read_parquet_dataset,
)
from surestream.connectors.sink_protocol import Sink, SinkRecoveryError
from surestream.connectors.sinks import MemoryCollector, StdoutLines


def frame(*ids: int) -> pl.DataFrame:
    return pl.DataFrame({"id": list(ids), "name": [f"n{i}" for i in ids]})


def rows(*ids: int) -> list[dict]:
    return frame(*ids).to_dicts()


class Target:
    """One sink kind at one place: new sink objects on it, and what a reader sees."""

    def __init__(self, kind: str, root: Path) -> None:
        self.kind = kind
        self.root = root
        self.path = {"jsonl": root / "out.jsonl", "csv": root / "out.csv",
                     "parquet": root / "dataset", "duckdb": root / "db.duckdb"}[kind]

    def new(self) -> Sink:
        if self.kind in ("jsonl", "csv"):
            return LineFileSink(self.path, self.kind)
        if self.kind == "parquet":
            return ParquetDatasetSink(self.path)
        return DuckDBTableSink(self.path, "results")

    def staging(self) -> Path:
        if self.kind == "parquet":
            return self.path / ".staging"
        return self.path.parent / f".{self.path.name}.staging"

    def staged(self, committable: dict) -> Path:
        """The staged file of a (one-part) committable."""
        name = committable["parts"][0][0] if "parts" in committable else committable["part"]
        return self.staging() / name

    def visible(self) -> list[dict]:
        """The committed output as a reader sees it, in order."""
        if self.kind == "jsonl":
            if not self.path.exists():
                return []
            return [json.loads(line) for line in self.path.read_text().splitlines()]
        if self.kind == "csv":
            if not self.path.exists() or not self.path.read_bytes():
                return []
            return pl.read_csv(self.path).to_dicts()
        if self.kind == "parquet":
            return read_parquet_dataset(self.path).to_dicts()
        con = duckdb.connect(str(self.path))
        try:
            exists = con.execute("select count(*) from information_schema.tables "
                                 "where table_name = 'results'").fetchone()[0]
            if not exists:
                return []
            return [{"id": i, "name": n} for i, n in
                    con.execute("select id, name from results order by rowid").fetchall()]
        finally:
            con.close()


PERSISTENT = ["jsonl", "csv", "parquet", "duckdb"]
FILE_SINKS = ["jsonl", "csv", "parquet"]


@pytest.fixture(params=PERSISTENT)
def target(request, tmp_path) -> Target:
    return Target(request.param, tmp_path)


def checkpoint(sink: Sink, n: int, *batches: pl.DataFrame, commit: bool = True):
    """Write ``batches``, pre-commit checkpoint ``n`` and (unless told not to) commit it."""
    for b in batches:
        sink.write(b)
    committable = sink.pre_commit(n)
    json.dumps(committable)  # committables go into a JSON manifest: plain values only
    if commit:
        sink.commit(committable)
    return committable


def restart(target: Target, committable, n: int) -> Sink:
    sink = target.new()
    sink.open(fresh=False)
    sink.recover(committable, n)
    return sink


# -- visibility and idempotence ----------------------------------------------------------


def test_every_sink_follows_the_protocol(target):
    sink = target.new()
    assert isinstance(sink, Sink) and sink.guarantee == "exactly_once"
    assert isinstance(MemoryCollector(), Sink) and StdoutLines().guarantee == "at_least_once"


def test_nothing_is_visible_before_commit(target):
    sink = target.new()
    sink.open(fresh=True)
    sink.write(frame(1, 2))
    sink.write(frame(3))
    assert target.visible() == []
    c1 = sink.pre_commit(1)
    assert target.visible() == [] and sink.records == 0
    sink.commit(c1)
    assert target.visible() == rows(1, 2, 3) and sink.records == 3
    sink.write(frame(4))
    c2 = sink.pre_commit(2)
    assert target.visible() == rows(1, 2, 3)
    sink.commit(c2)
    assert target.visible() == rows(1, 2, 3, 4) and sink.records == 4
    sink.close()


def test_commit_twice_is_commit_once(target):
    sink = target.new()
    sink.open(fresh=True)
    c1 = checkpoint(sink, 1, frame(1, 2))
    sink.commit(c1)
    c2 = checkpoint(sink, 2, frame(3))
    sink.commit(c2)
    sink.commit(c1)  # an old committable again: landed already
    assert target.visible() == rows(1, 2, 3) and sink.records == 3
    sink.close()


def test_an_empty_checkpoint_commits_nothing_and_the_next_one_still_lands(target):
    sink = target.new()
    sink.open(fresh=True)
    checkpoint(sink, 1)
    assert target.visible() == []
    checkpoint(sink, 2, frame(1))
    c3 = checkpoint(sink, 3)
    checkpoint(sink, 4, frame(2))
    assert target.visible() == rows(1, 2) and sink.records == 2
    sink.close()
    if target.kind == "duckdb":
        return  # (rolling back a landed checkpoint is refused: tested below)
    again = restart(target, c3, 3)
    assert target.visible() == rows(1) and again.records == 1
    again.close()


def test_open_fresh_discards_all_previous_output(target):
    sink = target.new()
    sink.open(fresh=True)
    checkpoint(sink, 1, frame(1))
    checkpoint(sink, 2, frame(2))
    sink.close()
    fresh = target.new()
    fresh.open(fresh=True)
    assert target.visible() == [] and fresh.records == 0
    # checkpoint ids start over in a fresh run: id 1 has not landed in this run
    checkpoint(fresh, 1, frame(7))
    assert target.visible() == rows(7) and fresh.records == 1
    fresh.close()


# -- crashes -----------------------------------------------------------------------------


def test_crash_after_commit_before_cleanup_does_not_duplicate(target):
    """Checkpoint 2 is durable and its commit landed, then the process died: the restarted
    run recovers to 2 with the same committable and must not apply it again."""
    sink = target.new()
    sink.open(fresh=True)
    checkpoint(sink, 1, frame(1))
    c2 = checkpoint(sink, 2, frame(2, 3), commit=False)
    staged = target.staged(c2) if target.kind in ("jsonl", "csv") else None
    part = staged.read_bytes() if staged else b""
    sink.commit(c2)
    if staged:  # the crash came before the committed part was deleted from staging
        staged.write_bytes(part)
    # (abandoned: no close)
    again = restart(target, c2, 2)
    assert target.visible() == rows(1, 2, 3) and again.records == 3
    if staged:
        assert not staged.exists()
    checkpoint(again, 3, frame(4))
    assert target.visible() == rows(1, 2, 3, 4) and again.records == 4
    again.close()
    sink.close()


def test_recover_discards_output_staged_after_the_checkpoint_and_pending_writes(target):
    sink = target.new()
    sink.open(fresh=True)
    c1 = checkpoint(sink, 1, frame(1))
    checkpoint(sink, 2, frame(2), commit=False)  # staged; checkpoint 2 never got durable
    sink.write(frame(3))  # pending in the open transaction
    again = restart(target, c1, 1)
    assert target.visible() == rows(1) and again.records == 1
    checkpoint(again, 2, frame(20))  # the replay of checkpoint 2 stages other records
    assert target.visible() == rows(1, 20) and again.records == 2
    checkpoint(again, 3, frame(30))
    assert target.visible() == rows(1, 20, 30)
    again.close()
    sink.close()


def test_recover_commits_the_restored_checkpoint_when_the_crash_came_before_commit(target):
    """Checkpoint 2 is durable, the process died before ``commit``: recovery finishes it."""
    sink = target.new()
    sink.open(fresh=True)
    checkpoint(sink, 1, frame(1))
    c2 = checkpoint(sink, 2, frame(2, 3), commit=False)
    assert target.visible() == rows(1)
    again = restart(target, c2, 2)
    assert target.visible() == rows(1, 2, 3) and again.records == 3
    checkpoint(again, 3, frame(4))
    assert target.visible() == rows(1, 2, 3, 4)
    again.close()
    sink.close()


def test_recover_commits_the_very_first_checkpoint_when_the_crash_came_before_commit(
        target):
    """The same on the first checkpoint with data: the sink that finishes the commit never
    saw a record itself (for CSV it must still write the header)."""
    sink = target.new()
    sink.open(fresh=True)
    c1 = checkpoint(sink, 1, frame(1, 2), commit=False)
    again = restart(target, c1, 1)
    assert target.visible() == rows(1, 2) and again.records == 2
    checkpoint(again, 2, frame(3))
    assert target.visible() == rows(1, 2, 3)
    again.close()
    sink.close()


def test_recovery_twice_in_a_row_is_recovery_once(target):
    sink = target.new()
    sink.open(fresh=True)
    checkpoint(sink, 1, frame(1))
    c2 = checkpoint(sink, 2, frame(2), commit=False)
    restart(target, c2, 2).close()
    again = restart(target, c2, 2)  # crashed again right after recovering
    assert target.visible() == rows(1, 2) and again.records == 2
    again.close()
    sink.close()


@pytest.mark.parametrize("kind", FILE_SINKS)
def test_file_sinks_roll_back_committed_checkpoints_newer_than_the_restored_one(tmp_path,
                                                                               kind):
    """Checkpoint 3 landed in the output, but its checkpoint file is lost (corrupt):
    the run restores 1, so the output of 2 and 3 must go, to be produced again."""
    target = Target(kind, tmp_path)
    sink = target.new()
    sink.open(fresh=True)
    c1 = checkpoint(sink, 1, frame(1))
    checkpoint(sink, 2, frame(2))
    checkpoint(sink, 3, frame(3))
    checkpoint(sink, 4, frame(4), commit=False)
    sink.close()
    again = restart(target, c1, 1)
    assert target.visible() == rows(1) and again.records == 1
    checkpoint(again, 5, frame(2, 3))  # the replay, under the next free checkpoint id
    assert target.visible() == rows(1, 2, 3) and again.records == 3
    again.close()
    if kind == "parquet":
        assert sorted(p.name for p in target.path.glob("part-*")) == [
            "part-0000000001.parquet", "part-0000000005.parquet"]
        assert list(target.path.joinpath(".staging").glob("part-*")) == []


@pytest.mark.parametrize("kind", ["jsonl", "csv"])
def test_line_files_roll_back_to_a_checkpoint_that_committed_nothing(tmp_path, kind):
    target = Target(kind, tmp_path)
    sink = target.new()
    sink.open(fresh=True)
    c1 = checkpoint(sink, 1)
    checkpoint(sink, 2, frame(1))
    sink.close()
    again = restart(target, c1, 1)
    assert target.visible() == [] and target.path.read_bytes() == b""
    checkpoint(again, 3, frame(5))
    assert target.visible() == rows(5)
    again.close()


def test_duckdb_refuses_to_roll_back_a_committed_checkpoint(tmp_path):
    target = Target("duckdb", tmp_path)
    sink = target.new()
    sink.open(fresh=True)
    c1 = checkpoint(sink, 1, frame(1))
    checkpoint(sink, 2, frame(2))
    checkpoint(sink, 3, frame(3))
    sink.close()
    again = target.new()
    again.open(fresh=False)
    with pytest.raises(SinkRecoveryError, match=r"'results'.*checkpoint 3.*restored "
                                                r"checkpoint 1"):
        again.recover(c1, 1)
    again.close()
    assert target.visible() == rows(1, 2, 3)  # nothing was touched


def test_duckdb_commit_and_its_commits_row_are_one_transaction(tmp_path):
    target = Target("duckdb", tmp_path)
    sink = target.new()
    sink.open(fresh=True)
    checkpoint(sink, 1, frame(1, 2))
    c2 = checkpoint(sink, 2, frame(3), commit=False)
    sink.close()
    con = duckdb.connect(str(target.path))
    assert con.execute("select checkpoint, records from _surestream_commits "
                       "where tbl = 'results'").fetchall() == [(1, 2)]
    assert con.execute("select id from _surestream_cp2_staging_results").fetchall() == [(3,)]
    con.close()
    restart(target, c2, 2).close()
    con = duckdb.connect(str(target.path))
    assert con.execute("select checkpoint, records from _surestream_commits "
                       "order by checkpoint").fetchall() == [(1, 2), (2, 1)]
    assert con.execute("select count(*) from information_schema.tables "
                       "where table_name like '%staging%'").fetchone() == (0,)
    con.close()


# -- torn appends and CSV headers --------------------------------------------------------


@pytest.mark.parametrize("kind", ["jsonl", "csv"])
def test_a_torn_append_is_removed_by_the_next_commit(tmp_path, kind):
    target = Target(kind, tmp_path)
    sink = target.new()
    sink.open(fresh=True)
    checkpoint(sink, 1, frame(1, 2))
    good = target.path.read_bytes()
    with open(target.path, "ab") as f:  # an append that died half way
        f.write(b'{"id": 3, "na')
    checkpoint(sink, 2, frame(3))
    assert target.visible() == rows(1, 2, 3)
    assert target.path.read_bytes().startswith(good)
    assert b'"na\n' not in target.path.read_bytes() and b'"na{' not in target.path.read_bytes()
    sink.close()


@pytest.mark.parametrize("kind", ["jsonl", "csv"])
def test_a_torn_append_is_removed_by_recovery(tmp_path, kind):
    target = Target(kind, tmp_path)
    sink = target.new()
    sink.open(fresh=True)
    c1 = checkpoint(sink, 1, frame(1, 2))
    good = target.path.read_bytes()
    c2 = checkpoint(sink, 2, frame(3, 4), commit=False)
    # the commit of 2 appended part of its bytes, then the process died before its log
    staged = target.staged(c2).read_bytes()
    with open(target.path, "ab") as f:
        f.write(staged[: len(staged) // 2])
    restart(target, c1, 1).close()
    assert target.path.read_bytes() == good
    # ... or the restored checkpoint is 2 itself: its output lands exactly once
    with open(target.path, "ab") as f:
        f.write(b"\x00garbage")
    sink2 = target.new()
    sink2.open(fresh=False)
    sink2.recover(c1, 1)
    c2 = checkpoint(sink2, 2, frame(3, 4), commit=False)
    with open(target.path, "ab") as f:
        f.write(b"\x00garbage")
    again = restart(target, c2, 2)
    assert target.visible() == rows(1, 2, 3, 4) and again.records == 4
    again.close()
    sink.close()


def test_csv_header_is_written_once(tmp_path):
    target = Target("csv", tmp_path)
    sink = target.new()
    sink.open(fresh=True)
    checkpoint(sink, 1, frame(1))
    checkpoint(sink, 2, frame(2, 3))
    c3 = checkpoint(sink, 3, frame(4))
    sink.close()
    again = restart(target, c3, 3)  # a restarted run reads the header back
    checkpoint(again, 4, pl.DataFrame({"name": ["n5"], "id": [5]}))  # other column order
    again.close()
    lines = target.path.read_text().splitlines()
    assert lines == ["id,name", "1,n1", "2,n2", "3,n3", "4,n4", "5,n5"]


def test_csv_header_survives_a_roll_back_to_the_first_checkpoint(tmp_path):
    target = Target("csv", tmp_path)
    sink = target.new()
    sink.open(fresh=True)
    c1 = checkpoint(sink, 1, frame(1))
    checkpoint(sink, 2, frame(2))
    sink.close()
    again = restart(target, c1, 1)
    checkpoint(again, 3, frame(9))
    again.close()
    assert target.path.read_text().splitlines() == ["id,name", "1,n1", "9,n9"]


# -- the in-memory test sink ---------------------------------------------------------------


def test_memory_collector_shows_only_committed_records_exactly_once():
    sink = MemoryCollector()
    sink.open(fresh=True)
    sink.write(frame(1, 2))
    c1 = sink.pre_commit(1)
    assert sink.rows() == [] and sink.records == 0
    sink.commit(c1)
    sink.commit(c1)
    assert sink.rows() == rows(1, 2) and sink.records == 2
    sink.write(frame(3))
    c2 = sink.pre_commit(2)
    sink.recover(c2, 2)  # crash between pre_commit and commit: recovery commits it
    sink.recover(c2, 2)
    assert sink.rows() == rows(1, 2, 3) and sink.records == 3


def test_memory_collector_recover_discards_staged_and_pending_output():
    sink = MemoryCollector()
    sink.open(fresh=True)
    c1 = checkpoint(sink, 1, frame(1))
    checkpoint(sink, 2, frame(2), commit=False)
    sink.write(frame(3))
    sink.recover(c1, 1)
    assert sink.rows() == rows(1) and sink.records == 1
    c2 = checkpoint(sink, 2, frame(20))
    sink.commit(c2)
    assert sink.rows() == rows(1, 20) and sink.records == 2
    sink.open(fresh=True)
    assert sink.rows() == [] and sink.records == 0


def test_csv_rows_keep_the_header_columns_when_a_batch_lacks_one(tmp_path):
    target = Target("csv", tmp_path)
    sink = target.new()
    sink.open(fresh=True)
    sink.write(pl.DataFrame({"id": [1], "name": ["a"], "v": [1.5]}))
    sink.write(pl.DataFrame({"id": [2], "v": [2.5]}))  # no name: empty, not shifted
    sink.commit(sink.pre_commit(1))
    sink.close()
    assert target.path.read_text().splitlines() == ["id,name,v", "1,a,1.5", "2,,2.5"]


# -- recovery that cannot be done is refused, not guessed ---------------------------------


@pytest.mark.parametrize("kind", FILE_SINKS)
def test_recovery_refuses_output_rewritten_by_another_run(tmp_path, kind):
    """A checkpoint (a savepoint, say) of an earlier run is restored after a fresh run
    rewrote the output under the same checkpoint ids: rolling back by id would keep the
    other run's records, so recovery refuses and leaves the output alone."""
    target = Target(kind, tmp_path)
    old = target.new()
    old.open(fresh=True)
    checkpoint(old, 1, frame(1, 2, 3))
    c2 = checkpoint(old, 2, frame(4))
    old.close()
    new = target.new()
    new.open(fresh=True)
    checkpoint(new, 1, frame(10))
    checkpoint(new, 2, frame(11))
    checkpoint(new, 3, frame(12))
    new.close()
    again = target.new()
    again.open(fresh=False)
    with pytest.raises(SinkRecoveryError, match="another run"):
        again.recover(c2, 2)
    again.close()
    assert target.visible() == rows(10, 11, 12)


@pytest.mark.parametrize("kind", ["jsonl", "csv"])
def test_line_file_recovery_refuses_a_checkpoint_older_than_its_commit_log(tmp_path, kind):
    target = Target(kind, tmp_path)
    sink = target.new()
    sink.open(fresh=True)
    committables = {n: checkpoint(sink, n, frame(n)) for n in range(1, 71)}
    sink.close()
    again = target.new()
    again.open(fresh=False)
    with pytest.raises(SinkRecoveryError, match="64 commits"):
        again.recover(committables[3], 3)  # the log no longer knows where 3 ended
    assert target.visible() == rows(*range(1, 71))
    again.recover(committables[20], 20)  # within the log's memory: rolled back exactly
    assert target.visible() == rows(*range(1, 21)) and again.records == 20
    again.close()


@pytest.mark.parametrize("kind", FILE_SINKS)
def test_recovery_refuses_a_pending_commit_whose_staged_output_is_gone(tmp_path, kind):
    target = Target(kind, tmp_path)
    sink = target.new()
    sink.open(fresh=True)
    checkpoint(sink, 1, frame(1))
    c2 = checkpoint(sink, 2, frame(2), commit=False)
    sink.close()
    target.staged(c2).unlink()
    again = target.new()
    again.open(fresh=False)
    with pytest.raises(SinkRecoveryError, match="checkpoint 2"):
        again.recover(c2, 2)
    again.close()
    assert target.visible() == rows(1)


def test_partitioned_parquet_dataset_is_hive_style_and_exactly_once(tmp_path):
    """partition_by writes date=/symbol= folders; a commit interrupted between two renames
    finishes on recovery without duplicating the part already moved."""
    import polars as pl

    from surestream.connectors.file_sinks import ParquetDatasetSink, read_parquet_dataset

    data = pl.DataFrame({"date": ["2026-01-01", "2026-01-01", "2026-01-02"],
                         "symbol": ["A/B", "C", "C"], "v": [1, 2, 3]})
    sink = ParquetDatasetSink(tmp_path / "ds", ["date", "symbol"])
    sink.open(fresh=True)
    sink.write(data)
    c1 = sink.pre_commit(1)
    assert [p for p, _ in c1["parts"]] == [
        "date=2026-01-01/symbol=A%2FB/part-0000000001.parquet",
        "date=2026-01-01/symbol=C/part-0000000001.parquet",
        "date=2026-01-02/symbol=C/part-0000000001.parquet"]
    assert read_parquet_dataset(tmp_path / "ds").height == 0  # staged, not visible
    # a crash after the first rename of the commit
    first = c1["parts"][0][0]
    (tmp_path / "ds" / first).parent.mkdir(parents=True)
    (tmp_path / "ds" / ".staging" / first).rename(tmp_path / "ds" / first)
    again = ParquetDatasetSink(tmp_path / "ds", ["date", "symbol"])
    again.open(fresh=False)
    again.recover(c1, 1)
    out = read_parquet_dataset(tmp_path / "ds").sort("v")
    assert out["v"].to_list() == [1, 2, 3] and again.records == 3
    again.recover(c1, 1)  # recovering twice changes nothing
    assert read_parquet_dataset(tmp_path / "ds").height == 3


def test_partition_by_needs_parquet():
    import pytest as _pytest
    from pydantic import ValidationError

    from surestream.model.spec import FileSink

    with _pytest.raises(ValidationError, match="partition_by needs format: parquet"):
        FileSink(path="x.jsonl", partition_by=["date"])
