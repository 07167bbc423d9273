"""User code on Flink (issue 15 item 2): ``map_batches`` as a pandas UDF, ``map`` and
``filter`` as Python table functions, against the local runner on the same input.

One driver (one JVM) runs the three jobs of the module; the refusals and the missing-package
check need no JVM. The functions are in ``flink_udf_functions.py``, a plain user module the
Flink runner ships with the job.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from surestream.model.loader import build_spec
from surestream.model.spec import PipelineSpec
from surestream.runners.flink.distribution import flink_python
from surestream.runners.flink.runner import flink_job
from surestream.runners.flink.sql_refusals import FlinkUnsupported
from surestream.runners.flink.submit import FlinkJobFailed, run_jobs
from surestream.runners.flink.translate import translate
from surestream.runners.local.runner import LocalRunner

#: 2**53 + 1: a float64 cannot hold it, so it shows that integers reach the functions exact
BIG = 9_007_199_254_740_993
INPUT = [
    {"id": "a1", "k": "a", "ts": 1000, "v": 1.5, "n": 1},
    {"id": "b1", "k": "b", "ts": 2000, "v": None, "n": None},
    {"id": "bad", "k": "a", "ts": 3000, "v": 2.0, "n": 3},
    {"id": "drop", "k": "b", "ts": 4000, "v": 5.0, "n": 4},
    {"id": "twice", "k": "a", "ts": 5000, "v": 3.0, "n": BIG},
    {"id": "small", "k": "b", "ts": 6000, "v": 0.5, "n": 6},
    {"id": "bad-filter", "k": "a", "ts": 7000, "v": 4.0, "n": 7},
    {"id": "boom", "k": "b", "ts": 8000, "v": 6.0, "n": 8},
    {"id": "a2", "k": "a", "ts": 12000, "v": 2.5, "n": 10},
    {"id": "late", "k": "b", "ts": 1500, "v": 9.0, "n": 11},
    {"id": "b2", "k": "b", "ts": 25000, "v": 7.0, "n": 12},
]
SCHEMA = {"id": "string", "k": "string", "ts": "int", "v": "float", "n": "int"}
F = "flink_udf_functions"


def read_jsonl(path: Path) -> list[dict]:
    """A file, or every committed part file of a Flink filesystem sink's folder."""
    if not path.exists():
        return []
    files = sorted(p for p in path.iterdir() if not p.name.startswith(".")) \
        if path.is_dir() else [path]
    return [json.loads(line) for f in files for line in f.read_text().splitlines()
            if line.strip()]


def spec_doc(name: str, base: Path, steps: list[dict]) -> dict:
    data = base / "input.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in INPUT))
    tags = ["main", "errors"] + ["late_window"] * any(s["type"] == "window" for s in steps) \
        + ["late"] * any(s["type"] == "late_data_side_output" for s in steps)
    return {"pipeline": name,
            "source": {"type": "file", "path": str(data), "schema": SCHEMA},
            "steps": [{"type": "watermark", "timestamp_column": "ts",
                       "max_out_of_orderness_ms": 1000}, *steps],
            "outputs": {tag: {"type": "file", "path": f"out/{tag}.jsonl"} for tag in tags},
            "checkpoint": {"dir": "ck"}}


def batches_steps() -> list[dict]:
    return [{"type": "map_batches", "name": "scale", "function": f"{F}:scale",
             "output_schema": {**SCHEMA, "v10": "float", "n_plus": "int", "is_a": "bool"}},
            {"type": "late_data_side_output"}]


def records_steps() -> list[dict]:
    return [{"type": "filter", "name": "keep", "function": f"{F}:keep"},
            {"type": "map", "name": "enrich", "function": f"{F}:enrich",
             "output_schema": {"id": "string", "k": "string", "ts": "int", "v": "float",
                               "tag": "string"}},
            {"type": "window", "name": "w", "key_fields": ["k"], "kind": "tumbling",
             "size_ms": 10_000, "aggregations": {"count": "count()", "sum": "sum(v)"}}]


def wrong_type_steps() -> list[dict]:
    return [{"type": "map", "name": "wrong", "function": f"{F}:wrong_type",
             "output_schema": {"id": "string", "n": "int"}}]


CASES = {"batches": batches_steps, "records": records_steps, "wrong_type": wrong_type_steps}


def typed(rows: list[dict], key: tuple[str, ...]) -> list[list[tuple[str, str]]]:
    """Rows with each value's type, in a normalised order (3 and 3.0 differ here)."""
    return sorted(([(c, repr(v)) for c, v in sorted(r.items())] for r in rows),
                  key=lambda r: [dict(r)[k] for k in key])


def late_view(rows: list[dict]) -> list[tuple]:
    return sorted((r["id"], r["watermark_ms"], r["lateness_ms"], r["original_timestamp"])
                  for r in rows)


def errors_view(rows: list[dict]) -> list[tuple]:
    return sorted((json.loads(r["raw"])["id"], r["operator"], r["error_type"],
                   r["error_message"]) for r in rows)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """Each case on Flink (the three jobs in one driver) and on the local runner: the
    (flink, local) output folders by case."""
    flink_python()  # raises FlinkNotInstalled naming the install script
    root = tmp_path_factory.mktemp("flink-udf")
    jobs, outs = [], {}
    for name, steps in CASES.items():
        flink_base, local_base = root / name / "flink", root / name / "local"
        flink_base.mkdir(parents=True)
        local_base.mkdir(parents=True)
        jobs.append(flink_job(build_spec(spec_doc(name, flink_base, steps()),
                                         base_dir=flink_base)))
        LocalRunner(build_spec(spec_doc(name, local_base, steps()), base_dir=local_base)).run()
        outs[name] = (flink_base / "out", local_base / "out")
    run_jobs(jobs, root / "driver")
    return outs


def test_map_batches_pandas_udf_equals_local(runs: Any) -> None:
    flink_out, local_out = runs["batches"]
    flink_main = read_jsonl(flink_out / "main.jsonl")
    assert typed(flink_main, ("id",)) == typed(read_jsonl(local_out / "main.jsonl"), ("id",))
    by_id = {r["id"]: r for r in flink_main}
    # every record but the one the function fails on alone and the late one (after the
    # UDF, by the watermark before it); integers exact; types as declared
    assert sorted(by_id) == sorted(r["id"] for r in INPUT if r["id"] not in ("boom", "late"))
    flink_late = late_view(read_jsonl(flink_out / "late.jsonl"))
    assert flink_late == [("late", 10999, 9499, 1500)]
    assert flink_late == late_view(read_jsonl(local_out / "late.jsonl"))
    assert by_id["twice"]["n_plus"] == BIG + 1
    assert by_id["b1"]["n_plus"] is None and by_id["b1"]["v10"] is None
    assert by_id["a1"]["v10"] == 15.0 and by_id["a1"]["is_a"] is True
    flink_errors = errors_view(read_jsonl(flink_out / "errors.jsonl"))
    assert flink_errors == [("boom", "scale", "user_function_error",
                             "ValueError: boom in this batch")]
    assert flink_errors == errors_view(read_jsonl(local_out / "errors.jsonl"))


def test_record_map_and_filter_then_window_equal_local(runs: Any) -> None:
    flink_out, local_out = runs["records"]
    key = ("k", "window_start")
    flink_main = read_jsonl(flink_out / "main.jsonl")
    assert typed(flink_main, key) == typed(read_jsonl(local_out / "main.jsonl"), key)
    # window [0, 10 s): a kept a1 (v 3.0), twice fanned out (2 x 6.0), bad-filter an error
    first = {(r["k"], r["window_start"]): (r["count"], r["sum"]) for r in flink_main}
    assert first[("a", 0)] == (3, 15.0)
    # b: b1 (v null), boom; drop dropped by the map, small by the filter, late is late
    assert first[("b", 0)] == (2, 12.0)
    flink_late = late_view(read_jsonl(flink_out / "late_window.jsonl"))
    assert flink_late == [("late", 10999, 9499, 1500)]  # W = 12000 - 1000 - 1 (a2)
    assert flink_late == late_view(read_jsonl(local_out / "late_window.jsonl"))
    flink_errors = errors_view(read_jsonl(flink_out / "errors.jsonl"))
    assert flink_errors == [("bad", "enrich", "ZeroDivisionError", "cannot enrich bad"),
                            ("bad-filter", "keep", "ValueError", "cannot judge bad-filter")]
    assert flink_errors == errors_view(read_jsonl(local_out / "errors.jsonl"))


def test_a_result_outside_output_schema_is_that_records_error_on_both(runs: Any) -> None:
    flink_out, local_out = runs["wrong_type"]
    flink_main = read_jsonl(flink_out / "main.jsonl")
    assert typed(flink_main, ("id",)) == typed(read_jsonl(local_out / "main.jsonl"), ("id",))
    assert "small" not in {r["id"] for r in flink_main} and len(flink_main) == len(INPUT) - 1
    flink_errors = errors_view(read_jsonl(flink_out / "errors.jsonl"))
    assert [e[:3] for e in flink_errors] == [("small", "wrong", "TypeError")]
    assert "'n' is declared int" in flink_errors[0][3]
    assert flink_errors == errors_view(read_jsonl(local_out / "errors.jsonl"))


def test_a_module_needing_what_the_flink_venv_lacks_fails_naming_it(tmp_path: Path) -> None:
    """Checked by the driver before any JVM starts: the job fails at once, saying which
    module, which package and which environment."""
    steps = [{"type": "map", "function": "flink_udf_missing:passthrough",
              "output_schema": SCHEMA}]
    spec = build_spec(spec_doc("missing", tmp_path, steps), base_dir=tmp_path)
    with pytest.raises(FlinkJobFailed) as failed:
        run_jobs([flink_job(spec)], tmp_path / "driver")
    message = str(failed.value)
    assert "steps[1].function" in message and "'flink_udf_missing'" in message
    assert "duckdb" in message and str(Path(flink_python()).parents[1]) in message


@pytest.mark.parametrize(("steps", "path", "reason"), [
    ([{"type": "process", "key_fields": ["k"], "function": f"{F}:count_per_key"}],
     "steps[1]",
     "keyed state and event-time timers"),
    ([{"type": "map", "function": f"{F}:enrich"}], "steps[1].output_schema",
     "declare the columns"),
    ([{"type": "map_batches", "function": f"{F}:scale"}], "steps[1].output_schema",
     "declare the columns"),
    ([{"type": "map", "function": "surestream.semantics.errors:to_raw",
       "output_schema": SCHEMA}], "steps[1].function", "not installed in the Flink"),
])
def test_what_cannot_run_identically_is_refused(tmp_path: Path, steps: list[dict],
                                                path: str, reason: str) -> None:
    with pytest.raises(FlinkUnsupported) as refused:
        translate(build_spec(spec_doc("refused", tmp_path, steps), base_dir=tmp_path))
    assert refused.value.path == path and reason in refused.value.reason


def test_a_lambda_is_refused_naming_the_step(tmp_path: Path) -> None:
    steps = [{"type": "filter", "function": lambda record: True}]
    spec = build_spec(spec_doc("lambda", tmp_path, steps), base_dir=tmp_path)
    with pytest.raises(FlinkUnsupported) as refused:
        translate(spec)
    assert refused.value.path == "steps[1].function" and "lambda" in refused.value.reason


def test_explain_lists_the_udfs(tmp_path: Path) -> None:
    spec: PipelineSpec = build_spec(spec_doc("explain", tmp_path, records_steps()),
                                    base_dir=tmp_path)
    script = translate(spec).script()
    assert f"-- Python UDF udf_1_keep: filter {F}:keep" in script
    assert "LATERAL TABLE(`udf_2_enrich`" in script
