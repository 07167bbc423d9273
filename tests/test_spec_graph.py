"""Whole-graph mistakes are reported at the key to change, all at once, by ``validate``:
a stream reading a tag nobody produces, duplicate names, and streams that read each other
in a cycle (before this, a cycle passed validation and only the run found it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from surestream.model.loader import SpecError, build_spec


def streams_spec(streams: dict, outputs: dict) -> dict:
    return {"pipeline": "graph",
            "source": {"type": "file", "path": "in.jsonl"},
            "streams": streams,
            "outputs": {tag: {"type": "file", "path": f"out/{tag}.jsonl"} for tag in outputs}}


def problems(doc: dict) -> list[tuple[str, str]]:
    with pytest.raises(SpecError) as e:
        build_spec(doc)
    return e.value.problems


WATERMARK = {"type": "watermark", "timestamp_column": "ts"}


def test_a_stream_reading_an_unknown_tag_is_reported_at_its_from():
    doc = streams_spec({
        "main": {"from": "source", "steps": [WATERMARK,
                                             {"type": "late_data_side_output",
                                              "output_tag": "late"}]},
        "quarantine": {"from": "late2", "steps": []}},
        outputs=["main", "quarantine", "late"])
    [(path, reason)] = problems(doc)
    assert path == "streams.quarantine.from"
    assert reason.startswith("'late2' is neither a source nor a stream or tag")


def test_every_graph_mistake_is_reported_with_its_own_path():
    doc = streams_spec({
        "main": {"from": "source", "steps": [WATERMARK, {**WATERMARK}]},  # name twice
        "other": {"from": "nowhere", "steps": []}},
        outputs=["main", "other", "ghost"])
    found = dict(problems(doc))
    assert set(found) == {"streams.main.steps[1].name", "streams.other.from", "outputs.ghost"}
    assert "step names must be unique" in found["streams.main.steps[1].name"]
    assert "no stream or step produces tag 'ghost'" in found["outputs.ghost"]


def test_top_level_steps_are_reported_as_steps():
    doc = {"pipeline": "p", "source": {"type": "file", "path": "in.jsonl"},
           "steps": [{"type": "keyed_dedup", "key_fields": ["id"], "time_window_ms": 1000}],
           "outputs": {"main": {"type": "file", "path": "out/m.jsonl"}}}
    [(path, reason)] = problems(doc)
    assert path == "steps[0]" and "needs event time" in reason


def test_streams_that_read_each_other_in_a_cycle_are_refused_at_validation():
    doc = streams_spec({
        "a": {"from": "b", "steps": []},
        "b": {"from": "a", "steps": []},
        "main": {"from": "source", "steps": []}},
        outputs=["main"])
    [(path, reason)] = problems(doc)
    assert path == "streams.a.from"
    assert "streams read from each other in a cycle: a -> b -> a" in reason


def test_a_cycle_through_broadcast_updates_names_the_updates_key():
    enrich = {"type": "broadcast_enrich", "key_fields": ["k"], "fields": ["v"],
              "updates": "b"}
    doc = streams_spec({
        "a": {"from": "source", "steps": [enrich]},
        "b": {"from": "a", "steps": []}},
        outputs=["b"])
    [(path, reason)] = problems(doc)
    assert path == "streams.a.steps[0].updates"
    assert "a -> b -> a" in reason


def test_validate_prints_the_cycle_with_its_path_and_exits_2(tmp_path: Path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(streams_spec({
        "main": {"from": "source", "steps": []},
        "x": {"from": "y", "steps": []},
        "y": {"from": "x", "steps": []}}, outputs=["main"])))
    r = subprocess.run([sys.executable, "-m", "surestream", "validate", str(spec)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert f"{spec}: streams.x.from: streams read from each other in a cycle: x -> y -> x" \
        in r.stderr


def test_a_tag_with_dots_is_quoted_in_its_path():
    doc = streams_spec({"main": {"from": "source", "steps": []}},
                       outputs=["main", "processed.trades.new"])
    [(path, _)] = problems(doc)
    assert path == 'outputs["processed.trades.new"]'  # as --set takes it
