"""Reading Iceberg back and keeping it small: ``surestream query`` over a warehouse whose
datasets are Iceberg tables, ``surestream tables scan``, and ``surestream tables compact``
(small files compacted, snapshots expired) keeping what recovery needs."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
import yaml

from surestream.cli.main import main
from surestream.connectors.sink_protocol import SinkRecoveryError
from surestream.connectors.tables.iceberg import IcebergTableSink
from surestream.connectors.tables.iceberg_catalog import open_catalog
from surestream.connectors.tables.iceberg_maintenance import compact_and_expire, data_files
from surestream.connectors.tables.iceberg_read import read_table
from surestream.model.spec import IcebergSink

TRADES = [  # symbol, side, quantity, price: FILLED trades
    ("AAA", "BUY", 10.0, 5.0), ("AAA", "SELL", 30.0, 6.0), ("BBB", "BUY", 1.0, 100.0),
    ("CCC", "BUY", 4.0, 2.0), ("BBB", "SELL", 2.0, 110.0),
]


def trades_frame(rows) -> pl.DataFrame:
    return pl.DataFrame({
        "trade_id": [f"t{i}" for i in range(len(rows))], "order_id": "o",
        "symbol": [r[0] for r in rows], "side": [r[1] for r in rows],
        "quantity": [r[2] for r in rows], "price": [r[3] for r in rows],
        "status": "FILLED", "exchange": "X", "trader_id": "tr", "account_id": "acc",
        "timestamp_ms": [1_772_409_600_000 + i for i in range(len(rows))],
        "event_type": "trade"})


def sink_for(warehouse: Path, table: str, **extra) -> IcebergTableSink:
    spec = IcebergSink(table=table, catalog={"uri": f"sqlite:///{warehouse}/catalog.db",
                                             "warehouse": str(warehouse)}, **extra)
    sink = IcebergTableSink(spec, Path, "trading", table)
    sink.open(fresh=False)
    return sink


def test_query_reads_a_warehouse_of_iceberg_tables(tmp_path, capsys):
    sink = sink_for(tmp_path, "trading.processed_trades_filled")
    for n, part in enumerate((TRADES[:2], TRADES[2:]), start=1):  # two checkpoints
        sink.write(trades_frame(part))
        sink.commit(sink.pre_commit(n))
    assert main(["query", "top-symbols", "--warehouse", str(tmp_path), "--format",
                 "json"]) == 0
    answer = {row["symbol"]: row for row in json.loads(capsys.readouterr().out)}
    # by hand: AAA 10*5 + 30*6 = 230; BBB 100 + 220 = 320; CCC 8
    assert [s for s in answer] == ["BBB", "AAA", "CCC"]
    assert answer["AAA"]["trades"] == 2 and answer["AAA"]["value"] == 230.0
    assert answer["BBB"]["volume"] == 3.0 and answer["CCC"]["value"] == 8.0


def write_spec(folder: Path) -> Path:
    spec = {"pipeline": "p", "source": {"type": "file", "path": "in.jsonl"},
            "outputs": {"main": {"type": "iceberg", "table": "curated.t",
                                 "catalog": {"uri": "sqlite:///wh/catalog.db",
                                             "warehouse": "wh"},
                                 "partition_by": ["iso"]}}}
    (folder / "in.jsonl").write_text("")
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_compact_rewrites_small_files_and_recovery_still_decides(tmp_path, capsys):
    spec_file = write_spec(tmp_path)
    spec = IcebergSink(table="curated.t", partition_by=["iso"],
                       catalog={"uri": "sqlite:///wh/catalog.db", "warehouse": "wh"})

    def fresh_sink() -> IcebergTableSink:
        sink = IcebergTableSink(spec, lambda p: tmp_path / p, "p", "main")
        sink.open(fresh=False)
        return sink

    sink = fresh_sink()
    committed = {}
    for n in range(1, 6):  # five checkpoints, two ISOs each: ten small files
        sink.write(pl.DataFrame({"id": [2 * n, 2 * n + 1], "iso": ["PJM", "ERCOT"]}))
        committed[n] = sink.pre_commit(n)
        sink.commit(committed[n])
    sink.close()
    catalog = open_catalog(spec.catalog, lambda p: tmp_path / p)
    assert data_files(catalog.load_table("curated.t")) == 10
    assert main(["tables", "compact", str(spec_file), "--keep-snapshots", "1"]) == 0
    assert "10 -> 2 data files (10 rows rewritten)" in capsys.readouterr().out
    table = catalog.load_table("curated.t")
    assert data_files(table) == 2 and len(table.snapshots()) == 1  # the rest expired
    frame = read_table(spec.catalog, "curated.t", lambda p: tmp_path / p)
    assert sorted(frame["id"].to_list()) == list(range(2, 12))
    # the markers survived in the compaction's snapshot: checkpoint 5 is known to have
    # landed (nothing published twice), and an older checkpoint is refused
    again = fresh_sink()
    again.recover(committed[5], 5)
    assert again.records == 10
    assert sorted(read_table(spec.catalog, "curated.t",
                             lambda p: tmp_path / p)["id"].to_list()) == list(range(2, 12))
    with pytest.raises(SinkRecoveryError, match="already holds checkpoint 5"):
        fresh_sink().recover(committed[4], 4)
    # compacting again has nothing to gain: one file per partition
    assert compact_and_expire(catalog, "curated.t", 1).files_after == 2


def test_tables_scan_prints_an_outputs_rows(tmp_path, capsys):
    spec_file = write_spec(tmp_path)
    sink = IcebergTableSink(IcebergSink(table="curated.t", partition_by=["iso"],
                                        catalog={"uri": "sqlite:///wh/catalog.db",
                                                 "warehouse": "wh"}),
                            lambda p: tmp_path / p, "p", "main")
    sink.open(fresh=True)
    sink.write(pl.DataFrame({"id": [1, 2], "iso": ["PJM", "PJM"]}))
    sink.commit(sink.pre_commit(1))
    assert main(["tables", "scan", str(spec_file), "--output", "main", "--format",
                 "json"]) == 0
    assert sorted(r["id"] for r in json.loads(capsys.readouterr().out)) == [1, 2]
    assert main(["tables", "scan", str(spec_file), "--output", "nope"]) == 2
