"""Schema compatibility as a schema registry checks it on registration.

The levels are Confluent Schema Registry's, with the same meaning:

| level | the new schema must | so that |
| --- | --- | --- |
| ``BACKWARD`` | read data written with the latest schema | consumers can upgrade first |
| ``FORWARD`` | be readable by the latest schema | producers can upgrade first |
| ``FULL`` | both | either side first |
| ``*_TRANSITIVE`` | the same against *every* earlier version | old data stays readable |
| ``NONE`` | nothing | |

"A reads data written with B" is a question of a *reader* schema and a *writer* schema.
For Avro the answer is Apache Avro's own reader/writer resolution check
(``avro.compatibility``, the reference implementation of the spec's resolution rules); for
JSON Schema no maintained library answers it, so ``json_schema_compat`` does, by hand and
conservatively (what it cannot prove compatible it refuses, with the reason).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from surestream.connectors.kafka.json_schema_compat import reader_rejects


class CompatibilityLevel(StrEnum):
    NONE = "NONE"
    BACKWARD = "BACKWARD"
    BACKWARD_TRANSITIVE = "BACKWARD_TRANSITIVE"
    FORWARD = "FORWARD"
    FORWARD_TRANSITIVE = "FORWARD_TRANSITIVE"
    FULL = "FULL"
    FULL_TRANSITIVE = "FULL_TRANSITIVE"

    @property
    def transitive(self) -> bool:
        return self.value.endswith("_TRANSITIVE")

    @property
    def backward(self) -> bool:
        return self.value.startswith(("BACKWARD", "FULL"))

    @property
    def forward(self) -> bool:
        return self.value.startswith(("FORWARD", "FULL"))


#: the schema types a registry accepts, in Confluent's spelling
SCHEMA_TYPES = ("AVRO", "JSON")


class SchemaInvalidError(ValueError):
    """The text is not a schema of its declared type."""


def parse_schema(schema: str | dict[str, Any], schema_type: str) -> Any:
    """The parsed schema (an ``avro.schema.Schema``, or the JSON Schema as a dict), or
    ``SchemaInvalidError`` saying what is wrong with it."""
    text = schema if isinstance(schema, str) else json.dumps(schema)
    if schema_type == "AVRO":
        import avro.errors
        import avro.schema

        try:
            return avro.schema.parse(text)
        except (avro.errors.AvroException, ValueError, TypeError) as e:
            raise SchemaInvalidError(f"not a valid Avro schema: {e}") from e
    if schema_type == "JSON":
        import jsonschema

        try:
            doc = json.loads(text)
        except ValueError as e:
            raise SchemaInvalidError(f"not valid JSON: {e}") from e
        try:
            jsonschema.validators.validator_for(doc).check_schema(doc)
        except jsonschema.SchemaError as e:
            raise SchemaInvalidError(f"not a valid JSON Schema: {e.message}") from e
        return doc
    raise SchemaInvalidError(f"schema type {schema_type!r} is not supported; use one of "
                             f"{', '.join(SCHEMA_TYPES)}")


def reader_writer_problems(reader: str | dict[str, Any], writer: str | dict[str, Any],
                           schema_type: str) -> list[str]:
    """Why data written with ``writer`` may not be readable with ``reader`` ([] if it
    always is)."""
    r, w = parse_schema(reader, schema_type), parse_schema(writer, schema_type)
    if schema_type == "JSON":
        return reader_rejects(r, w)
    from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

    result = ReaderWriterCompatibilityChecker().get_compatibility(reader=r, writer=w)
    if result.compatibility is SchemaCompatibilityType.compatible:
        return []
    kinds = ", ".join(sorted({i.value.replace("_", " ") for i in result.incompatibilities}))
    names = ", ".join(sorted(result.messages))
    return [f"{kinds}: {names} (at {', '.join(sorted(result.locations))})"]


def compatibility_problems(new: str | dict[str, Any],
                           earlier: Sequence[tuple[int, str | dict[str, Any]]],
                           schema_type: str, level: CompatibilityLevel | str) -> list[str]:
    """Why ``new`` may not be registered after ``earlier`` ((version, schema) pairs, oldest
    first) at ``level``; [] when it may. Each reason names its direction and version."""
    level = CompatibilityLevel(level)
    parse_schema(new, schema_type)
    if level is CompatibilityLevel.NONE or not earlier:
        return []
    against = list(earlier) if level.transitive else list(earlier)[-1:]
    problems = []
    for version, old in against:
        if level.backward:
            problems += [f"backward (new schema reading data of version {version}): {p}"
                         for p in reader_writer_problems(new, old, schema_type)]
        if level.forward:
            problems += [f"forward (version {version} reading data of the new schema): {p}"
                         for p in reader_writer_problems(old, new, schema_type)]
    return problems
