"""``sink`` and ``errorHandling``: the framework's sinks -> surestream outputs, with the
retry, circuit-breaker and dead-letter settings as keys of the main output.

- ``{type: postgres, url (jdbc:postgresql://...) | dsn, user, password, table, keyColumns}``
  -> ``{type: postgres, dsn, table, mode, key_columns, version_column}``
- ``{type: kafka, topic, bootstrapServers, keyColumns}``
  -> ``{type: kafka, topic, bootstrap, key_fields}``
- ``{type: file, path, format: json|csv|parquet, partitionBy}``
  -> ``{type: file, path, format, partition_by}``
- ``{type: iceberg, table, catalog, partitionBy}``
  -> ``{type: iceberg, table, catalog, partition_by}``
- ``{type: delta, path, partitionBy}``
  -> ``{type: delta, path, partition_by}``
- ``{type: console}``
  -> ``{type: stdout}``

The PostgreSQL mode follows the output mode, as Spark's sinks do: ``append`` appends each
final result; ``update`` upserts one row per key (the group-by columns, plus
``window_start`` for a window), the newest ``version`` (records aggregated so far)
winning; ``complete`` replaces the table's content at each trigger.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote, urlencode

from pydantic import Field, model_validator

from surestream.apps.etl.config import (
    Destination,
    ErrorHandling,
    EtlModel,
    Text,
    choice,
)
from surestream.apps.etl.refusals import EtlConfigError, join_path
from surestream.apps.etl.sources import model_by_type

Columns = Annotated[list[Text], Field(min_length=1)]


class PostgresSinkConfig(EtlModel):
    type: choice("postgres", aliases={"postgresql": "postgres", "jdbc": "postgres"})  # type: ignore[valid-type]
    url: Text | None = None
    dsn: Text | None = None
    user: Text | None = None
    password: str | None = None
    table: Text
    key_columns: Columns | None = None

    @model_validator(mode="after")
    def _one_address(self) -> PostgresSinkConfig:
        if (self.url is None) == (self.dsn is None):
            raise ValueError("give url (jdbc:postgresql://host:port/db) or dsn (a libpq "
                             "connection string or URI), exactly one of them")
        if self.url is not None and not self.url.startswith(("jdbc:postgresql://",
                                                             "postgresql://",
                                                             "postgres://")):
            raise ValueError(f"url {self.url!r} is not a PostgreSQL URL "
                             "(jdbc:postgresql://host:port/database)")
        return self

    def libpq_dsn(self) -> str:
        """The JDBC URL as a libpq URI, with ``user`` / ``password`` as its parameters."""
        if self.dsn is not None and self.url is None:
            base = self.dsn
        else:
            base = (self.url or "").removeprefix("jdbc:")
        params = {k: v for k, v in (("user", self.user), ("password", self.password))
                  if v is not None}
        if not params:
            return base
        if "://" not in base:  # a key=value libpq string
            return base + "".join(f" {k}='{v}'" for k, v in params.items())
        return base + ("&" if "?" in base else "?") + urlencode(params, quote_via=quote)


class KafkaSinkConfig(EtlModel):
    type: choice("kafka")  # type: ignore[valid-type]
    topic: Text
    bootstrap_servers: Text | None = None
    key_columns: Columns | None = None


class FileSinkConfig(EtlModel):
    type: choice("file")  # type: ignore[valid-type]
    path: Text
    format: choice("json", "csv", "parquet", aliases={"jsonl": "json"}) = "json"  # type: ignore[valid-type]
    partition_by: Columns | None = None


class IcebergSinkConfig(EtlModel):
    type: choice("iceberg")  # type: ignore[valid-type]
    table: Text
    catalog: dict[str, Any] | None = None
    partition_by: Columns | None = None


class DeltaSinkConfig(EtlModel):
    type: choice("delta")  # type: ignore[valid-type]
    path: Text
    partition_by: Columns | None = None


class ConsoleSinkConfig(EtlModel):
    type: choice("console", aliases={"stdout": "console"})  # type: ignore[valid-type]


SINK_MODELS: dict[str, type[EtlModel]] = {
    "postgres": PostgresSinkConfig, "postgresql": PostgresSinkConfig,
    "jdbc": PostgresSinkConfig, "kafka": KafkaSinkConfig, "file": FileSinkConfig,
    "iceberg": IcebergSinkConfig, "delta": DeltaSinkConfig, "console": ConsoleSinkConfig}


def parse_sink(data: Any, path: str = "sink") -> EtlModel:
    return model_by_type(SINK_MODELS, data, path, "sink")


def translate_sink(cfg: EtlModel, *, output_mode: str, group_by: list[str] | None,
                   windowed: bool, kafka_bootstrap: str | None) -> dict[str, Any]:
    """The main output. ``group_by`` is None without an aggregation; the output mode
    picks a PostgreSQL sink's mode and keys."""
    if isinstance(cfg, PostgresSinkConfig):
        out: dict[str, Any] = {"type": "postgres", "dsn": cfg.libpq_dsn(), "table": cfg.table}
        if output_mode == "update":
            keys = list(cfg.key_columns or [*(group_by or []),
                                            *(["window_start"] if windowed else [])])
            out |= {"mode": "upsert", "key_columns": keys, "version_column": "version"}
        elif output_mode == "complete":
            out["mode"] = "replace"
        else:
            out["mode"] = "append"
        return out
    if isinstance(cfg, KafkaSinkConfig):
        out = {"type": "kafka", "topic": cfg.topic}
        bootstrap = cfg.bootstrap_servers or kafka_bootstrap
        if bootstrap:
            out["bootstrap"] = bootstrap
        keys = list(cfg.key_columns or group_by or [])
        if keys:
            out["key_fields"] = keys
        return out
    if isinstance(cfg, FileSinkConfig):
        out = {"type": "file", "path": cfg.path,
               "format": "jsonl" if cfg.format == "json" else cfg.format}
        if cfg.partition_by:
            out["partition_by"] = list(cfg.partition_by)
        return out
    if isinstance(cfg, IcebergSinkConfig):
        out = {"type": "iceberg", "table": cfg.table}
        if cfg.catalog is not None:
            out["catalog"] = dict(cfg.catalog)
        if cfg.partition_by:
            out["partition_by"] = list(cfg.partition_by)
        return out
    if isinstance(cfg, DeltaSinkConfig):
        out = {"type": "delta", "path": cfg.path}
        if cfg.partition_by:
            out["partition_by"] = list(cfg.partition_by)
        return out
    return {"type": "stdout"}


def key_fields_refusal(cfg: EtlModel, output_mode: str, path: str) -> list[tuple[str, str]]:
    """``keyColumns`` means something only where rows are keyed: a PostgreSQL upsert
    (outputMode update) or a Kafka message key."""
    if isinstance(cfg, PostgresSinkConfig) and cfg.key_columns and output_mode != "update":
        return [(join_path(path, "keyColumns"),
                 f"keyColumns are the upsert key of outputMode update; with {output_mode} "
                 "the table is written without a key: remove them or use outputMode update")]
    return []


def error_handling_keys(cfg: ErrorHandling | None, path: str) -> dict[str, Any]:
    """``errorHandling`` -> the main output's ``retry``, ``circuit_breaker``,
    ``on_sink_failure``, ``dead_letter`` and ``fail_fast`` keys. A section with
    ``enabled: false`` is off, as written."""
    if cfg is None:
        return {}
    out: dict[str, Any] = {}
    if cfg.retry is not None:
        retry: dict[str, Any] = {"max_attempts": cfg.retry.max_attempts}
        # jitter: a fraction of each wait; `true` is the sink's default fraction (left
        # out), `false` none
        jitter = cfg.retry.jitter
        jitter = None if jitter is True else 0.0 if jitter is False else jitter
        for name, value in (("initial_backoff_ms", cfg.retry.initial_backoff),
                            ("max_backoff_ms", cfg.retry.max_backoff),
                            ("multiplier", cfg.retry.backoff_multiplier),
                            ("jitter", jitter)):
            if value is not None:
                retry[name] = value
        if cfg.retry.initial_backoff is not None and cfg.retry.max_backoff is not None \
                and cfg.retry.max_backoff < cfg.retry.initial_backoff:
            raise EtlConfigError([(join_path(path, "retry", "maxBackoff"),
                                   "maxBackoff is shorter than initialBackoff")])
        out["retry"] = retry
    breaker = cfg.circuit_breaker if cfg.circuit_breaker and cfg.circuit_breaker.enabled \
        else None
    dlq = cfg.dead_letter_queue if cfg.dead_letter_queue and cfg.dead_letter_queue.enabled \
        else None
    if breaker is not None:
        out["circuit_breaker"] = {"failure_threshold": breaker.failure_threshold,
                                  "probe_interval_ms": breaker.timeout}
    if dlq is not None:
        out["on_sink_failure"] = "dlq"
        out["dead_letter"] = {"type": "file", "path": dlq.path}
    elif breaker is not None:
        out["on_sink_failure"] = "pause"
    if cfg.fail_fast:
        acting = [n for n, on in (("retry", cfg.retry), ("circuitBreaker", breaker),
                                  ("deadLetterQueue", dlq)) if on is not None]
        if acting:
            raise EtlConfigError([(join_path(path, "failFast"),
                                   "failFast stops the pipeline at the first sink failure, "
                                   f"so {', '.join(acting)} would never act: remove one "
                                   "or the other")])
    if cfg.fail_fast is not None:
        out["fail_fast"] = cfg.fail_fast
    return out


def translate_destination(dest: Destination, path: str, *, main: EtlModel,
                          main_output: dict[str, Any],
                          kafka_bootstrap: str | None) -> dict[str, Any]:
    """A side output (late data, quarantine): a topic, a JSON-lines file, or a table in
    the main sink's system (its connection)."""
    if dest.topic is not None:
        out: dict[str, Any] = {"type": "kafka", "topic": dest.topic}
        bootstrap = dest.bootstrap_servers or kafka_bootstrap
        if bootstrap:
            out["bootstrap"] = bootstrap
        return out
    if dest.path is not None:
        return {"type": "file", "path": dest.path, "format": "jsonl"}
    if isinstance(main, PostgresSinkConfig):
        return {"type": "postgres", "dsn": main_output["dsn"], "table": dest.table,
                "mode": "append"}
    if isinstance(main, IcebergSinkConfig):
        out = {"type": "iceberg", "table": dest.table}
        if "catalog" in main_output:
            out["catalog"] = main_output["catalog"]
        return out
    raise EtlConfigError([(join_path(path, "table"),
                           "a table destination lives beside the main sink's table, which "
                           "needs a postgres or iceberg sink (its connection); give a topic "
                           "or a path instead")])
