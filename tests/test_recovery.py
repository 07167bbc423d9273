"""Exactly-once end to end (SEMANTICS §7-8): stop, crash, corrupt, change, resume.

The pipeline is examples/trades_vwap.yaml over 5,000 simulated trades (duplicates, late
and malformed lines included), with every path pointed into ``tmp_path``, record-count
checkpoints (no wall-clock ones) and windows small enough to fire during the run. Its
outputs cover the three file formats: windows as JSON lines, late trades as CSV, errors as
a Parquet dataset. Every resumed run must end with the outputs of one clean run: the same
bytes for the line files, the same rows for the dataset (whose part files follow the
checkpoints)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest
import yaml

import surestream
from surestream.apps.trading.simulator import TradeSimulation
from surestream.cli.checkpoint_cmds import copy_checkpoint, load_savepoint
from surestream.connectors.file_sinks import read_parquet_dataset
from surestream.connectors.sink_protocol import SinkRecoveryError
from surestream.model.loader import apply_override, build_spec, load_spec, load_spec_dict
from surestream.model.spec import PipelineSpec
from surestream.runners.local import faults
from surestream.runners.local.checkpoint_store import CheckpointStore
from surestream.runners.local.checkpointing import IncompatibleStateError
from surestream.runners.local.runner import LocalRunner, RunResult

SPEC = Path(surestream.__file__).parent / "examples" / "trades_vwap.yaml"
EVENTS = 5000
LINE_OUTPUTS = ("windows.jsonl", "late.csv", "late_window.jsonl")


def overrides(data: Path, out: Path, batch_size: int = 500, interval: int = 1000,
              retain: int = 3) -> list[str]:
    return [
        f"source.path={data}",
        f"outputs.main.path={out / 'windows.jsonl'}",
        f"outputs.late.path={out / 'late.csv'}", "outputs.late.format=csv",
        f"outputs.late_window.path={out / 'late_window.jsonl'}",
        f"outputs.errors.path={out / 'errors'}", "outputs.errors.format=parquet",
        f"checkpoint.dir={out / 'chk'}", f"checkpoint.interval_records={interval}",
        "checkpoint.interval_ms=null", f"checkpoint.retain={retain}",
        f"runtime.batch_size={batch_size}",
        # windows of 0.5 s under a 1.5 s bound fire all through the 5 s of trades
        "steps[0].max_out_of_orderness_ms=1500", "steps[3].size_ms=500",
    ]


def make_spec(data: Path, out: Path, **kw) -> PipelineSpec:
    return load_spec(SPEC, overrides(data, out, **kw))


def changed_doc(data: Path, out: Path, change) -> dict:
    """The spec document with its steps edited by ``change(steps, doc)`` (a new version
    of the pipeline)."""
    doc = load_spec_dict(SPEC)
    for assignment in overrides(data, out):
        apply_override(doc, assignment)
    change(doc["steps"], doc)
    return doc


def changed_spec(data: Path, out: Path, change) -> PipelineSpec:
    return build_spec(changed_doc(data, out, change), SPEC.parent)


def outputs(out: Path) -> dict[str, object]:
    got: dict[str, object] = {name: (out / name).read_bytes() for name in LINE_OUTPUTS}
    got["errors"] = read_parquet_dataset(out / "errors").to_dicts()
    return got


def latest(out: Path):
    return CheckpointStore(out / "chk").latest()


def stop_and_resume(spec_for, out: Path, times: int | None = None) -> list[RunResult]:
    """Runs that each resume from the latest checkpoint, take one more and stop; until the
    input is finished (or ``times`` runs)."""
    results = []
    while times is None or len(results) < times:
        results.append(LocalRunner(spec_for(), stop_after_checkpoint=True).run())
        cp = latest(out)
        if cp.finished:
            break
        assert len(results) < 1000, "no progress"
    return results


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("trades") / "trades.jsonl"
    truth = TradeSimulation(events=EVENTS, seed=11).write(str(path))
    assert truth.duplicates and truth.late and truth.malformed  # every path is exercised
    return path


@pytest.fixture(scope="module")
def clean(data, tmp_path_factory) -> dict[str, object]:
    """The outputs of one uninterrupted run (one batch: checkpoints only at its end)."""
    out = tmp_path_factory.mktemp("clean")
    result = LocalRunner(make_spec(data, out, batch_size=100_000)).run()
    assert result.restored_from is None and result.records_in == EVENTS
    got = outputs(out)
    windows = got["windows.jsonl"].splitlines()
    late = got["late.csv"].splitlines()
    assert len(windows) > 100 and len(late) > 10 and len(got["errors"]) > 0
    assert late[0].startswith(b"trade_id,")
    return got


# -- (a) stop after each checkpoint, resume --------------------------------------------------


@pytest.mark.parametrize("batch_size", [97, 640, 2500])
def test_stopping_after_every_checkpoint_and_resuming_gives_the_clean_outputs(
        data, clean, tmp_path, batch_size):
    out = tmp_path / "out"
    results = stop_and_resume(lambda: make_spec(data, out, batch_size=batch_size), out)
    # one batch per run; the last one runs the final (end of input) step
    assert [r.records_in for r in results] == [
        min((i + 1) * batch_size, EVENTS) for i in range(len(results))]
    assert len(results) <= -(-EVENTS // batch_size) + 2
    assert results[0].restored_from is None
    assert [r.restored_from for r in results[1:]] == list(range(1, len(results)))
    assert all(r.checkpoints == 1 for r in results)
    assert results[-1].records_in == EVENTS
    assert outputs(out) == clean


def duckdb_rows(db: Path, table: str) -> list[tuple]:
    con = duckdb.connect(str(db))
    try:
        return con.execute(f"select * from {table} order by rowid").fetchall()
    finally:
        con.close()


def test_stopping_and_resuming_into_duckdb_gives_the_clean_table(data, tmp_path):
    def spec_for(out: Path, batch_size: int) -> PipelineSpec:
        db = out / "late.duckdb"
        return load_spec(SPEC, [*overrides(data, out, batch_size=batch_size),
                                f"outputs.late={{type: duckdb, path: '{db}', table: late}}"])

    LocalRunner(spec_for(tmp_path / "clean", 100_000)).run()
    out = tmp_path / "out"
    results = stop_and_resume(lambda: spec_for(out, 450), out)
    assert len(results) > 10
    clean = duckdb_rows(tmp_path / "clean" / "late.duckdb", "late")
    assert len(clean) > 10
    assert duckdb_rows(out / "late.duckdb", "late") == clean
    assert (out / "windows.jsonl").read_bytes() == (tmp_path / "clean" / "windows.jsonl"
                                                    ).read_bytes()


def test_mid_run_checkpoints_then_resume_gives_the_clean_outputs(data, clean, tmp_path):
    """Three runs of one checkpoint each, then one run to the end with another batch size,
    checkpointing every 700 records on the way."""
    out = tmp_path / "out"
    stop_and_resume(lambda: make_spec(data, out, batch_size=300, interval=700), out, times=3)
    first = latest(out)
    assert first.id == 3 and not first.finished
    result = LocalRunner(make_spec(data, out, batch_size=1100, interval=700)).run()
    assert result.restored_from == 3 and result.checkpoints > 2
    assert outputs(out) == clean


# -- (b) a corrupt latest checkpoint ---------------------------------------------------------


@pytest.mark.parametrize("damage", ["state", "manifest"])
def test_a_corrupt_latest_checkpoint_resumes_from_the_previous_one(data, clean, tmp_path,
                                                                   damage):
    out = tmp_path / "out"
    spec_for = lambda: make_spec(data, out, batch_size=400)  # noqa: E731
    stop_and_resume(spec_for, out, times=5)
    cp = latest(out)
    assert cp.id == 5
    before = outputs(out)
    assert before["windows.jsonl"] and before != clean
    if damage == "state":
        # the window state was written by checkpoint 5 (it changes every batch)
        entry = cp.meta["operators"]["vwap_1m"]
        assert entry["file"] == "vwap_1m.0000000005.state"
        f = out / "chk" / "state" / entry["file"]
        raw = bytearray(f.read_bytes())
        raw[len(raw) // 2] ^= 0x01
        f.write_bytes(bytes(raw))
    else:
        m = out / "chk" / "chk-0000000005.json"
        m.write_bytes(m.read_bytes()[:-20])
    assert latest(out).id == 4
    result = LocalRunner(spec_for()).run()
    assert result.restored_from == 4  # the output of checkpoint 5 was rolled back
    assert outputs(out) == clean


def test_a_corrupt_latest_checkpoint_with_a_duckdb_output_refuses_to_guess(data, tmp_path):
    """DuckDB cannot take back rows it committed: restoring the checkpoint before them is
    refused, naming the table, and the table is left as it is."""
    out = tmp_path / "out"
    db = out / "late.duckdb"
    extra = [f"outputs.late={{type: duckdb, path: '{db}', table: late_trades}}"]
    spec_for = lambda: load_spec(SPEC, overrides(data, out, batch_size=400) + extra)  # noqa: E731
    stop_and_resume(spec_for, out, times=3)
    (out / "chk" / "chk-0000000003.json").write_bytes(b"{")
    with pytest.raises(SinkRecoveryError, match="'late_trades'.*checkpoint 3"):
        LocalRunner(spec_for()).run()
    # with the newer checkpoint gone for good, a fresh start is the way out
    shutil.rmtree(out / "chk")
    assert LocalRunner(spec_for()).run().restored_from is None


# -- (c) restoring into a changed pipeline ----------------------------------------------------


def identity(record: dict) -> dict:
    return record


@pytest.fixture
def three_checkpoints(data, tmp_path) -> Path:
    out = tmp_path / "out"
    stop_and_resume(lambda: make_spec(data, out), out, times=3)
    assert latest(out).id == 3
    return out


def test_an_added_operator_starts_empty_and_the_rest_is_restored(data, clean,
                                                                 three_checkpoints):
    out = three_checkpoints
    spec = changed_spec(data, out, lambda steps, _: steps.insert(
        3, {"type": "map", "name": "touch", "function": identity}))
    result = LocalRunner(spec).run()
    assert result.restored_from == 3
    assert outputs(out) == clean  # an identity map changes nothing


@pytest.mark.parametrize("dropped", ["dedup_by_trade_id", "quarantine_late"])
def test_a_dropped_stateful_operator_is_refused_unless_allowed(data, three_checkpoints,
                                                               dropped):
    out = three_checkpoints
    before = outputs(out)

    def drop(steps, doc):
        steps[:] = [s for s in steps if s["name"] != dropped]
        if dropped == "quarantine_late":
            del doc["outputs"]["late"]  # its tag is gone with it

    with pytest.raises(IncompatibleStateError,
                       match=rf"'{dropped}'.*--allow-non-restored-state"):
        LocalRunner(changed_spec(data, out, drop)).run()
    assert outputs(out) == before and latest(out).id == 3  # refused before touching them
    result = LocalRunner(changed_spec(data, out, drop), allow_non_restored_state=True).run()
    assert result.restored_from == 3 and result.records_in == EVENTS


def swap_high_and_low(steps, _):
    aggs = steps[3]["aggregations"]
    order = ["trade_count", "total_volume", "vwap", "low", "high", "open", "close"]
    assert sorted(order) == sorted(aggs)
    steps[3]["aggregations"] = {k: aggs[k] for k in order}


@pytest.mark.parametrize("change,message", [
    (lambda steps, _: steps[3].update(key_fields=["symbol", "side"]),
     r"operator 'vwap_1m' was keyed by \['symbol'\].*\['symbol', 'side'\]"),
    (lambda steps, _: steps[2].update(key_fields=["trade_id", "symbol"]),
     r"operator 'dedup_by_trade_id' was keyed by \['trade_id'\]"),
    (lambda steps, _: steps.__setitem__(2, {"type": "filter", "name": "dedup_by_trade_id",
                                            "function": identity}),
     r"operator 'dedup_by_trade_id' was a keyed_dedup step .* is a filter step now"),
    (lambda steps, _: steps[3].update(kind="sliding", slide_ms=250),
     r"'vwap_1m'.*tumbling -> sliding"),
    (lambda steps, _: steps[3].update(kind="session", gap_ms=200, size_ms=None),
     r"'vwap_1m'.*tumbling -> session"),
    # accumulators are kept in the aggregations' order: restoring them into another order
    # would silently give the high price as `low` and the low one as `high`
    (swap_high_and_low, r"'vwap_1m'.*aggregations .*'low=min\(price\)', 'high=max"),
    (lambda steps, _: steps[3]["aggregations"].pop("vwap"),
     r"'vwap_1m'.*aggregations"),
], ids=["window-keys", "dedup-keys", "step-type", "window-sliding", "window-session",
        "aggregations-reordered", "aggregation-removed"])
def test_a_changed_stateful_operator_is_refused_naming_it(data, three_checkpoints, change,
                                                          message):
    out = three_checkpoints
    before = outputs(out)
    with pytest.raises(IncompatibleStateError, match=message):
        LocalRunner(changed_spec(data, out, change), allow_non_restored_state=True).run()
    assert outputs(out) == before and latest(out).id == 3


def test_a_changed_source_is_refused(data, three_checkpoints, tmp_path):
    out = three_checkpoints
    other = tmp_path / "other.jsonl"
    shutil.copy(data, other)
    spec = load_spec(SPEC, [*overrides(data, out), f"source.path={other}"])
    with pytest.raises(IncompatibleStateError, match="source"):
        LocalRunner(spec).run()


# -- (d) a finished run ---------------------------------------------------------------------


def test_a_finished_checkpoint_makes_the_next_run_start_afresh(data, clean, tmp_path):
    out = tmp_path / "out"
    first = LocalRunner(make_spec(data, out, batch_size=700)).run()
    assert first.restored_from is None and latest(out).finished
    first_id = latest(out).id
    assert outputs(out) == clean
    second = LocalRunner(make_spec(data, out, batch_size=1300)).run()
    assert second.restored_from is None and second.records_in == EVENTS
    assert outputs(out) == clean  # rewritten, not appended to
    assert latest(out).finished and latest(out).id > first_id  # ids are never reused


# -- crashes: SIGKILL at every fault point ------------------------------------------------------


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "surestream", *args], capture_output=True,
                          text=True, timeout=300, env={**os.environ, **(env or {})})


def sets(data: Path, out: Path, **kw) -> list[str]:
    return [a for o in overrides(data, out, **kw) for a in ("--set", o)]


@pytest.mark.parametrize("point", faults.POINTS)
def test_a_crash_at_any_point_then_a_restart_gives_the_clean_outputs(data, clean, tmp_path,
                                                                     point):
    out = tmp_path / "out"
    args = ["run", str(SPEC), *sets(data, out, batch_size=600, interval=1000)]
    crashed = cli(*args, env={faults.ENV: f"{point}:3"})
    assert crashed.returncode == -9, crashed.stderr  # SIGKILL, mid-run
    resumed = cli(*args)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from checkpoint" in resumed.stderr
    assert outputs(out) == clean


# -- (e) the command line -------------------------------------------------------------------


def test_cli_checkpoints_lists_them(data, tmp_path):
    out = tmp_path / "out"
    spec_for = lambda: make_spec(data, out, retain=5)  # noqa: E731
    stop_and_resume(spec_for, out, times=4)
    (out / "chk" / "chk-0000000004.json").write_bytes(b"")
    r = cli("checkpoints", str(SPEC), *sets(data, out, retain=5))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "checkpoints of 'trades-vwap'" in lines[0]
    rows = [line.split() for line in lines[2:6]]
    assert [row[0] for row in rows] == ["1", "2", "3", "4"]
    assert all(row[-1] == "resumable" for row in rows[:3])
    assert "CORRUPT" in lines[5]
    empty = cli("checkpoints", str(SPEC), *sets(data, tmp_path / "none"))
    assert empty.returncode == 0 and "no checkpoints" in empty.stdout


def test_cli_savepoint_then_run_from_it_gives_the_clean_outputs(data, clean, tmp_path):
    out = tmp_path / "out"
    args = sets(data, out, batch_size=800)
    stop_and_resume(lambda: make_spec(data, out, batch_size=800), out, times=2)
    sp = tmp_path / "savepoint"
    r = cli("savepoint", str(SPEC), *args, "--to", str(sp))
    assert r.returncode == 0, r.stderr
    assert "savepoint 3 of 'trades-vwap'" in r.stdout
    assert CheckpointStore(sp).latest().id == 3
    # the pipeline goes on to its end; then it is taken back to the savepoint
    assert cli("run", str(SPEC), *args).returncode == 0
    assert latest(out).finished and outputs(out) == clean
    r = cli("run", str(SPEC), *args, "--from-savepoint", str(sp))
    assert r.returncode == 0, r.stderr
    assert "resumed from checkpoint 3" in r.stderr
    assert outputs(out) == clean
    assert CheckpointStore(sp).latest().id == 3  # the savepoint itself is untouched


def test_cli_run_from_a_missing_savepoint_is_a_usage_error(data, tmp_path):
    out = tmp_path / "out"
    r = cli("run", str(SPEC), *sets(data, out), "--from-savepoint", str(tmp_path / "nope"))
    assert r.returncode == 2
    assert "--from-savepoint" in r.stderr and "no readable checkpoint" in r.stderr
    assert not (out / "windows.jsonl").exists()


def test_cli_refuses_an_incompatible_savepoint_with_exit_2(data, tmp_path):
    out = tmp_path / "out"
    stop_and_resume(lambda: make_spec(data, out), out, times=2)
    doc = load_spec_dict(SPEC)
    for assignment in overrides(data, out):
        apply_override(doc, assignment)
    doc["steps"] = [s for s in doc["steps"] if s["name"] != "dedup_by_trade_id"]
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(doc, sort_keys=False))
    r = cli("run", str(changed))
    assert r.returncode == 2 and "'dedup_by_trade_id'" in r.stderr
    r = cli("run", str(changed), "--allow-non-restored-state")
    assert r.returncode == 0, r.stderr
    assert "resumed from checkpoint 2" in r.stderr
    assert pl.read_ndjson(out / "windows.jsonl").height > 0


# -- savepoints that no longer fit the outputs ----------------------------------------------


def test_a_savepoint_from_before_a_fresh_rerun_is_refused_not_mixed_in(data, clean, tmp_path):
    """A savepoint of the first run is restored after a second, fresh run rewrote every
    output: the file sinks see the outputs are another run's and refuse to resume on them
    (rolling back by checkpoint id would keep the wrong run's records)."""
    out = tmp_path / "out"
    spec_for = lambda: make_spec(data, out, batch_size=500)  # noqa: E731
    stop_and_resume(spec_for, out, times=3)
    sp = copy_checkpoint(latest(out), tmp_path / "sp")
    LocalRunner(spec_for()).run()  # ... to the end
    shutil.rmtree(out / "chk")  # "start afresh by deleting the checkpoint directory"
    LocalRunner(make_spec(data, out, batch_size=1500)).run()  # ids start at 1 again
    assert outputs(out) == clean
    with pytest.raises(SinkRecoveryError, match="another run"):
        LocalRunner(spec_for(), from_checkpoint=load_savepoint(sp)).run()
    # refused before anything was rolled back (the first sink is the one that refuses)
    assert outputs(out) == clean


def test_a_savepoint_directory_holds_one_savepoint(data, tmp_path):
    out = tmp_path / "out"
    sp = tmp_path / "sp"
    stop_and_resume(lambda: make_spec(data, out), out, times=3)
    copy_checkpoint(latest(out), sp)
    shutil.rmtree(out / "chk")
    stop_and_resume(lambda: make_spec(data, out), out, times=1)
    copy_checkpoint(latest(out), sp)  # the same --to folder: the new savepoint replaces
    assert load_savepoint(sp).id == 1 and latest(out).id == 1
    assert [r["id"] for r in CheckpointStore(sp).list()] == [1]


def test_from_savepoint_naming_the_checkpoint_directory_keeps_it(data, clean, tmp_path):
    out = tmp_path / "out"
    stop_and_resume(lambda: make_spec(data, out), out, times=3)
    r = cli("run", str(SPEC), *sets(data, out), "--from-savepoint", str(out / "chk"))
    assert r.returncode == 0, r.stderr
    assert "resumed from checkpoint 3" in r.stderr and outputs(out) == clean


def test_a_run_refuses_to_start_afresh_when_checkpoints_exist_but_none_verifies(tmp_path):
    """Starting afresh would rewrite (empty) every output: with checkpoints on disk that
    all fail their checksums, the run stops and says so instead."""
    from surestream.api import Pipeline, jsonl
    from surestream.runners.local.checkpoint_store import CheckpointError

    def pipeline() -> Pipeline:
        p = Pipeline("refuse", checkpoint_dir=str(tmp_path / "cp"))
        p.read_records([{"ts": i} for i in range(10)]).watermark("ts").to(
            jsonl(str(tmp_path / "out.jsonl")))
        p.output("errors", jsonl(str(tmp_path / "errors.jsonl")))
        return p

    pipeline().run()
    before = (tmp_path / "out.jsonl").read_bytes()
    assert before.count(b"\n") == 10
    for manifest in (tmp_path / "cp").glob("chk-*.json"):
        manifest.write_bytes(manifest.read_bytes()[:-5])  # torn
    with pytest.raises(CheckpointError, match="no checkpoint .* verifies"):
        pipeline().run()
    assert (tmp_path / "out.jsonl").read_bytes() == before
