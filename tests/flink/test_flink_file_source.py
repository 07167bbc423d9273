"""The Flink runner's file source (docs/flink.md, "The file source: several files, bad
values"): several files as several partitions, and one bad value costing one record.

Both cases run on the local runner and on Flink, the Flink jobs in ONE driver call (the
``runs`` fixture; runners/flink/differential.py). Expected records are written here by
hand, from the rules (SEMANTICS §2 and §3; docs/concepts.md, "Input typing").
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from surestream.model.loader import build_spec
from surestream.runners.flink.differential import (
    CaseResult,
    DiffCase,
    read_jsonl,
    run_differential,
)
from surestream.runners.flink.distribution import flink_python
from surestream.runners.flink.sql_refusals import FlinkUnsupported
from surestream.runners.flink.translate import translate

SCHEMA = {"id": "int", "ts": "int", "k": "string", "x": "float", "b": "bool"}

#: lines that are records, each with the record both runners must read from it
GOOD = [
    ('{"id": 1, "ts": 1000, "k": "a", "x": 1.5, "b": true}',
     {"id": 1, "ts": 1000, "k": "a", "x": 1.5, "b": True}),
    ('{"id": 9223372036854775807, "ts": 1001, "k": "max", "x": 1e308, "b": false}',
     {"id": 2**63 - 1, "ts": 1001, "k": "max", "x": 1e308, "b": False}),
    ('{"id": -9223372036854775808, "ts": 1002, "k": "min", "x": -0.0, "b": null}',
     {"id": -2**63, "ts": 1002, "k": "min", "x": -0.0, "b": None}),
    # an integer or a boolean in a (declared) string column is its text
    ('{"id": 4, "ts": 1003, "k": 12, "x": 5e-324, "b": true}',
     {"id": 4, "ts": 1003, "k": "12", "x": 5e-324, "b": True}),
    ('{"id": 5, "ts": 1004, "k": true, "x": 3, "b": false}',
     {"id": 5, "ts": 1004, "k": "true", "x": 3.0, "b": False}),
    ('{"id": null, "ts": 1005, "k": null, "x": null, "b": null}',
     {"id": None, "ts": 1005, "k": None, "x": None, "b": None}),
    ('{"ts": 1006}', {"id": None, "ts": 1006, "k": None, "x": None, "b": None}),
    ('{"id": 8, "ts": 1007, "k": "\\u00e9 \\"q\\" \\\\", "x": -1.7976931348623157e308}',
     {"id": 8, "ts": 1007, "k": 'é "q" \\', "x": -1.7976931348623157e308, "b": None}),
    # integers with an exact float value: 2**53, and 2**63 - 1024 (a multiple of its ulp)
    ('{"id": 9, "ts": 1008, "k": "a", "x": 9007199254740992}',
     {"id": 9, "ts": 1008, "k": "a", "x": 9007199254740992.0, "b": None}),
    ('{"id": 10, "ts": 1009, "k": "-5", "x": 9223372036854774784, "b": true}',
     {"id": 10, "ts": 1009, "k": "-5", "x": 9223372036854774784.0, "b": True}),
    # beyond int64, an integer with an exact float value: 2**64; a key given twice: the first
    ('{"id": 13, "ts": 1010, "k": "a", "x": 18446744073709551616}',
     {"id": 13, "ts": 1010, "k": "a", "x": 18446744073709551616.0, "b": None}),
    ('{"id": 14, "ts": 1011, "id": 99, "k": "dup", "k": {"a": 1}}',
     {"id": 14, "ts": 1011, "k": "dup", "x": None, "b": None}),
    ('{"id": 11, "ts": 5000, "k": "a", "x": 0.1}',
     {"id": 11, "ts": 5000, "k": "a", "x": 0.1, "b": None}),
]
#: a good record late against the watermark of ts 5000 (D = 1000: watermark 3999)
LATE = ('{"id": 12, "ts": 100, "k": "late", "x": 2.5}',
        {"id": 12, "ts": 100, "k": "late", "x": 2.5, "b": None})
#: lines that are not records: (line, the kind of reason both runners give)
BAD = [
    ('{"id": "abc", "ts": 1100, "k": "a"}', "field 'id'"),
    ('{"id": 1.5, "ts": 1101}', "field 'id'"),
    ('{"id": 1e3, "ts": 1102}', "field 'id'"),
    ('{"id": 9223372036854775808, "ts": 1103}', "field 'id'"),
    ('{"id": true, "ts": 1104}', "field 'id'"),
    ('{"id": {"a": 1}, "ts": 1105}', "field 'id'"),
    ('{"ts": "soon", "k": "a"}', "field 'ts'"),
    ('{"ts": 1.5}', "field 'ts'"),
    ('{"ts": 1106, "k": {"a": 1}}', "field 'k'"),
    ('{"ts": 1107, "k": [1, 2]}', "field 'k'"),
    ('{"ts": 1108, "x": "abc"}', "field 'x'"),
    ('{"ts": 1109, "x": true}', "field 'x'"),
    ('{"ts": 1110, "x": [1]}', "field 'x'"),
    ('{"ts": 1111, "x": 9007199254740993}', "field 'x'"),  # 2**53 + 1: no exact float
    ('{"ts": 1112, "x": 12345678901234567890}', "field 'x'"),
    ('{"ts": 1117, "x": 18446744073709551617}', "field 'x'"),  # 2**64 + 1
    ('{"ts": 1113, "b": "yes"}', "field 'b'"),
    ('{"ts": 1114, "b": 1}', "field 'b'"),
    # a bad record far ahead in event time: it must not move the watermark either
    ('{"id": "bad", "ts": 99999999, "k": "a"}', "field 'id'"),
    ("not json", "not valid JSON"),
    ('{"id": 1, "ts": 5', "not valid JSON"),
    ('{"id": 1, "ts": 1115, "x": NaN}', "not valid JSON"),
    ('{"id": 1, "ts": 1116} trailing', "not valid JSON"),
    ('{"id": 1, "ts": 1118} {"id": 2, "ts": 1119}', "not valid JSON"),  # two documents
    ('{"id": 1, "ts": 1120, "k": "\\ud800"}', "not valid JSON"),  # a lone surrogate
    ('{"id": 1, "ts": 1121, "x": 1e400}', "not valid JSON"),  # beyond a double
    ("[1, 2]", "a record must be a JSON object, not an array"),
    ('"text"', "a record must be a JSON object, not a string"),
    ("42", "a record must be a JSON object, not a number"),
    ("true", "a record must be a JSON object, not a boolean"),
    ("null", "a record must be a JSON object, not null"),
]
#: a line whose bytes are not UTF-8 (a lone 0xff): not JSON; its raw text has U+FFFD there
NOT_UTF8 = b'{"id": 1, "ts": 1122, "k": "\xff"}'
#: records without a valid timestamp: (line, error_type)
NO_TS = [('{"id": 20, "k": "a"}', "missing_timestamp"),
         ('{"id": 21, "ts": 99999999999999}', "timestamp_out_of_range")]


def bad_values_text() -> bytes:
    """The input: a good line first, the far-ahead bad record, then everything mixed, blank
    lines (skipped by both), the line that is not UTF-8, the late record last."""
    far = next(i for i, (line, _) in enumerate(BAD) if "99999999" in line)
    lines = [GOOD[0][0], BAD[far][0], *(g for g, _ in GOOD[1:6]), "",
             *(b for b, _ in BAD[:far]), "   ", *(g for g, _ in GOOD[6:]),
             *(b for b, _ in BAD[far + 1:]),
             *(n for n, _ in NO_TS)]
    return b"\n".join([*(line.encode() for line in lines), NOT_UTF8, LATE[0].encode()]) + b"\n"


def doc(name: str, path: Any, steps: list[dict[str, Any]], outputs: list[str]
        ) -> dict[str, Any]:
    return {"pipeline": name, "source": {"type": "file", "path": path, "schema": SCHEMA},
            "steps": steps,
            "outputs": {tag: {"type": "file", "path": f"out/{tag}.jsonl"} for tag in outputs},
            "checkpoint": {"dir": "ck"}}


WATERMARK = {"type": "watermark", "timestamp_column": "ts", "max_out_of_orderness_ms": 1000}
LATE_SPLIT = {"type": "late_data_side_output", "name": "late_split", "output_tag": "late"}
WINDOW = {"type": "window", "name": "w", "kind": "tumbling", "size_ms": 1000,
          "key_fields": ["k"], "late_output_tag": "late_window",
          "aggregations": {"n": "count()", "ids": "sum(id)"}}


def several_files() -> dict[str, list[dict[str, Any]]]:
    """Three files, each in order within its own bound (D = 1000: a record at most 1000 ms
    behind the largest before it in its file), all starting at 0: read one after the other
    under one watermark, the second and third would be late; as partitions, none is."""
    a1 = [{"id": i, "ts": i * 100, "k": "a"} for i in range(100)]
    a1.insert(50, {"id": 1000, "ts": 4000, "k": "a"})  # 1000 ms behind 5000: on time
    a2 = [{"id": i, "ts": i * 100, "k": "b"} for i in range(100)]
    c = [{"id": i, "ts": 5000 + i * 100, "k": "c"} for i in range(50)]
    return {"in/a-1.jsonl": a1, "in/a-2.jsonl": a2, "in/c.jsonl": c}


CASES = [
    DiffCase("bad_values", doc("fs_bad", "in/values.jsonl", [WATERMARK, LATE_SPLIT],
                               ["main", "late", "errors"]),
             {"in/values.jsonl": bad_values_text()}, "a bad value in every column"),
    DiffCase("several_files", doc("fs_files", ["in/a-*.jsonl", "in/c.jsonl"],
                                  [WATERMARK, LATE_SPLIT, WINDOW],
                                  ["main", "late", "late_window", "errors"]),
             several_files(), "three files: a glob and a file"),
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CaseResult]:
    flink_python()  # Flink must be installed (scripts/flink-deps.sh): fail, never skip
    work = tmp_path_factory.mktemp("file_source")
    results = run_differential(CASES, work)
    for r in results:
        print(r.report())
    return {r.case.name: r for r in results}


def records(result: CaseResult, tag: str, side: str) -> list[dict[str, Any]]:
    paths = result.local_paths if side == "local" else result.flink_paths
    return read_jsonl(paths[tag])


def same_floats(rows: list[dict[str, Any]]) -> list[str]:
    """Rows as sortable text that tells -0.0 from 0.0 (repr of every value)."""
    return sorted(repr(sorted(r.items())) for r in rows)


_REASON = re.compile(r"^(.*?): (not valid JSON|a record must be a JSON object, not [a-z ]+|"
                     r"field '\w+')")


@pytest.mark.parametrize("side", ["local", "flink"])
def test_one_bad_value_costs_one_record(runs: dict[str, CaseResult], side: str) -> None:
    result = runs["bad_values"]
    assert result.failure is None and result.refusal is None, result.report()
    assert same_floats(records(result, "main", side)) == same_floats([r for _, r in GOOD])
    assert records(result, "late", side) == [{**LATE[1], "watermark_ms": 3999,
                                              "lateness_ms": 3899, "original_timestamp": 100,
                                              "pipeline": "fs_bad", "operator": "late_split"}]
    errors = records(result, "errors", side)
    bad = [e for e in errors if e["error_type"] == "deserialization_error"]
    assert all(e["pipeline"] == "fs_bad" and e["operator"] == "source:source"
               and e["traceback"] is None for e in bad)
    got = sorted((e["raw"], _REASON.match(e["error_message"]).groups()) for e in bad)
    folder = (result.flink_paths if side == "flink" else result.local_paths)["main"]
    path = str(folder.parents[1] / "in" / "values.jsonl")
    not_utf8 = (NOT_UTF8.decode(errors="replace"), "not valid JSON")
    assert got == sorted((line, (path, kind)) for line, kind in [*BAD, not_utf8])
    no_ts = sorted((json.loads(e["raw"])["id"], e["error_type"]) for e in errors
                   if e["error_type"] != "deserialization_error")
    assert no_ts == [(20, "missing_timestamp"), (21, "timestamp_out_of_range")]


def test_bad_values_outputs_are_equal_on_both_runners(runs: dict[str, CaseResult]) -> None:
    """main and late record for record (floats bit for bit); errors as far as both runners
    word them alike (the reason's wording after its kind is each runner's own)."""
    result = runs["bad_values"]
    for out in result.outputs:
        if out.tag != "errors":
            assert out.equal, result.report()
    local, flink = (records(result, "errors", side) for side in ("local", "flink"))

    def shape(e: dict[str, Any]) -> tuple:
        reason = _REASON.match(e["error_message"])
        kind = reason.group(2) if reason else e["error_message"]
        return (e["pipeline"], e["operator"], e["error_type"], kind, e["raw"], e["traceback"])

    assert sorted(map(shape, local)) == sorted(map(shape, flink))


def test_several_files_are_partitions_with_their_own_watermarks(
        runs: dict[str, CaseResult]) -> None:
    result = runs["several_files"]
    assert result.equal, result.report()
    for side in ("local", "flink"):
        assert records(result, "late", side) == []
        assert records(result, "late_window", side) == []
        windows = {(w["k"], w["window_start"]): w["n"] for w in records(result, "main", side)}
        expected = {(k, s * 1000): 10 for k in "ab" for s in range(10)}
        expected[("a", 4000)] = 11  # the record 1000 ms behind, in its window
        expected |= {("c", s * 1000): 10 for s in range(5, 10)}
        assert windows == expected, side


def test_each_file_is_a_table_with_the_watermark_joined_by_union_all(tmp_path: Path) -> None:
    for name in ("a-1", "a-2", "c"):
        (tmp_path / "in").mkdir(exist_ok=True)
        (tmp_path / "in" / f"{name}.jsonl").write_text("")
    spec = build_spec(doc("fs_sql", ["in/a-*.jsonl", "in/c.jsonl", "in/a-1.jsonl"],
                          [WATERMARK], ["main"]), base_dir=tmp_path)
    sql = translate(spec).script()
    tables = re.findall(r"CREATE TEMPORARY TABLE `file_\d+` .*?'path' = '([^']+)'", sql,
                        re.S)
    assert tables == [str(tmp_path / "in" / f"{n}.jsonl") for n in ("a-1", "a-2", "c")]
    assert sql.count("WATERMARK FOR rt") == 3
    assert sql.count("\nUNION ALL\n") == 2
    assert sql.count("'format' = 'surestream-json'") == 3  # (parsed once: sql_source)
    assert "-- source: 3 files, one table each with its own watermark" in sql  # (explain)


def test_a_glob_matching_nothing_is_refused(tmp_path: Path) -> None:
    spec = build_spec(doc("fs_none", "in/*.jsonl", [WATERMARK], ["main"]), base_dir=tmp_path)
    with pytest.raises(FlinkUnsupported) as refused:
        translate(spec)
    assert refused.value.path == "source.path"
    assert "listed when the spec is translated" in refused.value.reason
