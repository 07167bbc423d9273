"""The Delta table source against real tables (deltalake, a local folder): versions read in
full, ``start: latest`` and live runs reading new versions in order, a version that
removes files refused (or skipped), SIGKILL mid-read and resume, and a table our Delta
sink wrote read back as a source."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import yaml
from deltalake import DeltaTable, write_deltalake

from surestream.connectors.tables.table_source import TableChangeRefused
from surestream.model.spec import PipelineSpec
from surestream.runners.local.runner import LocalRunner, run

SRC = str(Path(__file__).resolve().parents[2] / "src")


def rows(ids: list[int]) -> pa.Table:
    return pa.table({"id": pa.array(ids, pa.int64()), "kind": [f"k{i % 2}" for i in ids],
                     "amount": pa.array([i * 1.5 for i in ids], pa.float64())})


def make_table(folder: Path, versions: list[list[int]], partitioned: bool = False) -> str:
    path = str(folder / "lake" / "events")
    for ids in versions:
        write_deltalake(path, rows(ids), mode="append",
                        partition_by=["kind"] if partitioned else None)
    return path


def spec_dict(name: str = "reader", out: str = "out/rows.jsonl", **source: Any) -> dict:
    return {"pipeline": name,
            "source": {"type": "delta", "path": "lake/events", "poll_interval_ms": 50,
                       **source},
            "outputs": {"main": {"type": "file", "path": out}},
            "checkpoint": {"dir": f"out/checkpoints-{name}"},
            "runtime": {"batch_size": 4}}


def build(folder: Path, spec: dict[str, Any]) -> PipelineSpec:
    return PipelineSpec.model_validate({**spec, "base_dir": str(folder)})


def output(folder: Path, out: str = "out/rows.jsonl") -> list[dict[str, Any]]:
    path = folder / out
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def output_ids(folder: Path, out: str = "out/rows.jsonl") -> list[int]:
    return [r["id"] for r in output(folder, out)]


def wait_for(check, what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class LiveRun:
    """A live run in a thread; ``stop`` asks it to stop, as SIGTERM does."""

    def __init__(self, runner: LocalRunner) -> None:
        self.runner, self.error = runner, None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.runner.run()
        except Exception as e:  # noqa: BLE001 - the test inspects it
            self.error = e

    def __enter__(self) -> LiveRun:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def stop(self) -> None:
        self.runner.request_stop()
        self.thread.join(60)


def test_a_table_written_in_three_versions_is_read_in_full(tmp_path):
    make_table(tmp_path, [[1, 2, 3], [4, 5], [6, 7, 8, 9]], partitioned=True)
    got = {}
    for batch_size in (1, 100):
        spec = spec_dict(name=f"b{batch_size}", out=f"out/b{batch_size}.jsonl", stop_at="end")
        spec["runtime"] = {"batch_size": batch_size}
        run(build(tmp_path, spec))
        got[batch_size] = output(tmp_path, f"out/b{batch_size}.jsonl")
    assert got[1] == got[100]  # the same sequence whatever the batch size
    assert sorted(got[1], key=lambda r: r["id"]) == \
        [{"id": i, "kind": f"k{i % 2}", "amount": i * 1.5} for i in range(1, 10)]


def test_live_start_latest_reads_new_versions_in_commit_order(tmp_path):
    path = make_table(tmp_path, [[1, 2], [3]])
    runner = LocalRunner(build(tmp_path, spec_dict(start="latest")))  # starts here
    write_deltalake(path, rows([10, 11]), mode="append")
    with LiveRun(runner) as live:
        wait_for(lambda: output_ids(tmp_path) == [10, 11], "the version after the start")
        write_deltalake(path, rows([12]), mode="append")  # while it runs
        write_deltalake(path, rows([13, 14]), mode="append")
        wait_for(lambda: len(output_ids(tmp_path)) >= 5, "the versions made while live")
        live.stop()
    assert live.error is None
    assert output_ids(tmp_path) == [10, 11, 12, 13, 14]


def test_a_version_that_removes_rows_is_refused_naming_the_table_and_version(tmp_path):
    path = make_table(tmp_path, [[1, 2, 3]])
    runner = LocalRunner(build(tmp_path, spec_dict()))
    DeltaTable(path).delete("id = 2")
    deleted = DeltaTable(path).version()
    write_deltalake(path, rows([6]), mode="append")
    with LiveRun(runner) as live:
        live.thread.join(60)
    assert isinstance(live.error, TableChangeRefused), live.error
    message = str(live.error)
    assert "Delta table lake/events" in message
    assert f"version {deleted} (DELETE) removes 1 file(s)" in message
    assert "on_non_append: skip" in message
    assert 6 not in output_ids(tmp_path)


def test_on_non_append_skip_passes_over_the_delete_and_reads_on(tmp_path):
    path = make_table(tmp_path, [[1, 2, 3]])
    runner = LocalRunner(build(tmp_path, spec_dict(on_non_append="skip")))
    DeltaTable(path).delete("id = 2")
    write_deltalake(path, rows([6]), mode="append")
    with LiveRun(runner) as live:
        wait_for(lambda: output_ids(tmp_path) == [1, 2, 3, 6], "the append after it")
        live.stop()
    assert live.error is None


def test_killed_mid_read_and_resumed_reads_every_row_exactly_once(tmp_path):
    """A live run reads version 0 and stops; two versions are appended; a bounded run of
    the same pipeline resumes from the checkpoint, is killed in the middle of the new
    versions and resumed: every row once, in commit order."""
    path = make_table(tmp_path, [list(range(0, 7))])
    with LiveRun(LocalRunner(build(tmp_path, spec_dict()))) as live:
        wait_for(lambda: output_ids(tmp_path) == list(range(7)), "version 0")
        live.stop()
    for ids in (list(range(7, 12)), list(range(12, 20))):
        write_deltalake(path, rows(ids), mode="append")
    spec = spec_dict(stop_at="end")
    spec["checkpoint"]["interval_records"] = 5
    spec["runtime"] = {"batch_size": 3}
    spec_path = tmp_path / "bounded.yaml"
    spec_path.write_text(yaml.safe_dump(spec))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SURESTREAM_FAULT")}
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, "-m", "surestream", "run", str(spec_path)]
    killed = subprocess.run(cmd, env={**env, "SURESTREAM_FAULT": "batch.mid:3"},
                            capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert output_ids(tmp_path) != list(range(20))
    resumed = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert output_ids(tmp_path) == list(range(20))


def test_a_table_written_by_our_delta_sink_reads_back_as_a_source(tmp_path):
    records = [{"id": i, "kind": f"k{i % 2}", "amount": i * 1.5} for i in range(50)]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    writer = {"pipeline": "bronze", "source": {"type": "file", "path": "in.jsonl"},
              "outputs": {"main": {"type": "delta", "path": "lake/events"}},
              "checkpoint": {"dir": "out/checkpoints-bronze", "interval_records": 20},
              "runtime": {"batch_size": 10}}
    run(build(tmp_path, writer))
    assert DeltaTable(str(tmp_path / "lake" / "events")).version() >= 2  # 3 commits
    reader = spec_dict(stop_at="end")
    reader["outputs"] = {"main": {"type": "memory"}}
    got = run(build(tmp_path, reader)).rows("main")
    assert sorted(got, key=lambda r: r["id"]) == records
