"""Input typing (issue 7, item 1): reading never changes or drops a good value.

A column is typed from its well-formed values; a value that does not fit goes to errors
alone, with a reason; integers never become floats silently; fields seen later are kept
(in first-seen order, whatever the batch size or a restart) unless a declared schema says
``extra_fields: error``; a column null throughout the sample takes the type of its first
non-null values.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from surestream.model.loader import build_spec
from surestream.model.steps import WatermarkStep
from surestream.runners.local.runner import LocalRunner
from surestream.testing import run_steps

BIG = 1 << 62  # 64-bit ids: far beyond a float's 53 bits


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n"
                            for r in records))
    return path


def file_spec(path: Path | str, steps: list | None = None, *, batch_size: int = 1000,
              fmt: str = "jsonl", **source) -> dict:
    return {"pipeline": "typing",
            "source": {"type": "file", "path": str(path), "format": fmt, **source},
            "steps": steps or [],
            "outputs": {"main": {"type": "memory"}, "errors": {"type": "memory"}},
            "checkpoint": {"dir": str(Path(path).parent / "cp-typing")},  # not in the cwd
            "runtime": {"batch_size": batch_size, "interleave_records": 3}}


def run(doc: dict):
    result = LocalRunner(build_spec(doc)).run()
    return result.rows("main"), result.rows("errors")


def raw_of(error: dict) -> dict:
    return json.loads(error["raw"])


# -- the type of a column comes from its well-formed values -----------------------------------
def test_integer_timestamps_stay_integers_when_most_sample_values_are_bad_strings(tmp_path):
    records = [{"id": i, "ts": "later"} for i in range(30)]
    records += [{"id": 100 + i, "ts": 1767225600000 + i} for i in range(5)]
    main, errors = run(file_spec(write_jsonl(tmp_path / "in.jsonl", records)))
    assert [(r["id"], r["ts"]) for r in main] == [(100 + i, 1767225600000 + i)
                                                  for i in range(5)]
    assert sorted(raw_of(e)["id"] for e in errors) == list(range(30))
    assert all("'ts'" in e["error_message"] for e in errors)


def test_generator_records_follow_the_same_rules():
    records = [{"k": "a", "ts": "later"}] * 4 + [{"k": "b", "ts": 1000}, {"k": "c", "ts": 2000}]
    out = run_steps(records, [WatermarkStep(timestamp_column="ts", max_out_of_orderness_ms=0)])
    assert [(r["k"], r["ts"]) for r in out["main"]] == [("b", 1000), ("c", 2000)]
    assert len(out["errors"]) == 4


def test_one_float_does_not_turn_64_bit_ids_into_floats(tmp_path):
    ids = [BIG + i for i in range(10)]
    records = [{"trade_id": 1.5, "ts": 0}] + [{"trade_id": t, "ts": 1000 + i}
                                              for i, t in enumerate(ids)]
    steps = [{"type": "watermark", "name": "wm", "timestamp_column": "ts",
              "max_out_of_orderness_ms": 0},
             {"type": "keyed_dedup", "name": "dedup", "key_fields": ["trade_id"],
              "time_window_ms": 60_000, "state_ttl_ms": 60_000}]
    main, errors = run(file_spec(write_jsonl(tmp_path / "in.jsonl", records), steps))
    assert [r["trade_id"] for r in main] == ids  # ten distinct ids, none a "duplicate"
    assert [raw_of(e)["trade_id"] for e in errors] == [1.5]
    assert "'trade_id'" in errors[0]["error_message"]


def test_an_integer_beyond_64_bits_is_an_error_not_a_float_column(tmp_path):
    ids = [BIG + i for i in range(10)]
    records = [{"id": 1 << 70}] + [{"id": t} for t in ids]
    main, errors = run(file_spec(write_jsonl(tmp_path / "in.jsonl", records)))
    assert [r["id"] for r in main] == ids
    assert len(errors) == 1 and str(1 << 70) in errors[0]["raw"]


def test_unsigned_64_bit_ids_are_kept_exactly(tmp_path):
    ids = [(1 << 64) - 1 - i for i in range(5)]
    main, errors = run(file_spec(write_jsonl(tmp_path / "in.jsonl", [{"id": t} for t in ids])))
    assert [r["id"] for r in main] == ids and errors == []


@pytest.mark.parametrize("bad, reason_has", [
    ({"id": 7, "n": "seven"}, "'n'"),              # a string in an int column
    ({"id": 7, "n": 1 << 70}, "'n'"),               # an integer beyond int64
    ({"id": 7, "n": 2.5}, "'n'"),                   # a float in an int column
    ({"id": 7, "x": (1 << 53) + 1}, "'x'"),         # an integer with no exact float
    ({"id": 7, "s": 12}, "'s'"),                    # a number in a string column
    ({"id": 7, "s": ["a"]}, "'s'"),                 # an array in a string column
    ({"id": 7, "b": 1}, "'b'"),                     # a number in a boolean column
])
def test_a_value_that_does_not_fit_goes_to_errors_alone(tmp_path, bad, reason_has):
    # the bad value comes after the sample (the first 256 KiB), which typed the columns
    good = [{"id": i, "n": i, "x": i + 0.5, "s": f"s{i}" + "p" * 80, "b": i % 2 == 0}
            for i in range(3005)]
    records = good[:3000] + [bad] + good[3000:]
    for batch_size in (7, 1000):
        main, errors = run(file_spec(write_jsonl(tmp_path / "in.jsonl", records),
                                     batch_size=batch_size))
        assert main == good  # the others, unchanged
        assert [raw_of(e) for e in errors] == [bad]
        assert reason_has in errors[0]["error_message"]


def test_integers_in_a_float_column_are_kept_when_exact(tmp_path):
    prices = [1.5, 2.5, 3.5, 4.5, 100, 1 << 60, -3]  # mostly floats: a float column
    records = [{"price": p} for p in prices]
    main, errors = run(file_spec(write_jsonl(tmp_path / "in.jsonl", records)))
    assert [r["price"] for r in main] == [float(p) for p in prices] and errors == []
    assert all(isinstance(r["price"], float) for r in main)


# -- fields seen later ----------------------------------------------------------------------------
def later_field_records(n: int) -> list[dict]:
    """``extra`` first comes at record n - 5, far after the 256 KiB sample."""
    pad = "x" * 80
    return [{"id": i, "pad": pad, **({"extra": i * 10} if i >= n - 5 else {})}
            for i in range(n)]


def test_a_field_that_first_comes_after_the_sample_is_kept(tmp_path):
    records = later_field_records(4000)
    main, errors = run(file_spec(write_jsonl(tmp_path / "in.jsonl", records)))
    assert errors == []
    assert [r["extra"] for r in main if r["id"] >= 3995] == [i * 10 for i in range(3995, 4000)]


def test_a_field_only_in_a_later_file_of_a_glob_is_kept(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", [{"id": i} for i in range(4)])
    write_jsonl(tmp_path / "b.jsonl", [{"id": 10 + i, "venue": f"v{i}"} for i in range(4)])
    main, errors = run(file_spec(tmp_path / "*.jsonl"))
    assert errors == []
    assert {r["id"]: r.get("venue") for r in main if r["id"] >= 10} == {
        10 + i: f"v{i}" for i in range(4)}


def test_new_columns_come_in_first_seen_order_whatever_the_batch_size(tmp_path):
    records = [{"id": 0}, {"id": 1, "b": 1}, {"id": 2, "c": "x", "a": True}, {"id": 3}]
    path = write_jsonl(tmp_path / "in.jsonl", [*later_field_records(3000), *records])
    outputs = []
    for batch_size in (1, 7, 1000, 65536):
        doc = file_spec(path, batch_size=batch_size)
        doc["outputs"]["main"] = {"type": "file", "path": str(tmp_path / f"o{batch_size}.jsonl")}
        run(doc)
        outputs.append((tmp_path / f"o{batch_size}.jsonl").read_bytes())
    assert all(o == outputs[0] for o in outputs)  # identical bytes: columns and order
    last = json.loads(outputs[0].splitlines()[-2])  # {"id": 2, ...}
    assert list(last) == ["id", "pad", "extra", "b", "c", "a"]
    assert (last["b"], last["c"], last["a"]) == (None, "x", True)


def test_a_field_null_throughout_the_sample_takes_the_type_of_its_first_values(tmp_path):
    pad = "y" * 80
    records = [{"id": i, "pad": pad, "qty": None} for i in range(3000)]
    records += [{"id": 3000 + i, "pad": pad, "qty": i + 1} for i in range(5)]
    main, errors = run(file_spec(write_jsonl(tmp_path / "in.jsonl", records)))
    assert errors == []
    assert [r["qty"] for r in main[-5:]] == [1, 2, 3, 4, 5]


def test_extra_fields_error_sends_records_with_undeclared_fields_to_errors(tmp_path):
    records = [{"id": 1, "v": 1.0}, {"id": 2, "v": 2.0, "note": "hi"}, {"id": 3, "v": 3.0}]
    doc = file_spec(write_jsonl(tmp_path / "in.jsonl", records),
                    schema={"id": "int", "v": "float"}, extra_fields="error")
    main, errors = run(doc)
    assert [r["id"] for r in main] == [1, 3]
    assert [raw_of(e)["id"] for e in errors] == [2]
    assert "'note'" in errors[0]["error_message"]


def test_extra_fields_keep_is_the_default_with_a_declared_schema(tmp_path):
    records = [{"id": 1, "v": 1.0}, {"id": 2, "v": 2.0, "note": "hi"}]
    main, errors = run(file_spec(write_jsonl(tmp_path / "in.jsonl", records),
                                 schema={"id": "int", "v": "float"}))
    assert errors == [] and main[1]["note"] == "hi"


def test_extra_fields_error_needs_a_declared_schema(tmp_path):
    from surestream.model.loader import SpecError

    with pytest.raises(SpecError, match="extra_fields"):
        build_spec(file_spec(tmp_path / "in.jsonl", extra_fields="error"))


def test_a_widened_schema_survives_a_restart(tmp_path):
    records = [*later_field_records(3000), {"id": 3000, "late_field": 5}, {"id": 3001}]
    path = write_jsonl(tmp_path / "in.jsonl", records)

    def spec(name: str) -> dict:
        doc = file_spec(path, batch_size=700)
        doc["outputs"]["main"] = {"type": "file", "path": str(tmp_path / f"{name}.jsonl")}
        doc["checkpoint"] = {"dir": str(tmp_path / f"cp-{name}"), "interval_records": 700}
        return doc

    LocalRunner(build_spec(spec("whole"))).run()
    stops = 0
    while True:  # stop after every checkpoint and resume: a crash at each of them
        result = LocalRunner(build_spec(spec("resumed")), stop_after_checkpoint=True).run()
        stops += 1
        if result.records_in >= len(records) or stops > 20:
            LocalRunner(build_spec(spec("resumed"))).run()
            break
    whole = (tmp_path / "whole.jsonl").read_bytes()
    assert (tmp_path / "resumed.jsonl").read_bytes() == whole
    assert json.loads(whole.splitlines()[3000])["late_field"] == 5


# -- CSV ----------------------------------------------------------------------------------------
def test_csv_ids_with_one_float_stay_integers(tmp_path):
    ids = [BIG + i for i in range(10)]
    path = tmp_path / "in.csv"
    path.write_text("id,v\n1.5,a\n" + "".join(f"{t},b\n" for t in ids))
    main, errors = run(file_spec(path, fmt="csv"))
    assert [r["id"] for r in main] == ids
    assert len(errors) == 1 and "1.5" in errors[0]["raw"]


def test_csv_column_empty_in_the_sample_takes_the_type_of_its_first_values(tmp_path):
    path = tmp_path / "in.csv"
    rows = [f"{i},{'z' * 80}," for i in range(4000)] + [f"{4000 + i},z,{i}" for i in range(3)]
    path.write_text("id,pad,qty\n" + "\n".join(rows) + "\n")
    main, errors = run(file_spec(path, fmt="csv"))
    assert errors == [] and [r["qty"] for r in main[-3:]] == [0, 1, 2]


# -- the fast path reads exactly what the line-by-line check reads ------------------------------
def _json_values(nested: bool = True):
    from hypothesis import strategies as st

    text = st.text(alphabet=st.sampled_from(list('ab:"\\[]{} é\u2028n')), max_size=6)
    scalar = st.one_of(st.none(), st.booleans(), st.integers(-5, 5),
                       st.integers(-(1 << 65), 1 << 65), st.floats(allow_nan=False,
                                                                   allow_infinity=False),
                       text)
    if not nested:  # (a block without nested values is one the byte-level check vouches for)
        return scalar
    return st.one_of(scalar, st.lists(scalar, max_size=2),
                     st.dictionaries(st.sampled_from(["a", "x"]), scalar, max_size=2))


def test_the_fast_path_agrees_with_the_line_by_line_check():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from surestream.connectors.parsing import (
        infer_json_types,
        parse_json_block,
        parse_json_lines,
    )
    from surestream.connectors.source_schema import SourceSchema

    keys = st.sampled_from(["id", "s", "n", "f", "b", "new", "ne", "nex"])
    record = st.one_of(st.dictionaries(keys, _json_values(), max_size=5),
                       st.dictionaries(keys, _json_values(nested=False), max_size=5))
    layout = st.sampled_from([(",", ":"), (", ", ": "), (" ,", " : ")])

    @settings(max_examples=300, deadline=None)
    @given(st.lists(record, min_size=1, max_size=12), st.lists(record, max_size=6), layout,
           st.booleans(), st.integers(0, 300), st.integers(0, 300))
    def check(sample, block_records, separators, ascii_only, before, after):
        lines = [json.dumps(r, separators=separators, ensure_ascii=ascii_only).encode()
                 for r in block_records]
        plain = json.dumps(sample[0]).encode()  # long blocks: halves and leaves
        lines = [plain] * before + lines + [plain] * after
        schema = SourceSchema(infer_json_types(
            json.dumps(r).encode() for r in sample))
        block = b"".join(line + b"\n" for line in lines)
        fast = parse_json_block(block, len(lines), schema)
        slow = parse_json_lines(lines, schema)
        assert fast.used == slow.used and fast.new_fields == slow.new_fields
        assert [(b.index, b.message) for b in fast.bad] == [(b.index, b.message)
                                                            for b in slow.bad]
        assert fast.frame.to_dicts() == slow.frame.to_dicts()
        assert (fast.rows_from or list(range(fast.frame.height))) == \
            (slow.rows_from or list(range(slow.frame.height)))

    check()


def test_csv_files_of_a_glob_with_other_headers(tmp_path):
    (tmp_path / "a.csv").write_text("id,v\n1,a\n2,b\n")
    (tmp_path / "b.csv").write_text("v,id,extra\nx,10,5\nz,twelve,7\ny,11,\n")
    for batch_size in (1, 100):
        main, errors = run(file_spec(tmp_path / "*.csv", fmt="csv", batch_size=batch_size))
        assert sorted((r["id"], r["v"], r["extra"]) for r in main) == [
            (1, "a", None), (2, "b", None), (10, "x", 5), (11, "y", None)]
        assert [e["raw"] for e in errors] == ["z,twelve,7"]
        assert "field 'id'" in errors[0]["error_message"]
        declared = file_spec(tmp_path / "*.csv", fmt="csv", batch_size=batch_size,
                             schema={"id": "int", "v": "string"}, extra_fields="error")
        main, errors = run(declared)
        assert sorted(r["id"] for r in main) == [1, 2, 11]
        assert sorted(e["raw"] for e in errors) == ["x,10,5", "z,twelve,7"]


def test_a_key_twice_in_one_object_keeps_its_first_value_whatever_the_batch(tmp_path):
    lines = ['{"id": 0, "v": 1}'] * 100 + ['{"id": 1, "v": 2, "v": null}',
                                           '{"id": 2, "v": 3, "v": 4}'] + ['{"id": 3, "v": 5}']
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(lines) + "\n")
    for batch_size in (1, 101, 1000):
        main, errors = run(file_spec(path, batch_size=batch_size))
        assert errors == [] and [r["v"] for r in main[-3:]] == [2, 3, 5]
