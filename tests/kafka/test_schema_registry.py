"""The schema registry: the event types' shipped schemas register; a backward-incompatible
change is refused with its reason and a compatible one accepted, for Avro and JSON Schema;
the levels (BACKWARD, FORWARD, FULL, transitive) mean what Confluent's do."""

from __future__ import annotations

import json

import pytest

from surestream.apps.events.registration import register_event_schemas, schema_text, subject
from surestream.connectors.kafka.compatibility import (
    SchemaInvalidError,
    compatibility_problems,
)
from surestream.connectors.kafka.json_schema_compat import reader_rejects
from surestream.connectors.kafka.schema_registry import (
    FileSchemaRegistry,
    IncompatibleSchemaError,
    open_registry,
)


def shipped(event_type: str, kind: str) -> dict:
    return json.loads(schema_text(event_type, kind))


def test_the_shipped_schemas_register_once_and_again_idempotently(tmp_path):
    registry = FileSchemaRegistry(tmp_path / "registry")
    first = register_event_schemas(registry)
    assert len(first) == 10 and {r.version for r in first} == {1}
    assert len({r.id for r in first}) == 10
    assert "raw-transactions-value" in registry.subjects()
    again = register_event_schemas(FileSchemaRegistry(tmp_path / "registry"))  # reopened
    assert [(r.subject, r.version, r.id) for r in again] == \
        [(r.subject, r.version, r.id) for r in first]
    # the same schema under another subject keeps its id
    copy = registry.register("elsewhere", schema_text("metric", "AVRO"), "AVRO")
    assert copy.id == registry.latest(subject("metric", "AVRO")).id and copy.version == 1


def test_avro_a_backward_incompatible_change_is_refused_a_compatible_one_accepted(tmp_path):
    registry = FileSchemaRegistry(tmp_path)
    register_event_schemas(registry)
    name = subject("user_action", "AVRO")
    breaking = shipped("user_action", "AVRO")
    breaking["fields"].append({"name": "country", "type": "string"})  # no default
    with pytest.raises(IncompatibleSchemaError) as refused:
        registry.register(name, breaking, "AVRO")
    assert refused.value.level == "BACKWARD"
    [reason] = refused.value.reasons
    assert "reader field missing default value" in reason and "country" in reason
    assert registry.versions(name) == [1]
    compatible = shipped("user_action", "AVRO")
    compatible["fields"].append({"name": "country", "type": ["null", "string"],
                                 "default": None})
    assert registry.register(name, compatible, "AVRO").version == 2
    assert registry.versions(name) == [1, 2]
    changed_type = shipped("metric", "AVRO")
    next(f for f in changed_type["fields"] if f["name"] == "value")["type"] = "string"
    with pytest.raises(IncompatibleSchemaError, match="type mismatch"):
        registry.register(subject("metric", "AVRO"), changed_type, "AVRO")


def test_json_schema_a_backward_incompatible_change_is_refused_a_compatible_one_accepted(
        tmp_path):
    registry = FileSchemaRegistry(tmp_path)
    register_event_schemas(registry)
    name = subject("transaction", "JSON")
    breaking = shipped("transaction", "JSON")
    breaking["properties"]["country"] = {"type": "string"}
    breaking["required"].append("country")
    with pytest.raises(IncompatibleSchemaError) as refused:
        registry.register(name, breaking, "JSON")
    assert refused.value.reasons == [
        "backward (new schema reading data of version 1): #/properties/country: required "
        "by the reader, optional or absent in the writer"]
    narrowed = shipped("transaction", "JSON")
    narrowed["properties"]["currency"]["maxLength"] = 2
    with pytest.raises(IncompatibleSchemaError, match="maxLength 2 in the reader"):
        registry.register(name, narrowed, "JSON")
    compatible = shipped("transaction", "JSON")
    compatible["properties"]["country"] = {"type": "string"}  # optional, closed content
    assert registry.register(name, compatible, "JSON").version == 2


def test_forward_and_full_levels_check_the_other_direction(tmp_path):
    registry = FileSchemaRegistry(tmp_path)
    name = subject("user_action", "JSON")
    registry.register(name, schema_text("user_action", "JSON"), "JSON")
    optional_added = shipped("user_action", "JSON")
    optional_added["properties"]["country"] = {"type": "string"}
    registry.set_compatibility("FORWARD", name)
    # the old schema (closed: additionalProperties false) cannot read documents with it
    with pytest.raises(IncompatibleSchemaError, match="forward .*country"):
        registry.register(name, optional_added, "JSON")
    registry.set_compatibility("FULL", name)
    assert registry.compatibility(name) == "FULL" and registry.compatibility() == "BACKWARD"
    with pytest.raises(IncompatibleSchemaError, match="forward"):
        registry.register(name, optional_added, "JSON")
    registry.set_compatibility("NONE", name)
    assert registry.register(name, optional_added, "JSON").version == 2


def test_avro_forward_refuses_dropping_a_field_the_old_readers_need(tmp_path):
    old = shipped("user_action", "AVRO")
    new = shipped("user_action", "AVRO")
    new["fields"] = [f for f in new["fields"] if f["name"] != "action"]
    assert compatibility_problems(new, [(1, old)], "AVRO", "BACKWARD") == []
    [reason] = compatibility_problems(new, [(1, old)], "AVRO", "FORWARD")
    assert reason.startswith("forward (version 1 reading data of the new schema)")
    assert "action" in reason


def test_transitive_levels_check_every_earlier_version():
    def record(*fields: dict) -> dict:
        return {"type": "record", "name": "R", "fields": list(fields)}

    v1 = record({"name": "a", "type": "string"})
    v2 = record()                                     # a dropped: backward compatible
    v3 = record({"name": "a", "type": "int", "default": 0})  # fine after v2, not after v1
    earlier = [(1, v1), (2, v2)]
    assert compatibility_problems(v3, earlier, "AVRO", "BACKWARD") == []
    [reason] = compatibility_problems(v3, earlier, "AVRO", "BACKWARD_TRANSITIVE")
    assert "version 1" in reason and "type mismatch" in reason


@pytest.mark.parametrize("reader, writer, incompatible_at", [
    ({"type": "integer"}, {"type": "number"}, "the writer allows type number"),
    ({"type": "number"}, {"type": "integer"}, None),
    ({"type": ["string", "null"]}, {"type": "string"}, None),
    ({"type": "string"}, {"type": ["string", "null"]}, "type null"),
    ({"enum": ["a", "b"]}, {"enum": ["a", "b", "c"]}, "['c']"),
    ({"enum": ["a", "b", "c"]}, {"enum": ["a", "b"]}, None),
    ({"type": "number", "minimum": 0}, {"type": "number"}, "minimum 0"),
    ({"type": "number", "minimum": 0}, {"type": "number", "minimum": 5}, None),
    ({"type": "string", "pattern": "^a"}, {"type": "string"}, "pattern"),
    ({"type": "array", "items": {"type": "integer"}},
     {"type": "array", "items": {"type": "number"}}, "#/items"),
    # a property added to an open writer: old documents may hold it with any value
    ({"type": "object", "properties": {"x": {"type": "string"}}}, {"type": "object"},
     "content model is open"),
    # a property the writer has, removed from a closed reader
    ({"type": "object", "additionalProperties": False},
     {"type": "object", "properties": {"x": {"type": "string"}}}, "#/properties/x"),
    ({"type": "object", "properties": {"x": {"type": "string"}},
      "additionalProperties": False},
     {"type": "object", "properties": {"x": {"type": "string"}}}, "additionalProperties"),
    ({"anyOf": [{"type": "string"}]}, {"anyOf": [{"type": "integer"}]}, "cannot be checked"),
    ({"type": "string", "title": "new words"}, {"type": "string", "description": "x"}, None),
])
def test_json_schema_reader_writer_rules(reader, writer, incompatible_at):
    problems = reader_rejects(reader, writer)
    if incompatible_at is None:
        assert problems == []
    else:
        assert problems and any(incompatible_at in p for p in problems), problems


def test_invalid_schemas_are_refused_naming_the_problem(tmp_path):
    registry = FileSchemaRegistry(tmp_path)
    with pytest.raises(SchemaInvalidError, match="not a valid Avro schema"):
        registry.register("s", {"type": "record", "name": "R"}, "AVRO")
    with pytest.raises(SchemaInvalidError, match="not a valid JSON Schema"):
        registry.register("s", {"type": "strnig"}, "JSON")
    assert registry.subjects() == []


def test_open_registry_is_a_folder_unless_given_a_url(tmp_path, monkeypatch):
    monkeypatch.setenv("SURESTREAM_SCHEMA_REGISTRY", str(tmp_path / "reg"))
    assert isinstance(open_registry(), FileSchemaRegistry)
    assert type(open_registry("http://127.0.0.1:8081")).__name__ == "HttpSchemaRegistry"
