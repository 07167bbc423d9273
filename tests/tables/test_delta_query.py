"""Issue 11, item 6 for Delta: ``surestream query`` and the trading analytics read a Delta
table of the warehouse (``<warehouse>/<dataset>/_delta_log``) at its latest version, as
they read Iceberg tables -- never the folder's Parquet files one by one, which include the
files a later commit removed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import orjson
from deltalake import DeltaTable

from surestream.apps.trading.analytics import TradingAnalytics
from surestream.cli.query import main as query_main
from surestream.model.loader import load_spec
from surestream.runners.local.runner import LocalRunner

#: (symbol, side, quantity, price, status): the FILLED ones land in the table
TRADES = [
    ("AAA", "BUY", 10.0, 100.0, "FILLED"),
    ("AAA", "SELL", 5.0, 102.0, "FILLED"),
    ("BBB", "BUY", 20.0, 50.0, "FILLED"),
    ("AAA", "BUY", 1000.0, 1.0, "NEW"),  # not filled: not in the table
    ("CCC", "SELL", 2.0, 10.0, "FILLED"),
    ("BBB", "SELL", 4.0, 55.0, "FILLED"),
    ("CCC", "BUY", 3.0, 12.0, "FILLED"),
    ("BBB", "BUY", 500.0, 2.0, "CANCELLED"),
    ("AAA", "SELL", 1.0, 104.0, "FILLED"),
    ("CCC", "BUY", 1.0, 11.0, "FILLED"),
]

SPEC = """\
pipeline: filled-to-delta
source: {type: file, path: trades.jsonl, format: jsonl}
steps:
  - {type: where, name: filled_only, condition: "status = 'FILLED'"}
outputs:
  main: {type: delta, path: warehouse/processed_trades_filled}
  errors: {type: file, path: out/errors.jsonl}
checkpoint: {dir: chk, interval_records: 4}
runtime: {batch_size: 2}
"""


def write_inputs(folder: Path) -> None:
    lines = [orjson.dumps({"trade_id": f"T{i}", "order_id": f"O{i}", "symbol": s,
                           "side": side, "quantity": q, "price": p, "status": status,
                           "exchange": "XNAS", "trader_id": "tr1", "account_id": "acc1",
                           "timestamp_ms": 1_767_225_600_000 + 1_000 * i,
                           "event_type": "trade"})
             for i, (s, side, q, p, status) in enumerate(TRADES)]
    (folder / "trades.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    (folder / "spec.yaml").write_text(SPEC)


def run(folder: Path) -> None:
    LocalRunner(load_spec(folder / "spec.yaml")).run()


def test_query_and_analytics_read_the_delta_tables_latest_version(tmp_path, capsys):
    write_inputs(tmp_path)
    run(tmp_path)
    # a fresh start (no checkpoint) rewrites the table: the first run's files stay on disk,
    # removed from the table by the log
    shutil.rmtree(tmp_path / "chk")
    run(tmp_path)
    table = tmp_path / "warehouse" / "processed_trades_filled"
    on_disk = [p for p in table.rglob("*.parquet") if "_delta_log" not in p.parts]
    assert len(on_disk) > len(DeltaTable(str(table)).file_uris())  # the trap is there

    # by hand, from TRADES: per symbol over the FILLED trades
    #   AAA: 3 trades, volume 10+5+1 = 16, value 1000+510+104 = 1614
    #   BBB: 2 trades, volume 20+4 = 24, value 1000+220 = 1220
    #   CCC: 3 trades, volume 2+3+1 = 6, value 20+36+11 = 67
    assert query_main(["top-symbols", "--warehouse", str(tmp_path / "warehouse"),
                       "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["symbol"], r["trades"], r["volume"], r["value"]) for r in rows] == [
        ("AAA", 3, 16.0, 1614.0), ("BBB", 2, 24.0, 1220.0), ("CCC", 3, 6.0, 67.0)]
    assert [round(r["vwap"], 9) for r in rows] == [
        round(1614 / 16, 9), round(1220 / 24, 9), round(67 / 6, 9)]

    with TradingAnalytics(warehouse=tmp_path / "warehouse") as analytics:
        assert "processed_trades_filled" in analytics.available
        # the SELL side only -- AAA: 5 @ 102 + 1 @ 104 = 614; BBB: 4 @ 55 = 220; CCC: 20
        sells = analytics.top_symbols(side="SELL")
    assert list(zip(sells["symbol"], sells["trades"], sells["value"], strict=True)) == [
        ("AAA", 2, 614.0), ("BBB", 1, 220.0), ("CCC", 1, 20.0)]
