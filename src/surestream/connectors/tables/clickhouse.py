"""Idempotent ClickHouse sink: ReplacingMergeTree rows that a replay overwrites.

ClickHouse has no transaction across inserts, so this sink does not promise exactly once.
It promises what a ``ReplacingMergeTree(version_column)`` table ordered by the key columns
gives: rows of one key and version replace each other, so inserting a checkpoint's rows
twice leaves the same table as inserting them once -- for a reader that reads with
``FINAL`` (merges happen in the background; until then both copies are stored).

    pre_commit(n)   the checkpoint's records staged durably (``staged_frames.py``)
    commit(n)       native-protocol batch inserts of the staged records, then a row
                    ``(n, rows)`` in ``_surestream_commits_<table>``; skipped when that row
                    is there (n landed), otherwise done in full -- again, after a crash
                    between the inserts and the row: "commit unknown" means "insert again"
    recover(n)      refused when the commits table holds a checkpoint newer than n (those
                    rows cannot be taken back); staged checkpoints after n are dropped and
                    n is committed unless its row is there
    open(fresh)     a run with no checkpoint truncates the table and its commits table

The table is created if missing from the first records' columns (``clickhouse_types.py``),
``ENGINE = ReplacingMergeTree(version) [PARTITION BY expr] ORDER BY (keys)``; an existing
table must have that engine, version and key (else the replays would not replace). Key
and version columns are never nullable: a record with a null there is rejected.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from surestream.connectors.committables import checked_committable
from surestream.connectors.sink_protocol import (
    Guarantee,
    Rejection,
    SinkRecoveryError,
    blank_refused_columns,
    reject_rows,
    shown,
    type_check,
)
from surestream.connectors.tables.clickhouse_types import (
    DATETIME,
    POLARS_OF,
    TYPE_ADVICE,
    base_type,
    clickhouse_type,
    loses_in_clickhouse,
    refused_by_clickhouse,
)
from surestream.connectors.tables.column_fit import changed_by_cast, value_check
from surestream.connectors.tables.staged_frames import StagedFrames


def _q(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


class ClickHouseTableSink:
    guarantee: Guarantee = "idempotent"

    def __init__(self, spec: Any, staging: Path) -> None:
        self.spec = spec
        self.host, self.port = spec.host, spec.port
        self.database, self.table = spec.database, spec.table
        self.keys: list[str] = list(spec.key_columns)
        self.version: str = spec.version_column
        self.staged = StagedFrames(staging)
        self.records = 0
        self.on_point: Callable[[str], None] = lambda point: None  # fault points
        self._client: Any = None
        self._frames: list[pl.DataFrame] = []
        #: column -> its ClickHouse type (not nullable): the table's, then the first written
        self._types: dict[str, str] = {}

    @property
    def output(self) -> str:
        return f"ClickHouse table {self.database}.{self.table} at {self.host}:{self.port}"

    @property
    def _target(self) -> str:
        return f"{_q(self.database)}.{_q(self.table)}"

    @property
    def _commits(self) -> str:
        return f"{_q(self.database)}.{_q('_surestream_commits_' + self.table)}"

    def _run(self, query: str, params: Any = None, **kw: Any) -> Any:
        return self._client.execute(query, params, **kw)

    # -- the table ------------------------------------------------------------------------
    def open(self, fresh: bool) -> None:
        from clickhouse_driver import Client

        self._client = Client(host=self.host, port=self.port, database=self.database,
                              user=self.spec.user, password=self.spec.password,
                              settings=dict(self.spec.settings))
        self._run(f"CREATE TABLE IF NOT EXISTS {self._commits} (checkpoint UInt64, "
                  "rows UInt64) ENGINE = MergeTree ORDER BY checkpoint")
        if fresh:
            self.staged.drop_newer(None)
            if self._exists():
                self._run(f"TRUNCATE TABLE {self._target}")
            self._run(f"TRUNCATE TABLE {self._commits}")
            self.records = 0
        self._types = self._table_types()
        if self._types:
            self._check_engine()

    def _exists(self) -> bool:
        return bool(self._run(f"EXISTS TABLE {self._target}")[0][0])

    def _table_types(self) -> dict[str, str]:
        rows = self._run("SELECT name, type FROM system.columns WHERE database = %(d)s AND "
                         "table = %(t)s", {"d": self.database, "t": self.table})
        return {name: base_type(typ) for name, typ in rows}

    def _check_engine(self) -> None:
        """An existing table must replace rows by the configured key and version."""
        engine, sorting = self._run(
            "SELECT engine_full, sorting_key FROM system.tables WHERE database = %(d)s AND "
            "name = %(t)s", {"d": self.database, "t": self.table})[0]
        wanted = f"ReplacingMergeTree({self.version})"
        keys = [k.strip() for k in sorting.split(",")] if sorting else []
        if not engine.startswith(wanted) or keys != self.keys:
            raise SinkRecoveryError(
                f"{self.output} exists, but as {engine.split(' PARTITION')[0]} ordered by "
                f"({sorting}), not {wanted} ordered by ({', '.join(self.keys)}): replayed "
                "rows would not replace each other; set key_columns and version_column to "
                "the table's, or write to a new table")

    def _create(self, frame: pl.DataFrame) -> None:
        columns = ", ".join(f"{_q(name)} {self._column_type(name)}" for name in frame.columns
                            if name in self._types)
        partition = (f" PARTITION BY {self.spec.partition_by}"
                     if self.spec.partition_by else "")
        self._run(f"CREATE TABLE IF NOT EXISTS {self._target} ({columns}) "
                  f"ENGINE = ReplacingMergeTree({_q(self.version)}){partition} "
                  f"ORDER BY ({', '.join(_q(k) for k in self.keys)})")

    def _column_type(self, name: str) -> str:
        typ = self._types[name]
        return typ if name in self.keys or name == self.version else f"Nullable({typ})"

    # -- records --------------------------------------------------------------------------
    def reject(self, data: pl.DataFrame) -> Rejection | None:
        if not data.height:
            return None
        missing = [c for c in (*self.keys, self.version) if c not in data.columns]
        if missing:
            reason = (f"{self.output} needs column {missing[0]!r} (a key or the version "
                      "column), which the record lacks; add it (e.g. in a with_columns "
                      "step), or change key_columns / version_column")
            return Rejection(np.arange(data.height, dtype=np.int64), [reason] * data.height)
        return reject_rows(data, [
            type_check(refused_by_clickhouse, self.output, TYPE_ADVICE),
            value_check(self.output, loses_in_clickhouse,
                        "a value ClickHouse's type would change", TYPE_ADVICE),
            self._null_key_check, self._table_type_check])

    def _null_key_check(self, name: str, series: pl.Series) -> Any:
        if name not in self.keys and name != self.version or not series.null_count():
            return None
        return series.is_null().to_numpy(), lambda value: (
            f"{self.output} orders rows by {name!r} (a key or the version column), which "
            "cannot be null; fill it (e.g. in a with_columns step), or drop such records "
            "before this output")

    def _table_type_check(self, name: str, series: pl.Series) -> Any:
        have, got = self._types.get(name), clickhouse_type(series.dtype)
        if have is None or got is None or have == got or series.dtype == pl.Null:
            return None
        times = (DATETIME, "DateTime")
        if have in times and got in times:
            return None  # both instants; naive datetimes are taken as UTC
        target = POLARS_OF.get(have)
        mask = (series.is_not_null().to_numpy() if target is None or got in times
                or have in times else changed_by_cast(series, target))
        if not mask.any():
            return None
        return mask, lambda value: (
            f"{self.output} holds column {name!r} as {have}, which cannot hold the "
            f"{series.dtype} value {shown(value)} as it is; give the column one type before "
            "this output (e.g. a cast in a with_columns step), or write to a new table")

    def write(self, data: pl.DataFrame) -> None:
        if not data.height:
            return
        data = blank_refused_columns(data, refused_by_clickhouse)
        columns = []
        for name, dtype in data.schema.items():
            if dtype == pl.Null and name not in self._types:
                continue  # only nulls so far: the column is added when it has values
            if name not in self._types:
                self._types[name] = clickhouse_type(dtype) or "String"
            columns.append(self._as_held(pl.col(name), dtype, self._types[name]))
        self._frames.append(data.select(columns))

    @staticmethod
    def _as_held(column: pl.Expr, dtype: pl.DataType, held: str) -> pl.Expr:
        """A column as the polars type of its ClickHouse type (``reject`` made sure its
        values keep); datetimes as UTC instants."""
        if held in (DATETIME, "DateTime"):
            if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
                column = column.dt.convert_time_zone("UTC")
            elif isinstance(dtype, pl.Datetime):
                column = column.dt.replace_time_zone("UTC")
            else:
                column = column.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
            return column.dt.cast_time_unit("us")
        target = POLARS_OF.get(held)
        return column if target is None or dtype == target else column.cast(target)

    def pre_commit(self, checkpoint_id: int) -> dict[str, Any]:
        rows = sum(f.height for f in self._frames)
        if rows:
            self.staged.write(checkpoint_id, pl.concat(self._frames, how="diagonal"))
        self._frames = []
        return {"checkpoint": checkpoint_id, "rows": rows, "before": self.records}

    def _check(self, committable: Any, checkpoint_id: int | None = None) -> dict[str, Any]:
        c = checked_committable(committable, self.output, checkpoint_id)
        if type(c.get("before", 0)) is not int:
            raise SinkRecoveryError(f"{self.output}: the checkpoint's commit record {c!r} "
                                    "was altered or is not this pipeline's")
        return c

    def _landed(self, checkpoint_id: int) -> bool:
        return bool(self._run(f"SELECT count() FROM {self._commits} WHERE checkpoint = "
                              "%(n)s", {"n": checkpoint_id})[0][0])

    def commit(self, committable: dict[str, Any]) -> None:
        c = self._check(committable)
        n, rows = c["checkpoint"], c["rows"]
        if rows and not self._landed(n):
            if not self.staged.exists(n):
                raise SinkRecoveryError(
                    f"{self.output}: the records of checkpoint {n} are neither recorded as "
                    f"inserted nor staged in {self.staged.path}; restore that folder, or "
                    "delete the checkpoint folder to start afresh (which rewrites every "
                    "output)")
            self._insert(self.staged.read(n))
            self.on_point("clickhouse.inserted")
            self._run(f"INSERT INTO {self._commits} (checkpoint, rows) VALUES",
                      [(n, rows)])
        self.staged.drop(n)
        self.records = c["before"] + rows

    def _insert(self, frame: pl.DataFrame) -> None:
        """The rows in native-protocol blocks of ``insert_block_rows``, the table created
        or given the new columns first."""
        if not self._exists():
            self._create(frame)
        held = self._table_types()
        for name in frame.columns:
            if name not in held:
                self._run(f"ALTER TABLE {self._target} ADD COLUMN {_q(name)} "
                          f"{self._column_type(name)}")
        names = ", ".join(_q(c) for c in frame.columns)
        step = self.spec.insert_block_rows
        for start in range(0, frame.height, step):
            block = frame.slice(start, step)
            self._run(f"INSERT INTO {self._target} ({names}) VALUES",
                      [self._values(block.get_column(c)) for c in frame.columns],
                      columnar=True)
            if start + step < frame.height:
                self.on_point("clickhouse.mid_insert")

    @staticmethod
    def _values(series: pl.Series) -> list[Any]:
        if isinstance(series.dtype, pl.Datetime):
            return series.dt.epoch("s").to_list()  # the instant: no time zone guessing
        return series.to_list()

    def recover(self, committable: Any, checkpoint_id: int) -> None:
        c = self._check(committable, checkpoint_id) if committable is not None else None
        newer = self._run(f"SELECT max(checkpoint), count() FROM {self._commits} "
                          "WHERE checkpoint > %(n)s", {"n": checkpoint_id})[0]
        if newer[1]:
            raise SinkRecoveryError(
                f"{self.output} already holds checkpoint {newer[0]}, newer than the restored "
                f"checkpoint {checkpoint_id} (the newer checkpoint file is corrupt or was "
                "removed); its rows cannot be taken back: restore it, or start afresh by "
                "deleting the checkpoint directory (which truncates the table)")
        before = c["before"] if c is not None else 0
        if before and not self._exists():
            raise SinkRecoveryError(
                f"{self.output} is gone, but {before:,} records were inserted into it before "
                f"checkpoint {checkpoint_id}; restore it, or delete the checkpoint folder to "
                "start afresh (which rewrites every output)")
        self.staged.drop_newer(checkpoint_id)
        self.records = before
        if c is not None:
            self.commit(c)
        self._types = self._table_types()

    def close(self) -> None:
        self._frames = []
        if self._client is not None:
            self._client.disconnect()
            self._client = None

    # -- reading back ----------------------------------------------------------------------
    def committed_reader(self) -> Callable[[], pl.DataFrame]:
        """A reader of the table as readers must read it: with ``FINAL`` (one row per key),
        ordered by the key."""
        spec, target = self.spec, self._target
        order = ", ".join(_q(k) for k in self.keys)

        def read() -> pl.DataFrame:
            from clickhouse_driver import Client

            client = Client(host=spec.host, port=spec.port, database=spec.database,
                            user=spec.user, password=spec.password)
            try:
                if not client.execute(f"EXISTS TABLE {target}")[0][0]:
                    return pl.DataFrame()
                data, types = client.execute(f"SELECT * FROM {target} FINAL ORDER BY {order}",
                                             columnar=True, with_column_types=True)
            finally:
                client.disconnect()
            return pl.DataFrame({name: list(values) for (name, _), values
                                 in zip(types, data, strict=True)} if data else
                                {name: [] for name, _ in types})

        return read
