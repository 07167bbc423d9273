"""`surestream status CHECKPOINT_DIR`: a finished run (nobody holds the folder, the final
checkpoint, every partition's position, the records each output holds), a run that holds
the folder while paused (its pid, alive and paused, and its metrics endpoint), and a folder
that is not a checkpoint folder (exit 2, the path named)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from status_logs_helpers import BAD, GOOD, line_count, surestream, write_pipeline

from surestream.cli.main import main
from surestream.cli.run_ops import ENDPOINTS_FILE
from surestream.connectors.file_sinks import read_parquet_dataset
from surestream.runners.local.checkpoint_store import CheckpointStore


def status(*args: str) -> tuple[int, str, str]:
    """`surestream status ARGS` (in this process: it only reads): (exit code, out, err)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["status", *args])
    return code, out.getvalue(), err.getvalue()


def status_json(folder: Path) -> dict:
    code, out, err = status(str(folder), "--json")
    assert code == 0, err
    return json.loads(out)


def status_text(folder: Path) -> str:
    code, out, err = status(str(folder))
    assert code == 0, err
    return out


def test_status_of_a_finished_run(tmp_path) -> None:
    spec = write_pipeline(tmp_path, main_format="parquet")
    summary = tmp_path / "summary.json"
    r = surestream("run", str(spec), "--summary", str(summary))
    assert r.returncode == 0, r.stderr
    written = json.loads(summary.read_text())["written"]
    main = read_parquet_dataset(tmp_path / "out" / "main").height
    errors = line_count(tmp_path / "out" / "errors.jsonl")
    assert written == {"main": main, "errors": errors} and errors == BAD  # the run's own

    s = status_json(tmp_path / "cp")
    assert s["pipeline"] == "logs-demo" and s["state"] == "finished"
    assert s["holder"]["holds_folder"] is False and s["holder"]["alive"] is False
    assert s["run"]["end"] == "finished" and s["run"]["records_in"] == GOOD + BAD
    latest = CheckpointStore(tmp_path / "cp").latest()
    cp = s["last_checkpoint"]
    assert (cp["id"], cp["finished"], cp["done"], cp["records_in"]) == \
        (latest.id, True, True, GOOD + BAD)
    assert cp["duration_ms"] > 0 and cp["bytes_total"] > 0
    source = tmp_path / "in.jsonl"
    assert s["positions"] == [{"partition": str(source.resolve()),
                               "position": source.stat().st_size, "ended": True}]
    assert {o["output"]: o["committed"] for o in s["outputs"]} == written
    assert {o["output"]: o["as_of"] for o in s["outputs"]} == \
        {"main": f"checkpoint {latest.id}", "errors": f"checkpoint {latest.id}"}
    assert s["endpoints"] is None

    text = status_text(tmp_path / "cp")
    assert "state       finished" in text
    assert f"checkpoint  {latest.id} at " in text and ", final, committed" in text
    assert "nobody: the folder is free" in text


def test_status_of_a_killed_run_and_of_its_resumption(tmp_path) -> None:
    spec = write_pipeline(tmp_path)
    killed = surestream("run", str(spec), env={"SURESTREAM_FAULT": "batch.mid:17"})
    assert killed.returncode == -9
    latest = CheckpointStore(tmp_path / "cp").latest()
    s = status_json(tmp_path / "cp")
    assert s["state"] == "killed" and s["run"]["end"] is None
    assert s["holder"]["holds_folder"] is False and s["holder"]["alive"] is False
    assert (s["last_checkpoint"]["id"], s["last_checkpoint"]["finished"]) == \
        (latest.id, False)
    (name, position, ended), = latest.positions["partitions"]
    assert s["positions"] == [{"partition": name, "position": position, "ended": ended}]
    assert 0 < position < (tmp_path / "in.jsonl").stat().st_size and not ended
    main = {o["output"]: o for o in s["outputs"]}["main"]
    assert (main["committed"], main["as_of"]) == \
        (line_count(tmp_path / "out" / "main.jsonl"), f"checkpoint {latest.id}")
    assert "killed (the last run has no end" in status_text(tmp_path / "cp")

    assert surestream("run", str(spec)).returncode == 0
    s = status_json(tmp_path / "cp")
    assert s["state"] == "finished"
    assert (s["run"]["restored_from"], s["run"]["end"]) == (latest.id, "finished")
    assert {o["output"]: o["committed"] for o in s["outputs"]} == \
        {"main": line_count(tmp_path / "out" / "main.jsonl"), "errors": BAD}


FEED = '''
import time
from pathlib import Path

HERE = Path(__file__).parent


def records():
    """1,000 records, then (writing `blocked`) nothing until `go` exists, then 500 more."""
    for i in range(1_500):
        if i == 1_000:
            (HERE / "blocked").touch()
            while not (HERE / "go").exists():
                time.sleep(0.02)
        yield {"id": i, "ts": 1_000 * i}
'''

#: what the stand-in metrics endpoint serves (Prometheus text format)
METRICS = """# HELP surestream_up 1 while running
# TYPE surestream_up gauge
surestream_up{pipeline="held"} 1
surestream_records_in_total{pipeline="held"} 1000
surestream_watermark_lag_ms{pipeline="held",operator="a"} 250
surestream_watermark_lag_ms{pipeline="held",operator="b"} 1500
surestream_errors_total{pipeline="held",operator="x",error_type="e1"} 2
surestream_errors_total{pipeline="held",operator="y",error_type="e2"} 3
"""


@pytest.fixture
def metrics_url():
    """A Prometheus text endpoint on 127.0.0.1, standing in for the run's own (served by
    ops/metrics, another part of this work) in the endpoints file a run writes."""
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            body = METRICS.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    server.shutdown()


def wait_for(cond, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_status_of_a_run_holding_the_folder(tmp_path, metrics_url) -> None:
    (tmp_path / "feed.py").write_text(FEED)
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump({
        "pipeline": "held", "source": {"type": "generator", "function": "feed:records"},
        "steps": [{"type": "watermark", "timestamp_column": "ts"}],
        "outputs": {"main": {"type": "file", "path": "out/main.jsonl"}},
        "checkpoint": {"dir": "cp", "interval_records": 500},
        "runtime": {"batch_size": 100}}))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(tmp_path), os.environ.get("PYTHONPATH")) if p)}
    proc = subprocess.Popen([sys.executable, "-m", "surestream", "run", "spec.yaml"],
                            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    folder = tmp_path / "cp"
    try:
        # the feed waits after 1,000 records: checkpoints 1 (500) and 2 (1,000) are taken
        wait_for(lambda: (tmp_path / "blocked").exists() and
                 (CheckpointStore(folder).newest_manifest() or {}).get("id") == 2)
        (folder / ENDPOINTS_FILE).write_text(json.dumps(
            {"pid": proc.pid, "metrics": metrics_url, "ui": "http://127.0.0.1:9/"}))
        os.kill(proc.pid, signal.SIGSTOP)
        try:
            s = status_json(folder)
            text = status_text(folder)
        finally:
            os.kill(proc.pid, signal.SIGCONT)
        assert s["state"] == "paused"
        assert s["holder"] == {"pid": proc.pid, "what": "surestream run",
                               "holds_folder": True, "alive": True, "paused": True}
        assert s["last_checkpoint"]["id"] == 2 and s["last_checkpoint"]["finished"] is False
        assert s["positions"] == [{"partition": "generator", "position": 1_000,
                                   "ended": False}]
        committed = line_count(tmp_path / "out" / "main.jsonl")
        assert committed == 1_000
        assert {o["output"]: o["committed"] for o in s["outputs"]} == \
            {"main": committed, "errors": 0}
        e = s["endpoints"]
        assert (e["pid"], e["alive"], e["metrics"], e["ui"]) == \
            (proc.pid, True, metrics_url, "http://127.0.0.1:9/")
        assert e["values"] == {"surestream_up": 1, "surestream_records_in_total": 1000,
                               "surestream_watermark_lag_ms": 1500,
                               "surestream_errors_total": 5}
        assert f"surestream run, pid {proc.pid}: paused" in text
        assert f"metrics     {metrics_url}  (up 1; records in 1,000; errors 5; " \
               "watermark lag ms 1,500)" in text
        (tmp_path / "go").touch()
        assert proc.wait(60) == 0
    finally:
        proc.kill()
    s = status_json(folder)
    assert s["state"] == "finished" and s["holder"]["holds_folder"] is False
    assert {o["output"]: o["committed"] for o in s["outputs"]} == \
        {"main": line_count(tmp_path / "out" / "main.jsonl"), "errors": 0} == \
        {"main": 1_500, "errors": 0}
    assert s["endpoints"]["alive"] is False  # the file outlived its writer: named stale
    assert "a stale record of pid" in status_text(folder)


def test_a_folder_that_is_not_a_checkpoint_folder_exits_2(tmp_path) -> None:
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    code, out, err = status(str(tmp_path))
    assert (code, out) == (2, "")
    assert str(tmp_path) in err and "not a checkpoint folder" in err
    missing = tmp_path / "nowhere"
    code, out, err = status(str(missing), "--json")
    assert (code, out) == (2, "") and f"{missing} does not exist" in err
