"""Properties over inputs with bad values (hypothesis): one bad value costs one record.

Inputs mix good records with values a step or an output cannot handle: strings a SQL
``CAST`` refuses, "n/a" in a summed column, nested objects bound for CSV, NaN/infinity
bound for JSON lines, and a user column named ``_checkpoint`` bound for DuckDB. For any
such input:

- conservation: every record ends in exactly one of the outputs, late, duplicates, errors
  (or is filtered out by a ``where`` that is false for it);
- the outputs are identical at any batch size (1..40 against 1000);
- a bad value costs exactly its record: the run over the input without the bad records
  (or with the bad value made harmless) gives the same outputs, minus those records.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from surestream.model.spec import PipelineSpec
from surestream.model.steps import WatermarkStep, WindowStep
from surestream.testing import run_spec, run_steps

SETTINGS = settings(max_examples=20, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
NOT_INTEGERS = ["abc", "n/a", "", "1.5", " "]
NOT_NUMBERS = ["n/a", "-", "NaN", "inf", "twelve"]

# -- records -----------------------------------------------------------------------------------
good = st.fixed_dictionaries({
    "key": st.sampled_from(["a", "b", "c", "d"]),
    "ts": st.integers(0, 20_000),
    "x": st.integers(-100, 100).map(str),  # CAST(x AS INT) takes it
    "d": st.sampled_from([1.0, 2.0, 4.0]),  # 1 / d is finite
    "o": st.none(),
})
bad_cast = good.flatmap(lambda r: st.sampled_from(NOT_INTEGERS).map(lambda x: {**r, "x": x}))
nested = good.flatmap(lambda r: st.integers(0, 9).map(lambda a: {**r, "o": {"a": a}}))
zero_d = good.map(lambda r: {**r, "d": 0.0})  # 1 / d is infinite: JSON has no infinity
record_st = st.one_of(good, good, good, bad_cast, nested, zero_d)
records_st = st.lists(record_st, min_size=1, max_size=60)
delay_st = st.integers(0, 3_000)


COLUMNS = ("id", "key", "ts", "x", "d", "o")


def with_ids(records: list[dict]) -> list[dict]:
    """Ids, and a user column named like the DuckDB sink's former bookkeeping column; the
    columns in one order (the source's columns are in order of first appearance)."""
    return [{**{c: r[c] for c in COLUMNS if c != "id"}, "id": i, "_checkpoint": i * 10}
            for i, r in enumerate(records)]


def is_bad_cast(r: dict) -> bool:
    return r["x"] in NOT_INTEGERS


# -- a pipeline with every output kind -------------------------------------------------------------
def record_spec(records: list[dict], delay: int, root: Path, batch_size: int) -> PipelineSpec:
    return PipelineSpec.model_validate({
        "pipeline": "bad-values", "source": {"type": "memory", "records": records},
        "streams": {
            "clean": {"from": "source", "steps": [
                {"type": "with_columns", "name": "parse",
                 "columns": {"xi": "CAST(x AS INT)", "r": "1.0 / d"}},
                {"type": "where", "name": "not_tiny", "condition": "xi > -90"},
                {"type": "watermark", "timestamp_column": "ts",
                 "max_out_of_orderness_ms": delay},
                {"type": "late_data_side_output", "output_tag": "late"},
                {"type": "keyed_dedup", "key_fields": ["key"], "time_window_ms": 1_000,
                 "state_ttl_ms": 4_000, "duplicates_output_tag": "dups"}]},
            "copy": {"from": "clean", "steps": []},
            "ratios": {"from": "clean", "steps": []}},
        "outputs": {
            "clean": {"type": "file", "path": str(root / "clean.csv"), "format": "csv"},
            "copy": {"type": "duckdb", "path": str(root / "copy.duckdb"), "table": "copy"},
            "ratios": {"type": "file", "path": str(root / "ratios.jsonl")},
            "late": {"type": "memory"}, "dups": {"type": "memory"},
            "errors": {"type": "memory"}},
        "checkpoint": {"dir": str(root / "cp")},
        "runtime": {"batch_size": batch_size}})


def run_records(records: list[dict], delay: int, root: Path, batch_size: int) -> dict[str, Any]:
    """Every output of one run, as plain values (the same folder for every run: a finished
    run's checkpoint makes the next one start afresh)."""
    result = run_spec(record_spec(records, delay, root, batch_size))
    con = duckdb.connect(str(root / "copy.duckdb"))
    try:
        tables = con.execute("select table_name from information_schema.tables").fetchall()
        copy = con.sql('select * from "copy"').pl().to_dicts() if ("copy",) in tables else []
    finally:
        con.close()
    ratios = root / "ratios.jsonl"
    return {"clean": (root / "clean.csv").read_text(),
            "copy": copy,
            "ratios": [json.loads(line) for line in ratios.read_text().splitlines()],
            "late": result.rows("late"), "dups": result.rows("dups"),
            "errors": result.rows("errors")}


def csv_ids(text: str) -> list[int]:
    lines = text.splitlines()
    if not lines:
        return []
    at = lines[0].split(",").index("id")
    return [int(line.split(",")[at]) for line in lines[1:]]


def error_ids(out: dict[str, Any], operator: str | None = None) -> list[int]:
    return [json.loads(e["raw"])["id"] for e in out["errors"]
            if operator is None or e["operator"] == operator]


@SETTINGS
@given(records_st, delay_st, st.integers(1, 40))
def test_bad_values_cost_their_records_whatever_the_batch_size(records, delay, batch_size):
    recs = with_ids(records)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        whole = run_records(recs, delay, root, 1000)
        cut = run_records(recs, delay, root, batch_size)
        assert cut == whole
        without_bad = run_records([r for r in recs if not is_bad_cast(r)], delay, root, 1000)

    # conservation over the main path: one place each, or filtered by the where step
    filtered = {r["id"] for r in recs if not is_bad_cast(r) and int(r["x"]) <= -90}
    clean_errors = [i for i in error_ids(whole) if i not in
                    set(error_ids(whole, "output:copy")) | set(error_ids(whole, "output:ratios"))]
    places = Counter([*csv_ids(whole["clean"]), *(r["id"] for r in whole["late"]),
                      *(r["id"] for r in whole["dups"]), *clean_errors])
    assert set(places) == {r["id"] for r in recs} - filtered
    assert all(n == 1 for n in places.values()), places

    # each bad value costs its record, with the step or output that refused it
    assert sorted(error_ids(whole, "parse")) == [r["id"] for r in recs if is_bad_cast(r)]
    reached = set(csv_ids(whole["clean"])) | set(error_ids(whole, "output:clean"))
    by_id = {r["id"]: r for r in recs}
    assert sorted(error_ids(whole, "output:clean")) == sorted(
        i for i in reached if by_id[i]["o"] is not None)
    assert sorted(error_ids(whole, "output:ratios")) == sorted(
        i for i in reached if by_id[i]["d"] == 0.0)
    # DuckDB holds every record that reached the stream, its _checkpoint column intact
    assert sorted((r["id"], r["_checkpoint"]) for r in whole["copy"]) == sorted(
        (i, by_id[i]["_checkpoint"]) for i in reached)
    assert error_ids(whole, "output:copy") == []
    assert all(r["r"] == 1.0 / by_id[r["id"]]["d"] for r in whole["ratios"])

    # a record a CAST refuses never reached time, dedup or any output: without it, the same
    assert {k: v for k, v in without_bad.items() if k != "errors"} == \
        {k: v for k, v in whole.items() if k != "errors"}
    # (compared with each error's raw record as a dict: a field that is null up to a bad
    # record becomes a column later in the whole input, so its place in `raw` may differ)
    assert [as_data(e) for e in without_bad["errors"]] == [
        as_data(e) for e in whole["errors"] if e["operator"] != "parse"]


def as_data(error: dict) -> dict:
    return {**error, "raw": json.loads(error["raw"])}


@SETTINGS
@given(st.lists(st.one_of(good, nested), min_size=1, max_size=40), delay_st)
def test_a_nested_value_costs_its_record_and_nothing_else(records, delay):
    """Against the same input with the nested values made null: the CSV output is the same
    but for exactly the records whose value was nested."""
    recs = with_ids(records)
    flat = [{**r, "o": None} for r in recs]
    nested_ids = {r["id"] for r in recs if r["o"] is not None}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        out = run_records(recs, delay, root, 7)
        ref = run_records(flat, delay, root, 7)
    assert csv_ids(out["clean"]) == [i for i in csv_ids(ref["clean"]) if i not in nested_ids]
    assert sorted(error_ids(out, "output:clean")) == sorted(
        i for i in csv_ids(ref["clean"]) if i in nested_ids)
    kept = [line for line in ref["clean"].splitlines()[1:]]
    assert out["clean"].splitlines()[1:] == [
        line for line, i in zip(kept, csv_ids(ref["clean"]), strict=True) if i not in nested_ids]
    for tag in ("late", "dups", "ratios"):  # (where the nested value is held as it is)
        assert [{**r, "o": None} for r in out[tag]] == ref[tag]


# -- windows over a column with values that are not numbers ----------------------------------------
numeric_text = st.one_of(st.integers(-50, 50).map(str),
                         st.sampled_from(["1.5", " 2 ", "1e1", "-0.25"]))
window_good = st.fixed_dictionaries({
    "key": st.sampled_from(["a", "b", "c"]), "ts": st.integers(0, 20_000),
    "s": st.one_of(numeric_text, st.none())})
window_bad = window_good.flatmap(
    lambda r: st.sampled_from(NOT_NUMBERS).map(lambda s: {**r, "s": s, "bad": True}))
window_records_st = st.lists(st.one_of(window_good, window_good, window_bad),
                             min_size=1, max_size=80)


def same_time_as_before(records: list[dict]) -> tuple[list[dict], list[int]]:
    """Ids; each bad record takes the time of the record before it, so it moves no
    watermark (and the first record is good): removing it is then exactly "the input
    without it". Returns the records and the ids of the bad ones."""
    out: list[dict] = []
    bad: list[int] = []
    for i, r in enumerate(records):
        r = {"id": i, "key": r["key"], "ts": r["ts"], "s": r["s"], "bad": r.get("bad")}
        if r.pop("bad"):
            if not out:
                continue
            r["ts"] = out[-1]["ts"]
            bad.append(i)
        out.append(r)
    return out, bad


def window_steps(kind: str, delay: int) -> list:
    size = {"size_ms": 2_000} if kind != "session" else {"gap_ms": 700}
    if kind == "sliding":
        size["slide_ms"] = 1_000
    return [WatermarkStep(timestamp_column="ts", max_out_of_orderness_ms=delay),
            WindowStep(name="w", key_fields=["key"], kind=kind, allowed_lateness_ms=500,
                       aggregations={"n": "count()", "total": "sum(s)", "mean": "avg(s)",
                                     "low": "min(s)"}, **size)]


def final_counts(rows: list[dict]) -> int:
    """Records counted by the windows: each window's last firing holds all of them (a
    session absorbed by a merge is counted in the merged one)."""
    last: dict[tuple, dict] = {}
    for r in rows:
        last[(r["key"], r["window_start"], r["window_end"])] = r
    absorbed = {(r["key"], start, end) for r in rows for start, end, _ in r.get("supersedes") or []}
    return sum(r["n"] for w, r in last.items() if w not in absorbed)


@SETTINGS
@given(window_records_st, delay_st, st.integers(1, 40),
       st.sampled_from(["tumbling", "sliding", "session"]))
def test_a_value_a_window_cannot_sum_costs_only_its_record(records, delay, batch_size, kind):
    recs, bad = same_time_as_before(records)
    steps = window_steps(kind, delay)
    whole = run_steps(recs, steps, batch_size=1000)
    assert run_steps(recs, steps, batch_size=batch_size) == whole

    assert [json.loads(e["raw"])["id"] for e in whole["errors"]] == bad
    assert all(e["operator"] == "w" and "sum(s) needs a number in column 's'" in
               e["error_message"] for e in whole["errors"])
    if kind != "sliding":  # (a sliding record is counted in several windows)
        assert final_counts(whole["main"]) + len(whole["late_window"]) + len(bad) == len(recs)

    without = run_steps([r for r in recs if r["id"] not in bad], steps, batch_size=batch_size)
    assert without["main"] == whole["main"]
    assert without["late_window"] == whole["late_window"]
