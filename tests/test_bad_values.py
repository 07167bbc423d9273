"""One bad value costs one record, whatever the batch size (issue 7, item 2).

A value a step or an output cannot handle -- ``CAST('abc' AS INT)``, ``sum`` over "n/a", a
nested object bound for CSV, a user column named like a sink's own bookkeeping -- sends
exactly its record to the errors output with a reason; every other record flows on, and
the run exits 0. Outputs do not depend on the batch size.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
import yaml

from surestream.connectors.duckdb_sink import DuckDBTableSink
from surestream.connectors.file_sinks import LineFileSink
from surestream.model.batch import Batch
from surestream.model.spec import PipelineSpec
from surestream.model.steps import (
    MapBatchesStep,
    WatermarkStep,
    WhereStep,
    WindowStep,
    WithColumnsStep,
)
from surestream.testing import run_spec, run_steps

BATCH_SIZES = (1, 2, 3, 5, 1000)


def ids(rows: list[dict]) -> list:
    return [r["id"] for r in rows]


def raw_ids(errors: list[dict]) -> list:
    return [json.loads(e["raw"])["id"] for e in errors]


def each_batch_size(records: list[dict], steps: list) -> dict[str, list[dict]]:
    """The outputs, checked to be the same at every batch size."""
    outs = [run_steps(records, steps, batch_size=n) for n in BATCH_SIZES]
    for n, out in zip(BATCH_SIZES[1:], outs[1:], strict=True):
        assert out == outs[0], f"batch_size={n} differs from batch_size={BATCH_SIZES[0]}"
    return outs[0]


# -- with_columns / where / map_batches ------------------------------------------------------
CAST_RECORDS = [{"id": i, "x": x} for i, x in enumerate(["1", "2", "abc", "4", "5", "6", "7"])]


def test_a_failing_cast_costs_only_its_record_at_any_batch_size():
    out = each_batch_size(CAST_RECORDS, [WithColumnsStep(name="to_int",
                                                         columns={"xi": "CAST(x AS INT)"})])
    assert [(r["id"], r["xi"]) for r in out["main"]] == [
        (0, 1), (1, 2), (3, 4), (4, 5), (5, 6), (6, 7)]
    [error] = out["errors"]
    assert raw_ids([error]) == [2]
    assert error["operator"] == "to_int" and error["error_type"] == "expression_error"
    assert "'x'" in error["error_message"] and '"abc"' in error["error_message"]


def test_try_cast_is_how_to_ask_for_a_null_instead():
    out = each_batch_size(CAST_RECORDS, [WithColumnsStep(columns={"xi": "TRY_CAST(x AS INT)"})])
    assert [r["xi"] for r in out["main"]] == [1, 2, None, 4, 5, 6, 7]
    assert out["errors"] == []


def test_many_bad_values_each_cost_their_own_record():
    records = [{"id": i, "x": str(i) if i % 3 else f"bad{i}"} for i in range(40)]
    out = each_batch_size(records, [WithColumnsStep(columns={"xi": "CAST(x AS INT)"})])
    assert ids(out["main"]) == [i for i in range(40) if i % 3]
    assert raw_ids(out["errors"]) == [i for i in range(40) if not i % 3]


def test_a_failing_where_condition_costs_only_its_record():
    out = each_batch_size(CAST_RECORDS, [WhereStep(name="big", condition="CAST(x AS INT) > 3")])
    assert ids(out["main"]) == [3, 4, 5, 6]
    assert raw_ids(out["errors"]) == [2] and out["errors"][0]["operator"] == "big"


def refuse_negative(frame: pl.DataFrame) -> pl.DataFrame:
    if (frame["v"] < 0).any():
        raise ValueError("negative v")
    return frame.with_columns((pl.col("v") * 2).alias("v2"))


def test_a_user_batch_function_failing_on_one_value_costs_only_its_record():
    records = [{"id": i, "v": -1 if i == 4 else i} for i in range(9)]
    out = each_batch_size(records, [MapBatchesStep(name="double", function=refuse_negative)])
    assert [(r["id"], r["v2"]) for r in out["main"]] == [
        (i, 2 * i) for i in range(9) if i != 4]
    [error] = out["errors"]
    assert raw_ids([error]) == [4] and error["error_type"] == "user_function_error"
    assert error["error_message"] == "ValueError: negative v"
    assert "refuse_negative" in error["traceback"]


@pytest.mark.parametrize("step", [
    {"type": "with_columns", "columns": {"xi": "CAST(x AS INT)"}},  # a1 fails: to errors
    {"type": "where", "condition": "x <> 'abc'"}])  # a1 is filtered out
def test_records_removed_before_the_watermark_step_keep_partition_ends(tmp_path, step):
    """Removing records before the watermark step must not lose where a file ended: the
    ended file stops holding the watermark back at the same record at every batch size."""
    (tmp_path / "a.jsonl").write_text("".join(
        json.dumps({"id": f"a{i}", "ts": 1000 * i, "x": "abc" if i == 1 else "1"}) + "\n"
        for i in range(3)))
    (tmp_path / "b.jsonl").write_text("".join(
        json.dumps({"id": f"b{i}", "ts": 50_000 if i == 30 else 100_000 + 1000 * i,
                    "x": "1"}) + "\n" for i in range(40)))
    results = {}
    for batch_size in (1, 4, 7, 1000):
        spec = PipelineSpec.model_validate({
            "pipeline": "ends", "steps": [
                step,
                {"type": "watermark", "timestamp_column": "ts"},
                {"type": "late_data_side_output", "output_tag": "late"}],
            "source": {"type": "file", "path": str(tmp_path / "*.jsonl")},
            "outputs": {t: {"type": "memory"} for t in ("main", "late", "errors")},
            "checkpoint": {"dir": str(tmp_path / f"cp{batch_size}")},
            "runtime": {"batch_size": batch_size, "interleave_records": 2}})
        result = run_spec(spec)
        results[batch_size] = (ids(result.rows("main")), ids(result.rows("late")),
                               raw_ids(result.rows("errors")))
    # a ended after a2 (file a is done), so W follows b alone: b30 (50 s) is late
    assert results[1][1] == ["b30"]
    assert results[1][2] == (["a1"] if step["type"] == "with_columns" else [])
    assert all(r == results[1] for r in results.values()), results


# -- window aggregations over values that are not numbers ---------------------------------------
def window(kind: str = "tumbling", **aggregations: str) -> WindowStep:
    extra = {"gap_ms": 5_000} if kind == "session" else {"size_ms": 10_000}
    if kind == "sliding":
        extra["slide_ms"] = 5_000
    return WindowStep(name="w", key_fields=["k"], kind=kind, **extra,
                      aggregations=aggregations)


NA_RECORDS = [{"id": 0, "k": "a", "ts": 1000, "s": "1.5"},
              {"id": 1, "k": "a", "ts": 2000, "s": "n/a"},
              {"id": 2, "k": "a", "ts": 3000, "s": " 2 "},
              {"id": 3, "k": "a", "ts": 4000, "s": None},
              {"id": 4, "k": "a", "ts": 4000, "s": "NaN"},
              {"id": 5, "k": "b", "ts": 5000, "s": "1e1"}]
TIME = WatermarkStep(timestamp_column="ts")


@pytest.mark.parametrize("kind", ["tumbling", "sliding", "session"])
def test_a_value_a_sum_cannot_use_costs_only_its_record(kind):
    out = each_batch_size(NA_RECORDS, [TIME, window(kind, n="count()", total="sum(s)",
                                                    mean="avg(s)", low="min(s)")])
    first = {r["k"]: r for r in out["main"] if r["window_start"] == min(
        x["window_start"] for x in out["main"] if x["k"] == r["k"])}
    # "n/a" and "NaN" are not numbers: those records are in no window; null is no value
    assert (first["a"]["n"], first["a"]["total"], first["a"]["mean"]) == (3, 3.5, 1.75)
    assert first["a"]["low"] == " 2 "  # min keeps the column's type: text compares as text
    assert (first["b"]["n"], first["b"]["total"]) == (1, 10.0)
    assert raw_ids(out["errors"]) == [1, 4]
    assert {e["operator"] for e in out["errors"]} == {"w"}
    assert [e["error_message"] for e in out["errors"]] == [
        "sum(s) needs a number in column 's', got 'n/a' (String)",
        "sum(s) needs a number in column 's', got 'NaN' (String)"]


def test_every_numeric_aggregation_refuses_what_it_cannot_use():
    records = [{"id": 0, "k": "a", "ts": 1, "p": 2.0, "q": "3"},
               {"id": 1, "k": "a", "ts": 2, "p": 4.0, "q": "-"}]
    out = each_batch_size(records, [TIME, window(v="vwap(p, q)", n="count()")])
    assert [(r["n"], r["v"]) for r in out["main"]] == [(1, 2.0)]
    assert out["errors"][0]["error_message"] == \
        "vwap(p, q) needs a number in column 'q', got '-' (String)"


def test_min_and_max_refuse_nested_values():
    records = [{"id": 0, "k": "a", "ts": 1, "o": None},
               {"id": 1, "k": "a", "ts": 2, "o": {"x": 1}}]
    out = each_batch_size(records, [TIME, window(hi="max(o)", n="count()")])
    assert [(r["n"], r["hi"]) for r in out["main"]] == [(1, None)]
    assert raw_ids(out["errors"]) == [1]
    assert "max(o) needs values that can be ordered in column 'o'" in \
        out["errors"][0]["error_message"]


# -- outputs that cannot hold a value -----------------------------------------------------------
def spec_with(tmp_path: Path, records: list[dict], outputs: dict, steps: list | None = None,
              batch_size: int = 65536) -> PipelineSpec:
    return PipelineSpec.model_validate({
        "pipeline": "values", "source": {"type": "memory", "records": records},
        "steps": steps or [], "outputs": outputs,
        "checkpoint": {"dir": str(tmp_path / f"cp{batch_size}")},
        "runtime": {"batch_size": batch_size}})


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_user_column_named_checkpoint_arrives_in_duckdb_intact(tmp_path):
    records = [{"id": i, "_checkpoint": f"c{i}", "ts": i} for i in range(5)]
    for batch_size in (1, 2, 1000):
        db = tmp_path / f"out{batch_size}.duckdb"
        for _ in range(2):  # a second run starts afresh and works as well
            run_spec(spec_with(tmp_path, records, {
                "main": {"type": "duckdb", "path": str(db), "table": "t"},
                "errors": {"type": "memory"}}, batch_size=batch_size))
        con = duckdb.connect(str(db))
        assert con.execute("select id, _checkpoint, ts from t order by id").fetchall() == [
            (i, f"c{i}", i) for i in range(5)]
        con.close()


def test_duckdb_recovers_a_checkpoint_staged_with_a_checkpoint_column(tmp_path):
    sink = DuckDBTableSink(tmp_path / "db.duckdb", "t")
    sink.open(fresh=True)
    sink.write(pl.DataFrame({"id": [1], "_checkpoint": ["mine"]}))
    sink.commit(sink.pre_commit(1))
    sink.write(pl.DataFrame({"id": [2], "_checkpoint": ["also mine"]}))
    c2 = sink.pre_commit(2)
    sink.write(pl.DataFrame({"id": [3], "_checkpoint": ["never committed"]}))
    sink.pre_commit(3)  # staged, but checkpoint 3 was never made durable
    # crash: a new sink recovers to checkpoint 2
    again = DuckDBTableSink(tmp_path / "db.duckdb", "t")
    again.open(fresh=False)
    again.recover(c2, 2)
    again.close()
    con = duckdb.connect(str(tmp_path / "db.duckdb"))
    assert con.execute("select * from t order by id").fetchall() == [
        (1, "mine"), (2, "also mine")]
    assert con.execute("select count(*) from information_schema.tables "
                       "where table_name like '%staging%'").fetchone() == (0,)
    con.close()


def test_duckdb_commits_a_checkpoint_staged_by_an_earlier_version(tmp_path):
    """Earlier versions staged every checkpoint in one table with a ``_checkpoint`` column;
    a checkpoint staged there before an upgrade still lands, once."""
    con = duckdb.connect(str(tmp_path / "db.duckdb"))
    con.execute("create table _surestream_commits (tbl varchar, checkpoint bigint, "
                "records bigint, primary key (tbl, checkpoint))")
    con.execute("create table _surestream_staging_t as select * from (values (7, 2::bigint),"
                " (8, 3::bigint)) v(id, _checkpoint)")
    con.close()
    sink = DuckDBTableSink(tmp_path / "db.duckdb", "t")
    sink.open(fresh=False)
    sink.recover({"checkpoint": 2, "rows": 1}, 2)
    sink.recover({"checkpoint": 2, "rows": 1}, 2)
    sink.close()
    con = duckdb.connect(str(tmp_path / "db.duckdb"))
    assert con.execute("select * from t").fetchall() == [(7,)]
    assert con.execute("select count(*) from _surestream_staging_t").fetchone() == (0,)
    con.close()


NESTED = [{"id": 0, "o": {"a": 1}}, {"id": 1, "o": None}, {"id": 2, "o": {"a": 2}},
          {"id": 3, "o": None}]


def test_a_nested_value_bound_for_csv_costs_only_its_record(tmp_path):
    outputs = {}
    for batch_size in (1, 3, 1000):
        out = tmp_path / f"out{batch_size}"
        run_spec(spec_with(tmp_path, NESTED, {
            "main": {"type": "file", "path": str(out / "main.csv"), "format": "csv"},
            "errors": {"type": "file", "path": str(out / "errors.jsonl")}},
            batch_size=batch_size))
        errors = jsonl(out / "errors.jsonl")
        outputs[batch_size] = ((out / "main.csv").read_text(), errors)
    text, errors = outputs[1]
    assert text == "id,o\n1,\n3,\n"
    assert raw_ids(errors) == [0, 2]
    assert {e["operator"] for e in errors} == {"output:main"}
    assert str(tmp_path / "out1" / "main.csv") in errors[0]["error_message"]
    assert "column 'o'" in errors[0]["error_message"]
    for t, es in outputs.values():
        assert t == text and raw_ids(es) == [0, 2]


def test_nan_bound_for_json_lines_goes_to_errors_instead_of_becoming_null(tmp_path):
    records = [{"id": i, "a": a, "b": b} for i, (a, b) in
               enumerate([(1.0, 2.0), (0.0, 0.0), (1.0, 0.0), (3.0, None)])]
    run_spec(spec_with(tmp_path, records, {
        "main": {"type": "file", "path": str(tmp_path / "main.jsonl")},
        "errors": {"type": "file", "path": str(tmp_path / "errors.jsonl")}},
        steps=[{"type": "with_columns", "columns": {"r": "a / b"}}]))
    assert jsonl(tmp_path / "main.jsonl") == [{"id": 0, "a": 1.0, "b": 2.0, "r": 0.5},
                                              {"id": 3, "a": 3.0, "b": None, "r": None}]
    errors = jsonl(tmp_path / "errors.jsonl")
    assert raw_ids(errors) == [1, 2]
    assert "float nan in column 'r'" in errors[0]["error_message"]
    assert "float inf in column 'r'" in errors[1]["error_message"]


def test_parquet_keeps_nan_and_nested_values(tmp_path):
    from surestream.connectors.file_sinks import read_parquet_dataset

    records = [{"id": 0, "o": {"a": 1}, "x": 0.0}, {"id": 1, "o": None, "x": 1.0}]
    run_spec(spec_with(tmp_path, records, {
        "main": {"type": "file", "path": str(tmp_path / "ds"), "format": "parquet"},
        "errors": {"type": "memory"}}, steps=[{"type": "with_columns",
                                                "columns": {"r": "x / 0"}}]))
    rows = read_parquet_dataset(tmp_path / "ds").to_dicts()
    assert [r["o"] for r in rows] == [{"a": 1}, None]
    assert np.isnan(rows[0]["r"]) and rows[1]["r"] == float("inf")


def test_csv_refuses_a_value_in_a_column_its_header_does_not_have(tmp_path):
    sink = LineFileSink(tmp_path / "out.csv", "csv")
    sink.open(fresh=True)
    sink.write(pl.DataFrame({"id": [1], "x": ["a"]}))
    later = pl.DataFrame({"id": [2, 3], "x": ["b", "c"], "extra": [None, "lost?"]})
    rejection = sink.reject(later)
    assert rejection.rows.tolist() == [1]
    assert "has no column 'extra'" in rejection.reasons[0]
    sink.write(later[:1])
    sink.commit(sink.pre_commit(1))
    sink.close()
    assert (tmp_path / "out.csv").read_text() == "id,x\n1,a\n2,b\n"


def test_when_the_errors_output_cannot_hold_an_error_the_run_stops_naming_it(tmp_path):
    from surestream.connectors.sink_protocol import UnwritableError
    from surestream.runners.local.unwritable import check_errors_writable

    sink = LineFileSink(tmp_path / "errors.csv", "csv")
    (tmp_path / "errors.csv").write_text("something,else\n")  # another file's header
    sink.open(fresh=False)
    errors = Batch.from_rows([{"pipeline": "p", "operator": "o", "error_type": "t",
                               "error_message": "m", "raw": "{}", "traceback": None}])
    with pytest.raises(UnwritableError, match=r"errors output cannot hold .*errors\.csv"):
        check_errors_writable(sink, errors)
    sink.close()


def test_the_command_line_run_goes_on_and_exits_0(tmp_path):
    """The three crashes of the issue, as a user meets them: each ran `exit 1` forever."""
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [
        {"id": 1, "k": "a", "ts": 1000, "x": "1", "s": "2", "o": None, "_checkpoint": 1},
        {"id": 2, "k": "a", "ts": 2000, "x": "abc", "s": "3", "o": None, "_checkpoint": 2},
        {"id": 3, "k": "a", "ts": 3000, "x": "3", "s": "n/a", "o": None, "_checkpoint": 3},
        {"id": 4, "k": "a", "ts": 4000, "x": "4", "s": "4", "o": {"deep": 1},
         "_checkpoint": 4},
        {"id": 5, "k": "a", "ts": 5000, "x": "5", "s": "5", "o": None, "_checkpoint": 5}]))
    spec = {
        "pipeline": "bad-values", "source": {"type": "file", "path": "in.jsonl"},
        "streams": {
            "clean": {"from": "source", "steps": [
                {"type": "with_columns", "name": "to_int", "columns": {"xi": "CAST(x AS INT)"}},
                {"type": "watermark", "timestamp_column": "ts"}]},
            "copy": {"from": "clean", "steps": []},
            "sums": {"from": "clean", "steps": [
                {"type": "window", "name": "sum_s", "key_fields": ["k"], "kind": "tumbling",
                 "size_ms": 60000, "aggregations": {"n": "count()", "total": "sum(s)"}}]}},
        "outputs": {"clean": {"type": "file", "path": "out/clean.csv", "format": "csv"},
                    "copy": {"type": "duckdb", "path": "out/db.duckdb", "table": "copy"},
                    "sums": {"type": "file", "path": "out/sums.jsonl"},
                    "late_window": {"type": "file", "path": "out/late.jsonl"},
                    "errors": {"type": "file", "path": "out/errors.jsonl"}},
        "checkpoint": {"dir": "cp"}, "runtime": {"batch_size": 2}}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    for _ in range(2):
        r = subprocess.run([sys.executable, "-m", "surestream", "run", "spec.yaml"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
    clean = pl.read_csv(tmp_path / "out" / "clean.csv")
    assert clean["id"].to_list() == [1, 3, 5]
    errors = jsonl(tmp_path / "out" / "errors.jsonl")
    assert [(json.loads(e["raw"])["id"], e["operator"]) for e in errors] == [
        (2, "to_int"), (3, "sum_s"), (4, "output:clean")]
    assert [(w["n"], w["total"]) for w in jsonl(tmp_path / "out" / "sums.jsonl")] == [(3, 11.0)]
    con = duckdb.connect(str(tmp_path / "out" / "db.duckdb"))
    assert con.execute('select id, _checkpoint from "copy" order by id').fetchall() == [
        (1, 1), (3, 3), (4, 4), (5, 5)]
    con.close()


def test_a_key_named_like_a_window_working_column_is_refused_not_merged():
    """A key field ``__ss_start`` used to be overwritten by the window's own grouping
    column: keys "a" and "b" were silently counted as one."""
    records = [{"__ss_start": "a", "ts": 1}, {"__ss_start": "b", "ts": 2}]
    with pytest.raises(ValueError, match=r"\['__ss_start'\] start with '__ss_'.*rename"):
        run_steps(records, [TIME, WindowStep(key_fields=["__ss_start"], kind="tumbling",
                                             size_ms=10, aggregations={"n": "count()"})])
