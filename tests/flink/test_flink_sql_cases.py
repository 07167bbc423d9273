"""Differential tests of the Flink SQL translation (issue 15 items 1 and 4).

The shared Flink cases (tests/data/flink-cases, a copy of ../shared/flink-cases computed by
Flink 2.3.0's DataStream API) are translated to Flink SQL and run on a PyFlink local
environment; the outputs must equal the cases' expected files, and the same spec run on our
local runner must give the same records (order normalised by key and window). Cases with
allowed lateness must be refused, naming the field and the reason. Two derived cases (no
DataStream truth: Flink SQL against our runner only) cover sliding windows and the
record-level late step with where/with_columns.

One JVM for the module: the ``flink`` fixture starts one TableEnvironment and each case
drops its temporary tables afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from surestream.model.loader import build_spec
from surestream.model.spec import PipelineSpec
from surestream.runners.flink.distribution import flink_python
from surestream.runners.flink.runner import flink_job
from surestream.runners.flink.sql_refusals import FlinkUnsupported
from surestream.runners.flink.submit import run_jobs
from surestream.runners.flink.translate import translate
from surestream.runners.local.runner import LocalRunner

CASES_DIR = Path(__file__).resolve().parents[1] / "data" / "flink-cases"
SCHEMA = {"k": "string", "ts": "int", "v": "float", "id": "string"}
#: the aggregations Flink SQL computes exactly (first/last are refused: arrival order)
AGGS = {"count": "count()", "sum": "sum(v)", "min": "min(v)", "max": "max(v)"}
#: sliding windows: a float sum is refused there (Flink SQL adds per-slide partial sums)
SLIDING_AGGS = {k: v for k, v in AGGS.items() if k != "sum"}
LATE_META = ("watermark_ms", "lateness_ms", "original_timestamp", "pipeline", "operator")


def read_jsonl(path: Path) -> list[dict]:
    """A file, or every committed part file of a Flink filesystem sink's folder."""
    if not path.exists():
        return []
    files = sorted(p for p in path.iterdir() if not p.name.startswith(".")) \
        if path.is_dir() else [path]
    return [json.loads(line) for f in files for line in f.read_text().splitlines()
            if line.strip()]


def case(name: str) -> dict:
    return json.loads((CASES_DIR / name / "case.json").read_text())


def case_spec(name: str, base: Path, **changes: Any) -> PipelineSpec:
    """The spec of a case: its input (with a declared schema), watermark and window."""
    return build_spec(case_doc(name, **changes), base_dir=base)


def case_doc(name: str, *, window: dict | None = None, lateness: int | None = None,
             steps: list[dict] | None = None, aggregations: dict | None = None) -> dict:
    """The spec document of a case (``case_spec``)."""
    c = case(name)
    win = dict(window if window is not None else c["window"])
    kind = win.pop("kind")
    win = {k: v for k, v in win.items() if not (k == "offset_ms" and v == 0)}
    window_step = {"type": "window", "name": "w", "key_fields": ["k"], "kind": kind, **win,
                   "allowed_lateness_ms": c["allowed_lateness_ms"] if lateness is None
                   else lateness, "aggregations": aggregations or AGGS}
    doc = {"pipeline": name, "source": {"type": "file", "schema": SCHEMA,
                                        "path": str(CASES_DIR / name / "input.jsonl")},
           "steps": [{"type": "watermark", "timestamp_column": "ts",
                      "max_out_of_orderness_ms": c["max_out_of_orderness_ms"]},
                     *(steps or []), window_step],
           "outputs": {tag: {"type": "file", "path": f"out/{tag}.jsonl"}
                       for tag in ("main", "late", "late_window", "errors")},
           "checkpoint": {"dir": "ck"}}
    if not any(s.get("type") == "late_data_side_output" for s in steps or []):
        del doc["outputs"]["late"]
    return doc


@pytest.fixture(scope="module")
def flink() -> None:
    """Flink must be installed (scripts/flink-deps.sh); each job runs in the job driver under
    the Flink environment's interpreter, as ``surestream run --runner flink`` runs it."""
    flink_python()  # raises FlinkNotInstalled naming the install script


def run_flink(env: Any, spec: PipelineSpec) -> None:
    """Run the spec's translation on a local mini-cluster to the end of its input."""
    run_jobs([flink_job(spec)], Path(spec.base_dir or ".") / "flink-job")


def run_both(env: Any, make: Any, tmp_path: Path) -> tuple[Path, Path]:
    """The spec ``make(base)`` on Flink and on the local runner, each in its own folder."""
    flink_base, local_base = tmp_path / "flink", tmp_path / "local"
    flink_base.mkdir()
    local_base.mkdir()
    run_flink(env, make(flink_base))
    LocalRunner(make(local_base)).run()
    return flink_base / "out", local_base / "out"


def by_window(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: (r["window_end"], r["window_start"], r["k"]))


def late_view(rows: list[dict]) -> list[tuple]:
    return sorted((r["id"], *(r[m] for m in LATE_META)) for r in rows)


def test_t01_tumble_boundaries_equals_flink_datastream_and_local(flink: Any,
                                                                 tmp_path: Path) -> None:
    name = "t01_tumble_boundaries"
    flink_out, local_out = run_both(flink, lambda b: case_spec(name, b), tmp_path)
    expected = [{k: r[k] for k in ("k", "window_start", "window_end", "revision", *AGGS)}
                for r in read_jsonl(CASES_DIR / name / "expected_main.jsonl")]
    got = read_jsonl(flink_out / "main.jsonl")
    assert by_window(got) == by_window(expected)
    local = [{k: r[k] for k in expected[0]} for r in read_jsonl(local_out / "main.jsonl")]
    assert by_window(local) == by_window(expected)

    expected_late = [r["id"] for r in read_jsonl(CASES_DIR / name / "expected_late.jsonl")]
    flink_late = read_jsonl(flink_out / "late_window.jsonl")
    assert sorted(r["id"] for r in flink_late) == sorted(expected_late)
    assert late_view(flink_late) == late_view(read_jsonl(local_out / "late_window.jsonl"))
    for r in flink_late:  # SEMANTICS §3: lateness = W - ts, W the watermark before it
        assert r["lateness_ms"] == r["watermark_ms"] - r["ts"] >= 0
    assert read_jsonl(flink_out / "errors.jsonl") == []


@pytest.mark.parametrize("name", ["t03_tumble_lateness_revisions", "s03_sliding_offset_3x",
                                  "w02_session_late_bridge"])
def test_cases_with_allowed_lateness_are_refused(name: str, tmp_path: Path) -> None:
    assert case(name)["allowed_lateness_ms"] > 0
    with pytest.raises(FlinkUnsupported) as refused:
        translate(case_spec(name, tmp_path))
    assert refused.value.path == "steps[1].allowed_lateness_ms"
    assert "revisions" in refused.value.reason


def test_first_and_last_are_refused(tmp_path: Path) -> None:
    spec = case_spec("t01_tumble_boundaries", tmp_path,
                     aggregations={**AGGS, "first": "first(v)"})
    with pytest.raises(FlinkUnsupported) as refused:
        translate(spec)
    assert refused.value.path == "steps[1].aggregations.first"
    assert "arrive" in refused.value.reason


def test_sliding_zero_lateness_equals_local(flink: Any, tmp_path: Path) -> None:
    """s03's input through a sliding 6 s / 2 s window without lateness or offset: a record
    late for its older windows still counts in its newer ones, on both runners."""
    name = "s03_sliding_offset_3x"

    def make(base: Path) -> PipelineSpec:
        return case_spec(name, base, lateness=0, aggregations=SLIDING_AGGS,
                         window={"kind": "sliding", "size_ms": 6000, "slide_ms": 2000})

    flink_out, local_out = run_both(flink, make, tmp_path)
    got = read_jsonl(flink_out / "main.jsonl")
    assert got, "no window fired"
    local = [{k: r[k] for k in got[0]} for r in read_jsonl(local_out / "main.jsonl")]
    assert by_window(got) == by_window(local)
    flink_late = read_jsonl(flink_out / "late_window.jsonl")
    assert late_view(flink_late) == late_view(read_jsonl(local_out / "late_window.jsonl"))
    assert {r["id"] for r in flink_late} >= {"e15"}  # late for all of its windows


def test_sliding_with_offset_zero_lateness_equals_local(flink: Any, tmp_path: Path) -> None:
    """s03 as given (sliding 6 s / 2 s, offset 1 s: negative window starts) but without
    lateness: the HOP offset and the late split's window arithmetic agree with ours."""
    name = "s03_sliding_offset_3x"

    def make(base: Path) -> PipelineSpec:
        return case_spec(name, base, lateness=0, aggregations=SLIDING_AGGS)

    flink_out, local_out = run_both(flink, make, tmp_path)
    got = read_jsonl(flink_out / "main.jsonl")
    assert got, "no window fired"
    local = [{k: r[k] for k in got[0]} for r in read_jsonl(local_out / "main.jsonl")]
    assert by_window(got) == by_window(local)
    flink_late = read_jsonl(flink_out / "late_window.jsonl")
    assert late_view(flink_late) == late_view(read_jsonl(local_out / "late_window.jsonl"))
    assert {r["id"] for r in flink_late} >= {"e15"}  # late for all of its windows


def test_late_step_where_with_columns_equal_local(flink: Any, tmp_path: Path) -> None:
    """t03's input with the record-level late step (ts <= W), a where and a typed
    with_columns before a tumbling window without lateness."""
    name = "t03_tumble_lateness_revisions"
    steps = [{"type": "late_data_side_output", "name": "late_split", "output_tag": "late"},
             {"type": "where", "condition": "v <> 6.0"},
             {"type": "with_columns", "columns": {"v": "CAST(v * 2 AS DOUBLE)"}}]

    def make(base: Path) -> PipelineSpec:
        return case_spec(name, base, lateness=0, steps=steps)

    flink_out, local_out = run_both(flink, make, tmp_path)
    flink_late = read_jsonl(flink_out / "late.jsonl")
    # D = 1 s: e5 (3000 after 11000), e7, e8, e10, e12, e13 ... are more than D behind
    assert {"e5", "e8", "e10", "e12", "e13", "e20"} <= {r["id"] for r in flink_late}
    assert late_view(flink_late) == late_view(read_jsonl(local_out / "late.jsonl"))
    got = read_jsonl(flink_out / "main.jsonl")
    local = [{k: r[k] for k in got[0]} for r in read_jsonl(local_out / "main.jsonl")]
    assert by_window(got) == by_window(local)
    assert all(r["sum"] % 2 == 0 for r in got)  # the doubled values reached the window


def test_refusals_name_the_step_and_reason(tmp_path: Path) -> None:
    base = case_doc("t01_tumble_boundaries")

    def refused(**changes: Any) -> FlinkUnsupported:
        doc = json.loads(json.dumps(base))
        for key, value in changes.items():
            doc[key] = value(doc) if callable(value) else value
        with pytest.raises(FlinkUnsupported) as e:
            translate(build_spec(doc, base_dir=tmp_path))
        return e.value

    dedup = {"type": "keyed_dedup", "key_fields": ["id"], "time_window_ms": 1000,
             "strategy": "last"}  # (keep-first runs: tests/flink/test_flink_dedup.py)
    e = refused(steps=lambda d: [d["steps"][0], dedup, d["steps"][1]])
    assert e.path == "steps[1].strategy" and "event time" in e.reason
    e = refused(source=lambda d: {k: v for k, v in d["source"].items() if k != "schema"})
    assert e.path == "source.schema"
    session = {**base["steps"][1], "kind": "session", "gap_ms": 1000}
    del session["size_ms"]
    e = refused(steps=[base["steps"][0], session])
    assert e.path == "steps[1].kind"


def test_a_file_without_a_declared_schema_is_refused_with_what_to_declare(tmp_path: Path
                                                                          ) -> None:
    """The refusal names the schema the local runner would infer from the file's first
    lines, so a user can paste it (a column null throughout or nested shows ``?``)."""
    (tmp_path / "in.jsonl").write_text(
        '{"symbol": "A", "ts": 1, "price": 1.5, "note": null, "tags": [1]}\n'
        '{"symbol": "B", "ts": 2, "price": 2, "ok": true}\n')
    doc = {"pipeline": "hint", "source": {"type": "file", "path": "in.jsonl"},
           "steps": [{"type": "watermark", "timestamp_column": "ts",
                      "max_out_of_orderness_ms": 10}],
           "outputs": {"main": {"type": "file", "path": "out/main.jsonl"}}}
    with pytest.raises(FlinkUnsupported) as e:
        translate(build_spec(doc, base_dir=tmp_path))
    assert e.value.path == "source.schema"
    assert e.value.reason.endswith(
        "its first lines read as: schema: {symbol: string, ts: int, price: float, note: ?, "
        "tags: ?, ok: bool}")


def test_explain_prints_the_sql(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from surestream.cli.main import main

    path = tmp_path / "spec.json"
    path.write_text(json.dumps(case_doc("t01_tumble_boundaries")))
    assert main(["explain", str(path), "--runner", "flink"]) == 0
    sql = capsys.readouterr().out
    assert "WATERMARK FOR rt AS rt - INTERVAL '0 00:00:02.001' DAY TO SECOND(3)" in sql
    assert "TUMBLE(TABLE" in sql and "EXECUTE STATEMENT SET" in sql
    doc = json.loads(path.read_text())
    doc["steps"][1]["allowed_lateness_ms"] = 1000
    path.write_text(json.dumps(doc))
    assert main(["explain", str(path)]) == 3
    assert "steps[1].allowed_lateness_ms" in capsys.readouterr().err


def test_the_shared_cases_are_the_repository_copy(shared: Path) -> None:
    for case_dir in (shared / "flink-cases").iterdir():
        if case_dir.is_dir():
            for f in case_dir.iterdir():
                assert (CASES_DIR / case_dir.name / f.name).read_bytes() == f.read_bytes()
    assert os.path.isdir(CASES_DIR) and shutil.which("java"), "Flink needs Java 17"


def test_records_without_a_valid_timestamp_go_to_errors(flink: Any, tmp_path: Path) -> None:
    """A missing or out-of-range timestamp goes to errors on both runners and does not move
    the watermark (a year-2600 record would otherwise close every window)."""
    data = tmp_path / "input.jsonl"
    rows = [{"k": "A", "ts": 1000, "v": 1.0, "id": "a"},
            {"k": "A", "v": 2.0, "id": "no_ts"},
            {"k": "A", "ts": 20_000_000_000_000, "v": 3.0, "id": "year_2603"},
            {"k": "A", "ts": 2000, "v": 4.0, "id": "b"}]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))

    def make(base: Path) -> PipelineSpec:
        doc = case_doc("t01_tumble_boundaries")
        doc["source"]["path"] = str(data)
        return build_spec(doc, base_dir=base)

    flink_out, local_out = run_both(flink, make, tmp_path)
    got = read_jsonl(flink_out / "main.jsonl")
    assert [(r["window_start"], r["count"], r["sum"]) for r in got] == [(0, 2, 5.0)]
    assert read_jsonl(flink_out / "late_window.jsonl") == []
    flink_errors = sorted((json.loads(r["raw"])["id"], r["error_type"])
                          for r in read_jsonl(flink_out / "errors.jsonl"))
    assert flink_errors == [("no_ts", "missing_timestamp"),
                            ("year_2603", "timestamp_out_of_range")]
    local_errors = sorted((json.loads(r["raw"])["id"], r["error_type"])
                          for r in read_jsonl(local_out / "errors.jsonl"))
    assert local_errors == flink_errors

    def whole(out: Path) -> list[tuple]:  # the message and raw as our runner writes them
        return sorted((r["error_type"], r["error_message"], r["raw"])
                      for r in read_jsonl(out / "errors.jsonl"))

    assert whole(flink_out) == whole(local_out)


def test_route_statement_set_equals_local(flink: Any, tmp_path: Path) -> None:
    """The router as one INSERT per tag in the job's statement set: A goes on to the window,
    B to its own output, C (no route, no default) to errors as `unroutable`."""
    steps = [{"type": "route", "name": "by_k", "field": "k",
              "routes": {"A": "main", "B": "b_out"}}]

    def make(base: Path) -> PipelineSpec:
        doc = case_doc("t01_tumble_boundaries", steps=steps)
        doc["outputs"]["b_out"] = {"type": "file", "path": "out/b_out.jsonl"}
        return build_spec(doc, base_dir=base)

    flink_out, local_out = run_both(flink, make, tmp_path)
    got = read_jsonl(flink_out / "main.jsonl")
    assert {r["k"] for r in got} == {"A"}
    local = [{k: r[k] for k in got[0]} for r in read_jsonl(local_out / "main.jsonl")]
    assert by_window(got) == by_window(local)
    b_rows = sorted(r["id"] for r in read_jsonl(flink_out / "b_out.jsonl"))
    assert b_rows == ["e11", "e14", "e17", "e2", "e6", "e8"]
    assert b_rows == sorted(r["id"] for r in read_jsonl(local_out / "b_out.jsonl"))

    def errors(out: Path) -> list[tuple]:
        return sorted((json.loads(r["raw"])["id"], r["error_type"], r["error_message"])
                      for r in read_jsonl(out / "errors.jsonl"))

    assert [e[0] for e in errors(flink_out)] == ["e12", "e15", "e18", "e20", "e4", "e9"]
    assert errors(flink_out) == errors(local_out)
    assert {e[1:] for e in errors(flink_out)} == {("unroutable", "no route for k=C")}
