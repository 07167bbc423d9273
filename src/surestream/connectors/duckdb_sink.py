"""Exactly-once DuckDB table sink: data and a commits row in one database transaction.

``pre_commit(n)`` writes the records of the open checkpoint into a staging table of their
own, ``_surestream_cp<n>_staging_<table>``, in one transaction (durable in the database
file). ``commit(n)`` moves them into the target table, drops the staging table and inserts
``(table, n)`` into ``_surestream_commits`` in one transaction; when that row exists already,
checkpoint n has landed and commit does nothing. Recovery commits the restored checkpoint's
staging table and drops the staging tables of newer ones.

One staging table per checkpoint (rather than one table with a checkpoint column) means the
sink adds no column of its own next to the user's: every column name -- ``_checkpoint``
included -- is the user's, and arrives in the table intact. (Databases written by earlier
versions may still hold the single staging table with a ``_checkpoint`` column; recovery
reads and cleans it.)

Columns as the source widens them (docs/concepts.md, "Input typing"): a column that comes in
a later checkpoint is added to the table (after its columns: first-seen order), and a
column that holds only nulls so far (``Null`` typed: ``VARCHAR`` in the table, which takes
any value) takes the type of its first values. Both happen in the commit's transaction.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from surestream.connectors.sink_protocol import (
    Guarantee,
    Rejection,
    SinkRecoveryError,
    blank_refused_columns,
    refuses_objects,
    reject_rows,
    type_check,
)

COMMITS = "_surestream_commits"
_STAGING_NAME = re.compile(r"^_surestream_cp([0-9]+)_staging_(.*)$", re.DOTALL)
#: The checkpoint column of the single staging table of earlier versions.
LEGACY_CHECKPOINT_COLUMN = "_checkpoint"
#: DuckDB's type of a polars ``Null`` column (as ``describe`` spells it), and the type such a
#: column has in the table: an ordinary one, which any value can be inserted into
NULL_TYPE = '"NULL"'
NULL_COLUMN_TYPE = "VARCHAR"


class DuckDBTableSink:
    guarantee: Guarantee = "exactly_once"

    def __init__(self, path: Path, table: str) -> None:
        self.path, self.table = path, table
        self.legacy_staging = f"_surestream_staging_{table}"
        self._con: duckdb.DuckDBPyConnection | None = None
        self._frames: list[pl.DataFrame] = []
        self.records = 0

    def _q(self, name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    def staging(self, checkpoint_id: int) -> str:
        """The staging table of one checkpoint's records: the checkpoint id comes first, so
        no (checkpoint, table) pair shares a name with another, nor with the single staging
        table of earlier versions."""
        return f"_surestream_cp{int(checkpoint_id)}_staging_{self.table}"

    def _exists(self, name: str) -> bool:
        return bool(self._con.execute(
            "select count(*) from information_schema.tables where table_name = ?",
            [name]).fetchone()[0])

    def _staged_checkpoints(self) -> list[int]:
        """Checkpoints with a staging table of this sink's table (exact names only)."""
        names = self._con.execute(
            "select table_name from information_schema.tables "
            "where starts_with(table_name, '_surestream_cp')").fetchall()
        found = (_STAGING_NAME.match(name) for (name,) in names)
        return sorted(int(m[1]) for m in found if m and m[2] == self.table)

    def _drop_staging(self, newer_than: int | None = None) -> None:
        """Drop the staging tables (of checkpoints newer than ``newer_than``, if given)."""
        for n in self._staged_checkpoints():
            if newer_than is None or n > newer_than:
                self._con.execute(f"drop table if exists {self._q(self.staging(n))}")
        if self._exists(self.legacy_staging):
            if newer_than is None:
                self._con.execute(f"drop table {self._q(self.legacy_staging)}")
            else:
                self._con.execute(f"delete from {self._q(self.legacy_staging)} "
                                  f"where {LEGACY_CHECKPOINT_COLUMN} > ?", [newer_than])

    def open(self, fresh: bool) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._con = duckdb.connect(str(self.path))
        self._con.execute(f"create table if not exists {COMMITS} "
                          "(tbl varchar, checkpoint bigint, records bigint, "
                          "primary key (tbl, checkpoint))")
        if fresh:
            self._con.execute(f"drop table if exists {self._q(self.table)}")
            self._drop_staging()
            self._con.execute(f"delete from {COMMITS} where tbl = ?", [self.table])

    def reject(self, data: pl.DataFrame) -> Rejection | None:
        """DuckDB holds every polars type but opaque Python objects."""
        if not data.height:
            return None
        return reject_rows(data, [type_check(
            refuses_objects, f"DuckDB table {self.table!r} in {self.path}",
            "convert it to a plain type first")])

    def write(self, data: pl.DataFrame) -> None:
        if data.height:
            self._frames.append(blank_refused_columns(data, refuses_objects))

    def pre_commit(self, checkpoint_id: int) -> dict[str, Any]:
        rows = sum(f.height for f in self._frames)
        if rows:
            frame = pl.concat(self._frames, how="diagonal_relaxed")  # noqa: F841 - scanned
            staging = self._q(self.staging(checkpoint_id))
            self._con.execute("begin")
            self._con.execute(f"drop table if exists {staging}")  # a torn earlier attempt
            self._con.execute(f"create table {staging} as select * from frame")
            self._con.execute("commit")
        self._frames = []
        return {"checkpoint": checkpoint_id, "rows": rows}

    def _landed(self, checkpoint_id: int) -> bool:
        return bool(self._con.execute(
            f"select count(*) from {COMMITS} where tbl = ? and checkpoint = ?",
            [self.table, checkpoint_id]).fetchone()[0])

    def _staged_rows(self, checkpoint_id: int) -> str:
        """A query of checkpoint n's staged records (in an earlier version's table, if
        that is where they are)."""
        staging = self.staging(checkpoint_id)
        if self._exists(staging) or not self._exists(self.legacy_staging):
            return f"select * from {self._q(staging)}"
        return (f"select * exclude ({LEGACY_CHECKPOINT_COLUMN}) from "
                f"{self._q(self.legacy_staging)} "
                f"where {LEGACY_CHECKPOINT_COLUMN} = {int(checkpoint_id)}")

    def commit(self, committable: dict[str, Any]) -> None:
        n = int(committable["checkpoint"])
        if self._landed(n):
            return
        con = self._con
        if committable["rows"] and not (self._exists(self.staging(n))
                                        or self._exists(self.legacy_staging)):
            raise SinkRecoveryError(
                f"duckdb table {self.table!r} in {self.path}: the output of checkpoint {n} "
                "is neither committed nor staged")
        con.execute("begin")
        if committable["rows"]:
            source = self._staged_rows(n)
            self._fit_table(source)
            con.execute(f"insert into {self._q(self.table)} by name {source}")
            if self._exists(self.staging(n)):
                con.execute(f"drop table {self._q(self.staging(n))}")
            else:
                con.execute(f"delete from {self._q(self.legacy_staging)} "
                            f"where {LEGACY_CHECKPOINT_COLUMN} = ?", [n])
        con.execute(f"insert into {COMMITS} values (?, ?, ?)", [self.table, n,
                                                                 committable["rows"]])
        con.execute("commit")
        self.records += committable["rows"]

    def _fit_table(self, source: str) -> None:
        """Give the table (made now, if need be) every column of the staged records: a
        column it lacks is added; one that holds no value yet takes the staged type if it
        differs (a field null so far, given its first values); a staged ``Null`` column
        is a ``NULL_COLUMN_TYPE`` one. Other columns keep their type."""
        con, table = self._con, self._q(self.table)
        staged = [(name, dtype) for name, dtype, *_ in con.execute(f"describe {source}")
                  .fetchall()]
        if not self._exists(self.table):
            con.execute(f"create table {table} as {source} limit 0")
            have = dict(staged)
        else:
            have = {name: dtype for name, dtype, *_ in
                    con.execute(f"describe {table}").fetchall()}
        for name, dtype in staged:
            column = self._q(name)
            if name not in have:
                typed = NULL_COLUMN_TYPE if dtype == NULL_TYPE else dtype
                con.execute(f"alter table {table} add column {column} {typed}")
            elif have[name] == NULL_TYPE:
                typed = NULL_COLUMN_TYPE if dtype == NULL_TYPE else dtype
                con.execute(f"alter table {table} alter column {column} set data type {typed}")
            elif dtype not in (have[name], NULL_TYPE) and not con.execute(
                    f"select count({column}) from {table}").fetchone()[0]:
                con.execute(f"alter table {table} alter column {column} set data type {dtype}")

    def recover(self, committable: dict[str, Any] | None, checkpoint_id: int) -> None:
        newer = self._con.execute(
            f"select max(checkpoint) from {COMMITS} where tbl = ? and checkpoint > ?",
            [self.table, checkpoint_id]).fetchone()[0]
        if newer is not None:
            raise SinkRecoveryError(
                f"duckdb table {self.table!r} in {self.path} already holds checkpoint {newer}, "
                f"newer than the restored checkpoint {checkpoint_id} (the newer checkpoint "
                "file is corrupt or was removed); restore it, or start afresh by deleting "
                "the checkpoint directory")
        self._drop_staging(newer_than=checkpoint_id)
        self.records = int(self._con.execute(
            f"select coalesce(sum(records), 0) from {COMMITS} where tbl = ?",
            [self.table]).fetchone()[0])
        if committable is not None:
            self.commit(committable)

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None
