"""Exactly-once DuckDB table sink: data and a commits row in one database transaction.

``pre_commit(n)`` writes the records of the open checkpoint into a staging table, tagged
with n, in one transaction (durable in the database file). ``commit(n)`` moves them into the
target table and inserts ``(table, n)`` into ``_surestream_commits`` in one transaction;
when that row exists already, checkpoint n has landed and commit does nothing. Recovery
commits the restored checkpoint's staging rows and deletes staged rows of newer ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from surestream.connectors.sink_protocol import Guarantee, SinkRecoveryError

COMMITS = "_surestream_commits"


class DuckDBTableSink:
    guarantee: Guarantee = "exactly_once"

    def __init__(self, path: Path, table: str) -> None:
        self.path, self.table = path, table
        self.staging = f"_surestream_staging_{table}"
        self._con: duckdb.DuckDBPyConnection | None = None
        self._frames: list[pl.DataFrame] = []
        self.records = 0

    def _q(self, name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    def _exists(self, name: str) -> bool:
        return bool(self._con.execute(
            "select count(*) from information_schema.tables where table_name = ?",
            [name]).fetchone()[0])

    def open(self, fresh: bool) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._con = duckdb.connect(str(self.path))
        self._con.execute(f"create table if not exists {COMMITS} "
                          "(tbl varchar, checkpoint bigint, records bigint, "
                          "primary key (tbl, checkpoint))")
        if fresh:
            self._con.execute(f"drop table if exists {self._q(self.table)}")
            self._con.execute(f"drop table if exists {self._q(self.staging)}")
            self._con.execute(f"delete from {COMMITS} where tbl = ?", [self.table])

    def write(self, data: pl.DataFrame) -> None:
        if data.height:
            self._frames.append(data)

    def pre_commit(self, checkpoint_id: int) -> dict[str, Any]:
        rows = sum(f.height for f in self._frames)
        if rows:
            frame = pl.concat(self._frames, how="diagonal_relaxed")  # noqa: F841 - scanned
            self._con.execute("begin")
            if not self._exists(self.staging):
                self._con.execute(f"create table {self._q(self.staging)} as select "
                                  "*, 0::bigint as _checkpoint from frame limit 0")
            self._con.execute(f"insert into {self._q(self.staging)} by name "
                              f"select *, {int(checkpoint_id)}::bigint as _checkpoint from frame")
            self._con.execute("commit")
        self._frames = []
        return {"checkpoint": checkpoint_id, "rows": rows}

    def _landed(self, checkpoint_id: int) -> bool:
        return bool(self._con.execute(
            f"select count(*) from {COMMITS} where tbl = ? and checkpoint = ?",
            [self.table, checkpoint_id]).fetchone()[0])

    def commit(self, committable: dict[str, Any]) -> None:
        n = int(committable["checkpoint"])
        if self._landed(n):
            return
        con = self._con
        con.execute("begin")
        if committable["rows"]:
            if not self._exists(self.table):
                con.execute(f"create table {self._q(self.table)} as select * exclude "
                            f"(_checkpoint) from {self._q(self.staging)} limit 0")
            con.execute(f"insert into {self._q(self.table)} by name select * exclude "
                        f"(_checkpoint) from {self._q(self.staging)} where _checkpoint = ?", [n])
            con.execute(f"delete from {self._q(self.staging)} where _checkpoint = ?", [n])
        con.execute(f"insert into {COMMITS} values (?, ?, ?)", [self.table, n,
                                                                 committable["rows"]])
        con.execute("commit")
        self.records += committable["rows"]

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
        if self._exists(self.staging):
            self._con.execute(f"delete from {self._q(self.staging)} where _checkpoint > ?",
                              [checkpoint_id])
        self.records = int(self._con.execute(
            f"select coalesce(sum(records), 0) from {COMMITS} where tbl = ?",
            [self.table]).fetchone()[0])
        if committable is not None:
            self.commit(committable)

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None
