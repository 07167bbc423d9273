"""``source``: the framework's Kafka, file and table sources -> a surestream source.

- ``{type: kafka, topic | topics, bootstrapServers, groupId, startingOffsets, format, schema}``
  -> ``{type: kafka, topics, bootstrap, group_id, start, format, schema}``
- ``{type: file, path, format: json|csv|parquet, schema}``
  -> ``{type: file, path, format: jsonl|csv|parquet, schema}``
- ``{type: iceberg, table, catalog, startingOffsets}``
  -> ``{type: iceberg, table, catalog, start}``
- ``{type: delta, path, startingOffsets}``
  -> ``{type: delta, path, start}``

A streaming source is live: a Kafka or table source without a stop point runs until it is
stopped (``--set source.stop_at=end`` bounds it for a replay). Spark schema types map to
surestream's four column types (``SCHEMA_TYPES``).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, model_validator

from surestream.apps.etl.config import EtlModel, Text, choice
from surestream.apps.etl.refusals import EtlConfigError, join_path, parse_section

#: Spark SQL type names -> surestream's column types (a timestamp arrives as ISO text)
SCHEMA_TYPES = {"string": "string", "varchar": "string", "timestamp": "string",
                "date": "string", "int": "int", "integer": "int", "long": "int",
                "bigint": "int", "short": "int", "smallint": "int", "tinyint": "int",
                "byte": "int", "double": "float", "float": "float", "decimal": "float",
                "boolean": "bool", "bool": "bool"}


def _schema(value: dict[str, str] | None) -> dict[str, str] | None:
    if value is None:
        return None
    out = {}
    for column, kind in value.items():
        mapped = SCHEMA_TYPES.get(str(kind).strip().lower())
        if mapped is None:
            raise ValueError(f"column {column!r}: type {kind!r} has no surestream column "
                             f"type (known: {', '.join(sorted(SCHEMA_TYPES))})")
        out[column] = mapped
    return out


class KafkaSourceConfig(EtlModel):
    type: choice("kafka")  # type: ignore[valid-type]
    topic: Text | None = None
    topics: Annotated[list[Text], Field(min_length=1)] | None = None
    bootstrap_servers: Text | None = None
    group_id: Text | None = None
    starting_offsets: choice("earliest", "latest") = "earliest"  # type: ignore[valid-type]
    format: choice("json", "csv", "raw") = "json"  # type: ignore[valid-type]
    csv_header: list[Text] | None = None
    schema_: dict[str, str] | None = Field(None, alias="schema")

    @model_validator(mode="after")
    def _one_topic_field(self) -> KafkaSourceConfig:
        if (self.topic is None) == (self.topics is None):
            raise ValueError("give topic (one) or topics (a list), exactly one of them")
        _schema(self.schema_)
        return self


class FileSourceConfig(EtlModel):
    type: choice("file")  # type: ignore[valid-type]
    path: Text | Annotated[list[Text], Field(min_length=1)]
    format: choice("json", "csv", "parquet", aliases={"jsonl": "json"}) = "json"  # type: ignore[valid-type]
    schema_: dict[str, str] | None = Field(None, alias="schema")

    @model_validator(mode="after")
    def _types(self) -> FileSourceConfig:
        _schema(self.schema_)
        return self


class IcebergSourceConfig(EtlModel):
    type: choice("iceberg")  # type: ignore[valid-type]
    table: Text
    catalog: dict[str, Any] | None = None
    starting_offsets: choice("earliest", "latest") = "earliest"  # type: ignore[valid-type]


class DeltaSourceConfig(EtlModel):
    type: choice("delta")  # type: ignore[valid-type]
    path: Text
    starting_offsets: choice("earliest", "latest") = "earliest"  # type: ignore[valid-type]


SOURCE_MODELS: dict[str, type[EtlModel]] = {
    "kafka": KafkaSourceConfig, "file": FileSourceConfig, "iceberg": IcebergSourceConfig,
    "delta": DeltaSourceConfig}


def model_by_type(models: dict[str, type[EtlModel]], data: Any, path: str,
                  what: str) -> EtlModel:
    """Parse ``data`` with the model its ``type`` names (refused at ``path.type``)."""
    if not isinstance(data, dict):
        raise EtlConfigError([(path, f"a {what} is an object with a type")])
    kind = str(data.get("type", "")).strip().lower()
    if kind not in models:
        raise EtlConfigError([(join_path(path, "type"),
                               f"{what} type {data.get('type')!r} is not translated; the "
                               f"types: {', '.join(models)}" if "type" in data
                               else f"required field is missing ({', '.join(models)})")])
    return parse_section(models[kind], data, path)


def translate_source(data: Any, path: str = "source") -> dict[str, Any]:
    """The surestream source of the framework's ``source``."""
    cfg = model_by_type(SOURCE_MODELS, data, path, "source")
    if isinstance(cfg, KafkaSourceConfig):
        out: dict[str, Any] = {"type": "kafka",
                               "topics": list(cfg.topics or [cfg.topic])}
        if cfg.bootstrap_servers:
            out["bootstrap"] = cfg.bootstrap_servers
        if cfg.group_id:
            out["group_id"] = cfg.group_id
        out["start"] = cfg.starting_offsets
        out["format"] = cfg.format
        if cfg.csv_header:
            out["csv_header"] = list(cfg.csv_header)
        if cfg.schema_:
            out["schema"] = _schema(cfg.schema_)
        return out
    if isinstance(cfg, FileSourceConfig):
        out = {"type": "file", "path": cfg.path,
               "format": "jsonl" if cfg.format == "json" else cfg.format}
        if cfg.schema_:
            out["schema"] = _schema(cfg.schema_)
        return out
    if isinstance(cfg, IcebergSourceConfig):
        out = {"type": "iceberg", "table": cfg.table, "start": cfg.starting_offsets}
        if cfg.catalog is not None:
            out["catalog"] = dict(cfg.catalog)
        return out
    assert isinstance(cfg, DeltaSourceConfig)
    return {"type": "delta", "path": cfg.path, "start": cfg.starting_offsets}


def source_bootstrap(source: dict[str, Any]) -> str | None:
    """The Kafka bootstrap of a translated source (late topics default to it)."""
    return source.get("bootstrap") if source.get("type") == "kafka" else None
