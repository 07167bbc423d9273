"""The local runner with real files, a generator, DuckDB: positions, partitions, errors."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import polars as pl
import pytest

from surestream.api import Pipeline, duckdb_table, jsonl, memory
from surestream.model.loader import build_spec
from surestream.runners.local.runner import LocalRunner

WM = {"type": "watermark", "name": "wm", "timestamp_column": "ts", "max_out_of_orderness_ms": 0}
LATE = {"type": "late_data_side_output", "name": "q", "output_tag": "late"}


def spec_for(path: Path, fmt: str, steps: list, batch_size: int = 3, **outs) -> dict:
    return {
        "pipeline": "t",
        "source": {"type": "file", "path": str(path), "format": fmt},
        "steps": steps,
        "outputs": {"main": {"type": "memory"}, "errors": {"type": "memory"},
                    **{k: {"type": "memory"} for k in outs}},
        "runtime": {"batch_size": batch_size, "interleave_records": 2},
        "checkpoint": {"dir": str(path.parent / "checkpoints")},  # not in the working tree
    }


def run(doc: dict):
    return LocalRunner(build_spec(doc)).run()


def write_lines(path: Path, records: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n"
                            for r in records))
    return path


def test_malformed_lines_go_to_errors_with_a_reason_and_nothing_is_lost(tmp_path):
    f = write_lines(tmp_path / "in.jsonl", [
        {"id": 1, "ts": 1000, "v": 1.5},
        '{"id": 2, "ts": 2000, "v": ',  # cut off
        {"id": 3, "ts": "not a time", "v": 2.0},
        {"id": 4, "v": 3.0},  # no timestamp
        '[1, 2, 3]',  # not an object
        {"id": 5, "ts": 3000, "v": "abc"},  # wrong type for v
        "",  # a blank line is not a record
        {"id": 6, "ts": 4000, "v": 4.0},
    ])
    doc = spec_for(f, "jsonl", [WM])
    # a declared schema makes types strict (an inferred one would widen `v` to string)
    doc["source"]["schema"] = {"id": "int", "ts": "string", "v": "float"}
    result = run(doc)
    assert [r["id"] for r in result.rows("main")] == [1, 6]
    errors = result.rows("errors")
    assert len(errors) == 5
    by_raw = {e["raw"]: e for e in errors}
    cut = by_raw['{"id": 2, "ts": 2000, "v": ']
    assert cut["error_type"] == "deserialization_error" and "in.jsonl" in cut["error_message"]
    assert any("field 'v'" in e["error_message"] and "'abc'" in e["error_message"]
               for e in errors)  # v: "abc" does not fit the float column, and says so
    missing = [e for e in errors if e["error_type"] == "missing_timestamp"]
    assert sorted(e["error_message"] for e in missing) == [
        "missing timestamp 'ts'",
        "unparseable timestamp 'ts': 'not a time' (expected epoch ms, epoch s, or ISO-8601 "
        "with a zone)"]
    assert result.records_in == 7  # every non-blank line is accounted for


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_csv_and_parquet_sources(tmp_path, fmt):
    frame = pl.DataFrame({"id": [1, 2, 3, 4], "ts": [5000, 1000, 6000, 9000],
                          "v": [1.0, 2.0, 3.0, 4.0]})
    f = tmp_path / f"in.{fmt}"
    frame.write_csv(f) if fmt == "csv" else frame.write_parquet(f)
    result = run(spec_for(f, fmt, [WM, LATE], late=True))
    assert [r["id"] for r in result.rows("main")] == [1, 3, 4]
    assert [r["id"] for r in result.rows("late")] == [2]


def test_glob_is_one_partition_per_file_and_the_watermark_is_their_minimum(tmp_path):
    # a.jsonl is far ahead in event time; b's records are not late because W is the
    # minimum over both partitions (a single merged partition would call them late)
    write_lines(tmp_path / "a.jsonl", [{"id": f"a{i}", "ts": 100_000 + i} for i in range(5)])
    write_lines(tmp_path / "b.jsonl", [{"id": f"b{i}", "ts": 1_000 + i} for i in range(5)])
    doc = spec_for(tmp_path / "*.jsonl", "jsonl", [WM, LATE], late=True)
    result = run(doc)
    assert result.rows("late") == []
    ids = [r["id"] for r in result.rows("main")]
    # fixed interleaving: turns of 2 records, files in sorted order
    assert ids == ["a0", "a1", "b0", "b1", "a2", "a3", "b2", "b3", "a4", "b4"]
    for size in (1, 4, 100):
        doc["runtime"]["batch_size"] = size
        assert [r["id"] for r in run(doc).rows("main")] == ids


def test_generator_source_with_python_api_and_duckdb_sink(tmp_path):
    def trades(n: int):
        for i in range(n):
            yield {"trade_id": f"T{i % 7}", "ts": 1000 * i, "qty": float(i)}

    p = Pipeline("gen", batch_size=4, checkpoint_dir=str(tmp_path / "checkpoints"))
    (p.read_generator(trades, n=20)
      .watermark("ts")
      .dedup(["trade_id"], time_window_ms=5_000, state_ttl_ms=10_000)
      .to(duckdb_table(str(tmp_path / "w.duckdb"), "trades")))
    p.output("errors", memory())
    result = p.run()
    assert result.counters["duplicates"] == 0  # the same id comes back 7 s later: new window
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    assert con.execute("select count(*), sum(qty) from trades").fetchone() == (20, 190.0)


def test_generator_records_that_are_not_dicts_are_errors():
    p = Pipeline("gen")
    p.read_records([{"ts": 1}, "oops", {"ts": "x"}, {"ts": 2}]).watermark("ts").to(memory())
    p.output("errors", memory())
    result = p.run()
    assert [r["ts"] for r in result.rows("main")] == [1, 2]
    errs = result.rows("errors")
    # "oops" is not a record; "x" does not fit the column's type (int, from the sample)
    assert [e["raw"] for e in errs] == ['oops', '{"ts":"x"}']
    assert [e["error_type"] for e in errs] == ["deserialization_error"] * 2
    assert "must be a dict" in errs[0]["error_message"]


def test_file_outputs_are_identical_across_batch_sizes(tmp_path, trades_small):
    outputs = []
    for size in (997, 20000):
        out = tmp_path / f"b{size}"
        p = Pipeline("t", batch_size=size, checkpoint_dir=str(out / "checkpoints"))
        s = (p.read_files(trades_small["path"])
              .watermark("timestamp_ms", max_out_of_orderness_ms=5000)
              .late_data("late")
              .dedup(["trade_id"], time_window_ms=600_000, state_ttl_ms=3_600_000))
        s.to(jsonl(str(out / "main.jsonl")))
        p.output("late", jsonl(str(out / "late.jsonl")))
        p.output("errors", jsonl(str(out / "errors.jsonl")))
        result = p.run()
        assert result.counters["duplicates"] == trades_small["duplicates"]
        outputs.append([(out / n).read_bytes() for n in ("main.jsonl", "late.jsonl")])
    assert outputs[0] == outputs[1]
