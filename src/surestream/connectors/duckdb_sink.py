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

Column types (``duckdb_types.py``): the table takes its columns from the first records;
a column seen later is added, one that held only nulls takes the type of its first values,
and a value its column would change (``2.5`` into ``BIGINT``, text into a number) goes to
the errors output instead (``reject``), so no commit can fail forever on a type.

Output that is not there any more: each committable records the records committed before
it (``before``); a restart finding fewer in ``_surestream_commits`` (the database file was
deleted or replaced), or no table although records were committed to it (it was dropped),
is refused rather than going on with the earlier records lost.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from surestream.connectors.committables import check_duckdb_committable, check_records_held
from surestream.connectors.duckdb_types import (
    NULL_TYPE,
    changed_by_cast,
    first_changed,
    frame_types,
    table_types,
)
from surestream.connectors.sink_protocol import (
    ColumnCheck,
    Guarantee,
    Rejection,
    SinkRecoveryError,
    blank_refused_columns,
    refuses_objects,
    reject_rows,
    shown,
    type_check,
)
from surestream.io import makedirs_durable

COMMITS = "_surestream_commits"
_STAGING_NAME = re.compile(r"^_surestream_cp([0-9]+)_staging_(.*)$", re.DOTALL)
#: The checkpoint column of the single staging table of earlier versions.
LEGACY_CHECKPOINT_COLUMN = "_checkpoint"


class DuckDBTableSink:
    guarantee: Guarantee = "exactly_once"

    def __init__(self, path: Path, table: str, replace: bool = False) -> None:
        self.path, self.table = path, table
        #: ``mode: replace``: each checkpoint's rows replace the table's, in its commit
        self.replace = replace
        self.legacy_staging = f"_surestream_staging_{table}"
        self._con: duckdb.DuckDBPyConnection | None = None
        self._frames: list[pl.DataFrame] = []
        self.records = 0
        #: column -> the DuckDB type its values are held as: the table's, then the first
        #: written; ``NULL_TYPE`` while a column has held only nulls
        self._types: dict[str, str] = {}
        self._type_names: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}

    @property
    def output(self) -> str:
        return f"DuckDB table {self.table!r} in {self.path}"

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
            [name]).fetchall()[0][0])

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
        makedirs_durable(self.path.parent)  # DuckDB fsyncs its file, not the folders made
        self._con = duckdb.connect(str(self.path))
        self._con.execute(f"create table if not exists {COMMITS} "
                          "(tbl varchar, checkpoint bigint, records bigint, "
                          "primary key (tbl, checkpoint))")
        if fresh:
            self._con.execute(f"drop table if exists {self._q(self.table)}")
            self._drop_staging()
            self._con.execute(f"delete from {COMMITS} where tbl = ?", [self.table])
        self._types = self._table_types()

    def _table_types(self) -> dict[str, str]:
        return table_types(self._con, self._q(self.table)) if self._exists(self.table) else {}

    def reject(self, data: pl.DataFrame) -> Rejection | None:
        """DuckDB holds every polars type but opaque Python objects; and a column holds
        values of its own type, or values that cast to it exactly (duckdb_types.py)."""
        if not data.height:
            return None
        checks = [type_check(refuses_objects, self.output, "convert it to a plain type first")]
        if self._types:
            checks.append(self._type_check(self._frame_types(data)))
        return reject_rows(data, checks)

    def _frame_types(self, data: pl.DataFrame) -> dict[str, str]:
        """The DuckDB types of a frame's columns, asked once per polars schema (a batch's
        schema rarely changes; asking DuckDB costs milliseconds)."""
        key = tuple((name, repr(dtype)) for name, dtype in data.schema.items())
        found = self._type_names.get(key)
        if found is None:
            if len(self._type_names) >= 256:
                self._type_names.clear()
            found = self._type_names[key] = frame_types(self._con, data)
        return found

    def _type_check(self, incoming: dict[str, str]) -> ColumnCheck:
        def check(name: str, series: pl.Series) -> tuple[Any, Any] | None:
            have, got = self._types.get(name), incoming.get(name)
            if have in (None, NULL_TYPE, got) or got in (None, NULL_TYPE):
                return None
            mask = changed_by_cast(self._con, series, have, got)
            if not mask.any():
                return None
            return mask, lambda value: (
                f"{self.output} holds column {name!r} as {have}, which cannot hold the "
                f"{got} value {shown(value)} as it is; give the column one type before this "
                "output (e.g. a cast in a with_columns step), or write to a new table")
        return check

    def write(self, data: pl.DataFrame) -> None:
        if not data.height:
            return
        data = blank_refused_columns(data, refuses_objects)
        for name, typ in self._frame_types(data).items():
            if self._types.get(name, NULL_TYPE) == NULL_TYPE:
                self._types[name] = typ  # a column's first type, once it has values
        self._frames.append(data)

    def pre_commit(self, checkpoint_id: int) -> dict[str, Any]:
        """Stage the records in a table of the columns' types, frame by frame (never
        concatenated first, which would widen an int column to text or float to match
        another frame's)."""
        rows = sum(f.height for f in self._frames)
        if rows:
            staging = self._q(self.staging(checkpoint_id))
            columns = ", ".join(f"{self._q(c)} {t}" for c, t in self._types.items())
            con = self._con
            con.execute("begin")
            con.execute(f"drop table if exists {staging}")  # a torn earlier attempt
            con.execute(f"create table {staging} ({columns})")
            for frame in self._frames:
                con.register("_surestream_frame", frame.to_arrow())
                con.execute(f"insert into {staging} by name select * from _surestream_frame")
                con.unregister("_surestream_frame")
            con.execute("commit")
        self._frames = []
        # "before": the records committed ahead of this checkpoint, which recovery checks
        return {"checkpoint": checkpoint_id, "rows": rows, "before": self.records}

    def _landed(self, checkpoint_id: int) -> bool:
        return bool(self._con.execute(
            f"select count(*) from {COMMITS} where tbl = ? and checkpoint = ?",
            [self.table, checkpoint_id]).fetchall()[0][0])

    def _staged_rows(self, checkpoint_id: int) -> str:
        """A query of checkpoint n's staged records (in an earlier version's table, if
        that is where they are)."""
        staging = self.staging(checkpoint_id)
        if self._exists(staging) or not self._exists(self.legacy_staging):
            return f"select * from {self._q(staging)}"
        return (f"select * exclude ({LEGACY_CHECKPOINT_COLUMN}) from "
                f"{self._q(self.legacy_staging)} "
                f"where {LEGACY_CHECKPOINT_COLUMN} = {int(checkpoint_id)}")

    def _committed(self, before: int | None = None) -> int:
        """Records committed to the table (by checkpoints before ``before``, if given)."""
        query = f"select coalesce(sum(records), 0) from {COMMITS} where tbl = ?"
        if before is None:
            return int(self._con.execute(query, [self.table]).fetchall()[0][0])
        return int(self._con.execute(f"{query} and checkpoint < ?",
                                     [self.table, before]).fetchall()[0][0])

    def _check_table_kept(self) -> None:
        """Refuse to go on when records were committed but the table is gone: making it
        again would hold only the later records."""
        committed = self._committed()
        if committed and not self._exists(self.table):
            raise SinkRecoveryError(
                f"{self.output} was dropped by something else: the {committed:,} records "
                "committed to it are gone; restore it, or delete the checkpoint folder to "
                "start afresh (which rewrites every output)")

    def commit(self, committable: dict[str, Any]) -> None:
        check_duckdb_committable(committable, self.output)
        n = committable["checkpoint"]
        if self._landed(n):
            return
        con = self._con
        if committable["rows"] and not (self._exists(self.staging(n))
                                        or self._exists(self.legacy_staging)):
            raise SinkRecoveryError(
                f"duckdb table {self.table!r} in {self.path}: the output of checkpoint {n} "
                "is neither committed nor staged")
        self._check_table_kept()
        con.execute("begin")
        try:
            if self.replace and self._exists(self.table):
                con.execute(f"delete from {self._q(self.table)}")
            if committable["rows"]:
                self._insert_staged(n)
            con.execute(f"insert into {COMMITS} values (?, ?, ?)",
                        [self.table, n, committable["rows"]])
            con.execute("commit")
        except BaseException:
            with contextlib.suppress(duckdb.Error):  # (a failure may have ended it)
                con.execute("rollback")
            raise
        self.records += committable["rows"]

    def _insert_staged(self, checkpoint_id: int) -> None:
        """Move a checkpoint's staged records into the table (inside the commit's
        transaction): columns the table lacks are added, a column that held only nulls
        takes the staged type; a staged value its column would change is refused, naming
        both types -- it can only come from a staging table of an earlier version, or a
        table someone altered, since ``reject`` keeps such values out."""
        con, table = self._con, self._q(self.table)
        source = self._staged_rows(checkpoint_id)
        if not self._exists(self.table):
            con.execute(f"create table {table} as {source} limit 0")
        have = table_types(con, table)
        for column, got in table_types(con, source).items():
            held = have.get(column)
            if held is None:
                con.execute(f"alter table {table} add column {self._q(column)} {got}")
            elif held == NULL_TYPE and got != NULL_TYPE:
                con.execute(f"alter table {table} alter {self._q(column)} type {got}")
            elif held != got and got != NULL_TYPE:
                bad = first_changed(con, source, column, held, got)
                if bad is not None:
                    raise SinkRecoveryError(
                        f"{self.output} holds column {column!r} as {held}, but checkpoint "
                        f"{checkpoint_id} staged it as {got}, with the value {shown(bad[0])} "
                        f"that {held} would not keep as it is; alter the table's column "
                        f"(ALTER TABLE {table} ALTER {self._q(column)} TYPE {got}) and run "
                        "again, or delete the checkpoint folder to start afresh")
        con.execute(f"insert into {table} by name {source}")
        if self._exists(self.staging(checkpoint_id)):
            con.execute(f"drop table {self._q(self.staging(checkpoint_id))}")
        else:
            con.execute(f"delete from {self._q(self.legacy_staging)} "
                        f"where {LEGACY_CHECKPOINT_COLUMN} = ?", [checkpoint_id])

    def recover(self, committable: dict[str, Any] | None, checkpoint_id: int) -> None:
        """Back to checkpoint ``checkpoint_id``: drop newer staging, commit its own.
        Refused when the table holds a newer checkpoint (it cannot be rolled back), or no
        longer holds what was committed before this one."""
        if committable is not None:
            check_duckdb_committable(committable, self.output, checkpoint_id)
        newer = self._con.execute(
            f"select max(checkpoint) from {COMMITS} where tbl = ? and checkpoint > ?",
            [self.table, checkpoint_id]).fetchall()[0][0]
        if newer is not None:
            raise SinkRecoveryError(
                f"duckdb table {self.table!r} in {self.path} already holds checkpoint {newer}, "
                f"newer than the restored checkpoint {checkpoint_id} (the newer checkpoint "
                "file is corrupt or was removed); restore it, or start afresh by deleting "
                "the checkpoint directory")
        if committable is not None and "before" in committable:
            check_records_held(self.output, checkpoint_id, committable["before"],
                               self._committed(before=checkpoint_id),
                               "the database file (or the table's commit records) was "
                               "deleted or replaced by something else")
        self._check_table_kept()
        self._drop_staging(newer_than=checkpoint_id)
        self.records = self._committed()
        if committable is not None:
            self.commit(committable)
        self._types = self._table_types()

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None
