"""Sinks that never lose records on the quiet (issue 7, "No silent loss", sinks part 2).

1. An output deleted or truncated by something else since the checkpoint is refused on
   resume (exit 2, naming the path and the lengths) -- never "truncated" up to the
   committed length with NUL bytes; the same for a Parquet part deleted, and a DuckDB
   table dropped (or its database deleted).
2. A crafted checkpoint manifest (re-sealed: its checksum is unkeyed) cannot make a sink
   read, move or delete a file outside its own: every name a committable carries is
   checked first.
3. A CSV output fed by a session window (whose results carry the nested ``supersedes``
   column) is refused at validation, naming the output.
4. A source that fails while the runner is built (a generator raising in its first
   records, a file that cannot be read) gives a message and an exit code, no traceback.
5. The DuckDB sink fsyncs the folders it makes, and its table takes later columns (and
   the first type of a column that was null) instead of failing every commit forever,
   while a value the table's column would change goes to errors with the reason.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest
import yaml

from surestream.connectors.duckdb_sink import DuckDBTableSink
from surestream.connectors.file_sinks import (
    LineFileSink,
    ParquetDatasetSink,
    read_parquet_dataset,
)
from surestream.connectors.sink_protocol import SinkRecoveryError
from surestream.model.loader import load_spec
from surestream.runners.local.runner import LocalRunner

N_TRADES = 600
UNIQUE = N_TRADES // 2  # every trade id comes twice; dedup keeps one


def cli(*args: str, cwd: Path | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "surestream", *args], capture_output=True,
                          text=True, timeout=300, cwd=cwd, env=env)


def write_pipeline(folder: Path, main: dict) -> Path:
    """600 trades (every id twice) through watermark and dedup into ``main``; checkpoints
    every 200 records, batches of 100."""
    lines = [json.dumps({"trade_id": i // 2, "symbol": f"S{i % 24:02d}",
                         "ts": 1_767_225_600_000 + i * 1_000, "qty": i % 7 + 1})
             for i in range(N_TRADES)]
    (folder / "trades.jsonl").write_text("\n".join(lines) + "\n")
    doc = {
        "pipeline": "hardening",
        "source": {"type": "file", "path": "trades.jsonl"},
        "steps": [{"type": "watermark", "name": "wm", "timestamp_column": "ts",
                   "max_out_of_orderness_ms": 0},
                  {"type": "keyed_dedup", "name": "dedup", "key_fields": ["trade_id"],
                   "time_window_ms": 600_000}],
        "outputs": {"main": main, "errors": {"type": "file", "path": "out/errors.jsonl"}},
        "checkpoint": {"dir": "chk", "interval_records": 200},
        "runtime": {"batch_size": 100},
    }
    spec = folder / "spec.yaml"
    spec.write_text(yaml.safe_dump(doc, sort_keys=False))
    return spec


def stop_after_checkpoints(spec: Path, times: int = 2) -> None:
    """Run ``times`` times, each stopping right after its first checkpoint (all committed,
    not finished), as a stopped (or crashed) pipeline leaves things."""
    for _ in range(times):
        LocalRunner(load_spec(spec), stop_after_checkpoint=True).run()


def rewrite_manifest(folder: Path, change) -> None:
    """Edit the newest manifest in ``folder`` and re-seal it, as anyone can (its checksum
    is unkeyed; tests/test_state_format.py does the same)."""
    path = sorted(folder.glob("chk-*.json"))[-1]
    manifest = json.loads(path.read_bytes())
    change(manifest["body"])
    text = json.dumps(manifest["body"], sort_keys=True, default=str)
    manifest["checksum"] = hashlib.sha256(text.encode()).hexdigest()
    path.write_text(json.dumps(manifest, sort_keys=True, default=str))


def trade_ids_jsonl(path: Path) -> list[int]:
    return [json.loads(line)["trade_id"] for line in path.read_text().splitlines()]


# -- 1. an output deleted or truncated since the checkpoint -------------------------------


LINE_OUTPUTS = {"jsonl": "out/trades.jsonl", "csv": "out/trades.csv"}


def read_line_output(path: Path, fmt: str) -> list[int]:
    if fmt == "jsonl":
        return trade_ids_jsonl(path)
    return pl.read_csv(path)["trade_id"].to_list()


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
@pytest.mark.parametrize("damage", ["deleted", "truncated"])
def test_a_line_output_deleted_or_truncated_since_the_checkpoint_is_refused(tmp_path, fmt,
                                                                              damage):
    spec = write_pipeline(tmp_path, {"type": "file", "path": LINE_OUTPUTS[fmt],
                                     "format": fmt})
    stop_after_checkpoints(spec)
    out = tmp_path / LINE_OUTPUTS[fmt]
    kept = out.read_bytes()
    assert len(read_line_output(out, fmt)) > 0
    if damage == "deleted":
        out.unlink()
    else:
        out.write_bytes(kept[: len(kept) // 2])
    r = cli("run", str(spec))
    assert r.returncode == 2, r.stderr
    size = 0 if damage == "deleted" else len(kept) // 2
    assert f"{out} holds {size:,} bytes but checkpoint" in r.stderr
    assert f"committed {len(kept):,}" in r.stderr and "restore it" in r.stderr
    assert "Traceback" not in r.stderr
    assert not out.exists() or b"\0" not in out.read_bytes()  # never filled with NULs
    # restored, the run goes on and ends with every unique trade once
    out.write_bytes(kept)
    r = cli("run", str(spec))
    assert r.returncode == 0, r.stderr
    assert sorted(read_line_output(out, fmt)) == list(range(UNIQUE))


def test_a_deleted_parquet_part_is_refused_naming_the_deletion(tmp_path):
    spec = write_pipeline(tmp_path, {"type": "file", "path": "out/ds", "format": "parquet"})
    stop_after_checkpoints(spec, times=3)
    parts = sorted((tmp_path / "out" / "ds").glob("part-*.parquet"))
    assert len(parts) >= 2
    parts[0].unlink()  # committed before the checkpoint the run resumes from
    r = cli("run", str(spec))
    assert r.returncode == 2, r.stderr
    assert "part files were deleted by something else" in r.stderr
    assert "Traceback" not in r.stderr


def test_a_deleted_parquet_part_of_the_restored_checkpoint_is_refused(tmp_path):
    spec = write_pipeline(tmp_path, {"type": "file", "path": "out/ds", "format": "parquet"})
    stop_after_checkpoints(spec, times=2)
    newest = sorted((tmp_path / "out" / "ds").glob("part-*.parquet"))[-1]
    newest.unlink()
    r = cli("run", str(spec))
    assert r.returncode == 2, r.stderr
    assert f"the part {newest.name} of checkpoint" in r.stderr
    assert "deleted by something else" in r.stderr


def duckdb_ids(db: Path) -> list[int]:
    con = duckdb.connect(str(db))
    try:
        return [i for (i,) in con.execute("select trade_id from results order by trade_id"
                                          ).fetchall()]
    finally:
        con.close()


def test_a_dropped_duckdb_table_is_refused_not_recreated_without_its_rows(tmp_path):
    spec = write_pipeline(tmp_path, {"type": "duckdb", "path": "out/db.duckdb",
                                     "table": "results"})
    stop_after_checkpoints(spec)
    db = tmp_path / "out" / "db.duckdb"
    committed = duckdb_ids(db)
    assert committed
    con = duckdb.connect(str(db))
    con.execute("drop table results")
    con.close()
    r = cli("run", str(spec))
    assert r.returncode == 2, r.stderr
    assert "table 'results'" in r.stderr and "dropped by something else" in r.stderr
    con = duckdb.connect(str(db))
    tables = {t for (t,) in con.execute("select table_name from information_schema.tables"
                                        ).fetchall()}
    con.close()
    assert "results" not in tables  # not made again, holding only the later rows


def test_a_deleted_duckdb_database_is_refused(tmp_path):
    spec = write_pipeline(tmp_path, {"type": "duckdb", "path": "out/db.duckdb",
                                     "table": "results"})
    stop_after_checkpoints(spec)
    db = tmp_path / "out" / "db.duckdb"
    db.unlink()
    Path(f"{db}.wal").unlink(missing_ok=True)
    r = cli("run", str(spec))
    assert r.returncode == 2, r.stderr
    assert "deleted or replaced by something else" in r.stderr


def test_a_deleted_duckdb_database_is_refused_also_when_the_checkpoint_added_no_rows(
        tmp_path):
    """The restored checkpoint staged nothing, so its commit alone cannot notice the loss."""
    db = tmp_path / "db.duckdb"
    sink = DuckDBTableSink(db, "results")
    sink.open(fresh=True)
    sink.write(pl.DataFrame({"id": [1, 2]}))
    sink.commit(sink.pre_commit(1))
    c2 = sink.pre_commit(2)  # nothing written since 1
    sink.commit(c2)
    sink.close()
    db.unlink()
    again = DuckDBTableSink(db, "results")
    again.open(fresh=False)
    with pytest.raises(SinkRecoveryError, match="2 committed records"):
        again.recover(c2, 2)
    again.close()


# -- 2. a crafted manifest cannot reach outside the sink's files ---------------------------


OUTSIDE = b"not the pipeline's: must stay where it is, as it is\n"


@pytest.mark.parametrize("where", ["relative", "absolute"])
def test_a_savepoint_whose_line_part_names_a_file_outside_is_refused(tmp_path, where):
    spec = write_pipeline(tmp_path, {"type": "file", "path": "out/trades.jsonl"})
    sp = tmp_path / "sp"
    for _ in range(2):
        assert cli("savepoint", str(spec), "--to", str(sp)).returncode == 0
    outside = tmp_path / "outside.txt"
    outside.write_bytes(OUTSIDE)
    name = "../../outside.txt" if where == "relative" else str(outside)

    def point_outside(body):
        assert body["sinks"]["main"]["part"]  # the savepoint's checkpoint wrote a part
        body["sinks"]["main"]["part"] = name

    rewrite_manifest(sp, point_outside)
    output = tmp_path / "out" / "trades.jsonl"
    before = output.read_bytes()
    r = cli("run", str(spec), "--from-savepoint", str(sp))
    assert r.returncode == 2, r.stderr
    assert f"JSON lines file {output}" in r.stderr and repr(name) in r.stderr
    assert "Traceback" not in r.stderr
    assert outside.read_bytes() == OUTSIDE
    assert output.read_bytes() == before


def test_a_savepoint_whose_parquet_part_climbs_out_of_the_dataset_is_refused(tmp_path):
    spec = write_pipeline(tmp_path, {"type": "file", "path": "out/ds", "format": "parquet"})
    sp = tmp_path / "sp"
    for _ in range(2):
        assert cli("savepoint", str(spec), "--to", str(sp)).returncode == 0
    victim = tmp_path / "out" / "victim.txt"  # .staging/../../victim.txt from the dataset
    victim.write_bytes(OUTSIDE)

    def climb_out(body):
        parts = body["sinks"]["main"]["parts"]
        assert parts
        parts[0][0] = "../../victim.txt"  # would be renamed to <tmp>/victim.txt

    rewrite_manifest(sp, climb_out)
    rows_before = read_parquet_dataset(tmp_path / "out" / "ds").height
    r = cli("run", str(spec), "--from-savepoint", str(sp))
    assert r.returncode == 2, r.stderr
    assert "Parquet dataset" in r.stderr and "'../../victim.txt'" in r.stderr
    assert victim.read_bytes() == OUTSIDE and not (tmp_path / "victim.txt").exists()
    assert read_parquet_dataset(tmp_path / "out" / "ds").height == rows_before


BAD_LINE_PARTS = ["../../../etc/passwd", "/etc/passwd", "part-1", ".part-0000000002",
                  "part-0000000002/../../x", "part-0000000003", 7, ["part-0000000002"]]


@pytest.mark.parametrize("part", BAD_LINE_PARTS)
def test_line_sink_refuses_a_committable_naming_any_other_part(tmp_path, part):
    out = tmp_path / "deep" / "out.jsonl"
    sink = LineFileSink(out)
    sink.open(fresh=True)
    sink.write(pl.DataFrame({"id": [1]}))
    sink.commit(sink.pre_commit(1))
    sink.write(pl.DataFrame({"id": [2]}))
    c2 = sink.pre_commit(2)
    sink.close()
    victim = tmp_path / "victim.txt"
    victim.write_bytes(OUTSIDE)
    crafted = {**c2, "part": part}
    again = LineFileSink(out)
    again.open(fresh=False)
    with pytest.raises(SinkRecoveryError, match=f"JSON lines file {out}"):
        again.recover(crafted, 2)
    with pytest.raises(SinkRecoveryError, match="altered"):
        again.commit(crafted)
    again.close()
    assert victim.read_bytes() == OUTSIDE
    assert trade_ids(out) == [1]


def trade_ids(path: Path) -> list[int]:
    return [json.loads(line)["id"] for line in path.read_text().splitlines()]


@pytest.mark.parametrize("field,value", [("rows", "12"), ("offset", -1), ("checkpoint", 3),
                                         ("columns", "id"), ("rows", True)])
def test_line_sink_refuses_a_committable_whose_numbers_are_not_counts(tmp_path, field, value):
    out = tmp_path / "out.csv"
    sink = LineFileSink(out, "csv")
    sink.open(fresh=True)
    sink.write(pl.DataFrame({"id": [1]}))
    c1 = sink.pre_commit(1)
    sink.close()
    again = LineFileSink(out, "csv")
    again.open(fresh=False)
    with pytest.raises(SinkRecoveryError, match=f"CSV file {out}"):
        again.recover({**c1, field: value}, 1)
    again.recover(c1, 1)  # the genuine one still lands
    again.close()
    assert out.read_text().splitlines() == ["id", "1"]


BAD_PARQUET_RELS = ["../../victim.txt", "/tmp/part-0000000001.parquet",
                    "part-0000000002.parquet", ".staging/part-0000000001.parquet",
                    "date=1/../../part-0000000001.parquet", "x/part-0000000001.parquet",
                    ".d=1/part-0000000001.parquet", "part-0000000001.parquet/..", ""]


@pytest.mark.parametrize("rel", BAD_PARQUET_RELS)
def test_parquet_sink_refuses_a_committable_naming_any_other_part(tmp_path, rel):
    ds = tmp_path / "out" / "ds"
    sink = ParquetDatasetSink(ds, ["date"])
    sink.open(fresh=True)
    sink.write(pl.DataFrame({"id": [1, 2], "date": ["a", "b"]}))
    c1 = sink.pre_commit(1)
    sink.close()
    victim = tmp_path / "out" / "victim.txt"
    victim.write_bytes(OUTSIDE)
    crafted = {**c1, "parts": [[rel, 1], *c1["parts"][1:]]}
    again = ParquetDatasetSink(ds, ["date"])
    again.open(fresh=False)
    with pytest.raises(SinkRecoveryError, match=f"Parquet dataset {ds}"):
        again.recover(crafted, 1)
    again.recover(c1, 1)  # the genuine one still lands
    again.close()
    assert victim.read_bytes() == OUTSIDE
    assert sorted(read_parquet_dataset(ds)["id"].to_list()) == [1, 2]


def test_parquet_sink_takes_its_own_partitioned_committables(tmp_path):
    """Hive folders with any value (quoted) pass the check: the sink's own names do."""
    ds = tmp_path / "ds"
    sink = ParquetDatasetSink(ds, ["k", "d"])
    sink.open(fresh=True)
    sink.write(pl.DataFrame({"id": [1, 2, 3], "k": ["a/b", "..", None],
                             "d": ["x=y", ".hidden", "z"]}))
    c1 = sink.pre_commit(1)
    sink.close()
    again = ParquetDatasetSink(ds, ["k", "d"])
    again.open(fresh=False)
    again.recover(json.loads(json.dumps(c1)), 1)
    again.close()
    assert sorted(read_parquet_dataset(ds)["id"].to_list()) == [1, 2, 3]


# -- 5. DuckDB: folders made durably; column types that drift ------------------------------


def test_the_duckdb_sink_fsyncs_the_folders_it_makes(tmp_path, monkeypatch):
    """A power loss must not take away the folder the database file is in: each folder
    made is fsynced into its parent (as the file sinks do)."""
    fsynced: dict[str, set[str]] = {}  # folder -> its entries at its last fsync
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        path = os.readlink(f"/proc/self/fd/{fd}")
        if os.path.isdir(path):
            fsynced[path] = set(os.listdir(path))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    sink = DuckDBTableSink(tmp_path / "a" / "b" / "db.duckdb", "results")
    sink.open(fresh=True)
    sink.close()
    assert "a" in fsynced.get(str(tmp_path), set())
    assert "b" in fsynced.get(str(tmp_path / "a"), set())


def table_rows(db: Path, table: str = "results") -> tuple[dict[str, str], list[tuple]]:
    """(column -> DuckDB type, rows in insertion order)."""
    con = duckdb.connect(str(db))
    try:
        types = {r[0]: r[1] for r in con.execute(f"describe {table}").fetchall()}
        return types, con.execute(f"select * from {table} order by rowid").fetchall()
    finally:
        con.close()


def commit_frames(sink: DuckDBTableSink, n: int, *frames: pl.DataFrame) -> list:
    """Reject, write what is left, pre-commit and commit checkpoint ``n``, as the runner
    does; returns the rejections' reasons."""
    reasons: list[str] = []
    for frame in frames:
        rejected = sink.reject(frame)
        if rejected is not None:
            reasons.extend(rejected.reasons)
            keep = [i for i in range(frame.height) if i not in set(rejected.rows.tolist())]
            frame = frame[keep]
        sink.write(frame)
    sink.commit(sink.pre_commit(n))
    return reasons


def test_a_column_seen_later_is_added_to_the_duckdb_table(tmp_path):
    sink = DuckDBTableSink(tmp_path / "db.duckdb", "results")
    sink.open(fresh=True)
    assert commit_frames(sink, 1, pl.DataFrame({"id": [1]})) == []
    assert commit_frames(sink, 2, pl.DataFrame({"id": [2], "extra": ["x"]})) == []
    sink.close()
    types, rows = table_rows(tmp_path / "db.duckdb")
    assert types == {"id": "BIGINT", "extra": "VARCHAR"}
    assert rows == [(1, None), (2, "x")]


def test_a_column_that_held_only_nulls_takes_the_type_of_its_first_values(tmp_path):
    sink = DuckDBTableSink(tmp_path / "db.duckdb", "results")
    sink.open(fresh=True)
    commit_frames(sink, 1, pl.DataFrame({"id": [1], "note": [None]}))
    sink.close()
    again = DuckDBTableSink(tmp_path / "db.duckdb", "results")  # a restart in between
    again.open(fresh=False)
    assert commit_frames(again, 2, pl.DataFrame({"id": [2], "note": ["late"]})) == []
    again.close()
    types, rows = table_rows(tmp_path / "db.duckdb")
    assert types["note"] == "VARCHAR" and rows == [(1, None), (2, "late")]


def test_a_value_its_duckdb_column_would_change_is_rejected_with_the_reason(tmp_path):
    sink = DuckDBTableSink(tmp_path / "db.duckdb", "results")
    sink.open(fresh=True)
    commit_frames(sink, 1, pl.DataFrame({"id": [1], "v": [10]}))
    reasons = commit_frames(sink, 2, pl.DataFrame({"id": [2, 3, 4], "v": [20.0, 2.5, None]}),
                            pl.DataFrame({"id": [5], "v": ["12"]}))
    sink.close()
    assert len(reasons) == 2
    assert "column 'v' as BIGINT" in reasons[0] and "DOUBLE value 2.5" in reasons[0]
    assert "VARCHAR value '12'" in reasons[1]
    types, rows = table_rows(tmp_path / "db.duckdb")
    assert types["v"] == "BIGINT"
    assert rows == [(1, 10), (2, 20), (4, None)]  # 20.0 is 20 exactly; 3 and 5 to errors


def test_frames_of_one_checkpoint_are_not_widened_to_each_others_types(tmp_path):
    """Concatenated first, an int column next to a float frame would become float (and
    2**60 + 1 would round); each value lands as it is, or goes to errors."""
    big = 2**60 + 1
    sink = DuckDBTableSink(tmp_path / "db.duckdb", "results")
    sink.open(fresh=True)
    reasons = commit_frames(sink, 1, pl.DataFrame({"v": [big]}),
                            pl.DataFrame({"v": [3.0, 1.5]}), pl.DataFrame({"v": [7]}))
    sink.close()
    assert len(reasons) == 1 and "1.5" in reasons[0]
    types, rows = table_rows(tmp_path / "db.duckdb")
    assert types == {"v": "BIGINT"} and rows == [(big,), (3,), (7,)]


def test_a_staged_value_an_altered_table_cannot_hold_is_refused_naming_both_types(tmp_path):
    db = tmp_path / "db.duckdb"
    sink = DuckDBTableSink(db, "results")
    sink.open(fresh=True)
    commit_frames(sink, 1, pl.DataFrame({"v": [1]}))
    sink.write(pl.DataFrame({"v": [2**40]}))
    c2 = sink.pre_commit(2)  # staged; the process dies before the commit
    sink.close()
    con = duckdb.connect(str(db))
    con.execute("alter table results alter v type integer")  # someone narrows the column
    con.close()
    again = DuckDBTableSink(db, "results")
    again.open(fresh=False)
    with pytest.raises(SinkRecoveryError,
                       match=r"column 'v' as INTEGER, but checkpoint 2 staged it as BIGINT, "
                             r"with the value 1099511627776"):
        again.recover(c2, 2)
    again.close()
    assert table_rows(db)[1] == [(1,)]  # nothing half-committed


def test_a_pipeline_whose_fields_come_later_fills_its_duckdb_table(tmp_path):
    """A JSON field first seen after the type sample (256 KiB) and after the first
    checkpoint becomes a new column (concepts: "fields seen later are kept"); before, every
    commit after it failed, on every restart."""
    n, first_tag = 1500, 1300  # lines of ~250 bytes: the sample ends near line 1,050
    lines = [json.dumps({"id": i, "pad": "x" * 220,
                         **({"tag": f"t{i}"} if i >= first_tag else {})}) for i in range(n)]
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({
        "pipeline": "later-fields",
        "source": {"type": "file", "path": "in.jsonl"},
        "outputs": {"main": {"type": "duckdb", "path": "out/db.duckdb", "table": "results"},
                    "errors": {"type": "file", "path": "out/errors.jsonl"}},
        "checkpoint": {"dir": "chk", "interval_records": 500},
        "runtime": {"batch_size": 250},
    }))
    r = cli("run", str(spec))
    assert r.returncode == 0, r.stderr
    types, rows = table_rows(tmp_path / "out" / "db.duckdb")
    assert types == {"id": "BIGINT", "pad": "VARCHAR", "tag": "VARCHAR"}
    assert [(row[0], row[2]) for row in rows] == [
        (i, f"t{i}" if i >= first_tag else None) for i in range(n)]
    assert (tmp_path / "out" / "errors.jsonl").read_text() == ""
