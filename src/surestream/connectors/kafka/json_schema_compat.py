"""Can a JSON Schema *reader* accept every document a *writer* schema accepts?

No maintained Python library answers this, so it is written here, for the keywords event
schemas use (``type``, ``enum``/``const``, numeric and length bounds, ``pattern``,
``format``, ``properties``/``required``/``additionalProperties``, ``items``). It is
conservative: a keyword it does not reason about (``anyOf``, ``$ref``, ``if``, ...) that
differs between the two schemas is reported as "cannot be checked", so a registration is
refused rather than let through unproven. Annotations (``title``, ``description``,
``default``, ...) never matter.

The content model follows Confluent's rules: where the writer allows additional
properties, a property the reader adds may already be present in old documents with any
value, so the reader must accept whatever the writer's ``additionalProperties`` allows
there. A closed writer (``additionalProperties: false``) is what lets a new optional
property be added backward compatibly.
"""

from __future__ import annotations

import json
from typing import Any

ANNOTATIONS = {"title", "description", "default", "examples", "$comment", "$schema", "$id",
               "deprecated", "readOnly", "writeOnly", "$defs", "definitions"}
CHECKED = {"type", "enum", "const", "minimum", "maximum", "exclusiveMinimum",
           "exclusiveMaximum", "multipleOf", "minLength", "maxLength", "pattern", "format",
           "properties", "required", "additionalProperties", "minProperties",
           "maxProperties", "items", "minItems", "maxItems", "uniqueItems"}
ALL_TYPES = frozenset({"null", "boolean", "object", "array", "number", "integer", "string"})


def reader_rejects(reader: Any, writer: Any, path: str = "#") -> list[str]:
    """Reasons why some document valid under ``writer`` may be invalid under ``reader``
    ([] when every one is valid), each at its JSON pointer ``path``."""
    if reader is True or reader == {} or writer is False or _same(reader, writer):
        return []
    if reader is False:
        return [f"{path}: the reader accepts nothing here, the writer does"]
    if writer is True:
        writer = {}
    problems = [f"{path}: keyword '{k}' differs and cannot be checked"
                for k in sorted((set(reader) | set(writer)) - CHECKED - ANNOTATIONS)
                if reader.get(k) != writer.get(k)]
    r_types, w_types = _types(reader), _types(writer)
    lost = {t for t in w_types if t not in r_types and not (t == "integer" and "number" in r_types)}
    if lost:
        problems.append(f"{path}: the writer allows type {', '.join(sorted(lost))}, "
                        f"the reader does not")
    problems += _values(reader, writer, path)
    problems += _bounds(reader, writer, path)
    if "object" in r_types and "object" in w_types:
        problems += _objects(reader, writer, path)
    if "array" in r_types and "array" in w_types:
        problems += _arrays(reader, writer, path)
    return problems


def _without_annotations(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: v for k, v in schema.items() if k not in ANNOTATIONS}
    return schema


def _same(a: Any, b: Any) -> bool:
    """Equal but for annotations (then the reader accepts what the writer does)."""
    return (json.dumps(_without_annotations(a), sort_keys=True)
            == json.dumps(_without_annotations(b), sort_keys=True))


def _types(schema: dict[str, Any]) -> frozenset[str]:
    """The JSON types a schema allows (by ``type``, or by its ``enum``/``const`` values)."""
    given = schema.get("type")
    if given is None:
        return ALL_TYPES
    return frozenset([given] if isinstance(given, str) else given)


def _values(reader: dict[str, Any], writer: dict[str, Any], path: str) -> list[str]:
    """``enum``/``const``: the reader's allowed values must include every writer value."""
    def allowed(s: dict[str, Any]) -> list[Any] | None:
        if "const" in s:
            return [s["const"]]
        return s.get("enum")

    r, w = allowed(reader), allowed(writer)
    if r is None:
        return []
    if w is None:
        return [f"{path}: the reader allows only {r}, the writer any value"]
    missing = [v for v in w if v not in r]
    return [f"{path}: the writer allows {missing}, the reader does not"] if missing else []


#: (keyword, which side may not tighten: "low" = the reader's may not be higher)
_LIMITS = [("minimum", "low"), ("exclusiveMinimum", "low"), ("minLength", "low"),
           ("minProperties", "low"), ("minItems", "low"),
           ("maximum", "high"), ("exclusiveMaximum", "high"), ("maxLength", "high"),
           ("maxProperties", "high"), ("maxItems", "high")]


def _bounds(reader: dict[str, Any], writer: dict[str, Any], path: str) -> list[str]:
    problems = []
    for key, side in _LIMITS:
        if key not in reader:
            continue
        r, w = reader[key], writer.get(key)
        tighter = w is None or (r > w if side == "low" else r < w)
        if tighter:
            problems.append(f"{path}: {key} {r} in the reader is tighter than the writer's "
                            f"{'none' if w is None else w}")
    for key in ("pattern", "format"):
        if key in reader and reader[key] != writer.get(key):
            problems.append(f"{path}: the reader requires {key} {reader[key]!r}, the writer "
                            f"{'has none' if key not in writer else repr(writer[key])}")
    if "multipleOf" in reader:
        w = writer.get("multipleOf")
        if w is None or (w / reader["multipleOf"]) % 1:
            problems.append(f"{path}: the reader requires multipleOf {reader['multipleOf']}, "
                            f"the writer's values need not be")
    if reader.get("uniqueItems") and not writer.get("uniqueItems"):
        problems.append(f"{path}: the reader requires unique items, the writer does not")
    return problems


def _extra(schema: dict[str, Any]) -> Any:
    """The schema a property not named in ``properties`` must satisfy (True: anything)."""
    return schema.get("additionalProperties", True)


def _objects(reader: dict[str, Any], writer: dict[str, Any], path: str) -> list[str]:
    problems = []
    r_props, w_props = reader.get("properties", {}), writer.get("properties", {})
    newly_required = sorted(set(reader.get("required", [])) - set(writer.get("required", [])))
    problems += [f"{path}/properties/{name}: required by the reader, optional or absent in "
                 f"the writer" for name in newly_required]
    for name, r_prop in r_props.items():
        at = f"{path}/properties/{name}"
        if name in w_props:
            problems += reader_rejects(r_prop, w_props[name], at)
        else:  # old documents may hold it with whatever the writer's content model allows
            problems += [f"{p} (a property added where the writer's content model is open)"
                         for p in reader_rejects(r_prop, _extra(writer), at)]
    for name, w_prop in w_props.items():
        if name not in r_props:
            problems += reader_rejects(_extra(reader), w_prop, f"{path}/properties/{name}")
    if _extra(writer) is not False:
        problems += reader_rejects(_extra(reader), _extra(writer),
                                   f"{path}/additionalProperties")
    return problems


def _arrays(reader: dict[str, Any], writer: dict[str, Any], path: str) -> list[str]:
    r_items, w_items = reader.get("items", True), writer.get("items", True)
    if isinstance(r_items, list) or isinstance(w_items, list):
        return [] if r_items == w_items else [f"{path}/items: tuple items differ and cannot "
                                              f"be checked"]
    return reader_rejects(r_items, w_items, f"{path}/items")
