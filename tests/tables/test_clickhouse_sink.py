"""The ClickHouse sink against a real server (``clickhouse_server``): ReplacingMergeTree
tables made from config, rows read with FINAL, a replayed checkpoint leaving one row per
key, refusal of newer commits, and values ClickHouse 18 would change rejected by name."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import orjson
import polars as pl
import pytest
from clickhouse_driver import Client

import surestream
from surestream.apps.trading.simulator import TradeSimulation
from surestream.connectors.sink_protocol import SinkRecoveryError
from surestream.connectors.tables.clickhouse import ClickHouseTableSink
from surestream.model.loader import load_spec
from surestream.model.spec import ClickHouseSink
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


def table_name() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


def ch_main(server, table: str) -> str:
    return (f"{{type: clickhouse, host: {server.host}, port: {server.port}, table: {table}, "
            "key_columns: [symbol, window_start], version_column: window_end, "
            "partition_by: 'intDiv(window_start, 3600000)'}")


def final(server, table: str) -> pl.DataFrame:
    client = Client(host=server.host, port=server.port)
    data, types = client.execute(f"SELECT * FROM {table} FINAL", columnar=True,
                                 with_column_types=True)
    return pl.DataFrame({n: list(v) for (n, _), v in zip(types, data, strict=True)})


def raw_count(server, table: str) -> int:
    return Client(host=server.host, port=server.port).execute(
        f"SELECT count() FROM {table}")[0][0]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("trades") / "trades.jsonl"
    TradeSimulation(events=4000, seed=11).write(str(path))
    return path


@pytest.fixture(scope="module")
def clean(data, tmp_path_factory) -> pl.DataFrame:
    out = tmp_path_factory.mktemp("clean")
    main = f"{{type: file, path: '{out / 'windows.jsonl'}'}}"
    LocalRunner(load_spec(SPEC, overrides(data, out, main, batch_size=100_000))).run()
    rows = [orjson.loads(x) for x in (out / "windows.jsonl").read_bytes().splitlines()]
    return pl.DataFrame(rows).sort(KEY)


def test_windows_land_in_a_replacing_merge_tree_made_from_config(clickhouse_server, data,
                                                                 clean, tmp_path):
    table = table_name()
    spec = load_spec(SPEC, overrides(data, tmp_path, ch_main(clickhouse_server, table)))
    result = LocalRunner(spec).run()
    assert result.written["main"] == clean.height
    got = final(clickhouse_server, table).select(clean.columns).sort(KEY)
    assert got.equals(clean)
    engine, sorting, partition = Client(host=clickhouse_server.host,
                                        port=clickhouse_server.port).execute(
        "SELECT engine_full, sorting_key, partition_key FROM system.tables "
        "WHERE name = %(t)s", {"t": table})[0]
    assert engine.startswith("ReplacingMergeTree(window_end)")
    assert sorting == "symbol, window_start"
    assert partition == "intDiv(window_start, 3600000)"
    assert pl.DataFrame(result.rows("main")).select(clean.columns).equals(got)


def sink(server, table: str, staging: Path, **kw) -> ClickHouseTableSink:
    spec = ClickHouseSink(host=server.host, port=server.port, table=table,
                          key_columns=["k"], version_column="ver", **kw)
    return ClickHouseTableSink(spec, staging)


class Killed(Exception):
    """Stands for the process dying at a point inside the commit."""


def test_a_checkpoint_replayed_after_a_crash_leaves_one_row_per_key(clickhouse_server,
                                                                    tmp_path):
    """Killed after the rows went in but before the commit row: recovery does not know
    whether they landed and inserts them again. Both copies are stored (merges stopped
    here, so they stay apart), and FINAL reads one row per key; a newer version wins."""
    table, staging = table_name(), tmp_path / "staging"
    first = sink(clickhouse_server, table, staging)
    first.open(fresh=True)
    first.write(pl.DataFrame({"k": ["a", "b", "c"], "ver": [1, 1, 1], "v": [1.0, 2.0, 3.0]}))
    c1 = first.pre_commit(1)
    first.commit(c1)
    Client(host=clickhouse_server.host, port=clickhouse_server.port).execute(
        f"SYSTEM STOP MERGES {table}")
    first.write(pl.DataFrame({"k": ["a", "d"], "ver": [2, 1], "v": [10.0, 4.0]}))
    c2 = first.pre_commit(2)

    def die(point: str) -> None:
        if point == "clickhouse.inserted":
            raise Killed(point)

    first.on_point = die
    with pytest.raises(Killed):
        first.commit(c2)
    again = sink(clickhouse_server, table, staging)
    again.open(fresh=False)
    again.recover(c2, 2)  # commit unknown: inserted again
    assert raw_count(clickhouse_server, table) == 3 + 2 + 2  # the replay's copies are there
    got = final(clickhouse_server, table).sort("k")
    assert got["k"].to_list() == ["a", "b", "c", "d"]  # exactly one row per key
    assert got["v"].to_list() == [10.0, 2.0, 3.0, 4.0]  # key a: version 2 replaced 1
    again.recover(c2, 2)  # landed now: nothing inserted
    assert raw_count(clickhouse_server, table) == 7
    assert again.records == 5


def test_recovery_refuses_a_table_holding_a_newer_checkpoint(clickhouse_server, data,
                                                             tmp_path):
    table = table_name()
    spec_for = lambda: load_spec(  # noqa: E731
        SPEC, overrides(data, tmp_path, ch_main(clickhouse_server, table)))
    for _ in range(3):
        LocalRunner(spec_for(), stop_after_checkpoint=True).run()
    before = raw_count(clickhouse_server, table)
    (tmp_path / "chk" / "chk-0000000003.json").write_bytes(b"{")
    with pytest.raises(SinkRecoveryError, match=rf"ClickHouse table default.{table} .*already "
                                                r"holds checkpoint 3.*restored checkpoint 2"):
        LocalRunner(spec_for()).run()
    assert raw_count(clickhouse_server, table) == before  # left as it was


def test_values_clickhouse_would_change_are_rejected_by_name(clickhouse_server, tmp_path):
    table = table_name()
    s = sink(clickhouse_server, table, tmp_path / "staging")
    s.open(fresh=True)
    frame = pl.DataFrame({
        "k": ["ok", None, "subsecond", "old date", "ok2"],
        "ver": [1, 1, 1, 1, 1],
        "ts": [dt.datetime(2024, 1, 1, 12), dt.datetime(2024, 1, 1),
               dt.datetime(2024, 1, 1, 0, 0, 0, 500), dt.datetime(2024, 1, 1),
               dt.datetime(2024, 1, 1, 13)],
        "d": [dt.date(2024, 1, 1), dt.date(2024, 1, 1), dt.date(2024, 1, 1),
              dt.date(1969, 12, 31), None],
        "n": pl.Series([2**63 - 1, 0, 0, 0, None], dtype=pl.Int64),
    })
    rejected = s.reject(frame)
    assert rejected.rows.tolist() == [1, 2, 3]
    assert "'k'" in rejected.reasons[0] and "cannot be null" in rejected.reasons[0]
    assert "'ts'" in rejected.reasons[1] and f"default.{table}" in rejected.reasons[1]
    assert "'d'" in rejected.reasons[2]
    s.write(frame[[0, 4]])
    s.commit(s.pre_commit(1))
    got = final(clickhouse_server, table).sort("k")
    assert got["ts"].to_list() == [dt.datetime(2024, 1, 1, 12, tzinfo=dt.UTC),
                                   dt.datetime(2024, 1, 1, 13, tzinfo=dt.UTC)]
    assert got["n"].to_list() == [2**63 - 1, None]
    assert got["d"].to_list() == [dt.date(2024, 1, 1), None]
    # booleans have no ClickHouse 18 type; the table now holds n as Int64
    odd = pl.DataFrame({"k": ["x", "y"], "ver": [1, 1], "flag": [True, None],
                        "n": [1.5, 2.0]})
    reasons = s.reject(odd)
    assert reasons.rows.tolist() == [0]
    assert "boolean" in reasons.reasons[0] and "'flag'" in reasons.reasons[0]
    odd2 = pl.DataFrame({"k": ["x", "y"], "ver": [1, 1], "n": [1.5, 2.0]})
    assert s.reject(odd2).rows.tolist() == [0]
    assert "holds column 'n' as Int64" in s.reject(odd2).reasons[0]


def test_an_existing_table_that_does_not_replace_by_the_key_is_refused(clickhouse_server,
                                                                       tmp_path):
    table = table_name()
    Client(host=clickhouse_server.host, port=clickhouse_server.port).execute(
        f"CREATE TABLE {table} (k String, ver UInt64) ENGINE = MergeTree ORDER BY k")
    s = sink(clickhouse_server, table, tmp_path / "staging")
    with pytest.raises(SinkRecoveryError, match=r"not ReplacingMergeTree\(ver\) ordered by "
                                                r"\(k\)"):
        s.open(fresh=False)
