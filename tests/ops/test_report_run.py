"""``surestream report RUN_DIR`` on runs whose every record's fate is known in advance.

The input is built here: 120 good trades (two symbols, one a second, so four one-minute
windows), 5 duplicates sent right after their originals, 3 trades too late for the
watermark, 2 lines that are not JSON and 1 trade without a timestamp. So the report must
say: in 131 = main 120 (records into the window) + late 3 + errors 3 + duplicates 5,
balanced; the outputs hold 4 window rows, 3 late records and 3 error records. The report
is read back as HTML (every number looked up by its element id), and must be
self-contained (inline SVG charts, no web address).
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from html_ids import ById

from surestream.cli.main import main

T0 = 28_333_334 * 60_000  # a minute boundary
GOOD, DUPLICATED_AFTER, LATE_AFTER = 120, (10, 20, 30, 70, 90), 80
LATE, MALFORMED, NO_TIMESTAMP = 3, 2, 1
IN = GOOD + len(DUPLICATED_AFTER) + LATE + MALFORMED + NO_TIMESTAMP
WINDOW_ROWS = 4  # two minutes x two symbols


def trade(i: int, ts: int) -> dict:
    return {"trade_id": f"T{i}", "symbol": "AAA" if i % 2 == 0 else "BBB", "price": 10.0 + i,
            "quantity": 1 + i % 7, "timestamp_ms": ts}


def write_input(path: Path) -> None:
    lines = []
    for i in range(GOOD):
        lines.append(json.dumps(trade(i, T0 + i * 1000)))
        if i in DUPLICATED_AFTER:  # the same trade again, on time: a duplicate
            lines.append(json.dumps(trade(i, T0 + i * 1000)))
        if i == LATE_AFTER:  # the watermark is at T0 + 75 s: these are 65 s behind it
            lines += [json.dumps(trade(1000 + k, T0 + 10_000 + k)) for k in range(LATE)]
        if i in (40, 100):
            lines.append("{not json")
        if i == 50:
            lines.append(json.dumps({"trade_id": "NOTS", "symbol": "AAA", "price": 1.0,
                                     "quantity": 1}))
    path.write_text("\n".join(lines) + "\n")


SPEC = {
    "pipeline": "report-test",
    "source": {"type": "file", "path": "trades.jsonl", "format": "jsonl"},
    "steps": [
        {"type": "watermark", "name": "trade_time", "timestamp_column": "timestamp_ms",
         "max_out_of_orderness_ms": 5000},
        {"type": "late_data_side_output", "name": "quarantine_late", "output_tag": "late"},
        {"type": "keyed_dedup", "name": "dedup", "key_fields": ["trade_id"],
         "time_window_ms": 600000},
        {"type": "window", "name": "vwap_1m", "key_fields": ["symbol"], "kind": "tumbling",
         "size_ms": 60000, "aggregations": {"trades": "count()",
                                            "vwap": "vwap(price, quantity)"}},
    ],
    "outputs": {"main": {"type": "file", "path": "out/windows.jsonl"},
                "late": {"type": "file", "path": "out/late.jsonl"},
                "late_window": {"type": "file", "path": "out/late_window.jsonl"},
                "errors": {"type": "file", "path": "out/errors.jsonl"}},
    "checkpoint": {"dir": "checkpoints", "interval_records": 30},
    "runtime": {"batch_size": 15},
}


@pytest.fixture(autouse=True)
def restore_logging():
    """``surestream run`` run in this process sets up the ``surestream`` logger (a handler
    on this test's captured stderr, no propagation): put it back for the tests after."""
    logger = logging.getLogger("surestream")
    handlers, level, propagate = list(logger.handlers), logger.level, logger.propagate
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)
    logger.propagate = propagate


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    write_input(tmp_path / "trades.jsonl")
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(SPEC))
    return tmp_path


def parsed(path: Path) -> ById:
    doc = ById()
    doc.feed(path.read_text(encoding="utf-8"))
    return doc


def number(doc: ById, ident: str) -> int:
    return int(doc.text[ident].strip().replace(",", ""))


def report(run_dir: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> ById:
    assert main(["report", str(run_dir), "-o", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    return parsed(out)


def assert_self_contained(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert not re.search(r"https?://", text)
    assert not re.search(r"<script|<link|<img|<iframe|\ssrc=", text, flags=re.I)


def assert_known_counts(doc: ById) -> None:
    assert number(doc, "records-in") == IN
    assert number(doc, "eq-in") == IN
    assert number(doc, "eq-main") == GOOD
    assert number(doc, "eq-late") == LATE
    assert number(doc, "eq-errors") == MALFORMED + NO_TIMESTAMP
    assert number(doc, "eq-duplicates") == len(DUPLICATED_AFTER)
    assert doc.text["eq-status"].strip() == "balanced"
    for tag, rows in {"main": WINDOW_ROWS, "late": LATE, "late_window": 0,
                      "errors": MALFORMED + NO_TIMESTAMP}.items():
        assert number(doc, f"out-{tag}-read") == rows, tag
        assert number(doc, f"out-{tag}-written") == rows, tag


def test_report_of_a_finished_run(workspace: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["run", str(workspace / "spec.yaml")]) == 0
    doc = report(workspace / "checkpoints", workspace / "report.html", capsys)
    assert doc.text["state"].strip() == "finished"
    assert_known_counts(doc)
    # the error reasons: by operator and type, with the counts of the input
    errors = doc.text["errors-table"]
    assert re.search(r"source:source\s*deserialization_error\s*2", errors)
    assert re.search(r"trade_time\s*missing_timestamp\s*1", errors)
    # charts: inline SVG, nothing fetched
    for chart in ("chart-late-records", "chart-watermark-lag", "chart-duplicates",
                  "chart-checkpoints", "chart-errors"):
        assert chart in doc.svgs, chart
    assert_self_contained(workspace / "report.html")


def test_report_of_a_killed_run_says_so_and_the_resumed_run_balances(
        workspace: Path, capsys: pytest.CaptureFixture[str]):
    env = {**os.environ, "SURESTREAM_FAULT": "batch.mid:5"}  # SIGKILL in the 5th batch
    killed = subprocess.run([sys.executable, "-m", "surestream", "run", "spec.yaml"],
                            cwd=workspace, env=env, capture_output=True, text=True,
                            timeout=120)
    assert killed.returncode != 0
    doc = report(workspace / "checkpoints", workspace / "killed.html", capsys)
    assert doc.text["state"].strip() == "unfinished"
    assert "did not finish" in doc.text["run"]
    assert doc.text["eq-status"].strip() == "not checked"
    assert number(doc, "records-in") < IN  # as of its last checkpoint
    # run again: it resumes, and the two processes' counts add up to the known ones
    assert main(["run", str(workspace / "spec.yaml")]) == 0
    doc = report(workspace / "checkpoints", workspace / "resumed.html", capsys)
    assert doc.text["state"].strip() == "finished"
    assert "resumed from checkpoint" in doc.text["facts"]
    assert_known_counts(doc)
    assert_self_contained(workspace / "resumed.html")


def test_report_of_a_folder_without_a_run_is_a_usage_error(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]):
    assert main(["report", str(tmp_path)]) == 2
    assert "no run history" in capsys.readouterr().err
