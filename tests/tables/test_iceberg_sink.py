"""The Iceberg sink against a real pyiceberg SQL catalog (SQLite) and a local warehouse:
write-audit-publish, exactly once across restarts, concurrent writers detected, refusal of
a table newer than the restored checkpoint, audit rules, additive schema evolution."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from surestream.connectors.sink_protocol import SinkRecoveryError
from surestream.connectors.tables.iceberg import AUDIT_COLUMN, AuditFailedError, IcebergTableSink
from surestream.connectors.tables.iceberg_catalog import open_catalog
from surestream.connectors.tables.iceberg_read import read_table
from surestream.model.spec import IcebergSink


def make_spec(folder: Path, **extra) -> IcebergSink:
    return IcebergSink(table="curated.prices",
                       catalog={"uri": "sqlite:///wh/catalog.db", "warehouse": "wh"}, **extra)


def open_sink(folder: Path, fresh: bool = False, **extra) -> IcebergTableSink:
    sink = IcebergTableSink(make_spec(folder, **extra), lambda p: folder / p, "prices", "main")
    sink.open(fresh=fresh)
    return sink


def rows(folder: Path, table: str = "curated.prices") -> pl.DataFrame:
    return read_table({"uri": "sqlite:///wh/catalog.db", "warehouse": "wh"}, table,
                      lambda p: folder / p)


def batch(ids: list[int], iso: str = "CAISO") -> pl.DataFrame:
    return pl.DataFrame({"id": ids, "iso": [iso] * len(ids),
                         "lmp": [float(i) for i in ids],
                         "ts": [dt.datetime(2026, 3, 2, i % 24, tzinfo=dt.UTC) for i in ids]})


def ids(folder: Path, table: str = "curated.prices") -> list[int]:
    frame = rows(folder, table)
    return sorted(frame["id"].to_list()) if frame.height else []


def test_staged_checkpoint_is_invisible_until_commit_and_commit_is_idempotent(tmp_path):
    sink = open_sink(tmp_path, fresh=True, partition_by=["day(ts)", "iso"],
                     sort_by=["iso", "ts desc"])
    sink.write(batch([1, 2, 3]))
    c1 = sink.pre_commit(1)
    assert ids(tmp_path) == []  # staged on its branch, not on main
    sink.commit(c1)
    sink.commit(c1)  # a second commit of the same checkpoint does nothing
    assert ids(tmp_path) == [1, 2, 3]
    assert sink.records == 3
    table = open_catalog(sink.spec.catalog, lambda p: tmp_path / p).load_table("curated.prices")
    assert [(f.name, str(f.transform)) for f in table.spec().fields] == [
        ("ts_day", "day"), ("iso", "identity")]
    assert [(f.source_id, str(f.direction)) for f in table.sort_order().fields] == [
        (2, "ASC"), (4, "DESC")]  # iso, ts
    assert list(table.refs()) == ["main"]  # the checkpoint's branch is gone once published
    summary = table.current_snapshot().summary.additional_properties
    assert summary["surestream.checkpoint.prices/main"] == "1"


def test_restart_publishes_a_pending_checkpoint_exactly_once(tmp_path):
    sink = open_sink(tmp_path, fresh=True)
    sink.write(batch([1, 2]))
    sink.commit(sink.pre_commit(1))
    sink.write(batch([3, 4]))
    c2 = sink.pre_commit(2)
    sink.close()  # killed between the durable checkpoint 2 and its commit
    for _ in range(2):  # and again, after the recovery itself had published it
        again = open_sink(tmp_path)
        again.recover(c2, 2)
        assert ids(tmp_path) == [1, 2, 3, 4]
        assert again.records == 4
        again.close()


def test_restart_discards_checkpoints_staged_after_the_restored_one(tmp_path):
    sink = open_sink(tmp_path, fresh=True)
    sink.write(batch([1]))
    c1 = sink.pre_commit(1)
    sink.commit(c1)
    sink.write(batch([2]))
    sink.pre_commit(2)  # staged, but checkpoint 2 never became durable
    sink.close()
    again = open_sink(tmp_path)
    again.recover(c1, 1)
    assert ids(tmp_path) == [1]
    table = open_catalog(again.spec.catalog, lambda p: tmp_path / p).load_table("curated.prices")
    assert list(table.refs()) == ["main"]
    again.write(batch([2]))  # the replay stages checkpoint 2 again, once
    again.commit(again.pre_commit(2))
    assert ids(tmp_path) == [1, 2]


def test_a_table_holding_a_newer_checkpoint_is_refused(tmp_path):
    sink = open_sink(tmp_path, fresh=True)
    sink.write(batch([1]))
    c1 = sink.pre_commit(1)
    sink.commit(c1)
    sink.write(batch([2]))
    sink.commit(sink.pre_commit(2))
    sink.close()
    again = open_sink(tmp_path)
    with pytest.raises(SinkRecoveryError, match="already holds checkpoint 2.*newer than the "
                                                "restored checkpoint 1"):
        again.recover(c1, 1)
    assert ids(tmp_path) == [1, 2]  # nothing was touched


def test_a_concurrent_writer_is_detected_not_overwritten(tmp_path):
    sink = open_sink(tmp_path, fresh=True)
    sink.write(batch([1]))
    sink.commit(sink.pre_commit(1))
    sink.write(batch([2]))
    c2 = sink.pre_commit(2)
    other = open_catalog(sink.spec.catalog, lambda p: tmp_path / p).load_table("curated.prices")
    other.append(batch([100]).to_arrow().cast(other.schema().as_arrow()))
    with pytest.raises(SinkRecoveryError, match="another writer committed snapshot"):
        sink.commit(c2)
    assert ids(tmp_path) == [1, 100]  # the other writer's row kept, ours not published


def test_a_failing_audit_blocks_publishing_with_the_rule_named(tmp_path):
    sink = open_sink(tmp_path, fresh=True,
                     audit={"not_null": ["lmp"], "ranges": {"lmp": {"max": 1000}}})
    sink.write(batch([1, 2]))
    sink.commit(sink.pre_commit(1))
    sink.write(batch([3]).with_columns(pl.lit(None, pl.Float64).alias("lmp")))
    sink.write(batch([4]).with_columns(pl.lit(5000.0).alias("lmp")))
    with pytest.raises(AuditFailedError) as failed:
        sink.pre_commit(2)
    message = str(failed.value)
    assert "not_null in column 'lmp': 1 row(s)" in message
    assert "ranges [None, 1000] in column 'lmp': 1 row(s)" in message
    assert "nothing was published" in message
    assert ids(tmp_path) == [1, 2]


def test_a_failing_audit_can_quarantine_the_checkpoint_instead(tmp_path):
    sink = open_sink(tmp_path, fresh=True, audit={"unique": ["id"]},
                     on_audit_failure="quarantine", quarantine_table="quarantine.prices")
    sink.write(batch([1, 2]))
    sink.commit(sink.pre_commit(1))
    sink.write(batch([3, 3]))
    sink.commit(sink.pre_commit(2))
    assert ids(tmp_path) == [1, 2]
    held = rows(tmp_path, "quarantine.prices")
    assert sorted(held["id"].to_list()) == [3, 3]
    assert all(why.startswith("unique(id): 2 row(s) break it, e.g. {'id': 3")
               for why in held[AUDIT_COLUMN].to_list())
    assert sink.records == 4  # every record is somewhere: 2 published, 2 quarantined


def test_a_new_column_is_added_and_none_is_dropped(tmp_path):
    sink = open_sink(tmp_path, fresh=True)
    sink.write(batch([1]).with_columns(pl.lit("a").alias("b")))
    sink.commit(sink.pre_commit(1))
    sink.write(batch([2]).with_columns(pl.lit(7).alias("c")))
    sink.commit(sink.pre_commit(2))
    frame = rows(tmp_path).sort("id")
    assert {"b", "c"} <= set(frame.columns)
    assert frame.select("id", "b", "c").rows() == [(1, "a", None), (2, None, 7)]


def test_values_the_table_cannot_hold_are_rejected_with_a_reason(tmp_path):
    sink = open_sink(tmp_path, fresh=True)
    sink.write(batch([1]))
    sink.commit(sink.pre_commit(1))
    data = pl.DataFrame({"id": ["x", None, None, None],
                         "wait": [None, dt.timedelta(seconds=1), None, None],
                         "big": pl.Series([5, 5, 2**64 - 1, 5], dtype=pl.UInt64)})
    found = sink.reject(data)
    assert found is not None and found.rows.tolist() == [0, 1, 2]  # row 3 fits
    assert "holds column 'id' as int64, which cannot take the string value 'x'" in found.reasons[0]
    assert "cannot hold a duration" in found.reasons[1]
    assert "above the largest Iceberg long" in found.reasons[2]


def test_a_fresh_run_empties_the_table_and_restarts_the_markers(tmp_path):
    sink = open_sink(tmp_path, fresh=True)
    sink.write(batch([1, 2]))
    sink.commit(sink.pre_commit(1))
    sink.close()
    fresh = open_sink(tmp_path, fresh=True)
    assert ids(tmp_path) == [] and fresh.records == 0
    fresh.write(batch([5]))
    fresh.commit(fresh.pre_commit(1))
    assert ids(tmp_path) == [5]
