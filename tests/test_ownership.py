"""One owner per checkpoint folder, and every output owns its place (issue 7, item 6).

Two runs of one spec, or a paused run and its replacement, used to interleave checkpoints
and commits and lose or duplicate records while both exited 0. Outputs on one path, an
output that is an input, or a dataset folder over other files were silently destroyed.
The runs here are real processes where it matters (a paused run is a SIGSTOPped process),
and every assertion is about records, files and exit codes a user sees."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from surestream.api import Pipeline, jsonl, parquet
from surestream.connectors.file_sinks import OutputOwnershipError
from surestream.io.lock import FolderInUseError, FolderLock, FolderLockLostError
from surestream.runners.local.runner import LocalRunner

RECORDS = 2000

SLOW_GENERATOR = '''
import time

def records(n, pause_every=50, pause_s=0.05):
    """Ordered records, slowly: a run takes a few seconds, long enough to pause it."""
    for i in range(n):
        if i % pause_every == 0:
            time.sleep(pause_s)
        yield {"id": i, "ts": i}
'''


def spec_doc(**extra) -> dict:
    doc = {
        "pipeline": "owned",
        "source": {"type": "generator", "function": "slowgen:records",
                   "params": {"n": RECORDS}},
        "steps": [{"type": "watermark", "name": "wm", "timestamp_column": "ts"}],
        "outputs": {"main": {"type": "file", "path": "out/main.jsonl"},
                    "errors": {"type": "file", "path": "out/errors.jsonl"}},
        "checkpoint": {"dir": "chk", "interval_records": 100},
        "runtime": {"batch_size": 50},
    }
    doc.update(extra)
    return doc


@pytest.fixture
def slow_spec(tmp_path) -> Path:
    (tmp_path / "slowgen.py").write_text(SLOW_GENERATOR)
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(spec_doc()))
    return spec


def env_with(folder: Path) -> dict[str, str]:
    paths = [str(folder), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "surestream", *args], capture_output=True,
                          text=True, timeout=300, env=env)


def wait_for(predicate, what: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + 120
    while not predicate():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the run ended (exit {proc.returncode}) before {what}: "
                        f"{proc.stderr.read()}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


def ids_in(path: Path) -> list[int]:
    return [json.loads(line)["id"] for line in path.read_text().splitlines()]


# -- one run per checkpoint folder -------------------------------------------------------------


def test_a_replacement_of_a_paused_run_is_refused_and_the_paused_run_finishes_exactly_once(
        tmp_path, slow_spec):
    env = env_with(tmp_path)
    first = subprocess.Popen([sys.executable, "-m", "surestream", "run", str(slow_spec)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env)
    try:
        wait_for(lambda: any((tmp_path / "chk").glob("chk-*.json")),
                 "the first checkpoint", first)
        first.send_signal(signal.SIGSTOP)  # paused: it still holds the folder
        output = tmp_path / "out" / "main.jsonl"
        before = output.read_bytes()

        second = cli("run", str(slow_spec), env=env)
        assert second.returncode == 2, second.stderr
        assert f"checkpoint folder {tmp_path / 'chk'} is in use" in second.stderr
        assert f"(pid {first.pid})" in second.stderr
        savepoint = cli("savepoint", str(slow_spec), env=env)
        assert savepoint.returncode == 2 and f"(pid {first.pid})" in savepoint.stderr
        listing = cli("checkpoints", str(slow_spec), env=env)  # only reads: allowed
        assert listing.returncode == 0 and "resumable" in listing.stdout
        assert output.read_bytes() == before  # the refused runs touched nothing

        first.send_signal(signal.SIGCONT)
        _, err = first.communicate(timeout=300)
        assert first.returncode == 0, err
    finally:
        if first.poll() is None:
            first.send_signal(signal.SIGCONT)
            first.kill()
            first.wait()
    assert ids_in(tmp_path / "out" / "main.jsonl") == list(range(RECORDS))
    # and the folder is free again: the next run starts afresh over the finished one
    again = cli("run", str(slow_spec), env=env)
    assert again.returncode == 0, again.stderr
    assert ids_in(tmp_path / "out" / "main.jsonl") == list(range(RECORDS))


def test_a_killed_run_leaves_the_folder_free_for_its_restart(tmp_path, slow_spec):
    """The kernel drops the lock with the process: a SIGKILLed run never blocks the next."""
    env = env_with(tmp_path)
    first = subprocess.Popen([sys.executable, "-m", "surestream", "run", str(slow_spec)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env)
    wait_for(lambda: any((tmp_path / "chk").glob("chk-*.json")), "the first checkpoint",
             first)
    first.kill()
    first.wait()
    resumed = cli("run", str(slow_spec), env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from checkpoint" in resumed.stderr
    assert ids_in(tmp_path / "out" / "main.jsonl") == list(range(RECORDS))


def test_a_run_whose_checkpoint_folder_was_deleted_and_taken_over_stops_before_committing(
        tmp_path):
    """Half-way through run A, the checkpoint folder is deleted and run B starts afresh and
    finishes. A must notice at its next checkpoint (its lock file is gone) and stop,
    leaving B's outputs exactly once -- not append its own records to them."""
    out, chk = tmp_path / "out", tmp_path / "chk"

    def pipeline(records) -> Pipeline:
        p = Pipeline("taken-over", batch_size=50, checkpoint_dir=str(chk))
        p.read_generator(records).watermark("ts").to(jsonl(str(out / "main.jsonl")))
        p.output("errors", jsonl(str(out / "errors.jsonl")))
        return p

    def plain():
        return ({"id": i, "ts": i} for i in range(RECORDS))

    took_over = []

    def interrupted():
        for i in range(RECORDS):
            if i == 1500 and not took_over:  # (the first 1000 are read ahead at open)
                took_over.append(True)
                shutil.rmtree(chk)  # "start afresh by deleting the checkpoint folder" ...
                LocalRunner(pipeline(plain).spec()).run()  # ... while A still runs
            yield {"id": i, "ts": i}

    spec = pipeline(interrupted).spec()
    spec.checkpoint.interval_records = 100
    with pytest.raises(FolderLockLostError, match=r"is no longer this run's"):
        LocalRunner(spec).run()
    assert took_over
    assert ids_in(out / "main.jsonl") == list(range(RECORDS))  # B's, exactly once


def test_the_lock_names_its_holder_and_is_released_with_it(tmp_path):
    folder = tmp_path / "chk"
    with FolderLock.acquire(folder, holder="surestream savepoint") as lock:
        lock.verify()
        with pytest.raises(FolderInUseError,
                           match=rf"in use by surestream savepoint \(pid {os.getpid()}\)"):
            FolderLock.acquire(folder)
    with FolderLock.acquire(folder) as again:  # released: free for the next one
        again.verify()
        (folder / ".lock").unlink()
        with pytest.raises(FolderLockLostError, match="lock file is gone"):
            again.verify()


def test_a_run_refused_by_the_lock_names_the_holder_not_an_output_it_never_wrote(tmp_path):
    """The folder's holder (here a Flink run of the same spec, which writes its file output
    as a folder of part files) may have changed what is at an output's path; the refused
    run must say whose the folder is, not fail on closing that output (it did: "Is a
    directory", exit 1, the lock's reason lost)."""
    doc = file_doc(tmp_path, {"main": {"type": "file", "path": "out/main.jsonl"}})
    parts = tmp_path / "out" / "main.jsonl"  # what the holder made of it
    parts.mkdir(parents=True)
    (parts / "part-0-0.json").write_text('{"id": 1, "ts": 1}\n')
    (tmp_path / "chk").mkdir()
    spec = write(tmp_path, doc)
    with FolderLock.acquire(tmp_path / "chk", holder="surestream run --runner flink"):
        second = subprocess.run([sys.executable, "-m", "surestream", "run", str(spec)],
                                cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert second.returncode == 2, second.stderr
    assert f"is in use by surestream run --runner flink (pid {os.getpid()})" in second.stderr
    assert (tmp_path / "out" / "main.jsonl").is_dir()  # untouched


# -- outputs own their paths -------------------------------------------------------------------


def write(tmp_path: Path, doc: dict, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc))
    return path


def file_doc(tmp_path: Path, outputs: dict, **extra) -> dict:
    data = tmp_path / "trades.jsonl"
    if not data.exists():
        data.write_text("".join(json.dumps({"id": i, "ts": i}) + "\n" for i in range(100)))
    doc = {
        "pipeline": "paths",
        "source": {"type": "file", "path": "trades.jsonl"},
        "steps": [{"type": "watermark", "name": "wm", "timestamp_column": "ts"}],
        "outputs": outputs,
        "checkpoint": {"dir": "chk"},
    }
    doc.update(extra)
    return doc


def test_two_outputs_on_one_path_are_refused_at_validation(tmp_path):
    doc = file_doc(tmp_path, {
        "main": {"type": "file", "path": "out/all.jsonl"},
        "errors": {"type": "file", "path": "out/./all.jsonl"}})
    spec = write(tmp_path, doc)
    r = cli("validate", str(spec))
    assert r.returncode == 2
    assert "outputs.errors.path" in r.stderr and "outputs.main.path" in r.stderr
    assert "two outputs on one path" in r.stderr
    r = cli("run", str(spec))
    assert r.returncode == 2
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_an_output_that_is_the_input_is_refused_and_the_input_kept(tmp_path):
    doc = file_doc(tmp_path, {"main": {"type": "file", "path": "trades.jsonl"},
                              "errors": {"type": "file", "path": "errors.jsonl"}})
    data = tmp_path / "trades.jsonl"
    before = data.read_bytes()
    r = cli("run", str(write(tmp_path, doc)))
    assert r.returncode == 2
    assert "outputs.main.path" in r.stderr and "is the input of source.path" in r.stderr
    assert data.read_bytes() == before


def test_an_output_reached_through_a_symlink_to_the_input_is_refused(tmp_path):
    doc = file_doc(tmp_path, {"main": {"type": "file", "path": "link/trades.jsonl"},
                              "errors": {"type": "file", "path": "errors.jsonl"}})
    (tmp_path / "link").symlink_to(tmp_path)
    r = cli("validate", str(write(tmp_path, doc)))
    assert r.returncode == 2 and "is the input of source.path" in r.stderr


def test_a_parquet_dataset_at_the_spec_folder_is_refused_and_nothing_deleted(tmp_path):
    doc = file_doc(tmp_path, {"main": {"type": "file", "path": ".", "format": "parquet"},
                              "errors": {"type": "file", "path": "errors.jsonl"}})
    spec = write(tmp_path, doc)
    before = sorted(p.name for p in tmp_path.iterdir())
    r = cli("run", str(spec))
    assert r.returncode == 2
    assert "holds the input" in r.stderr and "holds the spec's own folder" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert spec.exists() and (tmp_path / "trades.jsonl").exists()


def test_a_parquet_dataset_folder_holding_other_files_is_refused_before_deleting(tmp_path):
    """Not a path conflict a spec can show: the folder holds someone's files now."""
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "q3.xlsx").write_bytes(b"precious")
    (reports / "part-0000000001.parquet").write_bytes(b"looks like ours")
    doc = file_doc(tmp_path, {"main": {"type": "file", "path": "reports",
                                       "format": "parquet"},
                              "errors": {"type": "file", "path": "errors.jsonl"}})
    r = cli("run", str(write(tmp_path, doc)))
    assert r.returncode == 2
    assert "cannot start" in r.stderr and "q3.xlsx" in r.stderr
    assert (reports / "q3.xlsx").read_bytes() == b"precious"
    assert (reports / "part-0000000001.parquet").read_bytes() == b"looks like ours"


def test_a_parquet_output_path_that_is_a_file_is_refused_and_kept(tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    doc = file_doc(tmp_path, {"main": {"type": "file", "path": "notes.txt",
                                       "format": "parquet"},
                              "errors": {"type": "file", "path": "errors.jsonl"}})
    r = cli("run", str(write(tmp_path, doc)))
    assert r.returncode == 2 and "is a file, not a dataset folder" in r.stderr
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def test_a_fresh_start_empties_a_dataset_folder_of_its_own_parts_only(tmp_path):
    """A rerun deletes the previous run's parts (and partition folders) -- and keeps the
    folder: a dataset folder may be a mount point or carry permissions."""
    out = tmp_path / "ds"

    def run_once() -> None:
        p = Pipeline("ds", checkpoint_dir=str(tmp_path / "chk"))
        p.read_records([{"id": i, "ts": i, "k": i % 3} for i in range(30)]).watermark(
            "ts").to(parquet(str(out), partition_by=["k"]))
        p.output("errors", jsonl(str(tmp_path / "errors.jsonl")))
        p.run()

    run_once()
    inode = out.stat().st_ino
    run_once()
    assert out.stat().st_ino == inode
    parts = sorted(str(p.relative_to(out)) for p in out.rglob("part-*.parquet")
                   if ".staging" not in p.parts)
    assert [p.split("/")[0] for p in parts] == ["k=0", "k=1", "k=2"]  # one run's, not two
    (out / "k=1" / "README").write_text("someone else's")
    with pytest.raises(OutputOwnershipError, match="README"):
        run_once()
    assert (out / "k=1" / "README").exists() and len(list(out.rglob("part-*.parquet"))) == 3


@pytest.mark.parametrize("outputs,extra,names,reason", [
    ({"main": {"type": "file", "path": "ds", "format": "parquet"},
      "errors": {"type": "file", "path": "ds/errors.jsonl"}}, {},
     ["outputs.errors.path", "outputs.main.path"], "inside the dataset folder"),
    ({"main": {"type": "file", "path": "chk/main.jsonl"},
      "errors": {"type": "file", "path": "errors.jsonl"}}, {},
     ["outputs.main.path", "checkpoint.dir"], "inside the checkpoint folder"),
    ({"main": {"type": "file", "path": "ds", "format": "parquet"},
      "errors": {"type": "file", "path": "errors.jsonl"}}, {"checkpoint": {"dir": "ds/chk"}},
     ["outputs.main.path", "checkpoint.dir"], "inside the dataset folder"),
    ({"main": {"type": "file", "path": "chk-errors.jsonl"}}, {},
     ["outputs.main.path", "the default errors output"], "two outputs on one path"),
    ({"main": {"type": "file", "path": "trades-out.jsonl"},
      "errors": {"type": "file", "path": "errors.jsonl"}},
     {"source": {"type": "file", "path": "trades*.jsonl"}},
     ["outputs.main.path", "source.path"], "matched by the input pattern"),
    ({"main": {"type": "duckdb", "path": "db.duckdb", "table": "t"},
      "errors": {"type": "duckdb", "path": "db.duckdb", "table": "t"}}, {},
     ["outputs.errors.path", "outputs.main.path"], "table t of"),
], ids=["inside-dataset", "inside-checkpoints", "checkpoints-inside-dataset",
        "default-errors-path", "input-glob", "duckdb-same-table"])
def test_outputs_that_share_a_place_are_refused_naming_both(tmp_path, outputs, extra, names,
                                                            reason):
    r = cli("validate", str(write(tmp_path, file_doc(tmp_path, outputs, **extra))))
    assert r.returncode == 2
    assert reason in r.stderr
    assert all(name in r.stderr for name in names), r.stderr


def test_outputs_that_only_look_alike_are_accepted(tmp_path):
    doc = file_doc(tmp_path, {
        "main": {"type": "duckdb", "path": "db.duckdb", "table": "main_rows"},
        "errors": {"type": "duckdb", "path": "db.duckdb", "table": "error_rows"}},
        checkpoint={"dir": "state/chk"})
    doc["source"]["path"] = "trades*.jsonl"  # matches no output
    r = cli("validate", str(write(tmp_path, doc)))
    assert r.returncode == 0, r.stderr


def test_the_python_api_refuses_outputs_on_one_path(tmp_path):
    p = Pipeline("api", checkpoint_dir=str(tmp_path / "chk"))
    p.read_records([{"ts": 1}]).watermark("ts").to(jsonl(str(tmp_path / "o.jsonl")))
    p.output("errors", jsonl(str(tmp_path / "o.jsonl")))
    with pytest.raises(ValueError, match="outputs.errors.path: .*two outputs on one path"):
        p.run()
    assert not (tmp_path / "o.jsonl").exists()
