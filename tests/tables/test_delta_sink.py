"""The Delta Lake sink: exactly once through Delta application transactions (txn app id =
pipeline + output, version = checkpoint id), partitioned, readable by polars and DuckDB,
refusing what it cannot take back, and rejecting values Delta would change."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import orjson
import polars as pl
import pytest
from deltalake import DeltaTable

import surestream
from surestream.apps.trading.simulator import TradeSimulation
from surestream.connectors.sink_protocol import SinkRecoveryError
from surestream.connectors.tables.delta import DeltaTableSink
from surestream.model.loader import load_spec
from surestream.runners.local.checkpoint_store import CheckpointStore
from surestream.runners.local.runner import LocalRunner

SPEC = Path(surestream.__file__).parent / "examples" / "trades_vwap.yaml"
KEY = ["symbol", "window_start"]


def overrides(data: Path, out: Path, main: str, batch_size: int = 500) -> list[str]:
    return [
        f"source.path={data}", f"outputs.main={main}",
        f"outputs.late.path={out / 'late.jsonl'}",
        f"outputs.late_window.path={out / 'late_window.jsonl'}",
        f"outputs.errors.path={out / 'errors.jsonl'}",
        f"checkpoint.dir={out / 'chk'}", "checkpoint.interval_records=1000",
        "checkpoint.interval_ms=null", "checkpoint.retain=3",
        f"runtime.batch_size={batch_size}",
        "steps[0].max_out_of_orderness_ms=1500", "steps[3].size_ms=500",
    ]


def delta_main(out: Path, partition_by: str = "[symbol]") -> str:
    return f"{{type: delta, path: '{out / 'delta' / 'windows'}', partition_by: {partition_by}}}"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("trades") / "trades.jsonl"
    TradeSimulation(events=4000, seed=11).write(str(path))
    return path


@pytest.fixture(scope="module")
def clean(data, tmp_path_factory) -> pl.DataFrame:
    """The windows of one uninterrupted run into a JSON lines file, sorted by key."""
    out = tmp_path_factory.mktemp("clean")
    main = f"{{type: file, path: '{out / 'windows.jsonl'}'}}"
    LocalRunner(load_spec(SPEC, overrides(data, out, main, batch_size=100_000))).run()
    rows = [orjson.loads(x) for x in (out / "windows.jsonl").read_bytes().splitlines()]
    assert len(rows) > 50
    return pl.DataFrame(rows).sort(KEY)


def by_key(frame: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    return frame.select(columns).sort(KEY)


def test_windows_land_once_partitioned_and_readable_by_polars_and_duckdb(data, clean,
                                                                          tmp_path):
    out = tmp_path / "out"
    table = out / "delta" / "windows"
    spec = load_spec(SPEC, overrides(data, out, delta_main(out)))
    result = LocalRunner(spec).run()
    assert result.written["main"] == clean.height
    # polars reads the table, every window once with the clean run's values
    got = pl.read_delta(str(table))
    assert by_key(got, clean.columns).equals(clean)
    # DuckDB reads it through Arrow (the delta extension's delta_scan is the other way)
    dataset = DeltaTable(str(table)).to_pyarrow_dataset()  # noqa: F841 -- read by DuckDB
    count, symbols = duckdb.sql(
        "select count(*), count(distinct symbol) from dataset").fetchall()[0]
    assert (count, symbols) == (clean.height, clean["symbol"].n_unique())
    # partitioned by symbol: one folder per symbol
    folders = {p.name for p in table.iterdir() if p.is_dir() and p.name != "_delta_log"}
    assert folders == {f"symbol={s}" for s in clean["symbol"].unique()}
    # every commit carries the app's transaction: its version is the last checkpoint's
    dt_ = DeltaTable(str(table))
    last = CheckpointStore(out / "chk").latest()
    assert dt_.transaction_version("surestream-trades-vwap-main") <= last.id
    assert dt_.transaction_version("surestream-trades-vwap-main") >= last.id - 1
    assert result.rows("main") == got.to_dicts()  # read back as the run left it


def test_a_second_run_rewrites_the_table_rather_than_appending(data, clean, tmp_path):
    out = tmp_path / "out"
    spec_for = lambda: load_spec(SPEC, overrides(data, out, delta_main(out)))  # noqa: E731
    LocalRunner(spec_for()).run()
    shutil.rmtree(out / "chk")  # a fresh start
    LocalRunner(spec_for()).run()
    got = pl.read_delta(str(out / "delta" / "windows"))
    assert by_key(got, clean.columns).equals(clean)


def sink(path: Path, staging: Path, partition_by: list[str] | None = None) -> DeltaTableSink:
    s = DeltaTableSink(str(path), partition_by, "app-1", staging)
    return s


def test_a_commit_replayed_after_it_landed_writes_nothing(tmp_path):
    """A crash after the Delta commit but before the runner knew: the restarted sink
    recovers the same checkpoint and finds the app's version already there."""
    table, staging = tmp_path / "t", tmp_path / "staging"
    first = sink(table, staging, ["k"])
    first.open(fresh=True)
    first.write(pl.DataFrame({"k": ["a", "b"], "v": [1, 2]}))
    c1 = first.pre_commit(1)
    first.commit(c1)
    first.write(pl.DataFrame({"k": ["a"], "v": [3]}))
    c2 = first.pre_commit(2)
    first.commit(c2)  # landed; then the process "died" before checkpoint 2 was marked done
    again = sink(table, staging, ["k"])
    again.open(fresh=False)
    again.recover(c2, 2)
    again.commit(c2)
    assert sorted(pl.read_delta(str(table))["v"].to_list()) == [1, 2, 3]
    assert DeltaTable(str(table)).transaction_version("app-1") == 2
    assert again.records == 3


def test_a_durable_checkpoint_whose_commit_never_ran_is_committed_at_recovery(tmp_path):
    table, staging = tmp_path / "t", tmp_path / "staging"
    first = sink(table, staging)
    first.open(fresh=True)
    first.write(pl.DataFrame({"k": ["a", "b"], "v": [1, 2]}))
    c1 = first.pre_commit(1)  # staged; "killed" before commit
    again = sink(table, staging)
    again.open(fresh=False)
    again.recover(c1, 1)
    assert pl.read_delta(str(table)).sort("k")["v"].to_list() == [1, 2]
    assert not list(staging.iterdir())  # the staged records are gone once committed


def test_recovery_refuses_a_table_holding_a_newer_checkpoint(data, tmp_path):
    """The DuckDB rule: a Delta commit cannot be taken back, so restoring a checkpoint
    older than the table's app version is refused, naming the table, which is left as is."""
    out = tmp_path / "out"
    spec_for = lambda: load_spec(SPEC, overrides(data, out, delta_main(out)))  # noqa: E731
    for _ in range(3):
        LocalRunner(spec_for(), stop_after_checkpoint=True).run()
    table = out / "delta" / "windows"
    version = DeltaTable(str(table)).version()
    assert DeltaTable(str(table)).transaction_version("surestream-trades-vwap-main") == 3
    (out / "chk" / "chk-0000000003.json").write_bytes(b"{")
    with pytest.raises(SinkRecoveryError, match=r"Delta table .*windows already holds "
                                                r"checkpoint 3.*restored checkpoint 2"):
        LocalRunner(spec_for()).run()
    assert DeltaTable(str(table)).version() == version


def test_recovery_refuses_when_the_table_was_deleted(data, tmp_path):
    out = tmp_path / "out"
    spec_for = lambda: load_spec(SPEC, overrides(data, out, delta_main(out)))  # noqa: E731
    for _ in range(3):
        LocalRunner(spec_for(), stop_after_checkpoint=True).run()
    shutil.rmtree(out / "delta" / "windows")
    with pytest.raises(SinkRecoveryError, match=r"windows is gone, but .* records were "
                                                "committed"):
        LocalRunner(spec_for()).run()


def test_values_delta_would_change_go_to_the_errors_output_by_name(tmp_path):
    s = sink(tmp_path / "t", tmp_path / "staging")
    s.open(fresh=True)
    frame = pl.DataFrame({
        "k": ["fits", "too big", "sub-us", "fits2"],
        "u": pl.Series([1, 2**64 - 1, 3, 4], dtype=pl.UInt64),
        "ts": pl.Series([dt.datetime(2024, 1, 1)] * 4).dt.cast_time_unit("ns")
        + pl.Series([0, 0, 1, 0]).cast(pl.Duration("ns")),
        "t": pl.Series([None, None, None, None], dtype=pl.Time),
    })
    rejected = s.reject(frame)
    assert rejected.rows.tolist() == [1, 2]
    assert "Delta table" in rejected.reasons[0] and "'u'" in rejected.reasons[0]
    assert "'ts'" in rejected.reasons[1]
    good = frame[[0, 3]]
    s.write(good)
    s.commit(s.pre_commit(1))
    got = pl.read_delta(str(tmp_path / "t")).sort("k")
    assert got["u"].to_list() == [1, 4]
    assert got["ts"].to_list() == [dt.datetime(2024, 1, 1)] * 2
    # a time of day has no Delta type: a row holding one is refused, naming the column
    times = pl.DataFrame({"k": ["x"], "t": [dt.time(1, 2)]})
    assert "time of day" in s.reject(times).reasons[0] and "'t'" in s.reject(times).reasons[0]
    # the table now holds u as Int64: a float that is not a whole number is refused
    floats = pl.DataFrame({"k": ["y", "z"], "u": [5.0, 5.5]})
    assert s.reject(floats).rows.tolist() == [1]
    assert "holds column 'u' as Int64" in s.reject(floats).reasons[0]


def test_partition_by_must_match_the_existing_table(tmp_path):
    first = sink(tmp_path / "t", tmp_path / "s", ["k"])
    first.open(fresh=True)
    first.write(pl.DataFrame({"k": ["a"], "v": [1]}))
    c1 = first.pre_commit(1)
    first.commit(c1)
    other = sink(tmp_path / "t", tmp_path / "s", ["v"])
    other.open(fresh=False)
    with pytest.raises(SinkRecoveryError, match=r"partitioned by \['k'\]"):
        other.recover(c1, 1)
