"""docs/spec.md is generated from the models and stays so; its examples are valid specs;
``surestream schema`` is a JSON Schema that accepts every shipped spec."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import jsonschema
import polars as pl
import pytest
import yaml
from pydantic import BaseModel, TypeAdapter

from surestream.cli.schema import (
    SINK_EXAMPLES,
    SOURCE_EXAMPLES,
    SQL_IDIOMS,
    STEP_EXAMPLES,
    STREAMS_EXAMPLE,
    json_schema,
    render_markdown,
)
from surestream.model.loader import build_spec
from surestream.model.spec import PipelineSpec, SinkSpec, SourceSpec
from surestream.model.steps import Step

REPO = Path(__file__).resolve().parents[1]
SPEC_MD = REPO / "docs" / "spec.md"
EXAMPLES = sorted((REPO / "src" / "surestream" / "examples").rglob("*.yaml"))


def test_docs_spec_md_is_the_generated_reference():
    assert SPEC_MD.read_text() == render_markdown(), (
        "docs/spec.md is stale: a model, a description or the command line changed. "
        "Regenerate it: surestream schema --markdown > docs/spec.md")


def models_of_the_spec() -> list[type[BaseModel]]:
    """Every model a spec file can contain, found by walking the field annotations."""
    seen: list[type[BaseModel]] = []

    def visit(annotation: object) -> None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if annotation not in seen:
                seen.append(annotation)
                for field in annotation.model_fields.values():
                    visit(field.annotation)
            return
        for arg in getattr(annotation, "__args__", ()) or ():
            visit(arg)
        for meta in getattr(annotation, "__metadata__", ()) or ():
            visit(meta)

    visit(PipelineSpec)
    return seen


def test_every_key_says_what_it_means():
    schema = json_schema()
    undocumented = []
    for model in models_of_the_spec():
        props = (schema if model is PipelineSpec else schema["$defs"][model.__name__])
        for key, prop in props["properties"].items():
            if key != "type" and not prop.get("description"):
                undocumented.append(f"{model.__name__}.{key}")
    assert undocumented == [], "add Field(description=...) to these keys"
    assert len(models_of_the_spec()) >= 20  # the walk found the steps, sources and sinks


def type_names(union: object) -> set[str]:
    return set(TypeAdapter(union).json_schema()["discriminator"]["mapping"])


def test_every_step_source_and_sink_type_has_a_valid_example():
    assert set(STEP_EXAMPLES) == type_names(Step)
    assert set(SOURCE_EXAMPLES) == type_names(SourceSpec)
    assert set(SINK_EXAMPLES) == type_names(SinkSpec)
    steps = TypeAdapter(list[Step])
    for kind, text in STEP_EXAMPLES.items():
        parsed = steps.validate_python(yaml.safe_load(text))
        assert {s.type for s in parsed} == {kind}
    for kind, text in SOURCE_EXAMPLES.items():
        assert TypeAdapter(SourceSpec).validate_python(yaml.safe_load(text)["source"]).type \
            == kind
    for kind, text in SINK_EXAMPLES.items():
        outputs = TypeAdapter(dict[str, SinkSpec]).validate_python(
            yaml.safe_load(text)["outputs"])
        assert {s.type for s in outputs.values()} == {kind}


def test_the_streams_example_is_a_valid_spec_with_a_stream_from_a_tag():
    spec = build_spec(yaml.safe_load(STREAMS_EXAMPLE))
    froms = {name: s.from_ for name, s in spec.streams.items()}
    assert froms == {"clean": "source", "per_minute": "clean", "per_hour": "clean",
                     "late_audit": "late"}
    assert spec.outputs["late_audit"].processing_time_columns == ["processed_on"]


def test_the_sql_idioms_compute_what_they_say():
    frame = pl.DataFrame({"timestamp_ms": [1767233161123], "ts_s": [1767233161],
                          "window_start": [1767225600000]})  # 2026-01-01T02:06:01.123Z
    got = {want: frame.select(pl.sql_expr(sql).alias("v"))["v"][0]
           for want, sql in SQL_IDIOMS}
    values = list(got.values())
    assert values[0] == date(2026, 1, 1)
    assert values[1].isoformat() == "2026-01-01T02:06:01.123000"
    assert values[2] == 2
    assert values[3] == "2026-01-01 02:06:01"
    assert values[4] == 1767233160000
    assert values[5] == 1767233161000
    assert values[6] == date(2026, 1, 1)
    assert isinstance(values[7], date)  # CURRENT_DATE: whatever today is


def schema_from_the_cli() -> dict:
    r = subprocess.run([sys.executable, "-m", "surestream", "schema"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_surestream_schema_is_a_json_schema_that_accepts_the_shipped_specs():
    schema = schema_from_the_cli()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    assert len(EXAMPLES) >= 8
    for path in EXAMPLES:
        errors = [e.message for e in validator.iter_errors(yaml.safe_load(path.read_text()))]
        assert errors == [], path
    doc = yaml.safe_load(STREAMS_EXAMPLE)
    assert list(validator.iter_errors(doc)) == []
    doc["streams"]["clean"]["steps"][0]["max_out_of_orderness"] = 5000  # a typo
    doc["runtime"] = {"batch_size": 0}
    assert len(list(validator.iter_errors(doc))) == 2


@pytest.mark.parametrize("flag", ["--markdown"])
def test_surestream_schema_markdown_prints_the_reference(flag):
    r = subprocess.run([sys.executable, "-m", "surestream", "schema", flag],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout == SPEC_MD.read_text()
