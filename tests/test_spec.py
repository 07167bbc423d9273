"""Pipeline spec validation: errors name the field's path and the reason (PIPELINE_SPEC)."""

import copy
from pathlib import Path

import pytest
import yaml

from surestream.api import Pipeline, jsonl
from surestream.model.loader import SpecError, apply_override, build_spec, load_spec
from surestream.model.spec import PipelineSpec

BASE = {
    "pipeline": "trades-vwap",
    "source": {"type": "file", "path": "data/trades.jsonl", "format": "jsonl"},
    "steps": [
        {"type": "watermark", "name": "wm", "timestamp_column": "timestamp_ms",
         "max_out_of_orderness_ms": 5000},
        {"type": "late_data_side_output", "name": "q", "output_tag": "late"},
        {"type": "keyed_dedup", "name": "d", "key_fields": ["trade_id"],
         "time_window_ms": 600000, "strategy": "first", "state_ttl_ms": 3600000},
        {"type": "window", "name": "w", "key_fields": ["symbol"], "kind": "tumbling",
         "size_ms": 60000, "late_output_tag": "late_window",
         "aggregations": {"trade_count": "count()", "high": "max(price)"}},
    ],
    "outputs": {"main": {"type": "file", "path": "out/w.jsonl"},
                "late": {"type": "file", "path": "out/late.jsonl"},
                "late_window": {"type": "file", "path": "out/lw.jsonl"}},
}


def problems(doc):
    with pytest.raises(SpecError) as e:
        build_spec(doc)
    return e.value.problems


def mutate(fn):
    doc = copy.deepcopy(BASE)
    fn(doc)
    return problems(doc)


def test_the_base_spec_is_valid():
    spec = build_spec(copy.deepcopy(BASE))
    assert [s.name for s in spec.all_streams["main"].steps] == ["wm", "q", "d", "w"]


def test_pipeline_spec_example_file_is_valid(shared):
    text = (shared / "PIPELINE_SPEC.md").read_text()
    example = text.split("```yaml", 1)[1].split("```", 1)[0]
    spec = build_spec(yaml.safe_load(example))
    assert spec.runtime.batch_size == 65536
    assert set(spec.all_streams["main"].steps[-1].aggregations) >= {"trade_count", "close"}


def test_unknown_key_is_named_with_its_path():
    got = mutate(lambda d: d["steps"][2].update(bogus=1))
    assert got == [("steps[2].bogus",
                    "unknown key (check the spelling; the keys are in docs/spec.md)")]


def test_wrong_type_is_named():
    got = mutate(lambda d: d["steps"][0].update(max_out_of_orderness_ms="soon"))
    assert got[0][0] == "steps[0].max_out_of_orderness_ms"
    assert "integer" in got[0][1]


def test_negative_duration_is_rejected():
    got = mutate(lambda d: d["steps"][3].update(size_ms=-5))
    assert got[0][0] == "steps[3].size_ms" and "greater than 0" in got[0][1]


def test_ttl_shorter_than_dedup_window_is_rejected():
    got = mutate(lambda d: d["steps"][2].update(state_ttl_ms=1000))
    assert got[0][0] == "steps[2]" and "state_ttl_ms (1000) is shorter" in got[0][1]


def test_unknown_step_type_is_named():
    got = mutate(lambda d: d["steps"].append({"type": "teleport", "name": "x"}))
    assert got[0][0] == "steps[4]" and "teleport" in got[0][1]


def test_tag_without_output_is_an_error():
    got = mutate(lambda d: d["outputs"].pop("late_window"))
    assert "late_window" in got[0][1] and "go nowhere" in got[0][1]


def test_output_for_a_tag_nobody_produces_is_an_error():
    got = mutate(lambda d: d["outputs"].update(ghost={"type": "file", "path": "g.jsonl"}))
    assert got[0][0] == "outputs.ghost" and "no stream or step produces tag 'ghost'" in got[0][1]


def test_window_before_watermark_is_an_error():
    got = mutate(lambda d: d["steps"].pop(0))
    assert "needs event time" in got[0][1]


def test_sliding_without_slide_and_session_with_size_are_rejected():
    got = mutate(lambda d: d["steps"][3].update(kind="sliding"))
    assert "slide_ms is required" in got[0][1]
    got = mutate(lambda d: d["steps"][3].update(kind="session", gap_ms=1000))
    assert "session window takes gap_ms only" in got[0][1]


def test_aggregation_shorthand_and_bad_function():
    doc = copy.deepcopy(BASE)
    doc["steps"][3]["aggregations"] = "clicks:count,revenue:sum"
    aggs = build_spec(doc).all_streams["main"].steps[3].aggregations
    assert {k: str(v) for k, v in aggs.items()} == {"clicks": "count()",
                                                    "revenue": "sum(revenue)"}
    got = mutate(lambda d: d["steps"][3].update(aggregations={"x": "median(price)"}))
    assert "unknown aggregation 'median'" in got[0][1]


def test_set_overrides_paths_and_parses_values(tmp_path: Path):
    doc = copy.deepcopy(BASE)
    apply_override(doc, "runtime.batch_size=1000")
    apply_override(doc, "steps[2].time_window_ms=5000")
    apply_override(doc, "source.path=other.jsonl")
    spec = build_spec(doc)
    assert spec.runtime.batch_size == 1000
    assert spec.all_streams["main"].steps[2].time_window_ms == 5000
    assert spec.source.path == "other.jsonl"
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump(BASE))
    assert load_spec(f, ["runtime.batch_size=7"]).runtime.batch_size == 7
    with pytest.raises(SpecError):
        load_spec(f, ["steps[9].name=x"])


def test_python_api_builds_the_same_graph_as_the_spec():
    p = Pipeline("trades-vwap")
    (p.read_files("data/trades.jsonl")
      .watermark("timestamp_ms", max_out_of_orderness_ms=5000, name="wm")
      .late_data("late", name="q")
      .dedup(["trade_id"], time_window_ms=600000, state_ttl_ms=3600000, name="d")
      .window("w", key_fields=["symbol"], kind="tumbling", size_ms=60000,
              aggregations={"trade_count": "count()", "high": "max(price)"})
      .to(jsonl("out/w.jsonl")))
    p.output("late", jsonl("out/late.jsonl")).output("late_window", jsonl("out/lw.jsonl"))
    from_api = p.spec()
    from_yaml: PipelineSpec = build_spec(copy.deepcopy(BASE))
    assert from_api.all_streams["main"].steps == from_yaml.all_streams["main"].steps
    assert from_api.all_sources == from_yaml.all_sources
    assert from_api.outputs == from_yaml.outputs


def test_set_reaches_keys_that_contain_dots():
    doc = {"outputs": {"processed.trades.new": {"type": "file", "path": "a.jsonl"}}}
    apply_override(doc, 'outputs["processed.trades.new"].path=b.jsonl')
    assert doc["outputs"]["processed.trades.new"]["path"] == "b.jsonl"
