"""The declarative pipeline spec (PIPELINE_SPEC.md v1), validated with pydantic.

A spec is a YAML/JSON file or a Python dict; the fluent Python API (``surestream.api``)
builds the very same ``PipelineSpec``. Validation is complete before anything runs: unknown
keys, wrong types, impossible values and dangling tags are reported with the field's path.

Streams and tags. A spec has one ``source`` (or several named ``sources``) and either
top-level ``steps`` (one stream called ``main``) or named ``streams``, each reading ``from``
a source, another stream, or a side-output tag (fan-out). A stream's results carry the
stream's name as their tag; operators add side tags (``late``, routes, ...). Every tag goes
to an entry of ``outputs`` or to a stream that reads it: nothing is dropped silently. The
``errors`` tag defaults to a file next to the checkpoint directory.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from surestream.model.csv_outputs import csv_output_problems
from surestream.model.error_kinds import ERROR_CATEGORIES, ERROR_FIELD_SOURCES, ERROR_KINDS
from surestream.model.error_outputs import error_output_problems
from surestream.model.output_modes import (
    idempotence_problem,
    kafka_idempotence,
    output_mode_problems,
)
from surestream.model.plan_shapes import (
    checkpoint_enabled_problems,
    clickhouse_idempotency,
    iceberg_options,
    kafka_exactly_once,
    late_destinations,
)
from surestream.model.problems import SpecProblems, key_path
from surestream.model.sink_resilience import (
    CircuitBreakerPolicy,
    DeadLetterFile,
    RetryPolicy,
    SinkFailureAction,
    resilience_problem,
)
from surestream.model.steps import USER_CODE, Name, Step
from surestream.model.stream_graph import (  # noqa: F401 - re-exported: the spec's names
    ERRORS_TAG,
    MAIN_STREAM,
    graph_problems,
    graph_tags,
    step_side_tags,
)
from surestream.model.table_audit import AuditFailure, AuditRules
from surestream.model.trigger import TriggerSpec


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


FileFormat = Literal["jsonl", "csv", "parquet"]


class FileSource(_Strict):
    """Files: one partition per file of a glob, in sorted order. A list of paths/globs is
    the union of their files, in list order (e.g. trades and market-data ticks)."""

    type: Literal["file"] = "file"
    path: str | Annotated[list[str], Field(min_length=1)] = Field(
        description="a file, a glob (one partition per file, in sorted order) or a list of "
                    "them (their union, in list order); relative to the spec's folder")
    format: FileFormat = Field("jsonl", description="`jsonl` (one JSON object a line), `csv` "
                                                    "(with a header line) or `parquet`")
    schema_: dict[str, Literal["int", "float", "string", "bool"]] | None = Field(
        default=None, alias="schema",
        description="column -> type (`int`, `float`, `string`, `bool`); a value that does "
                    "not fit goes to `errors`. By default the types are inferred once from "
                    "the first lines (docs/concepts.md, 'Input typing')")
    extra_fields: Literal["keep", "error"] = Field(
        "keep", description="fields the schema lacks: `keep` adds them as columns (typed from "
                            "their first values); `error` (a declared schema only) sends "
                            "their records to `errors`")

    @model_validator(mode="after")
    def _extra_fields_need_a_schema(self) -> FileSource:
        if self.extra_fields == "error" and not self.schema_:
            raise ValueError("extra_fields: error needs a declared `schema` (the fields it "
                             "allows); without one, every field is kept")
        return self


class GeneratorSource(_Strict):
    """Records from a Python iterable or callable (``module:function`` in a file spec).

    A run that checkpoints must be able to read the records again from the start to resume:
    a function (called again) or a collection; an iterator or generator object is refused
    then (``PipelineSpec`` checks it, naming the field)."""

    type: Literal["generator", "memory"] = "generator"
    function: Any = Field(
        None, json_schema_extra={"type": "string"},
        description="`generator`: function(**params) returning an iterable of records "
                    "(dicts), replayable from the start: " + USER_CODE)
    records: list[Any] | None = Field(None, description="`memory`: the records themselves "
                                                        "(a value that is not a mapping "
                                                        "goes to `errors`)")
    params: dict[str, Any] = Field(default_factory=dict,
                                   description="`generator`: keyword arguments of `function`")

    @model_validator(mode="after")
    def _one_of(self) -> GeneratorSource:
        if (self.function is None) == (self.records is None):
            raise ValueError("give exactly one of `function` (generator) or `records` (memory)")
        return self


def restartable(source: Any) -> bool:
    """A generator source can be resumed only if it can be read again from its start: a
    function (called again for a fresh iterator) or a collection (a list, a tuple, ...),
    not an iterator or generator object, which would go on from where it stands."""
    if callable(source):
        return True
    try:
        return iter(source) is not source
    except TypeError:
        return False


TimestampMs = Annotated[int, Field(strict=True)]


class KafkaTimestamp(_Strict):
    """A point in a topic's time: the first record at or after this record timestamp."""

    timestamp_ms: TimestampMs = Field(description="epoch milliseconds (record timestamps)")


KafkaMetadata = Literal["key", "topic", "partition", "offset", "timestamp", "headers"]


class KafkaSource(_Strict):
    """Kafka topics: each topic-partition is an input partition with its own watermark and
    idleness. Offsets live in the run's checkpoints and are also committed to `group_id`
    after each checkpoint (for lag tools). Without `stop_at` the run is live: it runs until
    stopped (docs/kafka.md)."""

    type: Literal["kafka"] = "kafka"
    bootstrap: str | None = Field(
        None, description="`host:port[,host:port...]`; omitted: `$SURESTREAM_BOOTSTRAP`, else "
                          "the embedded broker `surestream broker` is running")
    topics: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)] = Field(
        description="the topics read; each topic-partition is an input partition")
    group_id: str | None = Field(
        None, description="the consumer group offsets are also committed to after each "
                          "checkpoint (default `surestream-<pipeline>`)")
    start: Literal["earliest", "latest", "committed"] | KafkaTimestamp = Field(
        "earliest", description="where a run with no checkpoint starts: `earliest`, `latest`, "
                                "`committed` (the group's offsets; earliest where it has none) "
                                "or `{timestamp_ms: N}`")
    stop_at: Literal["end"] | KafkaTimestamp | None = Field(
        None, description="`end` (the end offsets seen at start) or `{timestamp_ms: N}` makes "
                          "the run bounded, for replays and `verify`; omitted: run live")
    format: Literal["json", "csv", "raw"] = Field(
        "json", description="how values parse: `json` (an object a message), `csv` (a record "
                            "a message, with `csv_header`), `raw` (the bytes, column `value`)")
    csv_header: list[str] | None = Field(None, description="`csv`: the column names")
    schema_: dict[str, Literal["int", "float", "string", "bool"]] | None = Field(
        default=None, alias="schema",
        description="column -> type, as for files; by default inferred from the first "
                    "messages")
    extra_fields: Literal["keep", "error"] = Field(
        "keep", description="fields the schema lacks: `keep` or `error` (as for files)")
    metadata: list[KafkaMetadata] = Field(
        default_factory=list,
        description="message metadata added as columns `kafka_<name>`: `key` (string), "
                    "`topic`, `partition`, `offset`, `timestamp` (ms), `headers`")
    options: dict[str, Any] = Field(default_factory=dict,
                                    description="passed to the consumer (librdkafka names)")

    @model_validator(mode="after")
    def _csv_needs_header(self) -> KafkaSource:
        if self.format == "csv" and not self.csv_header:
            raise ValueError("format: csv needs `csv_header` (a message holds one record, "
                             "without a header line)")
        if self.extra_fields == "error" and not self.schema_:
            raise ValueError("extra_fields: error needs a declared `schema`")
        return self

    @property
    def live(self) -> bool:
        """No stop point: the run reads until it is stopped."""
        return self.stop_at is None


#: (``SourceSpec``, the union of source types, follows the table sources below)


#: what each sink type can promise (SEMANTICS §7); `validate` holds specs to it
SINK_GUARANTEES = {"file": "exactly_once", "duckdb": "exactly_once", "memory": "exactly_once",
                   "stdout": "at_least_once", "kafka": "exactly_once",
                   "iceberg": "exactly_once", "delta": "exactly_once",
                   "clickhouse": "idempotent", "postgres": "exactly_once"}


ErrorKind = Literal[(*ERROR_KINDS, *ERROR_CATEGORIES)]  # type: ignore[valid-type]
ErrorField = Literal[ERROR_FIELD_SOURCES]  # type: ignore[valid-type]
FieldName = Annotated[str, Field(min_length=1)]


class _SinkBase(_Strict):
    exactly_once: bool | None = Field(
        None, description="demand exactly-once delivery: `validate` refuses it for a sink "
                          "that cannot give it (`stdout`, a kafka sink with `delivery: "
                          "at_least_once`); on `clickhouse` it means replay-safe writes "
                          "that read exactly once with `FINAL`; `false` on a kafka sink "
                          "without `delivery` is `delivery: at_least_once`, on the other "
                          "sinks it changes nothing (they are exactly once regardless)")
    enable_idempotence: bool | None = Field(
        None, description="the ETL framework's switch for replay-safe writes (a checkpoint "
                          "replayed after a crash is never written twice). Unset: true "
                          "wherever the sink can be (every sink but `stdout`); `true` on "
                          "`stdout` is refused (printed lines cannot be taken back); `false` "
                          "on a kafka sink without `delivery` means `delivery: "
                          "at_least_once`; elsewhere the sinks stay replay-safe")
    checkpoint_enabled: bool | None = Field(
        None, description="the hardening plan's statement that the sink commits at the "
                          "spec's checkpoints (every sink does): `true` needs "
                          "`checkpoint.interval_ms` or `interval_records`; `false` is "
                          "refused when the spec checkpoints during the run")
    processing_time_columns: list[str] = Field(
        default_factory=list,
        description="columns holding processing time (the wall clock, e.g. from "
                    "`CURRENT_DATE` or the `processing_time` step): one value per checkpoint "
                    "interval, reproduced by a recovery, but two separate runs differ in "
                    "them, so `verify` leaves them out of its comparisons between runs")
    key: list[str] | None = Field(
        None, description="the records' idempotency key, which `verify` checks is unique in "
                          "this output; by default the key of the stream's last keyed step "
                          "(dedup or window)")
    error_kinds: list[ErrorKind] | None = Field(
        None, description="make this an error output: it takes the error records of these "
                          "kinds -- `input` (does not parse, no event time or key), "
                          "`processing` (user code, SQL or a step failed on it), `output` "
                          "(no output can hold it) -- or single categories "
                          "(`deserialization_error`, `user_code_error`, ...); the "
                          "`errors` output keeps the rest (docs/concepts.md, 'Errors')")
    error_fields: Annotated[list[ErrorField], Field(min_length=1)] \
        | Annotated[dict[FieldName, ErrorField], Field(min_length=1)] | None = Field(
        None, description="an error output's fields: a list of error fields, or output "
                          "field -> error field (`{original_value: raw, error_type: "
                          "exception, timestamp_ms: recorded_at_ms}`); `category` and "
                          "`exception` hold the error's category and exception class, "
                          "`recorded_at_ms` the processing time it was recorded at (one "
                          "per checkpoint). Default: the first six")
    # -- when writing fails (model/sink_resilience.py, docs/etl.md) --
    retry: RetryPolicy | None = Field(
        None, description="retry a failing write, pre-commit or commit with exponential "
                          "backoff: `{max_attempts, initial_backoff_ms, max_backoff_ms, "
                          "multiplier, jitter}`; absent: one attempt")
    circuit_breaker: CircuitBreakerPolicy | None = Field(
        None, description="`{failure_threshold, probe_interval_ms}`: after this many "
                          "consecutive failed attempts the breaker opens; while open the "
                          "sink is tried once (half-open) every probe interval")
    on_sink_failure: SinkFailureAction = Field(
        "fail", description="when the attempts are spent or the breaker opens: `fail` "
                            "(stop, exit 1, resumable), `pause` (stop reading, keep the "
                            "state, probe until the sink is back) or `dlq` (the batch's "
                            "records to `dead_letter`, and go on)")
    dead_letter: DeadLetterFile | None = Field(
        None, description="the dead-letter output of `on_sink_failure: dlq`: `{type: file, "
                          "path}`, one JSON line per record of a failed batch with "
                          "`batch_id`, `output`, `error`, `failed_at_ms`, `record`")
    fail_fast: bool = Field(
        False, description="stop the run at the first failure: no retries, no breaker, "
                           "whatever `on_sink_failure` says")

    @field_validator("error_fields", mode="before")
    @classmethod
    def _known_error_fields(cls, value: Any) -> Any:
        """One plain message for a field that is not an error field (the union of a list
        and a mapping would report it twice, in pydantic's type names)."""
        sources = list(value.values()) if isinstance(value, dict) else value
        if isinstance(sources, list):
            unknown = [x for x in sources if x not in ERROR_FIELD_SOURCES]
            if unknown:
                raise ValueError(f"{unknown[0]!r} is not an error field; the error fields "
                                 "are " + ", ".join(ERROR_FIELD_SOURCES))
        return value

    @model_validator(mode="after")
    def _guarantee(self) -> _SinkBase:
        promise = SINK_GUARANTEES[self.type]
        if getattr(self, "delivery", None) == "at_least_once":
            promise = "at_least_once"
        if self.exactly_once and promise not in ("exactly_once", "idempotent"):
            raise ValueError(f"exactly_once: a {self.type} sink is {promise}; it cannot "
                             "deliver exactly once (use a file, duckdb, iceberg, delta, "
                             "postgres or kafka sink with delivery exactly_once)")
        problem = resilience_problem(self)
        if problem is not None:
            raise ValueError(problem)
        idempotence_problem(self.type, self.enable_idempotence, promise)
        return self


class FileSink(_SinkBase):
    """A file, exactly once: JSON lines or CSV with a commit log, or a Parquet dataset
    folder of part files (one per checkpoint with data)."""

    type: Literal["file"] = "file"
    path: str = Field(description="the file (jsonl, csv) or dataset folder (parquet); "
                                  "relative to the spec's folder")
    format: FileFormat = Field("jsonl", description="`jsonl`, `csv` or `parquet`")
    partition_by: list[str] | None = Field(
        None, description="Parquet only: hive-style folders by these columns "
                          "(`date=2026-01-01/symbol=ABC/part-<checkpoint>.parquet`)")

    @model_validator(mode="after")
    def _partitioning(self) -> FileSink:
        if self.partition_by and self.format != "parquet":
            raise ValueError("partition_by needs format: parquet (a dataset folder)")
        for column in self.partition_by or ():
            if not column or column.startswith(".") or any(c in column for c in "/=\\\0"):
                raise ValueError(
                    f"partition_by: {column!r} cannot name a partition folder "
                    "(`<column>=<value>`): a column name there may not be empty, start with "
                    "'.' (a hidden folder readers skip) or hold '/', '=', '\\' or NUL; "
                    "rename the column first (e.g. in a with_columns step)")
        return self


class DuckDBSink(_SinkBase):
    """A DuckDB table, exactly once (staging table and commit marker in one transaction)."""

    type: Literal["duckdb"] = "duckdb"
    path: str = Field(description="the database file; relative to the spec's folder")
    table: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] = Field(
        description="the table, created from the first records' columns if missing")
    mode: Literal["append", "replace"] = Field(
        "append", description="`append` (every record a new row) or `replace` (each "
                              "checkpoint's rows replace the table's rows, in the commit's "
                              "transaction: the sink of an `output_mode: complete` result)")


def _iceberg_table_name(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+", name):
        raise ValueError(f"{name!r} is not `namespace.table` (letters, digits and _, a dot "
                         "between namespace and table, e.g. curated.rt_lmp_5m)")
    return name


#: ``namespace.table`` (one or more namespace levels)
IcebergTableName = Annotated[str, AfterValidator(_iceberg_table_name)]


class IcebergSink(_SinkBase):
    """An Apache Iceberg table, exactly once (write-audit-publish): each checkpoint's data
    is staged as a snapshot on a branch of its own, carrying the checkpoint id in its
    summary, audited, and published at commit (docs/sinks.md, "Iceberg")."""

    type: Literal["iceberg"] = "iceberg"
    catalog: dict[str, Any] = Field(
        default_factory=lambda: default_iceberg_catalog(),
        description="the pyiceberg catalog: `{uri, warehouse}` for the embedded SQLite SQL "
                    "catalog (paths relative to the spec's folder), or `{name: ..., ...}` "
                    "with any pyiceberg catalog properties (`type: rest`, `uri`, ...)")
    table: IcebergTableName = Field(
        description="`namespace.table`; created (namespace too) from the stream's columns "
                    "if missing")
    partition_by: list[str] | None = Field(
        None, description="partition fields: a column (identity), or `identity(c)`, "
                          "`year(c)`, `month(c)`, `day(c)`, `hour(c)`, `bucket(N, c)`, "
                          "`truncate(W, c)`; applied when the table is created")
    sort_by: list[str] | None = Field(
        None, description="the table's sort order: columns, each optionally followed by "
                          "` desc`; applied when the table is created")
    write_audit_publish: bool = Field(
        True, description="stage each checkpoint as a snapshot on a branch, run `audit` on "
                          "it, publish it at commit (table property `write.wap.enabled`); "
                          "false: no audit (the data is still staged on a branch, which is "
                          "how the sink is exactly once)")
    audit: AuditRules | None = Field(
        None, description="data-quality rules run on each checkpoint's staged data before "
                          "it is published (needs `write_audit_publish`)")
    on_audit_failure: AuditFailure = Field(
        "fail", description="a checkpoint whose data fails `audit`: `fail` stops the run "
                            "with the failed rules named (nothing is published); "
                            "`quarantine` writes that checkpoint's data to "
                            "`quarantine_table` instead, with a column `_audit_failures`")
    quarantine_table: IcebergTableName | None = Field(
        None, description="`on_audit_failure: quarantine`: the table (same catalog) that "
                          "takes failing checkpoints' data")
    options: dict[str, str] = Field(
        default_factory=dict,
        description="table properties set when the sink creates the table; "
                    "`write.wap.enabled: \"true\"|\"false\"` is `write_audit_publish` (a "
                    "contradiction between the two is refused)")

    @model_validator(mode="before")
    @classmethod
    def _plan_options(cls, data: Any) -> Any:
        return iceberg_options(data)

    @model_validator(mode="after")
    def _audit_options(self) -> IcebergSink:
        if self.audit is not None and not self.write_audit_publish:
            raise ValueError("audit needs write_audit_publish: true (the rules run on the "
                             "staged snapshot before it is published)")
        if self.on_audit_failure == "quarantine" and self.quarantine_table is None:
            raise ValueError("on_audit_failure: quarantine needs quarantine_table "
                             "(`namespace.table`)")
        if self.quarantine_table is not None and self.quarantine_table == self.table:
            raise ValueError("quarantine_table must differ from table")
        return self


class DeltaSink(_SinkBase):
    """A Delta Lake table, exactly once: each checkpoint is one Delta commit carrying the
    application transaction (app id, checkpoint id), so a replayed commit is recognised
    and skipped (docs/sinks.md, "Delta Lake")."""

    type: Literal["delta"] = "delta"
    path: Annotated[str, Field(min_length=1)] = Field(
        description="the table's folder, relative to the spec's folder, or a URI "
                    "(`s3://...`) deltalake opens; created from the first records if missing")
    partition_by: list[Annotated[str, Field(min_length=1)]] | None = Field(
        None, description="partition columns of the table (identity partitioning, as "
                          "Delta has); must match an existing table's")
    app_id: Annotated[str, Field(min_length=1)] | None = Field(
        None, description="the Delta application transaction id the commits carry "
                          "(default `surestream-<pipeline>-<output>`); stable across "
                          "restarts: recovery asks the table for this id's version")
    storage_options: dict[str, str] = Field(
        default_factory=dict, description="passed to deltalake (object store settings)")


def default_iceberg_catalog() -> dict[str, Any]:
    """The embedded catalog an Iceberg sink or source uses when ``catalog`` is omitted."""
    return {"uri": "sqlite:///warehouse/catalog.db", "warehouse": "warehouse"}


TableStart = Literal["earliest", "latest"]
NonAppend = Literal["fail", "skip"]


class _TableSource(_Strict):
    """What the Iceberg and Delta sources share: where a run with no checkpoint starts,
    whether it ends, and what a change that is not an append does."""

    start: TableStart = Field(
        "earliest", description="where a run with no checkpoint starts: `earliest` (the "
                                "table as it is at start, then every later change) or "
                                "`latest` (only changes committed after the start)")
    stop_at: Literal["end"] | None = Field(
        None, description="`end`: the run reads the changes committed when it starts, then "
                          "ends (bounded, for replays and `verify`); omitted: run live, "
                          "polling for new changes every `poll_interval_ms`")
    poll_interval_ms: Annotated[int, Field(gt=0, strict=True)] = Field(
        1000, description="live: how often the table is asked for new changes")
    on_non_append: NonAppend = Field(
        "fail", description="a change that removes or rewrites rows (overwrite, delete, "
                            "merge): `fail` stops the run naming the table, the change and "
                            "why; `skip` passes over it (its removals are not streamed, its "
                            "added rows neither)")

    @property
    def live(self) -> bool:
        """No stop point: the run reads until it is stopped."""
        return self.stop_at is None


class IcebergSource(_TableSource):
    """An Apache Iceberg table read incrementally: the rows each new snapshot of `main`
    appends, snapshot by snapshot; the snapshot read last is kept in checkpoints
    (docs/sources.md, "Table sources")."""

    type: Literal["iceberg"] = "iceberg"
    catalog: dict[str, Any] = Field(
        default_factory=lambda: default_iceberg_catalog(),
        description="the pyiceberg catalog, exactly as an Iceberg output's `catalog`: "
                    "`{uri, warehouse}` for the embedded SQLite SQL catalog (paths relative "
                    "to the spec's folder), or `{name: ..., ...}` with any pyiceberg "
                    "catalog properties")
    table: IcebergTableName = Field(description="`namespace.table`, read from `main`")


class DeltaSource(_TableSource):
    """A Delta Lake table read incrementally: the files each new table version adds,
    version by version; the version read last is kept in checkpoints (docs/sources.md,
    "Table sources")."""

    type: Literal["delta"] = "delta"
    path: Annotated[str, Field(min_length=1)] = Field(
        description="the table's folder, relative to the spec's folder, or a URI "
                    "(`s3://...`) deltalake opens")
    storage_options: dict[str, str] = Field(
        default_factory=dict, description="passed to deltalake (object store settings)")


SourceSpec = Annotated[FileSource | GeneratorSource | KafkaSource | IcebergSource
                       | DeltaSource, Field(discriminator="type")]


class ClickHouseIdempotency(_Strict):
    """The hardening plan's ClickHouse idempotency dict (``key_columns`` and
    ``version_column`` of the sink, which it fills in)."""

    enabled: Literal[True] = Field(True, description="always true: replays are safe only "
                                                     "through the engine's replacement")
    key_columns: list[str] | None = Field(None, description="= the sink's `key_columns`")
    engine: Literal["ReplacingMergeTree"] = Field("ReplacingMergeTree",
                                                  description="the table engine (the only "
                                                              "one)")
    version_column: str | None = Field(None, description="= the sink's `version_column`")


class ClickHouseSink(_SinkBase):
    """A ClickHouse ReplacingMergeTree table, idempotent: a replayed checkpoint inserts
    the same rows again, which replace by key and version; read with `FINAL`
    (docs/sinks.md, "ClickHouse")."""

    type: Literal["clickhouse"] = "clickhouse"
    host: Annotated[str, Field(min_length=1)] = Field(
        "127.0.0.1", description="the server's host (native protocol)")
    port: Annotated[int, Field(gt=0, lt=65536, strict=True)] = Field(
        9000, description="the server's native-protocol (TCP) port")
    database: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] = Field(
        "default", description="the database, which must exist")
    table: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] = Field(
        description="the table, created if missing as `ReplacingMergeTree(version_column)` "
                    "ordered by the key columns")
    key_columns: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)] \
        = Field(description="the columns a row replaces by (the table's ORDER BY); never "
                            "null")
    version_column: Annotated[str, Field(min_length=1)] = Field(
        description="the ReplacingMergeTree version: of rows with one key, the one with "
                    "the highest version is kept (an unsigned integer, Date or DateTime "
                    "column; never null)")
    partition_by: Annotated[str, Field(min_length=1)] | None = Field(
        None, description="the table's PARTITION BY expression (e.g. "
                          "`toYYYYMM(interval_start)`); omitted: one partition")
    user: str = Field("default", description="the user to connect as")
    password: str = Field("", description="the user's password")
    insert_block_rows: Annotated[int, Field(gt=0, strict=True)] = Field(
        100_000, description="rows per native-protocol INSERT (one block each)")
    settings: dict[str, Any] = Field(
        default_factory=dict, description="passed to clickhouse-driver's Client")
    idempotency: ClickHouseIdempotency | None = Field(
        None, description="the hardening plan's form of `key_columns` / `version_column`: "
                          "`{enabled: true, key_columns: [...], engine: ReplacingMergeTree, "
                          "version_column: ...}` (a contradiction with the plain keys is "
                          "refused)")

    @model_validator(mode="before")
    @classmethod
    def _plan_idempotency(cls, data: Any) -> Any:
        return clickhouse_idempotency(data)

    @model_validator(mode="after")
    def _version_not_a_key(self) -> ClickHouseSink:
        if self.version_column in self.key_columns:
            raise ValueError(f"version_column {self.version_column!r} is one of the "
                             "key_columns; the version tells rows of one key apart")
        return self


_PG_NAME = r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$"


class PostgresSink(_SinkBase):
    """A PostgreSQL table, exactly once: each checkpoint's rows are staged (COPY) in a
    table of their own, then moved into the table together with a `surestream_commits`
    row in one transaction (docs/sinks.md, "PostgreSQL")."""

    type: Literal["postgres"] = "postgres"
    dsn: Annotated[str, Field(min_length=1)] = Field(
        description="the libpq connection string or URI "
                    "(`postgresql://user@127.0.0.1:5432/db`)")
    table: Annotated[str, Field(pattern=r"^([A-Za-z_][A-Za-z0-9_$]{0,62}\.)?"
                                        r"[A-Za-z_][A-Za-z0-9_$]{0,62}$")] = Field(
        description="`table` or `schema.table`; created from the stream's columns if "
                    "missing (the schema must exist)")
    mode: Literal["append", "upsert", "replace_partition", "replace"] = Field(
        "append", description="`replace` (each checkpoint's rows replace the table's rows, "
                              "in the transaction of its commits row: the sink of an "
                              "`output_mode: complete` result), "
                              "`append` (every record a new row), `upsert` (one row per "
                              "`key_columns`, a newer `version_column` value replacing an "
                              "older one, never the reverse) or `replace_partition` (each "
                              "checkpoint's rows replace every row with the same "
                              "`partition_columns` values)")
    key_columns: list[Annotated[str, Field(pattern=_PG_NAME)]] | None = Field(
        None, description="`upsert`: the columns that identify a row (the table's primary "
                          "key when the sink creates it)")
    version_column: Annotated[str, Field(pattern=_PG_NAME)] | None = Field(
        None, description="`upsert`: the column ordering a key's revisions; a row is "
                          "replaced only by one whose value is greater or equal")
    partition_columns: list[Annotated[str, Field(pattern=_PG_NAME)]] | None = Field(
        None, description="`replace_partition`: the columns naming a partition (e.g. "
                          "`[window_start]`); each checkpoint holds the complete output of "
                          "the partitions it writes")

    @model_validator(mode="after")
    def _mode_keys(self) -> PostgresSink:
        if self.mode == "upsert" and not (self.key_columns and self.version_column):
            raise ValueError("mode upsert needs key_columns and version_column (the column "
                             "ordering a key's revisions, e.g. revision)")
        if self.mode == "replace_partition" and not self.partition_columns:
            raise ValueError("mode replace_partition needs partition_columns (e.g. "
                             "[window_start])")
        if self.mode != "upsert" and (self.key_columns or self.version_column):
            raise ValueError("key_columns and version_column are for mode upsert; set "
                             "mode: upsert, or leave them out")
        if self.mode != "replace_partition" and self.partition_columns:
            raise ValueError("partition_columns is for mode replace_partition")
        return self


class MemorySink(_SinkBase):
    """Collects records in memory (tests, notebooks): read them from the run result."""

    type: Literal["memory"] = "memory"
    mode: Literal["append", "replace"] | None = Field(
        None, description="`append` (records accumulate) or `replace` (each checkpoint's "
                          "records replace what the output holds); unset: `replace` when "
                          "it takes an `output_mode: complete` result, else `append`")


class StdoutSink(_SinkBase):
    """Prints records as JSON lines (debugging); at-least-once: printed lines stay printed."""

    type: Literal["stdout"] = "stdout"


class KafkaSink(_SinkBase):
    """A Kafka topic. `exactly_once`: one transaction per checkpoint, produced after the
    checkpoint is durable, with a marker that tells recovery whether it landed
    (docs/kafka.md); `at_least_once`: an idempotent producer flushed at each checkpoint."""

    type: Literal["kafka"] = "kafka"
    bootstrap: str | None = Field(
        None, description="`host:port[,...]`; omitted: as for a Kafka source")
    topic: Annotated[str, Field(min_length=1)] = Field(description="the topic written")
    key_fields: list[str] | None = Field(
        None, description="the fields whose values make each message's key (one field: its "
                          "value as text; several: a JSON array); omitted: no key")
    delivery: Literal["exactly_once", "at_least_once"] = Field(
        "exactly_once", description="`exactly_once` (transactions; visible to "
                                    "read_committed consumers at each checkpoint) or "
                                    "`at_least_once` (lower latency; a crash may repeat "
                                    "records)")
    header_fields: list[str] | None = Field(
        None, description="fields also sent as message headers; default: an error output's "
                          "error type and message, a late output's lateness metadata")
    transactional_id: str | None = Field(
        None, description="`exactly_once`: the producer's transactional.id (default "
                          "`surestream-<pipeline>-<output>`); stable across restarts, so a "
                          "zombie producer is fenced")
    fresh_start: Literal["refuse", "append"] = Field(
        "refuse", description="`exactly_once`, a run with no checkpoint to resume from, on a "
                              "topic that already holds an earlier run's output of this "
                              "transactional id (records cannot be deleted from a topic): "
                              "`refuse` to start, or `append` this run's output after it")
    produce_at: Literal["commit", "write"] = Field(
        "commit", description="`exactly_once`: when a checkpoint's records are produced. "
                              "`commit`: in a transaction started after the checkpoint is "
                              "durable, so a crashed run never leaves one open; `write`: "
                              "into a transaction opened at the epoch's first record, as "
                              "they are written, so the commit only flushes, sets the "
                              "marker and commits (lower latency; a run killed mid-epoch "
                              "leaves its transaction open -- holding back read_committed "
                              "readers of those partitions -- until the restarted run "
                              "fences it or the broker's transaction timeout aborts it)")
    options: dict[str, Any] = Field(default_factory=dict,
                                    description="passed to the producer (librdkafka names)")

    @model_validator(mode="before")
    @classmethod
    def _plan_exactly_once(cls, data: Any) -> Any:
        return kafka_idempotence(kafka_exactly_once(data))


SinkSpec = Annotated[FileSink | DuckDBSink | MemorySink | StdoutSink | KafkaSink | IcebergSink
                     | DeltaSink | ClickHouseSink | PostgresSink,
                     Field(discriminator="type")]


class StreamSpec(_Strict):
    """A named stream: steps applied in order to what it reads. Its results carry the
    stream's name as their tag."""

    from_: str | Annotated[list[str], Field(min_length=2)] = Field(
        alias="from",
        description="what the stream reads: a source, another stream (its results), or a "
                    "side-output tag such as `late` (fan-out); or a list of two or more "
                    "streams/tags: their union (e.g. 1-, 5- and 15-minute windows into one "
                    "output), records in the order they were produced, ties in list order")
    steps: list[Step] = Field(default_factory=list, description="applied in order")

    @property
    def inputs(self) -> list[str]:
        """What the stream reads, as a list (one entry unless it is a union)."""
        return list(self.from_) if isinstance(self.from_, list) else [self.from_]

    @property
    def is_union(self) -> bool:
        return isinstance(self.from_, list)


class CheckpointSpec(_Strict):
    """When and where checkpoints are taken (docs/exactly-once.md)."""

    dir: str | None = Field(None, description="the checkpoint folder; default "
                                              "`.surestream/checkpoints/<pipeline>`, relative "
                                              "to the spec's folder")
    interval_ms: Annotated[int, Field(gt=0, strict=True)] | None = Field(
        None, description="take a checkpoint every this much wall time (between batches)")
    interval_records: Annotated[int, Field(gt=0, strict=True)] | None = Field(
        None, description="take a checkpoint every this many input records")
    retain: Annotated[int, Field(ge=1, strict=True)] = Field(
        3, description="checkpoints kept on disk")

    @property
    def periodic(self) -> bool:
        """Checkpoints during the run (a run may then have to resume from one)."""
        return self.interval_ms is not None or self.interval_records is not None


class RuntimeSpec(_Strict):
    """Speed knobs, and how many errors a run may have: results never depend on them."""

    batch_size: Annotated[int, Field(gt=0, le=10_000_000, strict=True)] = Field(
        65536, description="records per micro-batch (an integer: `true` is refused)")
    interleave_records: Annotated[int, Field(gt=0, strict=True)] = Field(
        1024, description="records taken from one partition before the next one's turn "
                          "(a fixed interleaving, so results never depend on timing)")
    max_batch_delay_ms: Annotated[int, Field(gt=0, strict=True)] = Field(
        100, description="live input: a micro-batch closes at `batch_size` records or after "
                         "this much wall time, whichever comes first, so a quiet stream "
                         "still flows (bounded input: unused)")
    max_error_ratio: Annotated[float, Field(ge=0, le=1, strict=True)] | None = Field(
        None, description="the share of input records (0 to 1) that may go to `errors` "
                          "before `surestream run` fails (exit 1) at the end of the input: "
                          "it fails when more than this share did. Unset, a run fails only "
                          "when every input record went to `errors`; 1 never fails")


class PipelineSpec(_Strict):
    """A pipeline: sources, streams of steps, and an output for every tag."""

    pipeline: Name = Field(description="the pipeline's name: it identifies its checkpoints "
                                       "and appears in error records")
    source: SourceSpec | None = Field(None, description="the one source (read by the "
                                                        "top-level `steps`, or by streams "
                                                        "as `from: source`)")
    sources: dict[Name, SourceSpec] = Field(default_factory=dict,
                                            description="several named sources, instead of "
                                                        "`source`")
    steps: list[Step] = Field(default_factory=list,
                              description="the steps of the one stream `main` over the "
                                          "source, in order (or use `streams`)")
    streams: dict[Name, StreamSpec] = Field(default_factory=dict,
                                            description="named streams, instead of `steps`")
    outputs: dict[str, SinkSpec] = Field(
        default_factory=dict,
        description="tag -> sink; every tag produced must go to an output or a stream; "
                    "`errors` defaults to a file next to the checkpoint folder")
    checkpoint: CheckpointSpec = Field(CheckpointSpec(), description="checkpointing")
    runtime: RuntimeSpec = Field(RuntimeSpec(), description="speed knobs and the error budget")
    trigger: TriggerSpec | None = Field(
        None, description="`continuous`, `once`, `available_now` or `{processing_time: 30s}` "
                          "(with optional `max_records_per_trigger`, `max_files_per_trigger`): "
                          "when the run reads, checkpoints and stops (docs/etl.md, "
                          "'Triggers'); omitted: bounded input is read to its end, a Kafka "
                          "source without `stop_at` runs live")
    #: where relative paths resolve (the spec file's folder); not a spec key
    base_dir: SkipJsonSchema[str | None] = Field(default=None, exclude=True)

    # -- derived views ------------------------------------------------------------------
    @property
    def all_sources(self) -> dict[str, Any]:
        return {"source": self.source, **self.sources} if self.source else dict(self.sources)

    @property
    def all_streams(self) -> dict[str, StreamSpec]:
        """Streams by name; top-level ``steps`` are the stream ``main`` over the source."""
        if self.streams:
            return dict(self.streams)
        src = next(iter(self.all_sources), "source")
        return {MAIN_STREAM: StreamSpec(**{"from": src, "steps": self.steps})}

    def checkpoint_dir(self) -> Path:
        return self.resolve(self.checkpoint.dir or f".surestream/checkpoints/{self.pipeline}")

    def errors_default_path(self) -> Path:
        cp = self.checkpoint_dir()
        return cp.parent / f"{cp.name}-errors.jsonl"

    def resolve(self, path: str) -> Path:
        p = Path(path)
        return p if p.is_absolute() or self.base_dir is None else Path(self.base_dir) / p

    def output_path_problems(self) -> list[tuple[str, str]]:
        """``(field, reason)`` for each output or checkpoint path that is not its own: two
        outputs on one path, an output that is (or holds) an input, one inside another's
        dataset or checkpoint folder (``model/output_paths.py``). Paths resolve against
        ``base_dir``, so the loader checks this once that is set, and the runner again."""
        from surestream.model.output_paths import output_path_problems

        return output_path_problems(self)

    # -- whole-spec rules ---------------------------------------------------------------
    @model_validator(mode="before")
    @classmethod
    def _late_destinations(cls, data: Any) -> Any:
        """A late step's inline ``destination`` is an output of its tag
        (``model/plan_shapes.py``)."""
        return late_destinations(data)

    @model_validator(mode="after")
    def _check_graph(self) -> PipelineSpec:
        """The rules no single field can check, each reported with its field path
        (``SpecProblems``): where the input comes from, then how streams are wired
        (``stream_graph.graph_problems``)."""
        problems = _source_problems(self)
        if self.steps and self.streams:
            problems.append(("streams", "give either top-level `steps` or `streams`, not "
                                        "both"))
        if not problems:  # the graph rules read the sources and streams checked above
            problems = graph_problems(self)
        if not problems:  # which outputs session results reach needs a sound graph
            problems = csv_output_problems(self)
        if not problems:
            problems = error_output_problems(self, graph_tags(self))
        if not problems:
            problems = checkpoint_enabled_problems(self)
        if not problems:
            problems = output_mode_problems(self)
        if problems:
            raise SpecProblems(problems)
        return self


def _source_problems(spec: PipelineSpec) -> list[tuple[str, str]]:
    """One source or named sources; with periodic checkpoints, generators that restart."""
    if spec.source is not None and spec.sources:
        return [("sources", "give either `source` or `sources`, not both")]
    if not spec.all_sources:
        return [("source", "no source: add `source:` (or `sources:`)")]
    return _check_resumable_generators(spec) if spec.checkpoint.periodic else []


def _check_resumable_generators(spec: PipelineSpec) -> list[tuple[str, str]]:
    """With periodic checkpoints a run may resume: its generators must restart."""
    problems = []
    for name, src in spec.all_sources.items():
        if isinstance(src, GeneratorSource) and src.function is not None \
                and not isinstance(src.function, str) and not restartable(src.function):
            where = "source" if spec.source is not None else key_path("sources", name)
            problems.append((
                f"{where}.function",
                f"a {type(src.function).__name__} object cannot be read again from its "
                "start, so a run cannot resume from a checkpoint; give a function that "
                "returns a fresh iterator (or `records: [...]`), or turn off "
                "checkpoint.interval_ms / interval_records"))
    return problems
