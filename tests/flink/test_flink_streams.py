"""Named ``streams`` on the Flink runner, as translated (runners/flink/sql_streams.py): what
each stream becomes and what is refused inside a stream, with the field path a user edits.
No JVM here: the runs on both runners are the named-stream cases of the differential suite
(tests/flink/test_flink_differential.py, ``test_named_streams_run_equal``).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from surestream.cli.main import main
from surestream.model.loader import build_spec, load_spec
from surestream.runners.flink.sql_refusals import FlinkUnsupported
from surestream.runners.flink.translate import translate

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "src" / "surestream" / "examples" / "flink" / "trades_windows.yaml"
SCHEMA = {"k": "string", "ts": "int", "v": "float", "id": "string"}
WATERMARK = {"type": "watermark", "name": "wm", "timestamp_column": "ts",
             "max_out_of_orderness_ms": 1000}
WINDOW = {"type": "window", "name": "w", "key_fields": ["k"], "kind": "tumbling",
          "size_ms": 10_000, "aggregations": {"n": "count()"}}


def spec_doc(streams: dict[str, Any], *outputs: str) -> dict[str, Any]:
    return {"pipeline": "s", "source": {"type": "file", "path": "in.jsonl", "schema": SCHEMA},
            "streams": streams,
            "outputs": {t: {"type": "file", "path": f"out/{t}.jsonl"}
                        for t in (*outputs, "errors")},
            "checkpoint": {"dir": "ck"}}


def refusal(doc: dict[str, Any]) -> FlinkUnsupported:
    with pytest.raises(FlinkUnsupported) as refused:
        translate(build_spec(copy.deepcopy(doc), base_dir="/nonexistent"))
    return refused.value


def sink_paths(doc: dict[str, Any]) -> set[str]:
    """The output folders the translated job writes (its sink tables' paths)."""
    script = translate(build_spec(copy.deepcopy(doc), base_dir="/nonexistent")).script()
    return set(re.findall(r"'path' = '/nonexistent/(out/[^']+)'", script))


def test_each_stream_with_an_output_is_written_there_and_no_other() -> None:
    doc = spec_doc({"clean": {"from": "source", "steps": [WATERMARK]},
                    "windows": {"from": "clean", "steps": [WINDOW]},
                    "copy": {"from": "clean", "steps": []}},
                   "windows", "copy", "late_window")
    # `clean` is read by two streams and has no output of its own: nothing writes it
    assert sink_paths(doc) == {"out/windows.jsonl", "out/copy.jsonl",
                               "out/late_window.jsonl", "out/errors.jsonl"}


def test_a_refusal_inside_a_stream_names_the_stream_and_step() -> None:
    doc = spec_doc({"clean": {"from": "source", "steps": [WATERMARK]},
                    "activity": {"from": "clean", "steps": [
                        {"type": "where", "name": "all", "condition": "TRUE"},
                        {**WINDOW, "allowed_lateness_ms": 5000}]}},
                   "activity", "late_window")
    refused = refusal(doc)
    assert refused.path == "streams.activity.steps[1].allowed_lateness_ms"
    doc["streams"]["activity"]["steps"] = [
        {"type": "process", "name": "p", "key_fields": ["k"],
         "function": "surestream_flink_probes:process_element"}]
    doc["outputs"].pop("late_window")
    assert refusal(doc).path == "streams.activity.steps[0]"


def test_the_watermark_is_the_first_step_of_the_stream_reading_the_source() -> None:
    no_watermark = spec_doc({"raw": {"from": "source", "steps": []},
                             "timed": {"from": "raw", "steps": [WATERMARK]}}, "timed")
    assert refusal(no_watermark).path == "streams.raw.steps[0]"
    again = spec_doc({"clean": {"from": "source", "steps": [WATERMARK]},
                      "timed": {"from": "clean", "steps": [{**WATERMARK, "name": "wm2"}]}},
                     "timed")
    refused = refusal(again)
    assert refused.path == "streams.timed.steps[0]"
    assert "source table" in refused.reason


def test_a_second_stream_reading_the_source_is_refused() -> None:
    doc = spec_doc({"a": {"from": "source", "steps": [WATERMARK]},
                    "b": {"from": "source", "steps": [{**WATERMARK, "name": "wm_b"}]}},
                   "a", "b")
    refused = refusal(doc)
    assert refused.path == "streams.b.from"
    assert "from: a" in refused.reason


def test_a_stream_reading_a_side_output_is_refused_before_anything_else() -> None:
    doc = spec_doc({"clean": {"from": "source", "steps": [
                        WATERMARK, {"type": "late_data_side_output", "name": "split",
                                    "output_tag": "late"}]},
                    "late_records": {"from": "late", "steps": []}},
                   "clean", "late_records")
    refused = refusal(doc)
    assert refused.path == "streams.late_records.from"
    assert "'late'" in refused.reason


def test_after_a_window_only_a_stream_without_steps() -> None:
    streams = {"clean": {"from": "source", "steps": [WATERMARK]},
               "windows": {"from": "clean", "steps": [WINDOW]},
               "after": {"from": "windows", "steps": []}}
    doc = spec_doc(streams, "after", "late_window")
    assert "out/after.jsonl" in sink_paths(doc)
    streams["after"]["steps"] = [{"type": "where", "name": "big", "condition": "n > 1"}]
    refused = refusal(doc)
    assert (refused.path, refused.reason) == ("streams.after.steps[0]",
                                              "steps after a window are not translated yet")


def test_a_union_needs_the_same_columns_and_no_user_code_after_it() -> None:
    streams = {"clean": {"from": "source", "steps": [WATERMARK]},
               "a": {"from": "clean", "steps": [{"type": "where", "name": "only_a",
                                                 "condition": "k = 'A'"}]},
               "b": {"from": "clean", "steps": [{"type": "with_columns", "name": "w2",
                                                 "columns": {"v2": "CAST(v * 2 AS DOUBLE)"}}]},
               "both": {"from": ["a", "b"], "steps": []}}
    doc = spec_doc(streams, "both")
    refused = refusal(doc)
    assert refused.path == "streams.both.from"
    assert "v2" in refused.reason
    streams["b"]["steps"] = [{"type": "where", "name": "only_b", "condition": "k = 'B'"}]
    assert sink_paths(doc) == {"out/both.jsonl", "out/errors.jsonl"}
    streams["both"]["steps"] = [{"type": "filter", "name": "f",
                                 "function": "flink_udf_functions:keep"}]
    refused = refusal(doc)
    assert refused.path == "streams.both.steps[0]"
    assert "union ('both')" in refused.reason


def test_the_shipped_flink_example_is_accepted_and_explained(
        capsys: pytest.CaptureFixture) -> None:
    spec = load_spec(EXAMPLE)
    assert spec.streams and spec.source.schema_  # the shape it is meant to show
    translation = translate(spec)
    assert len(translation.inserts) >= len(spec.outputs)
    assert main(["explain", str(EXAMPLE), "--runner", "flink"]) == 0
    out = capsys.readouterr().out
    assert "EXECUTE STATEMENT SET" in out
    for view in ("s4_notional", "s0_ohlc_1m", "s0_activity_5m"):  # each stream's last view
        assert f"CREATE TEMPORARY VIEW `{view}`" in out


def test_duplicates_of_a_dedup_inside_a_stream_are_counted(tmp_path: Path) -> None:
    """A dedup step without a duplicates output, inside a stream: the translation writes its
    duplicates to the step's folder, and the count (our runner's `duplicates` counter) reads
    that folder; the step must be found in the stream, not only in top-level `steps`."""
    from surestream.runners.flink.sql_dedup import duplicates_dropped, duplicates_folder

    dedup = {"type": "keyed_dedup", "name": "dedup_ids", "key_fields": ["id"],
             "time_window_ms": 60_000}
    doc = spec_doc({"clean": {"from": "source", "steps": [WATERMARK, dedup]},
                    "copy": {"from": "clean", "steps": []}}, "copy")
    spec = build_spec(copy.deepcopy(doc), base_dir=str(tmp_path))
    folder = duplicates_folder(spec, spec.streams["clean"].steps[1])
    assert str(folder) in translate(spec).script()
    folder.mkdir(parents=True)
    (folder / "part-0").write_text('{"id": "a"}\n{"id": "b"}\n')
    (folder / ".part-1.inprogress").write_text('{"id": "c"}\n')  # not committed
    assert duplicates_dropped(spec) == {"dedup_ids": 2}
