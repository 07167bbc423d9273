"""A changed input is detected, not mixed in (issue 7, item 7).

A checkpoint records a fingerprint of each file's consumed bytes; a restart against a file
that was truncated, edited or replaced is refused with what changed and what to do, while
lines appended to a file still being read are read as usual. A last line without a newline
ends its partition at the file's real size: a file that grows after that is refused too,
instead of being read from one byte too far.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from surestream.model.loader import build_spec
from surestream.runners.local.checkpointing import IncompatibleStateError
from surestream.runners.local.runner import LocalRunner


def line(i: int) -> str:
    return json.dumps({"id": i, "ts": 1000 + i, "note": f"record {i:05d}"}) + "\n"


def write_lines(path: Path, ids: range) -> Path:
    path.write_text("".join(line(i) for i in ids))
    return path


def spec_doc(tmp: Path, data: Path, batch_size: int = 1000) -> dict:
    return {"pipeline": "changed",
            "source": {"type": "file", "path": str(data), "format": "jsonl"},
            "outputs": {"main": {"type": "file", "path": str(tmp / "out" / "main.jsonl")},
                        "errors": {"type": "file", "path": str(tmp / "out" / "errors.jsonl")}},
            "checkpoint": {"dir": str(tmp / "cp"), "interval_records": batch_size},
            "runtime": {"batch_size": batch_size}}


def stop_after_first_checkpoint(doc: dict) -> None:
    LocalRunner(build_spec(doc), stop_after_checkpoint=True).run()


def resume(doc: dict):
    return LocalRunner(build_spec(doc)).run()


def out_ids(tmp: Path) -> list[int]:
    return [json.loads(x)["id"] for x in (tmp / "out" / "main.jsonl").read_text().splitlines()]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "surestream", *args],
                          capture_output=True, text=True, timeout=300)


# -- through the command line ------------------------------------------------------------------
@pytest.mark.parametrize("change", ["truncate", "edit", "replace"])
def test_surestream_run_refuses_a_file_changed_since_the_checkpoint(tmp_path, change):
    data = write_lines(tmp_path / "in.jsonl", range(3000))
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(spec_doc(tmp_path, data)))
    r = cli("savepoint", str(spec))  # takes one checkpoint (1,000 lines read) and stops
    assert r.returncode == 0, r.stderr
    text = data.read_text()
    if change == "truncate":
        data.write_text(text[: len(text) // 10])
    elif change == "edit":  # the same length: an in-place fix of a line already read
        data.write_text(text.replace("record 00007", "record 0000X"))
    else:  # another file of the same size and line count
        write_lines(data, range(10_000, 13_000))
    r = cli("run", str(spec))
    assert r.returncode == 2, r.stderr
    assert str(data) in r.stderr and "changed since the checkpoint" in r.stderr
    assert "delete the checkpoint folder" in r.stderr


def test_surestream_run_reads_lines_appended_since_the_checkpoint(tmp_path):
    data = write_lines(tmp_path / "in.jsonl", range(3000))
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(spec_doc(tmp_path, data)))
    assert cli("savepoint", str(spec)).returncode == 0
    with open(data, "a") as f:
        f.write("".join(line(i) for i in range(3000, 3500)))
    r = cli("run", str(spec))
    assert r.returncode == 0, r.stderr
    assert out_ids(tmp_path) == list(range(3500))  # every record once, the new ones too


# -- in process: what changed, and where ---------------------------------------------------------
def test_an_edit_near_the_position_of_a_large_file_is_refused(tmp_path):
    data = write_lines(tmp_path / "in.jsonl", range(20_000))
    doc = spec_doc(tmp_path, data, batch_size=5000)  # 5,000 lines read: beyond one block
    stop_after_first_checkpoint(doc)
    text = data.read_text()
    data.write_text(text.replace("record 04990", "record 0499X"))
    with pytest.raises(IncompatibleStateError, match="last 65,536 of the .* bytes read differ"):
        resume(doc)


def test_an_edit_after_the_position_is_new_input(tmp_path):
    data = write_lines(tmp_path / "in.jsonl", range(3000))
    doc = spec_doc(tmp_path, data)
    stop_after_first_checkpoint(doc)
    data.write_text(data.read_text().replace("record 02500", "record 0250X"))
    resume(doc)
    assert out_ids(tmp_path) == list(range(3000))


def test_a_file_that_grows_after_its_end_was_read_is_refused(tmp_path):
    data = write_lines(tmp_path / "in.jsonl", range(50))
    other = write_lines(tmp_path / "in2.jsonl", range(100, 3000))
    doc = spec_doc(tmp_path, tmp_path / "in*.jsonl", batch_size=1000)
    doc["runtime"]["interleave_records"] = 10
    stop_after_first_checkpoint(doc)  # in.jsonl ended; in2.jsonl is half read
    with open(data, "a") as f:
        f.write(line(50))
    with pytest.raises(IncompatibleStateError, match="grew by"):
        resume(doc)
    del other


def test_a_last_line_without_newline_ends_its_partition_at_the_real_size(tmp_path):
    data = tmp_path / "in.jsonl"
    data.write_text(line(0) + line(1) + line(2).rstrip("\n"))  # no newline at the end
    doc = spec_doc(tmp_path, data, batch_size=3)  # one step reads the three lines
    stop_after_first_checkpoint(doc)
    with open(data, "a") as f:  # a writer goes on where the file stopped
        f.write(line(3))
    # the last line read ("record 2") now goes on with record 3's bytes: refuse, do not
    # read from one byte past the old end (which cut the first byte of the new line)
    with pytest.raises(IncompatibleStateError, match="grew by"):
        resume(doc)


def test_a_last_line_without_newline_is_read_once(tmp_path):
    data = tmp_path / "in.jsonl"
    data.write_text(line(0) + line(1) + line(2).rstrip("\n"))
    for batch_size in (1, 2, 3, 4):
        doc = spec_doc(tmp_path, data, batch_size=batch_size)
        doc["checkpoint"]["dir"] = str(tmp_path / f"cp{batch_size}")
        result = resume(doc)
        assert out_ids(tmp_path) == [0, 1, 2] and result.records_in == 3
