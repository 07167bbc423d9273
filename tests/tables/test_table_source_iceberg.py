"""The Iceberg table source against real tables (pyiceberg's SQLite catalog in a temp
folder): snapshots read in full and in commit order, ``start: latest``, live runs that pick
up new snapshots (stopped with SIGTERM, resumed), non-append snapshots refused (or
skipped), an expired snapshot refused by name, only ``main``'s published snapshots read,
and the medallion's chain: a table our sink wrote read back as a source."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml
from pyiceberg.types import StringType

from surestream.cli.main import main
from surestream.connectors.sources import SourceError
from surestream.connectors.tables.iceberg_catalog import open_catalog
from surestream.connectors.tables.table_source import TableChangeRefused
from surestream.model.spec import PipelineSpec
from surestream.runners.local.checkpointing import IncompatibleStateError
from surestream.runners.local.runner import LocalRunner, run

SRC = str(Path(__file__).resolve().parents[2] / "src")
CATALOG = {"uri": "sqlite:///lake/catalog.db", "warehouse": "lake/warehouse"}
SCHEMA = pa.schema([("id", pa.int64()), ("kind", pa.string()), ("amount", pa.float64())])


def rows(ids: list[int]) -> pa.Table:
    return pa.table({"id": ids, "kind": [f"k{i % 3}" for i in ids],
                     "amount": [i * 1.5 for i in ids]}, schema=SCHEMA)


def make_table(folder: Path, snapshots: list[list[int]]) -> Any:
    """``ns.events`` with one append snapshot per list of ids."""
    catalog = open_catalog(CATALOG, lambda p: folder / p)
    catalog.create_namespace_if_not_exists("ns")
    table = catalog.create_table("ns.events", schema=SCHEMA)
    for ids in snapshots:
        table.append(rows(ids))
    return catalog.load_table("ns.events")


def spec_dict(folder: Path, *, name: str = "reader", out: str = "out/rows.jsonl",
              **source: Any) -> dict[str, Any]:
    return {"pipeline": name,
            "source": {"type": "iceberg", "catalog": CATALOG, "table": "ns.events",
                       "poll_interval_ms": 50, **source},
            "outputs": {"main": {"type": "file", "path": out}},
            "checkpoint": {"dir": f"out/checkpoints-{name}"},
            "runtime": {"batch_size": 4}}


def build(folder: Path, spec: dict[str, Any]) -> PipelineSpec:
    return PipelineSpec.model_validate({**spec, "base_dir": str(folder)})


def output_ids(folder: Path, out: str = "out/rows.jsonl") -> list[int]:
    path = folder / out
    if not path.exists():
        return []
    return [json.loads(line)["id"] for line in path.read_text().splitlines() if line]


def wait_for(check, what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class LiveRun:
    """A live run in a thread of this process; ``stop`` asks it to stop (as SIGTERM)."""

    def __init__(self, runner: LocalRunner) -> None:
        self.runner, self.error, self.result = runner, None, None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.result = self.runner.run()
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


def test_a_table_appended_in_three_snapshots_is_read_in_full_in_commit_order(tmp_path):
    make_table(tmp_path, [[1, 2, 3], [4, 5], [6, 7, 8, 9]])
    for batch_size in (1, 3, 100):
        spec = spec_dict(tmp_path, stop_at="end", name=f"b{batch_size}",
                         out=f"out/b{batch_size}.jsonl")
        spec["runtime"] = {"batch_size": batch_size}
        result = run(build(tmp_path, spec))
        assert output_ids(tmp_path, f"out/b{batch_size}.jsonl") == list(range(1, 10))
        assert result.records_in == 9


def test_the_rows_keep_their_columns_and_values(tmp_path):
    make_table(tmp_path, [[1, 2], [3]])
    spec = spec_dict(tmp_path, stop_at="end")
    spec["outputs"] = {"main": {"type": "memory"}}
    got = run(build(tmp_path, spec)).rows("main")
    assert got == [{"id": i, "kind": f"k{i % 3}", "amount": i * 1.5} for i in (1, 2, 3)]


def test_start_latest_reads_only_snapshots_committed_after_the_start(tmp_path):
    table = make_table(tmp_path, [[1, 2], [3, 4]])
    runner = LocalRunner(build(tmp_path, spec_dict(tmp_path, start="latest")))  # starts here
    table.append(rows([10, 11, 12]))
    with LiveRun(runner) as live:
        wait_for(lambda: len(output_ids(tmp_path)) >= 3, "the new snapshot's rows")
        live.stop()
    assert live.error is None
    assert output_ids(tmp_path) == [10, 11, 12]


def test_only_mains_published_snapshots_are_read(tmp_path):
    table = make_table(tmp_path, [[1, 2]])
    table.manage_snapshots().create_branch(table.current_snapshot().snapshot_id,
                                           "staged").commit()
    table.append(rows([99]), branch="staged")  # staged, never published to main
    spec = spec_dict(tmp_path, stop_at="end")
    run(build(tmp_path, spec))
    assert output_ids(tmp_path) == [1, 2]


def run_cli(spec: Path, **popen: Any) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SURESTREAM_FAULT")}
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    env.update(popen.pop("env", {}))
    return subprocess.Popen([sys.executable, "-m", "surestream", "run", str(spec)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_live_run_picks_up_new_snapshots_stops_on_sigterm_and_resumes(tmp_path):
    table = make_table(tmp_path, [[1, 2, 3], [4, 5]])
    spec = tmp_path / "live.yaml"
    spec.write_text(yaml.safe_dump(spec_dict(tmp_path)))
    proc = run_cli(spec)
    try:
        wait_for(lambda: output_ids(tmp_path) == [1, 2, 3, 4, 5], "the table's rows")
        table.append(rows([6, 7]))  # while the run is live
        wait_for(lambda: output_ids(tmp_path) == [1, 2, 3, 4, 5, 6, 7], "the new snapshot")
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    table.append(rows([8]))  # while no run is reading: the next run resumes before it
    proc = run_cli(spec)
    try:
        wait_for(lambda: len(output_ids(tmp_path)) >= 8, "the snapshot made while stopped")
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert output_ids(tmp_path) == [1, 2, 3, 4, 5, 6, 7, 8]  # each row once


@pytest.mark.parametrize(("predicate", "operation"), [
    ("id = 2", "overwrite"),  # a file rewritten without the row (copy-on-write)
    ("id >= 4", "delete"),    # a whole file dropped, nothing added
])
def test_a_snapshot_that_removes_rows_is_refused_naming_the_table_and_snapshot(
        tmp_path, predicate, operation):
    table = make_table(tmp_path, [[1, 2, 3], [4, 5]])
    runner = LocalRunner(build(tmp_path, spec_dict(tmp_path)))  # reads the table as it is
    table.delete(predicate)  # after the start
    table = table.refresh()
    overwrite = table.current_snapshot().snapshot_id
    table.append(rows([6]))
    with LiveRun(runner) as live:
        live.thread.join(60)
    assert isinstance(live.error, TableChangeRefused), live.error
    message = str(live.error)
    assert "Iceberg table ns.events" in message
    assert f"snapshot {overwrite} ({operation}) removes 1 data file(s)" in message
    assert "on_non_append: skip" in message  # what to do next
    assert 6 not in output_ids(tmp_path)  # nothing after the refused snapshot


def test_on_non_append_skip_passes_over_the_overwrite_and_reads_on(tmp_path):
    table = make_table(tmp_path, [[1, 2, 3]])
    runner = LocalRunner(build(tmp_path, spec_dict(tmp_path, on_non_append="skip")))
    table.delete("id = 2")
    table.append(rows([6]))
    with LiveRun(runner) as live:
        wait_for(lambda: output_ids(tmp_path) == [1, 2, 3, 6], "the append after it")
        live.stop()
    assert live.error is None


def read_then_append(folder: Path, table: Any, more: list[list[int]]) -> tuple[Any, list[int]]:
    """A live run reads the table and stops (its checkpoint names the snapshot read
    last); then ``more`` snapshots are appended. The table and the ids of all snapshots."""
    with LiveRun(LocalRunner(build(folder, spec_dict(folder)))) as live:
        wait_for(lambda: output_ids(folder) == [1, 2], "the first rows")
        live.stop()
    for ids in more:
        table.append(rows(ids))
    table = table.refresh()
    return table, [s.snapshot_id for s in table.snapshots()]


def resume_error(folder: Path) -> Exception | None:
    with LiveRun(LocalRunner(build(folder, spec_dict(folder)))) as live:
        live.thread.join(60)
    return live.error


def test_the_checkpoints_snapshot_expired_is_refused_by_name(tmp_path):
    table, snapshots = read_then_append(tmp_path, make_table(tmp_path, [[1, 2]]), [[3], [4]])
    read_last = snapshots[0]
    table.maintenance.expire_snapshots().by_ids(snapshots[:2]).commit()
    error = resume_error(tmp_path)  # refused at the restore, before anything is read
    assert isinstance(error, IncompatibleStateError), error
    assert f"snapshot {read_last} at the source's position (read last) has expired" in str(error)
    assert output_ids(tmp_path) == [1, 2]


def test_snapshots_expired_after_the_checkpoints_are_refused(tmp_path):
    table, snapshots = read_then_append(tmp_path, make_table(tmp_path, [[1, 2]]), [[3], [4]])
    read_last, gone, current = snapshots
    table.maintenance.expire_snapshots().by_ids([gone]).commit()  # rows 3: never read
    error = resume_error(tmp_path)
    assert isinstance(error, TableChangeRefused), error
    assert f"after snapshot {read_last} (read last by the checkpoint) and snapshot " \
           f"{current} have expired" in str(error)
    assert output_ids(tmp_path) == [1, 2]


@pytest.mark.parametrize(("fault", "incremental"), [
    ("batch.mid:3", True),            # in the middle of the snapshots after a checkpoint
    ("checkpoint.durable:2", True),   # a checkpoint durable, its output not yet committed
    ("batch.mid:4", False),           # in the middle of the table's whole first read
])
def test_killed_mid_read_and_resumed_reads_every_row_exactly_once(tmp_path, fault,
                                                                  incremental):
    """``incremental``: a live run first reads the first snapshot and stops, two snapshots
    are appended, and the bounded run resumes from that checkpoint (so it reads them
    snapshot by snapshot); otherwise the bounded run reads the three from scratch."""
    snapshots = [list(range(0, 7)), list(range(7, 12)), list(range(12, 20))]
    table = make_table(tmp_path, snapshots[:1] if incremental else snapshots)
    if incremental:
        with LiveRun(LocalRunner(build(tmp_path, spec_dict(tmp_path)))) as live:
            wait_for(lambda: output_ids(tmp_path) == snapshots[0], "the first snapshot")
            live.stop()
        for ids in snapshots[1:]:
            table.append(rows(ids))
    spec = spec_dict(tmp_path, stop_at="end")
    spec["checkpoint"]["interval_records"] = 5
    spec["runtime"] = {"batch_size": 3}
    path = tmp_path / "bounded.yaml"
    path.write_text(yaml.safe_dump(spec))
    killed = run_cli(path, env={"SURESTREAM_FAULT": fault})
    _, err = killed.communicate(timeout=120)
    assert killed.returncode == -signal.SIGKILL, err
    assert output_ids(tmp_path) != list(range(20))  # it did stop in the middle
    resumed = run_cli(path)
    _, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    assert output_ids(tmp_path) == list(range(20))  # each row once, in commit order


def test_a_table_written_by_our_sink_reads_back_as_a_source(tmp_path):
    """The medallion's chain: pipeline one writes an Iceberg table (write-audit-publish, a
    snapshot per checkpoint), pipeline two reads it as a source: the same rows."""
    records = [{"id": i, "kind": f"k{i % 3}", "amount": i * 1.5} for i in range(50)]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    writer = {"pipeline": "bronze", "source": {"type": "file", "path": "in.jsonl"},
              "outputs": {"main": {"type": "iceberg", "catalog": CATALOG,
                                   "table": "ns.events"}},
              "checkpoint": {"dir": "out/checkpoints-bronze", "interval_records": 20},
              "runtime": {"batch_size": 10}}
    run(build(tmp_path, writer))
    table = open_catalog(CATALOG, lambda p: tmp_path / p).load_table("ns.events")
    assert len(table.snapshots()) >= 3  # the sink published several checkpoints
    reader = spec_dict(tmp_path, stop_at="end")
    reader["outputs"] = {"main": {"type": "memory"}}
    got = run(build(tmp_path, reader)).rows("main")
    assert sorted(got, key=lambda r: r["id"]) == records


def test_rows_have_their_snapshots_columns_whatever_the_batch_size(tmp_path):
    """A column added to the table shows in the rows of the snapshots made after, not in
    earlier ones', and a batch never mixes the two: the same records whatever the batch
    size (the resumed run reads 3 and 4 incrementally, in one batch or in two)."""
    table = make_table(tmp_path / "a", [[1, 2]])
    with LiveRun(LocalRunner(build(tmp_path / "a", spec_dict(tmp_path / "a")))) as live:
        wait_for(lambda: output_ids(tmp_path / "a") == [1, 2], "the first rows")
        live.stop()
    table.append(rows([3]))
    with table.update_schema() as update:
        update.add_column("note", StringType())
    table = table.refresh()
    table.append(pa.table({"id": [4], "kind": ["k1"], "amount": [6.0], "note": ["new"]},
                          schema=table.schema().as_arrow()))
    shutil.copytree(tmp_path / "a", tmp_path / "b")  # the same checkpoint, twice
    outputs = []
    for folder, batch_size in ((tmp_path / "a", 1), (tmp_path / "b", 100)):
        spec = spec_dict(folder, stop_at="end")
        spec["runtime"] = {"batch_size": batch_size}
        run(build(folder, spec))
        outputs.append([json.loads(line) for line in
                        (folder / "out/rows.jsonl").read_text().splitlines()])
    assert outputs[0] == outputs[1]
    assert [r.get("note", "absent") for r in outputs[0]] == ["absent"] * 3 + ["new"]


def test_a_live_runs_journal_replays_to_the_same_output(tmp_path):
    """Positions name their snapshot, so ``surestream replay`` reads exactly the chunks the
    live run read, from a fresh reader: the same output, byte for byte."""
    table = make_table(tmp_path, [[1, 2, 3], [4]])
    spec = spec_dict(tmp_path)
    spec["runtime"] = {"batch_size": 2, "max_batch_delay_ms": 20}
    (tmp_path / "live.yaml").write_text(yaml.safe_dump(spec))
    with LiveRun(LocalRunner(build(tmp_path, spec))) as live:
        wait_for(lambda: output_ids(tmp_path) == [1, 2, 3, 4], "the table's rows")
        table.append(rows([5, 6, 7]))
        wait_for(lambda: output_ids(tmp_path) == list(range(1, 8)), "the new snapshot")
        live.stop()
    table.append(rows([8]))  # after the live run: not in its journal
    assert main(["replay", str(tmp_path / "live.yaml"), "--out",
                 str(tmp_path / "replayed")]) == 0
    assert (tmp_path / "replayed" / "main.jsonl").read_bytes() == \
        (tmp_path / "out" / "rows.jsonl").read_bytes()


def test_a_missing_table_is_refused_when_bounded_and_awaited_when_live(tmp_path):
    catalog = open_catalog(CATALOG, lambda p: tmp_path / p)
    with pytest.raises(SourceError, match="Iceberg table ns.events does not exist"):
        LocalRunner(build(tmp_path, spec_dict(tmp_path, stop_at="end")))
    runner = LocalRunner(build(tmp_path, spec_dict(tmp_path, start="latest")))
    with LiveRun(runner) as live:
        catalog.create_namespace_if_not_exists("ns")
        catalog.create_table("ns.events", schema=SCHEMA).append(rows([1, 2]))
        wait_for(lambda: output_ids(tmp_path) == [1, 2], "the rows of the new table")
        live.stop()
    assert live.error is None
