"""Exactly-once Delta Lake table sink, through Delta's application transactions.

The way Spark's ``foreachBatch`` writes are made idempotent: every commit carries a ``txn``
action ``(appId, version)``, and the Delta log keeps the latest version per app id. Here
the app id is the pipeline's and output's (``surestream-<pipeline>-<output>``, or
``app_id`` from the spec), the version the checkpoint id:

    write(data)       cast to the table's column types, buffered
    pre_commit(n)     the checkpoint's records staged durably (``staged_frames.py``), since
                      once checkpoint n is durable nothing produces them again
    commit(n)         one Delta commit of the staged records carrying ``txn(app, n)``,
                      unless the table's version for the app is n or later already (the
                      commit landed before a crash): then nothing is written
    recover(n)        refuse when the table holds a version newer than n (a Delta commit
                      cannot be taken back without rewriting the table); otherwise drop
                      staged checkpoints after n and commit n if it has not landed

Checkpoints commit in order, so "the app's version >= n" is exactly "n landed". A fresh
start (no checkpoint) overwrites the table with an empty one whose app version is 0:
earlier output is removed (Delta keeps it in the table's history), and the app's version
starts again below the first checkpoint id.

Column types (``delta_types.py``): what Delta holds as it is; a value its column would
change goes to the errors output (``reject``), never written changed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake

from surestream.connectors.committables import checked_committable
from surestream.connectors.sink_protocol import (
    Guarantee,
    Rejection,
    SinkRecoveryError,
    blank_refused_columns,
    reject_rows,
    type_check,
)
from surestream.connectors.tables.column_fit import table_type_check, value_check
from surestream.connectors.tables.delta_types import (
    TYPE_ADVICE,
    delta_column_type,
    loses_in_delta,
    refused_by_delta,
)
from surestream.connectors.tables.staged_frames import StagedFrames

#: the custom commit metadata key naming the checkpoint a commit holds
CHECKPOINT_KEY = "surestream.checkpoint"


class DeltaTableSink:
    guarantee: Guarantee = "exactly_once"

    def __init__(self, uri: str, partition_by: list[str] | None, app_id: str,
                 staging: Path, storage_options: dict[str, str] | None = None) -> None:
        self.uri, self.app_id = uri, app_id
        self.partition_by = list(partition_by or [])
        self.storage_options = storage_options or None
        self.staged = StagedFrames(staging)
        self.records = 0
        self._frames: list[pl.DataFrame] = []
        #: column -> the polars type the table holds it as (the table's, then the first
        #: written); a column that has held only nulls has none yet
        self._types: dict[str, pl.DataType] = {}
        #: a fresh start has not yet written data: the first commit replaces the (empty)
        #: table's schema and partitioning with this run's
        self._fresh = False

    @property
    def output(self) -> str:
        return f"Delta table {self.uri}"

    # -- the table ----------------------------------------------------------------------
    def _table(self) -> DeltaTable | None:
        if not DeltaTable.is_deltatable(self.uri, storage_options=self.storage_options):
            return None
        return DeltaTable(self.uri, storage_options=self.storage_options)

    def _app_version(self, table: DeltaTable | None) -> int | None:
        return None if table is None else table.transaction_version(self.app_id)

    def _read_types(self, table: DeltaTable | None) -> dict[str, pl.DataType]:
        if table is None:
            return {}
        schema = pl.scan_delta(table).collect_schema()
        return dict(schema.items())

    def _check_partitioning(self, table: DeltaTable | None) -> None:
        if table is None or self._fresh:
            return
        held = list(table.metadata().partition_columns)
        if held != self.partition_by:
            raise SinkRecoveryError(
                f"{self.output} is partitioned by {held or 'nothing'}, but the output's "
                f"partition_by is {self.partition_by or 'nothing'}; set partition_by to "
                f"{held}, or write to a new table (a fresh start, deleting the checkpoint "
                "folder, rewrites this one)")

    def open(self, fresh: bool) -> None:
        table = self._table()
        if fresh:
            self.staged.drop_newer(None)
            self.records, self._types, self._fresh = 0, {}, True
            if table is not None:
                self._empty(table)
            return
        self._types = self._read_types(table)

    def _empty(self, table: DeltaTable) -> None:
        """Overwrite the table with no rows and reset this app's version to 0 (earlier
        versions stay in the Delta history; ``vacuum`` removes their files)."""
        empty = pl.scan_delta(table).head(0).collect().to_arrow()
        write_deltalake(table, empty, mode="overwrite", storage_options=self.storage_options,
                        commit_properties=CommitProperties(
                            app_transactions=[Transaction(self.app_id, 0)],
                            custom_metadata={CHECKPOINT_KEY: "0"}))

    # -- records ------------------------------------------------------------------------
    def reject(self, data: pl.DataFrame) -> Rejection | None:
        """Delta holds most polars types as they are; unsigned integers as the signed type
        one size up, nanosecond datetimes as microseconds (each only where the value stays
        the same); a column holds values its table type keeps exactly."""
        if not data.height:
            return None
        missing = [c for c in self.partition_by if c not in data.columns]
        if missing:
            import numpy as np

            reason = (f"{self.output} is partitioned by {missing[0]!r}, which the record "
                      "lacks; add the column (e.g. in a with_columns step), or change the "
                      "output's partition_by")
            return Rejection(np.arange(data.height, dtype=np.int64), [reason] * data.height)
        return reject_rows(data, [
            type_check(refused_by_delta, self.output, TYPE_ADVICE),
            value_check(self.output, loses_in_delta, "a value that Delta would change",
                        TYPE_ADVICE),
            table_type_check(self.output, self._types.get),
        ])

    def write(self, data: pl.DataFrame) -> None:
        if not data.height:
            return
        data = blank_refused_columns(data, refused_by_delta)
        columns = []
        for name, dtype in data.schema.items():
            have = self._types.get(name)
            if dtype == pl.Null:
                if have is not None:
                    columns.append(pl.col(name).cast(have))
                continue  # only nulls so far: the column is added when it has values
            if have is None:
                have = self._types[name] = delta_column_type(dtype)
            columns.append(pl.col(name).cast(have) if have != dtype else pl.col(name))
        self._frames.append(data.select(columns))

    def pre_commit(self, checkpoint_id: int) -> dict[str, Any]:
        rows = sum(f.height for f in self._frames)
        if rows:
            self.staged.write(checkpoint_id, pl.concat(self._frames, how="diagonal"))
        self._frames = []
        committable = {"checkpoint": checkpoint_id, "rows": rows, "before": self.records}
        if self._fresh:
            committable["fresh"] = True
        return committable

    def _check(self, committable: Any, checkpoint_id: int | None = None) -> dict[str, Any]:
        c = checked_committable(committable, self.output, checkpoint_id)
        if type(c.get("before", 0)) is not int or c.get("fresh", False) not in (True, False):
            raise SinkRecoveryError(f"{self.output}: the checkpoint's commit record "
                                    f"{c!r} was altered or is not this pipeline's")
        return c

    def commit(self, committable: dict[str, Any]) -> None:
        c = self._check(committable)
        n, rows = c["checkpoint"], c["rows"]
        if not rows:
            return
        table = self._table()
        version = self._app_version(table)
        if version is not None and version >= n:  # landed before a crash
            self.staged.drop(n)
            self.records = c["before"] + rows
            self._fresh = False
            return
        if not self.staged.exists(n):
            raise SinkRecoveryError(
                f"{self.output}: the records of checkpoint {n} are neither in the table "
                f"(its version for {self.app_id!r} is {version}) nor staged in "
                f"{self.staged.path}; restore that folder, or delete the checkpoint folder "
                "to start afresh (which rewrites every output)")
        fresh = bool(c.get("fresh")) and self._fresh_ok(table)
        write_deltalake(
            table if table is not None else self.uri, self.staged.read(n).to_arrow(),
            mode="overwrite" if fresh else "append",
            schema_mode="overwrite" if fresh else "merge",
            partition_by=self.partition_by or None if (fresh or table is None) else None,
            storage_options=self.storage_options,
            commit_properties=CommitProperties(
                app_transactions=[Transaction(self.app_id, n)],
                custom_metadata={CHECKPOINT_KEY: str(n)}))
        self.staged.drop(n)
        self.records = c["before"] + rows
        self._fresh = False

    def _fresh_ok(self, table: DeltaTable | None) -> bool:
        """A fresh run's first data may replace the table's schema only while the table is
        the empty one its fresh start left (app version 0, no rows)."""
        return table is not None and self._app_version(table) == 0 and not any(
            True for _ in table.file_uris())

    def recover(self, committable: Any, checkpoint_id: int) -> None:
        c = self._check(committable, checkpoint_id) if committable is not None else None
        table = self._table()
        version = self._app_version(table)
        if version is not None and version > checkpoint_id:
            raise SinkRecoveryError(
                f"{self.output} already holds checkpoint {version} of {self.app_id!r}, newer "
                f"than the restored checkpoint {checkpoint_id} (the newer checkpoint file is "
                "corrupt or was removed); restore it, or start afresh by deleting the "
                "checkpoint directory (which rewrites the table)")
        before = c["before"] if c is not None else 0
        if before and version is None:
            why = "is gone" if table is None else f"holds no commit of {self.app_id!r}"
            raise SinkRecoveryError(
                f"{self.output} {why}, but {before:,} records were committed to it before "
                f"checkpoint {checkpoint_id}; restore the table, or delete the checkpoint "
                "folder to start afresh (which rewrites every output)")
        self.staged.drop_newer(checkpoint_id)
        # a fresh start's empty table: this run's first data still sets its schema
        self._fresh = bool(c is not None and c.get("fresh")) and self._fresh_ok(table)
        self._check_partitioning(table)
        self._types = {} if self._fresh else self._read_types(table)
        self.records = before
        if c is not None:
            self.commit(c)

    def close(self) -> None:
        self._frames = []

    # -- reading back -----------------------------------------------------------------------
    def committed_reader(self) -> Callable[[], pl.DataFrame]:
        """A reader of the table as this run leaves it: its current version, read later
        by time travel (a later run's commits do not change what it returns)."""
        table = self._table()
        version = None if table is None else table.version()
        uri, options = self.uri, self.storage_options

        def read() -> pl.DataFrame:
            if version is None:
                return pl.DataFrame()
            return pl.read_delta(uri, version=version, storage_options=options)

        return read
