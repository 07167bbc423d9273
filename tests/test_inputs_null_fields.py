"""Fields holding null (issue 7, item 1): a field a record has is a column, null or not.

A field that appears in a record -- with a value or with ``null`` -- is a column from its
first appearance, in first-seen key order, in every output. While it holds only nulls it
is ``Null`` typed; its first non-null values type it (as a CSV column empty in the sample),
and it keeps its place. Whatever the batch size, a bad record, or a stop and resume.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.parquet as pq

from surestream.connectors.file_sinks import read_parquet_dataset
from surestream.connectors.parsing import parse_json_block, parse_json_lines
from surestream.connectors.source_schema import SourceSchema
from surestream.model.loader import build_spec
from surestream.runners.local.runner import LocalRunner
from surestream.testing import run_steps

PAD = "p" * 1000  # ~260 records fill the 256 KiB sample that types the columns


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def every_output_spec(source: Path | list[dict], root: Path, *, batch_size: int = 1000,
                      checkpoint_every: int | None = None) -> dict:
    """The source's records, unchanged, into every kind of output."""
    if isinstance(source, Path):
        src = {"type": "file", "path": str(source), "format": "jsonl"}
    else:
        src = {"type": "memory", "records": source}
    doc = {"pipeline": "nulls", "source": src,
           "streams": {name: {"from": "source", "steps": []}
                       for name in ("jsonl", "csv", "parquet", "duckdb", "memory")},
           "outputs": {"jsonl": {"type": "file", "path": str(root / "out.jsonl")},
                       "csv": {"type": "file", "path": str(root / "out.csv"), "format": "csv"},
                       "parquet": {"type": "file", "path": str(root / "out.parquet"),
                                   "format": "parquet"},
                       "duckdb": {"type": "duckdb", "path": str(root / "out.duckdb"),
                                  "table": "t"},
                       "memory": {"type": "memory"}, "errors": {"type": "memory"}},
           "checkpoint": {"dir": str(root / "cp")},  # not in the cwd
           "runtime": {"batch_size": batch_size}}
    if checkpoint_every:
        doc["checkpoint"] = {"dir": str(root / "cp"), "interval_records": checkpoint_every}
    return doc


def duckdb_table(root: Path) -> tuple[list[tuple[str, str]], list[dict]]:
    """(column names and types, rows) of the DuckDB output."""
    con = duckdb.connect(str(root / "out.duckdb"))
    try:
        types = [(name, dtype) for name, dtype, *_ in con.execute("describe t").fetchall()]
        return types, con.sql("select * from t").pl().to_dicts()
    finally:
        con.close()


def outputs(root: Path) -> dict:
    """Every file output's content: the line files as bytes, the others as data."""
    types, rows = duckdb_table(root)
    parquet = read_parquet_dataset(root / "out.parquet")
    return {"jsonl": (root / "out.jsonl").read_bytes(), "csv": (root / "out.csv").read_bytes(),
            "parquet": (parquet.columns, parquet.to_dicts()),
            "duckdb": (types, rows)}


# -- a field null in every record ---------------------------------------------------------------
def test_a_field_null_in_every_record_is_a_column_of_every_output(tmp_path):
    records = [{"id": i, "discount": None, "v": f"v{i}"} for i in range(5)]
    result = LocalRunner(build_spec(every_output_spec(
        write_jsonl(tmp_path / "in.jsonl", records), tmp_path))).run()
    assert result.rows("errors") == []
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == records
    assert all(list(json.loads(line)) == ["id", "discount", "v"] for line in lines)
    table = list(csv.reader(io.StringIO((tmp_path / "out.csv").read_text())))
    assert table[0] == ["id", "discount", "v"]
    assert table[1:] == [[str(i), "", f"v{i}"] for i in range(5)]
    parts = list((tmp_path / "out.parquet").glob("part-*.parquet"))
    assert [pq.read_schema(p).names for p in parts] == [["id", "discount", "v"]]
    assert read_parquet_dataset(tmp_path / "out.parquet").to_dicts() == records
    types, rows = duckdb_table(tmp_path)
    assert [name for name, _ in types] == ["id", "discount", "v"]
    assert rows == records
    assert result.rows("memory") == records


def test_a_generator_field_holding_none_is_a_column():
    records = [{"id": i, "note": None, "v": i * 2} for i in range(4)]
    out = run_steps(records, [], batch_size=3)
    assert out["errors"] == []
    assert out["main"] == records and list(out["main"][0]) == ["id", "note", "v"]


# -- first-seen key order, whatever comes before ----------------------------------------------
def test_columns_take_first_seen_key_order_with_or_without_a_bad_record_before(tmp_path):
    """``o`` is null in the first record and nested later: it is a column from the first
    record, between ``a`` and ``b``. A bad record in front of the first nested value
    changes nothing but that record."""
    good = [{"a": 1, "o": {"x": 0}, "b": 2}, {"a": 3, "o": None, "b": 4},
            {"a": 5, "o": {"x": 1}, "b": 6}]
    bad = {"a": "not a number", "o": None, "b": 0}  # ``a`` is an int column
    seen: list[dict] = []
    for name, records in (("without", good), ("with", [bad, *good])):
        root = tmp_path / name
        root.mkdir()
        result = LocalRunner(build_spec(every_output_spec(
            write_jsonl(root / "in.jsonl", records), root))).run()
        errors = result.rows("errors")
        csv_errors = [e for e in errors if e["operator"] == "output:csv"]
        input_errors = [e for e in errors if e["operator"] != "output:csv"]
        assert [json.loads(e["raw"]) for e in input_errors] == ([bad] if name == "with" else [])
        # the CSV output cannot hold the nested values: those records are its errors,
        # their raw record in the columns' order; the others are its rows
        assert [list(json.loads(e["raw"])) for e in csv_errors] == [["a", "o", "b"]] * 2
        assert (root / "out.csv").read_text() == "a,o,b\n3,,4\n"
        assert [list(json.loads(line)) for line in
                (root / "out.jsonl").read_text().splitlines()] == [["a", "o", "b"]] * 3
        assert [name for name, _ in duckdb_table(root)[0]] == ["a", "o", "b"]
        seen.append({**outputs(root), "csv_errors": [e["raw"] for e in csv_errors]})
    assert seen[0] == seen[1]


# -- null in the sample, typed later ------------------------------------------------------------
def null_then_typed_records() -> list[dict]:
    """``qty`` is null throughout the sample (the first ~260 records), then an integer;
    ``note`` first comes after the sample, holding null for more than a sample, then text;
    ``late`` first comes even later, with a value. One value does not fit its column."""
    records: list[dict] = []
    for i in range(1400):
        r: dict = {"id": i, "qty": None if i < 500 else i, "pad": PAD}
        if i >= 700:
            r["note"] = None if i < 1100 else f"n{i}"
        if i >= 1300:
            r["late"] = i % 2 == 0
        records.append(r)
    records[1200]["qty"] = "twelve hundred"  # qty is an int column by then
    return records


def test_a_field_null_in_the_sample_keeps_its_place_and_takes_the_type_of_its_first_values(
        tmp_path):
    records = null_then_typed_records()
    seen = []
    for batch_size in (1, 7, 1000):
        root = tmp_path / f"b{batch_size}"
        root.mkdir()
        result = LocalRunner(build_spec(every_output_spec(
            write_jsonl(root / "in.jsonl", records), root, batch_size=batch_size))).run()
        errors = result.rows("errors")
        input_errors = [e for e in errors if e["operator"] != "output:csv"]
        assert [json.loads(e["raw"])["id"] for e in input_errors] == [1200]
        assert "'qty'" in input_errors[0]["error_message"]
        # a CSV file has one header, the columns of its first records: the later columns'
        # values are its errors (docs/concepts.md), the same at every batch size
        assert [json.loads(e["raw"])["id"] for e in errors if e not in input_errors] == [
            i for i in range(1100, 1400) if i != 1200]
        seen.append(outputs(root))
    assert seen[1] == seen[0] and seen[2] == seen[0]  # byte-identical line files

    expected = [r for r in records if r["id"] != 1200]
    lines = [json.loads(line) for line in seen[0]["jsonl"].splitlines()]
    assert list(lines[-1]) == ["id", "qty", "pad", "note", "late"]
    assert [{k: v for k, v in line.items() if v is not None} for line in lines] == [
        {k: v for k, v in r.items() if v is not None} for r in expected]
    assert all(line["qty"] is None for line in lines[:500])
    assert all(line["qty"] == line["id"] for line in lines[500:])
    assert [line["note"] for line in lines[1050:1101]] == [None] * 50 + ["n1100"]
    columns, rows = seen[0]["parquet"]
    assert columns == ["id", "qty", "pad", "note", "late"]
    assert [(r["id"], r["qty"], r["note"]) for r in rows] == [
        (r["id"], r.get("qty"), r.get("note")) for r in expected]
    types, rows = seen[0]["duckdb"]
    assert types == [("id", "BIGINT"), ("qty", "BIGINT"), ("pad", "VARCHAR"),
                     ("note", "VARCHAR"), ("late", "BOOLEAN")]
    assert [(r["id"], r["qty"], r["note"], r["late"]) for r in rows] == [
        (r["id"], r.get("qty"), r.get("note"), r.get("late")) for r in expected]


def test_null_fields_come_out_the_same_after_a_stop_and_resume_at_every_checkpoint(tmp_path):
    records = null_then_typed_records()
    path = write_jsonl(tmp_path / "in.jsonl", records)
    (tmp_path / "whole").mkdir()
    LocalRunner(build_spec(every_output_spec(path, tmp_path / "whole", batch_size=90,
                                             checkpoint_every=90))).run()
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    doc = every_output_spec(path, resumed, batch_size=90, checkpoint_every=90)
    stops = 0
    while True:  # stop after every checkpoint and resume: a crash at each of them
        result = LocalRunner(build_spec(doc), stop_after_checkpoint=True).run()
        stops += 1
        if result.records_in >= len(records) or stops > 40:
            LocalRunner(build_spec(doc)).run()
            break
    assert stops > 10
    assert outputs(resumed) == outputs(tmp_path / "whole")
    types, _ = duckdb_table(resumed)
    assert [name for name, _ in types] == ["id", "qty", "pad", "note", "late"]


def test_a_generator_field_none_in_the_sample_keeps_its_place():
    records = [{"id": i, "qty": None, "v": "x"} for i in range(1500)]
    records += [{"id": 1500 + i, "qty": i, "v": "y"} for i in range(3)]
    for batch_size in (1, 7, 1000):
        out = run_steps(records, [], batch_size=batch_size)
        assert out["errors"] == [] and out["main"] == records
        assert list(out["main"][-1]) == ["id", "qty", "v"]


# -- the columnar fast path sees a new field that holds null -------------------------------------
def test_the_fast_path_stops_at_a_new_field_that_holds_null_as_the_line_check_does():
    """polars drops a field the schema lacks: the byte-level screen must not vouch for a
    block whose only new field holds null. The block stops at that line, with the field,
    on the fast path as line by line."""
    schema = SourceSchema({"id": pl.Int64(), "name": pl.String(), "o": pl.Null()})
    known = b'{"id": 1, "name": "a", "o": null}'
    cases = [(b'{"id": 2, "name": "b", "note": null}', ["note"]),
             (b'{"id": 2, "nam": null}', ["nam"]),  # a known name's prefix
             (b'{"id": 2, "nxme": null}', ["nxme"]),  # a known name's length
             (b'{"id" : 2 ,  "zz"  :  null}', ["zz"]),
             (b'{"id": 2, "": null}', [""]),
             (b'{"id": 2, "na\\"me": null}', ['na"me']),
             (b'{"id": 2, "\\u006eame": null, "o": null}', []),  # "name", escaped
             (b'{"id": 2, "name": null, "o": null}', [])]
    for line, new in cases:
        lines = [known] * 100 + [line] + [known] * 100
        block = b"".join(x + b"\n" for x in lines)
        for parsed in (parse_json_block(block, len(lines), schema),
                       parse_json_lines(lines, schema)):
            assert (parsed.used, parsed.new_fields) == ((100, new) if new else (201, [])), line
            assert parsed.bad == [] and parsed.frame.height == parsed.used


# -- a declared schema ----------------------------------------------------------------------------
def test_extra_fields_error_refuses_an_undeclared_field_that_holds_null(tmp_path):
    records = [{"id": 1, "v": 1.0}, {"id": 2, "v": 2.0, "note": None}, {"id": 3, "v": 3.0}]
    doc = {"pipeline": "nulls",
           "source": {"type": "file", "path": str(write_jsonl(tmp_path / "in.jsonl", records)),
                      "format": "jsonl", "schema": {"id": "int", "v": "float"},
                      "extra_fields": "error"},
           "outputs": {"main": {"type": "memory"}, "errors": {"type": "memory"}},
           "checkpoint": {"dir": str(tmp_path / "cp")}}
    result = LocalRunner(build_spec(doc)).run()
    assert [r["id"] for r in result.rows("main")] == [1, 3]
    errors = result.rows("errors")
    assert [json.loads(e["raw"]) for e in errors] == [records[1]]
    assert "'note'" in errors[0]["error_message"]
    assert list(result.rows("main")[0]) == ["id", "v"]
