"""Exactly-once PostgreSQL table sink (psycopg 3): staged rows and a commits row moved in
one transaction.

``pre_commit(n)`` COPYs the records of checkpoint n into a staging table of their own,
``_surestream_stage_<sink id>_<n>`` (committed, so durable in the server). ``commit(n)``
moves them into the table -- appended, upserted under the version guard, or replacing
their partitions -- inserts ``(pipeline, sink, table, n)`` into ``surestream_commits`` and drops
the staging table, all in one transaction: either all of it happened or none of it. When
the commits row exists already, checkpoint n has landed and commit does nothing.
Recovery to checkpoint n commits n's staged rows if they have not landed and drops the
staging tables of newer checkpoints; it refuses when the commits table holds a checkpoint
newer than n (a table cannot be rolled back) or fewer records than were committed before n.

Why staging rather than PREPARE TRANSACTION (docs/sinks.md, "PostgreSQL"): a prepared
transaction needs ``max_prepared_transactions > 0`` (0 on a default server), and one left
behind by a pipeline that is never restarted keeps its row locks and holds back VACUUM
until someone rolls it back by hand; a staging table is an ordinary table, works on every
server, and the cost is writing each row twice inside the server.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
from collections.abc import Callable
from typing import Any

import polars as pl
import psycopg
from psycopg import sql

from surestream.connectors.committables import check_records_held
from surestream.connectors.sink_protocol import (
    Guarantee,
    Rejection,
    SinkRecoveryError,
    blank_refused_columns,
    reject_rows,
    shown,
    type_check,
)
from surestream.connectors.tables.postgres_types import (
    column_check,
    copy_text,
    postgres_type,
    refused_by_postgres,
)
from surestream.model.spec import PostgresSink

COMMITS = "surestream_commits"
#: the staging table's own column in mode upsert: the order rows arrived in (the last of
#: equal versions of a key wins)
SEQ = "_surestream_seq"
_OWNED = "pipeline = %s and sink = %s and tbl = %s"


class PostgresTableSink:
    guarantee: Guarantee = "exactly_once"

    def __init__(self, spec: PostgresSink, pipeline: str, tag: str) -> None:
        self.spec, self.pipeline, self.tag = spec, pipeline, tag
        schema, _, name = spec.table.rpartition(".")
        self.schema, self.name = schema or None, name
        #: whose rows a commits row counts: this pipeline's output, in this table (an
        #: output pointed at another table starts that table's count afresh)
        self.owner = (pipeline, tag, name)
        digest = hashlib.sha1(f"{pipeline}\0{tag}\0{spec.table}".encode()).hexdigest()[:12]
        self.stage_prefix = f"_surestream_stage_{digest}_"
        self._con: psycopg.Connection | None = None
        self._frames: list[pl.DataFrame] = []
        self.records = 0
        #: column -> its PostgreSQL type: the table's, else the first values' (a column
        #: that has held only nulls has none yet, and is not created until it has values)
        self._types: dict[str, str] = {}
        self.on_point = lambda point: None  # fault points (the runner sets them)

    # -- names ----------------------------------------------------------------------------
    @property
    def output(self) -> str:
        return f"PostgreSQL table {self.spec.table!r} (output {self.tag!r})"

    def _ident(self, name: str) -> sql.Composable:
        return sql.Identifier(self.schema, name) if self.schema else sql.Identifier(name)

    @property
    def target(self) -> sql.Composable:
        return self._ident(self.name)

    def staging(self, checkpoint_id: int) -> str:
        return f"{self.stage_prefix}{int(checkpoint_id)}"

    # -- connection and catalog -----------------------------------------------------------
    def open(self, fresh: bool) -> None:
        try:
            self._con = psycopg.connect(self.spec.dsn, autocommit=True)
        except psycopg.Error as e:
            raise SinkRecoveryError(f"{self.output}: cannot connect: {e}".strip()) from e
        encoding = self._one("show server_encoding")
        if encoding not in ("UTF8", "SQL_ASCII"):
            raise SinkRecoveryError(
                f"{self.output}: the database's encoding is {encoding}, which cannot hold "
                "every text value; use a UTF8 database")
        with self._con.transaction():
            self._con.execute(sql.SQL(
                "create table if not exists {} (pipeline text not null, sink text not null, "
                "tbl text not null, checkpoint bigint not null, records bigint not null, "
                "committed_at timestamptz not null default now(), "
                "primary key (pipeline, sink, tbl, checkpoint))").format(self._ident(COMMITS)))
        if fresh:
            self._start_afresh()
        self._types = self._table_types()
        self.records = self._committed()

    def _one(self, query: Any, params: Any = None) -> Any:
        row = self._con.execute(query, params).fetchone()
        return None if row is None else row[0]

    def _exists(self, name: str) -> bool:
        return self._one("select to_regclass(%s) is not null",
                         [self._ident(name).as_string(self._con)])

    def _table_types(self) -> dict[str, str]:
        if not self._exists(self.name):
            return {}
        rows = self._con.execute(
            "select attname, format_type(atttypid, atttypmod) from pg_attribute "
            "where attrelid = to_regclass(%s) and attnum > 0 and not attisdropped "
            "order by attnum", [self.target.as_string(self._con)]).fetchall()
        return dict(rows)

    def _staged_checkpoints(self) -> list[int]:
        rows = self._con.execute(
            "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
            "where c.relkind = 'r' and n.nspname = coalesce(%s, current_schema()) "
            "and starts_with(c.relname, %s)", [self.schema, self.stage_prefix]).fetchall()
        found = (name[len(self.stage_prefix):] for (name,) in rows)
        return sorted(int(n) for n in found if n.isdigit())

    def _drop_staging(self, newer_than: int | None = None) -> None:
        for n in self._staged_checkpoints():
            if newer_than is None or n > newer_than:
                self._con.execute(sql.SQL("drop table if exists {}").format(
                    self._ident(self.staging(n))))

    def _committed(self, before: int | None = None) -> int:
        """Records committed to the table by this output (by checkpoints before
        ``before``, if given)."""
        query = self._commits_query("coalesce(sum(records), 0)")
        params: list[Any] = list(self.owner)
        if before is not None:
            query += sql.SQL(" and checkpoint < %s")
            params.append(before)
        return int(self._one(query, params))

    def _commits_query(self, what: str) -> sql.Composable:
        return sql.SQL("select " + what + " from {} where " + _OWNED).format(
            self._ident(COMMITS))

    def _start_afresh(self) -> None:
        """A run with no checkpoint rewrites its output: the rows an earlier run of this
        pipeline committed to the table go, with their commits rows and staging tables. A
        table this sink never committed to is the user's, and is kept as it is."""
        with self._con.transaction():
            self._drop_staging()
            ours = self._one(self._commits_query("count(*)"), self.owner)
            if ours and self._exists(self.name):
                self._con.execute(sql.SQL("delete from {}").format(self.target))
            self._con.execute(sql.SQL("delete from {} where " + _OWNED)
                              .format(self._ident(COMMITS)), self.owner)

    # -- writing --------------------------------------------------------------------------
    def reject(self, data: pl.DataFrame) -> Rejection | None:
        """Values no PostgreSQL column holds as they are (nested, objects, NUL in text,
        nanoseconds), values their column would change, and -- as a key or version cannot
        be null -- rows with a null key, version or partition column."""
        if not data.height:
            return None
        checks = [type_check(refused_by_postgres, self.output,
                             "convert it to a plain type (e.g. JSON text) first"),
                  column_check(self.output, self._types), self._required_check()]
        return reject_rows(data, checks)

    def _required(self) -> list[str]:
        spec = self.spec
        if spec.mode == "upsert":
            return [*spec.key_columns, spec.version_column]
        return list(spec.partition_columns or ())

    def _required_check(self) -> Any:
        required = set(self._required())
        role = "key or version" if self.spec.mode == "upsert" else "partition"

        def check(name: str, series: pl.Series) -> Any:
            if name not in required or not series.null_count():
                return None
            return series.is_null().to_numpy(), lambda value: (
                f"{self.output}: the {role} column {name!r} is null ({shown(value)}), and a "
                f"row without a {role} cannot be placed; fill it before this output")

        return check

    def write(self, data: pl.DataFrame) -> None:
        if not data.height:
            return
        data = blank_refused_columns(data, refused_by_postgres)
        missing = [c for c in self._required() if c not in data.columns]
        if missing:
            raise SinkRecoveryError(
                f"{self.output}: the records have no column {missing[0]!r}, which mode "
                f"{self.spec.mode} needs; add it to the stream or change the output's keys")
        for name, dtype in data.schema.items():
            typ = postgres_type(dtype)
            has_values = data[name].null_count() < data.height
            if name not in self._types and typ is not None and has_values:
                self._types[name] = typ
        self._frames.append(data)

    def pre_commit(self, checkpoint_id: int) -> dict[str, Any]:
        """COPY the open checkpoint's records into their staging table, committed."""
        rows = sum(f.height for f in self._frames)
        if rows:
            upsert = self.spec.mode == "upsert"
            if upsert and SEQ in self._types:
                raise SinkRecoveryError(f"{self.output}: the column name {SEQ!r} is the "
                                        "sink's own in mode upsert; rename the column")
            staging = self._ident(self.staging(checkpoint_id))
            written = {c for f in self._frames for c in f.columns}
            # only the columns this checkpoint wrote: a column of the table it did not
            # write keeps its value in an upsert (and is null in a new row)
            columns = sql.SQL(", ").join(
                sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t))
                for c, t in self._types.items() if c in written)
            with self._con.transaction():
                self._con.execute(sql.SQL("drop table if exists {}").format(staging))
                if upsert:  # the arrival order, which breaks ties of equal versions
                    columns = sql.SQL("{}, {} bigint generated always as identity").format(
                        columns, sql.Identifier(SEQ))
                self._con.execute(sql.SQL("create table {} ({})").format(staging, columns))
                for frame in self._frames:
                    self._copy(staging, frame)
                self.on_point("postgres.staged")
        self._frames = []
        return {"checkpoint": checkpoint_id, "rows": rows, "before": self.records}

    def _copy(self, staging: sql.Composable, frame: pl.DataFrame) -> None:
        """One frame, by COPY in CSV: polars writes the text in bulk (no per-row Python),
        floats in their shortest exact form, empty text quoted apart from null. FREEZE (the
        staging table was made in this transaction) writes the rows already frozen, so the
        move out of staging does not set their hint bits first."""
        frame = frame.select([c for c in frame.columns if c in self._types])
        if not frame.width:
            return
        text = copy_text(frame, self._types).write_csv(include_header=False, null_value="")
        statement = sql.SQL("copy {} ({}) from stdin (format csv, freeze)").format(
            staging, sql.SQL(", ").join(map(sql.Identifier, frame.columns)))
        with self._con.cursor().copy(statement) as copy:
            buffer = io.BytesIO(text.encode())
            while chunk := buffer.read(1 << 20):
                copy.write(chunk)

    # -- committing -----------------------------------------------------------------------
    def _landed(self, checkpoint_id: int) -> bool:
        query = self._commits_query("count(*)") + sql.SQL(" and checkpoint = %s")
        return bool(self._one(query, [*self.owner, checkpoint_id]))

    def _check_committable(self, committable: Any, checkpoint_id: int | None = None) -> None:
        ok = (isinstance(committable, dict)
              and all(isinstance(committable.get(k), int) and committable[k] >= 0
                      for k in ("checkpoint", "rows", "before")))
        if not ok or (checkpoint_id is not None and committable["checkpoint"] != checkpoint_id):
            raise SinkRecoveryError(
                f"{self.output}: the checkpoint's record of this output ({shown(committable)}) "
                "is not one this sink wrote; restore the checkpoint folder, or delete it to "
                "start afresh")

    def _check_table_kept(self) -> None:
        committed = self._committed()
        if committed and not self._exists(self.name):
            raise SinkRecoveryError(
                f"{self.output} was dropped by something else: the {committed:,} records "
                "committed to it are gone; restore it, or delete the checkpoint folder to "
                "start afresh (which rewrites every output)")

    def commit(self, committable: dict[str, Any]) -> None:
        self._check_committable(committable)
        n = committable["checkpoint"]
        with self._con.transaction():
            # one writer per output: a second run of the pipeline waits here, then finds
            # the checkpoint landed
            self._con.execute("select pg_advisory_xact_lock(hashtextextended(%s, 0))",
                              [self.stage_prefix])
            if self._landed(n):
                self._con.execute(sql.SQL("drop table if exists {}").format(
                    self._ident(self.staging(n))))
                return
            if committable["rows"] and not self._exists(self.staging(n)):
                raise SinkRecoveryError(
                    f"{self.output}: the output of checkpoint {n} is neither committed nor "
                    "staged (its staging table was dropped by something else); delete the "
                    "checkpoint folder to start afresh")
            self._check_table_kept()
            if self.spec.mode == "replace" and self._exists(self.name):
                # the checkpoint's rows are the whole table (an output_mode complete result)
                self._con.execute(sql.SQL("delete from {}").format(self.target))
            if committable["rows"]:
                self._move_staged(n)
            self._con.execute(sql.SQL("insert into {} (pipeline, sink, tbl, checkpoint, "
                                      "records) values (%s, %s, %s, %s, %s)").format(
                                          self._ident(COMMITS)),
                              [*self.owner, n, committable["rows"]])
        self.records += committable["rows"]
        self.on_point("postgres.committed")

    def _move_staged(self, n: int) -> None:
        """Inside the commit's transaction: make or widen the table, then move checkpoint
        n's rows in by the sink's mode and drop the staging table."""
        con, staging = self._con, self._ident(self.staging(n))
        staged = self._staged_types(n)
        if self.spec.mode == "upsert":
            staged.pop(SEQ, None)
        self._ensure_table(staged)
        cols = sql.SQL(", ").join(map(sql.Identifier, staged))
        mode = self.spec.mode
        if mode in ("append", "replace"):  # replace: the table was emptied in this transaction
            con.execute(sql.SQL("insert into {} ({}) select {} from {}").format(
                self.target, cols, cols, staging))
        elif mode == "replace_partition":
            parts = self.spec.partition_columns
            # ``=``: a partition value is never null (``reject``), and an index serves it
            match = sql.SQL(" and ").join(
                sql.SQL("t.{c} = p.{c}").format(c=sql.Identifier(c)) for c in parts)
            con.execute(sql.SQL("delete from {} t using (select distinct {} from {}) p "
                                "where {}").format(
                self.target, sql.SQL(", ").join(map(sql.Identifier, parts)), staging, match))
            con.execute(sql.SQL("insert into {} ({}) select {} from {}").format(
                self.target, cols, cols, staging))
        else:
            self._upsert(staging, staged)
        con.execute(sql.SQL("drop table {}").format(staging))

    def _upsert(self, staging: sql.Composable, staged: dict[str, str]) -> None:
        """One row per key: the staged row of the highest version (the last of equal ones)
        replaces the table's row when its version is greater or equal -- an older revision,
        a replay's included, never overwrites a newer one."""
        keys, version = self.spec.key_columns, self.spec.version_column
        key_ids = sql.SQL(", ").join(map(sql.Identifier, keys))
        cols = sql.SQL(", ").join(map(sql.Identifier, staged))
        rest = [c for c in staged if c not in keys]
        update = sql.SQL(", ").join(
            sql.SQL("{c} = excluded.{c}").format(c=sql.Identifier(c)) for c in rest)
        action = sql.SQL("do update set {} where {t}.{v} <= excluded.{v}").format(
            update, t=sql.Identifier(self.name), v=sql.Identifier(version)) \
            if rest else sql.SQL("do nothing")
        self._con.execute(sql.SQL(
            "insert into {t} as {alias} ({cols}) select distinct on ({keys}) {cols} from {s} "
            "order by {keys}, {v} desc, {seq} desc on conflict ({keys}) {action}").format(
                t=self.target, alias=sql.Identifier(self.name), cols=cols, keys=key_ids,
                s=staging, v=sql.Identifier(version), seq=sql.Identifier(SEQ),
                action=action))

    def _staged_types(self, n: int) -> dict[str, str]:
        rows = self._con.execute(
            "select attname, format_type(atttypid, atttypmod) from pg_attribute "
            "where attrelid = to_regclass(%s) and attnum > 0 and not attisdropped "
            "order by attnum", [self._ident(self.staging(n)).as_string(self._con)]).fetchall()
        return dict(rows)

    def _ensure_table(self, staged: dict[str, str]) -> None:
        """Create the table from the staged columns (with the upsert keys as its primary
        key, or an index on the partition columns), or add the columns it lacks. A
        column's type is never changed."""
        con = self._con
        if not self._exists(self.name):
            columns = [sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t))
                       for c, t in staged.items()]
            if self.spec.mode == "upsert":
                columns.append(sql.SQL("primary key ({})").format(
                    sql.SQL(", ").join(map(sql.Identifier, self.spec.key_columns))))
            con.execute(sql.SQL("create table {} ({})").format(
                self.target, sql.SQL(", ").join(columns)))
            if self.spec.mode == "replace_partition":  # each commit deletes by partition
                con.execute(sql.SQL("create index on {} ({})").format(
                    self.target, sql.SQL(", ").join(
                        map(sql.Identifier, self.spec.partition_columns))))
        else:
            have = self._table_types()
            for column, typ in staged.items():
                if column not in have:
                    con.execute(sql.SQL("alter table {} add column {} {}").format(
                        self.target, sql.Identifier(column), sql.SQL(typ)))
            if self.spec.mode == "upsert":
                self._check_unique_key()
        self._types.update(self._table_types())

    def _check_unique_key(self) -> None:
        found = self._one(
            "select count(*) from pg_index i where i.indrelid = to_regclass(%s) "
            "and i.indisunique and i.indpred is null and (select array_agg(a.attname "
            "order by a.attname) from pg_attribute a where a.attrelid = i.indrelid "
            "and a.attnum = any(i.indkey)) = %s::name[]",
            [self.target.as_string(self._con), sorted(self.spec.key_columns)])
        if not found:
            raise SinkRecoveryError(
                f"{self.output} has no unique index on the key columns "
                f"{self.spec.key_columns} that upsert needs; create one (CREATE UNIQUE INDEX "
                f"ON {self.spec.table} ({', '.join(self.spec.key_columns)})) and run again")

    # -- recovery -------------------------------------------------------------------------
    def recover(self, committable: dict[str, Any] | None, checkpoint_id: int) -> None:
        """Back to checkpoint ``checkpoint_id``: drop newer staging tables, commit its own.
        Refused when the table holds a newer checkpoint, or not what was committed before."""
        if committable is not None:
            self._check_committable(committable, checkpoint_id)
        newer = self._one(self._commits_query("max(checkpoint)") + sql.SQL(
            " and checkpoint > %s"), [*self.owner, checkpoint_id])
        if newer is not None:
            raise SinkRecoveryError(
                f"{self.output} already holds checkpoint {newer} of pipeline "
                f"{self.pipeline!r}, newer than the restored checkpoint {checkpoint_id} (the "
                "newer checkpoint file is corrupt or was removed, or the checkpoint folder "
                "is an older copy); restore it, or start afresh by deleting the checkpoint "
                "folder (which rewrites this output)")
        if committable is not None:
            check_records_held(self.output, checkpoint_id, committable["before"],
                               self._committed(before=checkpoint_id),
                               "the table's commit records were deleted or replaced by "
                               "something else")
        self._check_table_kept()
        self._drop_staging(newer_than=checkpoint_id)
        self._frames = []
        self.records = self._committed()
        if committable is not None:
            self.commit(committable)
        self._types = self._table_types()

    def committed_reader(self) -> Callable[[], pl.DataFrame]:
        """How ``RunResult.rows`` reads this output back (``connectors/readback.py``)."""
        return self.read_committed

    def read_committed(self) -> pl.DataFrame:
        """The table's rows as they are now (``RunResult.rows``), read over a connection
        of its own (the run's is closed by then)."""
        with psycopg.connect(self.spec.dsn) as con:
            if con.execute("select to_regclass(%s)",
                           [self.target.as_string(con)]).fetchone()[0] is None:
                return pl.DataFrame()
            cur = con.execute(sql.SQL("select * from {}").format(self.target))
            names = [c.name for c in cur.description]
            return pl.DataFrame(cur.fetchall(), schema=names, orient="row",
                                infer_schema_length=None)

    def close(self) -> None:
        if self._con is not None:
            with contextlib.suppress(psycopg.Error):
                self._con.close()
            self._con = None
