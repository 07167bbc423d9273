"""The command line contract: exit codes 0 / 1 / 2 and messages naming the field."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "surestream", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def write_spec(path: Path, doc: dict) -> Path:
    path.write_text(yaml.safe_dump(doc))
    return path


def pipeline_spec_example(shared: Path) -> dict:
    text = (shared / "PIPELINE_SPEC.md").read_text()
    return yaml.safe_load(text.split("```yaml", 1)[1].split("```", 1)[0])


def test_validate_ok_and_errors(tmp_path, shared):
    good = write_spec(tmp_path / "good.yaml", pipeline_spec_example(shared))
    r = cli("validate", str(good))
    assert r.returncode == 0, r.stderr
    assert "valid pipeline 'trades-vwap'" in r.stdout
    doc = pipeline_spec_example(shared)
    doc["steps"][2]["state_ttl_ms"] = -1
    doc["steps"][3]["kindd"] = "tumbling"
    bad = write_spec(tmp_path / "bad.yaml", doc)
    r = cli("validate", str(bad))
    assert r.returncode == 2
    assert "steps[2].state_ttl_ms: Input should be greater than 0" in r.stderr
    assert "steps[3].kindd: unknown key" in r.stderr


def test_validate_unreadable_spec_is_a_usage_error(tmp_path):
    r = cli("validate", str(tmp_path / "missing.yaml"))
    assert r.returncode == 2 and "cannot read spec" in r.stderr
    (tmp_path / "x.yaml").write_text("pipeline: [unclosed")
    assert cli("validate", str(tmp_path / "x.yaml")).returncode == 2


def test_run_the_pipeline_spec_example(tmp_path, shared, trades_small):
    spec = write_spec(tmp_path / "spec.yaml", pipeline_spec_example(shared))
    r = cli("run", str(spec), "--set", f"source.path={trades_small['path']}",
            "--set", "runtime.batch_size=4096")
    assert r.returncode == 0, r.stderr
    out = tmp_path / "out"
    windows = [json.loads(x) for x in (out / "windows.jsonl").read_text().splitlines()]
    late = (out / "late.jsonl").read_text().splitlines()
    assert sum(w["trade_count"] for w in windows) == (
        trades_small["n_events"] - trades_small["duplicates"] - len(late))
    assert len(late) == trades_small["late"]
    assert (out / "late_window.jsonl").read_text() == ""
    assert {"symbol", "window_start", "window_end", "revision", "avg_price", "open",
            "close"} <= set(windows[0])
    assert "records" in r.stderr and "late" in r.stderr


def test_run_with_a_missing_input_file_is_a_usage_error(tmp_path, shared):
    spec = write_spec(tmp_path / "spec.yaml", pipeline_spec_example(shared))
    r = cli("run", str(spec))
    assert r.returncode == 2 and "does not exist" in r.stderr


def test_a_failure_at_run_time_exits_1_with_one_line_saying_what_failed(tmp_path):
    """The source breaks after 2,000 records (past the schema sample, so mid-run)."""
    (tmp_path / "feed.py").write_text(
        "def trades():\n"
        "    for i in range(2_000):\n"
        "        yield {'id': i, 'ts': 1000 * i}\n"
        "    raise ConnectionError('feed lost its upstream')\n")
    spec = write_spec(tmp_path / "spec.yaml", {
        "pipeline": "failing-feed",
        "source": {"type": "generator", "function": "feed:trades"},
        "steps": [{"type": "watermark", "timestamp_column": "ts"}],
        "outputs": {"main": {"type": "file", "path": "out/main.jsonl"},
                    "errors": {"type": "file", "path": "out/errors.jsonl"}}})
    r = subprocess.run([sys.executable, "-m", "surestream", "run", str(spec)], cwd=tmp_path,
                       env={**os.environ, "PYTHONPATH": os.pathsep.join(
                           p for p in (str(tmp_path), os.environ.get("PYTHONPATH")) if p)},
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("pipeline 'failing-feed' failed: ")
    assert "ConnectionError: feed lost its upstream" in lines[0]
