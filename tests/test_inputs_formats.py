"""Inputs a user really has (issue 7, item 13): CSV fields with newlines, a UTF-8 BOM,
CR-only line ends -- and spec numbers that are numbers (``batch_size: true`` is refused)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from surestream.connectors import readers
from surestream.model.loader import SpecError, build_spec
from surestream.runners.local.runner import LocalRunner

BOM = "\ufeff"


def spec_doc(path: Path, fmt: str, *, batch_size: int = 1000, **extra) -> dict:
    return {"pipeline": "formats",
            "source": {"type": "file", "path": str(path), "format": fmt},
            "outputs": {"main": {"type": "memory"}, "errors": {"type": "memory"}},
            "checkpoint": {"dir": str(path.parent / "cp-formats")},  # not in the cwd
            "runtime": {"batch_size": batch_size, "interleave_records": 2}, **extra}


def read_all(path: Path, fmt: str, batch_size: int = 1000) -> tuple[list[dict], list[dict]]:
    result = LocalRunner(build_spec(spec_doc(path, fmt, batch_size=batch_size))).run()
    return result.rows("main"), result.rows("errors")


CSV_WITH_NEWLINES = ('id,text,ts\n'
                     '1,"first line\nsecond line",1000\n'
                     '2,plain,2000\n'
                     '3,"a ""quoted"" word\nand\nmore",3000\n'
                     '4,"",4000\n')
EXPECTED_TEXTS = ["first line\nsecond line", "plain", 'a "quoted" word\nand\nmore', ""]


@pytest.mark.parametrize("batch_size", [1, 2, 1000])
def test_csv_quoted_newlines_stay_in_one_record(tmp_path, batch_size):
    path = tmp_path / "in.csv"
    path.write_text(CSV_WITH_NEWLINES)
    main, errors = read_all(path, "csv", batch_size)
    assert errors == []
    assert [r["id"] for r in main] == [1, 2, 3, 4]
    assert [r["text"] for r in main] == EXPECTED_TEXTS


def test_csv_quoted_newlines_across_read_buffers(tmp_path, monkeypatch):
    monkeypatch.setattr(readers, "READ_BYTES", 5)  # every quoted field spans reads
    path = tmp_path / "in.csv"
    path.write_text(CSV_WITH_NEWLINES)
    main, errors = read_all(path, "csv", 1)
    assert errors == [] and [r["text"] for r in main] == EXPECTED_TEXTS


def test_csv_with_quoted_newlines_resumes_at_a_record_start(tmp_path):
    path = tmp_path / "in.csv"
    rows = "".join(f'{i},"note {i}\nline two",{1000 + i}\n' for i in range(50))
    path.write_text("id,text,ts\n" + rows)

    def doc(name: str) -> dict:
        d = spec_doc(path, "csv", batch_size=7)
        d["outputs"]["main"] = {"type": "file", "path": str(tmp_path / f"{name}.jsonl")}
        d["checkpoint"] = {"dir": str(tmp_path / f"cp-{name}"), "interval_records": 7}
        return d

    LocalRunner(build_spec(doc("whole"))).run()
    for _ in range(3):
        LocalRunner(build_spec(doc("resumed")), stop_after_checkpoint=True).run()
    LocalRunner(build_spec(doc("resumed"))).run()
    whole = (tmp_path / "whole.jsonl").read_bytes()
    assert (tmp_path / "resumed.jsonl").read_bytes() == whole
    assert len(whole.splitlines()) == 50


def test_json_lines_with_a_bom_parse_their_first_record(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text(BOM + '{"id": 1, "ts": 1000}\n{"id": 2, "ts": 2000}\n', encoding="utf-8")
    main, errors = read_all(path, "jsonl")
    assert errors == [] and [r["id"] for r in main] == [1, 2]


def test_csv_with_a_bom_has_a_clean_first_column(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text(BOM + "id,ts\n1,1000\n2,2000\n", encoding="utf-8")
    main, errors = read_all(path, "csv")
    assert errors == [] and main == [{"id": 1, "ts": 1000}, {"id": 2, "ts": 2000}]


@pytest.mark.parametrize("fmt, text", [
    ("jsonl", '{"id": 1}\r{"id": 2}\r{"id": 3}\r'),
    ("jsonl", '{"id": 1}\r{"id": 2}\r{"id": 3}'),  # and no end after the last line
    ("csv", "id,name\r1,a\r2,b\r3,c\r"),
    ("jsonl", '{"id": 1}\r\n{"id": 2}\r\n{"id": 3}\r\n'),
    ("csv", "id,name\r\n1,a\r\n2,b\r\n3,c\r\n"),
], ids=["jsonl-cr", "jsonl-cr-open", "csv-cr", "jsonl-crlf", "csv-crlf"])
def test_cr_and_crlf_line_ends(tmp_path, fmt, text):
    path = tmp_path / f"in.{fmt}"
    path.write_bytes(text.encode())
    for batch_size in (1, 2, 1000):
        main, errors = read_all(path, fmt, batch_size)
        assert errors == [] and [r["id"] for r in main] == [1, 2, 3]
        if fmt == "csv":
            assert [r["name"] for r in main] == ["a", "b", "c"]


def test_a_cr_only_file_resumes_at_exact_byte_offsets(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_bytes("".join(json.dumps({"id": i, "v": "é" * (i % 5)}) + "\r"
                             for i in range(40)).encode())

    def doc(name: str) -> dict:
        d = spec_doc(path, "jsonl", batch_size=6)
        d["outputs"]["main"] = {"type": "file", "path": str(tmp_path / f"{name}.jsonl")}
        d["checkpoint"] = {"dir": str(tmp_path / f"cp-{name}"), "interval_records": 6}
        return d

    LocalRunner(build_spec(doc("whole"))).run()
    for _ in range(4):
        LocalRunner(build_spec(doc("resumed")), stop_after_checkpoint=True).run()
    LocalRunner(build_spec(doc("resumed"))).run()
    whole = (tmp_path / "whole.jsonl").read_bytes()
    assert (tmp_path / "resumed.jsonl").read_bytes() == whole
    assert [json.loads(x)["id"] for x in whole.splitlines()] == list(range(40))


@pytest.mark.parametrize("path, value", [
    ("runtime.batch_size", True),
    ("runtime.interleave_records", True),
    ("checkpoint.interval_records", True),
    ("checkpoint.interval_ms", False),
    ("runtime.batch_size", "1000"),
    ("runtime.batch_size", 1000.0),
])
def test_int_settings_take_integers_only(tmp_path, path, value):
    doc = spec_doc(tmp_path / "in.jsonl", "jsonl")
    section, key = path.split(".")
    doc.setdefault(section, {})[key] = value
    with pytest.raises(SpecError) as err:
        build_spec(doc)
    assert any(p == path for p, _ in err.value.problems), err.value.problems


def test_step_durations_take_integers_only(tmp_path):
    doc = spec_doc(tmp_path / "in.jsonl", "jsonl")
    doc["steps"] = [{"type": "watermark", "name": "wm", "timestamp_column": "ts",
                     "max_out_of_orderness_ms": True}]
    with pytest.raises(SpecError) as err:
        build_spec(doc)
    assert [p for p, _ in err.value.problems] == ["steps[0].max_out_of_orderness_ms"]
