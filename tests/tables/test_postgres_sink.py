"""The PostgreSQL sink against a real server: modes, the version guard, exact types,
rejections, recovery and refusal (the sink protocol driven directly, as the runner does)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import polars as pl
import psycopg
import pytest

from surestream.connectors.sink_protocol import SinkRecoveryError
from surestream.connectors.tables.postgres import PostgresTableSink
from surestream.model.spec import PostgresSink


def sink(dsn: str, **keys) -> PostgresTableSink:
    spec = PostgresSink(dsn=dsn, **{"table": "windows", **keys})
    s = PostgresTableSink(spec, pipeline="p", tag="main")
    return s


def rows(dsn: str, query: str) -> list[tuple]:
    with psycopg.connect(dsn) as con:
        return con.execute(query).fetchall()


def checkpoint(s: PostgresTableSink, n: int, *frames: pl.DataFrame) -> dict:
    for frame in frames:
        assert s.reject(frame) is None
        s.write(frame)
    committable = s.pre_commit(n)
    s.commit(committable)
    return committable


def test_append_lands_each_checkpoint_once_and_a_repeated_commit_does_nothing(postgres_dsn):
    s = sink(postgres_dsn)
    s.open(fresh=True)
    c1 = checkpoint(s, 1, pl.DataFrame({"k": [1, 2], "v": ["a", "b"]}))
    s.commit(c1)  # again: landed already
    checkpoint(s, 2, pl.DataFrame({"k": [3], "v": ["c"]}))
    s.close()
    assert rows(postgres_dsn, "select k, v from windows order by k") == [
        (1, "a"), (2, "b"), (3, "c")]
    assert rows(postgres_dsn, "select pipeline, sink, tbl, checkpoint, records from "
                              "surestream_commits order by checkpoint") == [
        ("p", "main", "windows", 1, 2), ("p", "main", "windows", 2, 1)]


def test_upsert_keeps_one_row_per_key_and_an_older_revision_never_overwrites_a_newer(
        postgres_dsn):
    s = sink(postgres_dsn, mode="upsert", key_columns=["symbol", "window_start"],
             version_column="revision")
    s.open(fresh=True)
    checkpoint(s, 1, pl.DataFrame({"symbol": ["A", "A", "B"], "window_start": [0, 0, 0],
                                   "revision": [1, 2, 5], "vwap": [1.0, 2.0, 5.0]}))
    # older revisions arrive later (A@1 < A@2, B@4 < B@5); a newer one for A; a new key
    checkpoint(s, 2, pl.DataFrame({"symbol": ["A", "B", "A", "C"], "window_start": [0, 0, 60, 0],
                                   "revision": [1, 4, 1, 1], "vwap": [9.0, 9.0, 3.0, 4.0]}))
    checkpoint(s, 3, pl.DataFrame({"symbol": ["A"], "window_start": [0], "revision": [3],
                                   "vwap": [7.5]}))
    s.close()
    assert rows(postgres_dsn, "select symbol, window_start, revision, vwap from windows "
                              "order by 1, 2") == [
        ("A", 0, 3, 7.5), ("A", 60, 1, 3.0), ("B", 0, 5, 5.0), ("C", 0, 1, 4.0)]
    # the table the sink made has the keys as its primary key
    assert rows(postgres_dsn, "select count(*) from pg_index where indisprimary and "
                              "indrelid = 'windows'::regclass") == [(1,)]


def test_upsert_rejects_rows_without_a_key_or_version_naming_the_column(postgres_dsn):
    s = sink(postgres_dsn, mode="upsert", key_columns=["symbol"], version_column="revision")
    s.open(fresh=True)
    frame = pl.DataFrame({"symbol": ["A", None, "C"], "revision": [1, 1, None]})
    rejected = s.reject(frame)
    assert rejected.rows.tolist() == [1, 2]
    assert "key or version column 'symbol' is null" in rejected.reasons[0]
    assert "'revision'" in rejected.reasons[1] and "output 'main'" in rejected.reasons[1]
    s.close()


def test_replace_partition_replaces_the_whole_partition_and_keeps_the_others(postgres_dsn):
    s = sink(postgres_dsn, mode="replace_partition", partition_columns=["window_start"])
    s.open(fresh=True)
    checkpoint(s, 1, pl.DataFrame({"window_start": [0, 0, 60], "symbol": ["A", "B", "A"],
                                   "n": [1, 2, 3]}))
    # window 0 again, complete: B is gone from it now; window 60 untouched
    checkpoint(s, 2, pl.DataFrame({"window_start": [0, 0], "symbol": ["A", "C"],
                                   "n": [10, 30]}))
    checkpoint(s, 3, pl.DataFrame({"window_start": [0, 0], "symbol": ["A", "C"],
                                   "n": [10, 30]}))  # a replay of the same: no change
    s.close()
    assert rows(postgres_dsn, "select window_start, symbol, n from windows order by 1, 2") \
        == [(0, "A", 10), (0, "C", 30), (60, "A", 3)]
    # the partition column is indexed, for the commits' deletes
    assert rows(postgres_dsn, "select indexdef like '%(window_start)' from pg_indexes "
                              "where tablename = 'windows'") == [(True,)]


def test_types_map_exactly_and_values_come_back_unchanged(postgres_dsn):
    frame = pl.DataFrame({
        "i8": pl.Series([-128, 127], dtype=pl.Int8),
        "u64": pl.Series([0, 2**64 - 1], dtype=pl.UInt64),
        "f32": pl.Series([0.1, float("inf")], dtype=pl.Float32),
        "f64": [0.1 + 0.2, float("nan")],
        "dec": pl.Series([Decimal("1.25"), Decimal("-0.01")], dtype=pl.Decimal(10, 2)),
        "s": ["", "comma, \"quote\"\nnewline é"],
        "b": [b"\x00\xff", None],
        "flag": [True, None],
        "d": [dt.date(1, 1, 1), dt.date(9999, 12, 31)],
        "ts": [dt.datetime(2024, 1, 1, 1, 2, 3, 456789), None],
        "tz": pl.Series([dt.datetime(2024, 1, 1, 12, tzinfo=dt.UTC)] * 2),
        "t": [dt.time(23, 59, 59, 999999), dt.time(0)],
        "dur": [dt.timedelta(days=400, microseconds=1), dt.timedelta(0)],
    })
    s = sink(postgres_dsn)
    s.open(fresh=True)
    checkpoint(s, 1, frame)
    s.close()
    types = dict(rows(postgres_dsn, "select column_name, data_type from "
                                    "information_schema.columns where table_name = 'windows'"))
    assert types == {"i8": "smallint", "u64": "numeric", "f32": "real",
                     "f64": "double precision", "dec": "numeric", "s": "text", "b": "bytea",
                     "flag": "boolean", "d": "date", "ts": "timestamp without time zone",
                     "tz": "timestamp with time zone", "t": "time without time zone",
                     "dur": "interval"}
    got = rows(postgres_dsn, f"select {', '.join(frame.columns)} from windows")
    got.sort(key=lambda r: r[0])
    assert got[0][:2] == (-128, 0) and got[1][:2] == (127, 2**64 - 1)
    # the float4 value itself (psycopg reads real as its shortest text, so ask as float8)
    assert sorted(rows(postgres_dsn, "select f32::float8 from windows")) == [
        (float(pl.Series([0.1], dtype=pl.Float32)[0]),), (float("inf"),)]
    assert got[0][3] == 0.1 + 0.2 and got[1][3] != got[1][3]  # exact; NaN
    assert [r[4] for r in got] == [Decimal("1.25"), Decimal("-0.01")]
    assert [r[5] for r in got] == frame["s"].to_list()
    assert [r[6] for r in got] == [b"\x00\xff", None]
    assert [r[7] for r in got] == [True, None]
    assert [r[8] for r in got] == frame["d"].to_list()
    assert [r[9] for r in got] == frame["ts"].to_list()
    assert all(r[10] == dt.datetime(2024, 1, 1, 12, tzinfo=dt.UTC) for r in got)
    assert [r[11] for r in got] == frame["t"].to_list()
    assert [r[12] for r in got] == frame["dur"].to_list()


def test_values_the_table_cannot_hold_are_rejected_naming_output_and_column(postgres_dsn):
    s = sink(postgres_dsn)
    s.open(fresh=True)
    checkpoint(s, 1, pl.DataFrame({"n": [1], "s": ["x"]}))
    # 2.5 into the bigint column, a NUL in text, nanoseconds, a nested value
    frame = pl.DataFrame({"n": [2.0, 2.5, 3.0, 4.0], "s": ["ok", "ok", "a\x00b", "ok"],
                          "ts": pl.Series([dt.datetime(2024, 1, 1)] * 4).dt.cast_time_unit(
                              "ns") + pl.Series([0, 0, 0, 1], dtype=pl.Duration("ns")),
                          "tags": [None, None, None, None]})
    frame = frame.with_columns(pl.Series("nested", [[1], None, None, None]))
    rejected = s.reject(frame)
    assert rejected.rows.tolist() == [0, 1, 2, 3]
    assert "'nested'" in rejected.reasons[0] and "nested value" in rejected.reasons[0]
    assert "'n' (bigint)" in rejected.reasons[1] and "2.5" in rejected.reasons[1]
    assert "NUL" in rejected.reasons[2] and "'s'" in rejected.reasons[2]
    assert "nanoseconds" in rejected.reasons[3] and "'ts'" in rejected.reasons[3]
    assert all("PostgreSQL table 'windows' (output 'main')" in r for r in rejected.reasons)
    early = s.reject(pl.DataFrame({"d": pl.Series([-800_000, 0], dtype=pl.Date)}))
    assert early.rows.tolist() == [0] and "years 1 to 9999" in early.reasons[0]
    ok = pl.DataFrame({"n": [2.0], "s": ["ok"]})  # 2.0 is kept as the bigint 2
    checkpoint(s, 2, ok)
    s.close()
    assert rows(postgres_dsn, "select n, s from windows order by n") == [(1, "x"), (2, "ok")]


def test_recovery_commits_the_restored_checkpoint_and_drops_newer_staging(postgres_dsn):
    s = sink(postgres_dsn)
    s.open(fresh=True)
    checkpoint(s, 1, pl.DataFrame({"k": [1]}))
    s.write(pl.DataFrame({"k": [2]}))
    pending = s.pre_commit(2)  # staged; the checkpoint durable; killed before commit
    s.write(pl.DataFrame({"k": [3]}))
    s.pre_commit(3)  # staged, but checkpoint 3 never became durable
    s.close()
    again = sink(postgres_dsn)
    again.open(fresh=False)
    again.recover(pending, 2)
    again.recover(pending, 2)  # recovering twice changes nothing
    assert again.records == 2
    again.close()
    assert rows(postgres_dsn, "select k from windows order by k") == [(1,), (2,)]
    assert rows(postgres_dsn, "select count(*) from pg_tables where "
                              "tablename like '_surestream_stage%'") == [(0,)]


def test_a_table_holding_a_newer_checkpoint_than_the_restored_one_is_refused(postgres_dsn):
    s = sink(postgres_dsn)
    s.open(fresh=True)
    c1 = checkpoint(s, 1, pl.DataFrame({"k": [1]}))
    checkpoint(s, 2, pl.DataFrame({"k": [2]}))
    s.close()
    again = sink(postgres_dsn)
    again.open(fresh=False)
    with pytest.raises(SinkRecoveryError, match="'windows'.*already holds checkpoint 2.*"
                                                "restored checkpoint 1"):
        again.recover(c1, 1)
    again.close()
    assert rows(postgres_dsn, "select k from windows order by k") == [(1,), (2,)]


def test_a_table_whose_commits_were_deleted_is_refused_not_refilled(postgres_dsn):
    s = sink(postgres_dsn)
    s.open(fresh=True)
    checkpoint(s, 1, pl.DataFrame({"k": [1]}))
    s.write(pl.DataFrame({"k": [2]}))
    c2 = s.pre_commit(2)
    s.close()
    with psycopg.connect(postgres_dsn) as con:
        con.execute("delete from surestream_commits")
    again = sink(postgres_dsn)
    again.open(fresh=False)
    with pytest.raises(SinkRecoveryError, match="after 1 committed records.*records 0"):
        again.recover(c2, 2)
    again.close()


def test_a_fresh_run_rewrites_its_own_output_but_keeps_a_table_it_never_wrote(postgres_dsn):
    with psycopg.connect(postgres_dsn) as con:
        con.execute("create table windows (k bigint)")
        con.execute("insert into windows values (100)")
    s = sink(postgres_dsn)
    s.open(fresh=True)  # the user's rows stay: this output never committed to the table
    checkpoint(s, 1, pl.DataFrame({"k": [1]}))
    s.close()
    assert rows(postgres_dsn, "select k from windows order by k") == [(1,), (100,)]
    s = sink(postgres_dsn)
    s.open(fresh=True)  # an earlier run of this output: its table is rewritten
    checkpoint(s, 1, pl.DataFrame({"k": [1]}))
    s.close()
    assert rows(postgres_dsn, "select k from windows order by k") == [(1,)]


def test_upsert_into_a_table_without_a_unique_key_says_what_to_create(postgres_dsn):
    with psycopg.connect(postgres_dsn) as con:
        con.execute("create table windows (symbol text, revision bigint)")
    s = sink(postgres_dsn, mode="upsert", key_columns=["symbol"], version_column="revision")
    s.open(fresh=True)
    s.write(pl.DataFrame({"symbol": ["A"], "revision": [1]}))
    c = s.pre_commit(1)
    with pytest.raises(SinkRecoveryError, match="CREATE UNIQUE INDEX ON windows \\(symbol\\)"):
        s.commit(c)
    s.close()


def test_the_spec_keys_of_each_mode_are_checked():
    with pytest.raises(ValueError, match="upsert needs key_columns and version_column"):
        PostgresSink(dsn="x", table="t", mode="upsert", key_columns=["k"])
    with pytest.raises(ValueError, match="replace_partition needs partition_columns"):
        PostgresSink(dsn="x", table="t", mode="replace_partition")
    with pytest.raises(ValueError, match="for mode upsert"):
        PostgresSink(dsn="x", table="t", key_columns=["k"])


def test_the_commits_of_one_table_do_not_count_for_another(postgres_dsn):
    """The output pointed at another table, then resumed from its checkpoint: the new table
    lacks the rows committed before it, so resuming is refused -- not taken for landed
    because the old table holds those checkpoints."""
    first = sink(postgres_dsn)
    first.open(fresh=True)
    checkpoint(first, 1, pl.DataFrame({"k": [1]}))
    c2 = checkpoint(first, 2, pl.DataFrame({"k": [2]}))
    first.close()
    moved = sink(postgres_dsn, table="other")
    moved.open(fresh=False)
    with pytest.raises(SinkRecoveryError, match="'other'.*after 1 committed records"):
        moved.recover(c2, 2)
    moved.close()
