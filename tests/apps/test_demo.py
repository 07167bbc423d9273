"""``surestream demo`` end to end at a small size, as a user runs it (a child process).

40,000 events over three days (the run ``conftest.trading_demo`` makes once for this module
and test_conformance.py) still inject every kind of damage many times (duplicates, late
trades, malformed lines, unknown statuses), so the reconciliation is not vacuous. The report is
checked against the simulator's own ``truth.json`` and against the warehouse's contents,
so a wrong counter and a wrong output cannot agree by accident.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from html_ids import ById

from surestream.connectors.file_sinks import dataset_parts, read_parquet_dataset

EVENTS = 40_000  # conftest.DEMO_EVENTS: the report's and truth's counts are checked against it
CHECKS = [
    "duplicates removed",
    "late trades routed, flagged is_late",
    "malformed -> dlq.deserialization",
    "unknown status -> dlq.trades.unroutable",
    "processed.trades.new",
    "processed.trades.filled",
    "processed.trades.cancelled",
    "processed.trades.rejected",
    "enrichment: processed.trades.filled enriched",
]
#: warehouse dataset folder -> (job, output tag) that writes it
DATASETS = {
    "processed_trades_new": ("router", "processed.trades.new"),
    "processed_trades_filled": ("router", "processed.trades.filled"),
    "processed_trades_cancelled": ("router", "processed.trades.cancelled"),
    "processed_trades_rejected": ("router", "processed.trades.rejected"),
    "dlq_trades_unroutable": ("router", "dlq.trades.unroutable"),
    "trade_aggregates": ("aggregation", "analytics.trade-aggregates"),
    "quarantine_aggregation_late_1m": ("aggregation", "late_1m"),
    "quarantine_aggregation_late_5m": ("aggregation", "late_5m"),
    "quarantine_aggregation_late_15m": ("aggregation", "late_15m"),
    "price_alerts": ("alerts", "main"),
    "quarantine_prices_late": ("alerts", "quarantine.prices.late"),
    "orderbook_metrics": ("orderbook", "main"),
    "quarantine_orderbook_late": ("orderbook", "quarantine.orderbook.late"),
    "enriched_trades": ("enrichment", "enriched.trades"),
}


def surestream(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "surestream", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def demo(trading_demo: dict[str, Any]) -> dict[str, Any]:
    return trading_demo


def test_demo_exits_0(demo: dict[str, Any]) -> None:
    proc = demo["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "== report" in proc.stdout


def test_demo_every_reconciliation_line_is_ok(demo: dict[str, Any]) -> None:
    lines = [ln.strip() for ln in demo["proc"].stdout.splitlines()
             if "injected/expected" in ln]
    assert [ln for ln in lines if ln.startswith(tuple(CHECKS))] == lines
    assert len(lines) == len(CHECKS)
    assert all(ln.endswith(" OK") for ln in lines), "\n".join(lines)
    assert "MISMATCH" not in demo["proc"].stdout


def test_demo_report_json_found_equals_injected(demo: dict[str, Any]) -> None:
    report = demo["report"]
    assert report["events"] == EVENTS
    checks = report["reconciliation"]
    assert [c["check"] for c in checks] == CHECKS
    for c in checks:
        assert c["found"] == c["injected"], c
    # every kind of damage was injected (and found), so the checks are not vacuous
    injected = {c["check"]: c["injected"] for c in checks}
    for check in CHECKS[:4]:
        assert injected[check] > 0, check


def test_demo_expected_counts_come_from_the_truth_file(demo: dict[str, Any]) -> None:
    t = demo["truth"]["streams"]["raw.trades"]
    # the router routes late trades too (flagged): every unique trade of a status, on time
    # or not
    statuses = t["statuses"]
    injected = {c["check"]: c["injected"] for c in demo["report"]["reconciliation"]}
    assert injected == {
        "duplicates removed": t["duplicates"],
        "late trades routed, flagged is_late": t["late"],
        "malformed -> dlq.deserialization": t["malformed"],
        "unknown status -> dlq.trades.unroutable": t["unknown_status"],
        "processed.trades.new": statuses["NEW"],
        "processed.trades.filled": statuses["FILLED"] + statuses["PARTIALLY_FILLED"],
        "processed.trades.cancelled": statuses["CANCELLED"],
        "processed.trades.rejected": statuses["REJECTED"],
        "enrichment: processed.trades.filled enriched":
            statuses["FILLED"] + statuses["PARTIALLY_FILLED"],
    }
    assert demo["truth"]["events"] == EVENTS


def test_demo_warehouse_holds_what_the_jobs_wrote(demo: dict[str, Any]) -> None:
    warehouse: Path = demo["warehouse"]
    jobs = demo["report"]["jobs"]
    for dataset, (job, tag) in DATASETS.items():
        folder = warehouse / dataset
        assert folder.is_dir(), dataset
        written = jobs[job]["written"][tag]
        frame = read_parquet_dataset(folder)
        assert frame.height == written, dataset
        if written:  # part files, possibly in hive partition folders (date=.../)
            assert dataset_parts(folder), dataset
    found = {c["check"]: c["found"] for c in demo["report"]["reconciliation"]}
    filled = read_parquet_dataset(warehouse / "processed_trades_filled")
    assert filled.height == found["processed.trades.filled"]
    assert filled["trade_id"].n_unique() == filled.height  # no trade twice
    assert set(filled["status"].unique()) == {"FILLED", "PARTIALLY_FILLED"}
    # every injected late trade reached processed.* with is_late true, and no other did
    routed = [read_parquet_dataset(warehouse / name) for name in DATASETS
              if DATASETS[name][0] == "router" and name.startswith(("processed", "dlq"))]
    assert sum(int(f["is_late"].sum()) for f in routed) == demo["truth"]["streams"][
        "raw.trades"]["late"] > 0
    # the aggregates: one dataset, the three sizes, the planned columns
    aggregates = read_parquet_dataset(warehouse / "trade_aggregates")
    assert sorted(aggregates["window_size"].unique().to_list()) == ["15m", "1m", "5m"]
    assert aggregates["computed_at"].null_count() == 0
    # enrichment writes every executed trade the router filed as filled
    assert jobs["enrichment"]["written"]["enriched.trades"] == found["processed.trades.filled"]
    assert jobs["enrichment"]["operator_counters"]["reference_data"]["unknown_keys"] > 0
    errors = (warehouse / "dlq_deserialization.jsonl").read_text().splitlines()
    assert len(errors) == found["malformed -> dlq.deserialization"]
    assert not (warehouse / "daily_volume_history").exists()  # history: stored aggregates


def test_demo_query_top_symbols(demo: dict[str, Any]) -> None:
    proc = surestream("query", "top-symbols", "--warehouse", str(demo["warehouse"]),
                      "--format", "json", cwd=demo["out"])
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert len(rows) == 10  # the default limit
    assert set(rows[0]) == {"symbol", "trades", "volume", "value", "vwap"}
    values = [r["value"] for r in rows]
    assert values == sorted(values, reverse=True)
    assert all(r["trades"] > 0 and r["volume"] > 0 and r["vwap"] > 0 for r in rows)


def test_demo_html_report_has_the_market_charts_and_every_jobs_report(
        demo: dict[str, Any]) -> None:
    html = demo["out"] / "report.html"
    assert f"HTML report (charts, each job's conservation and checkpoints): {html}" in \
        demo["proc"].stdout
    text = html.read_text(encoding="utf-8")
    assert not re.search(r"https?://", text)  # opens offline: nothing fetched
    assert not re.search(r"<script|<link|<img|\ssrc=", text, flags=re.I)
    page = ById()
    page.feed(text)
    # OHLC + VWAP of the top 3 symbols by volume; the first is the most traded symbol of
    # the deduplicated trades the router filed (every status), read from the warehouse
    ohlc = [s.removeprefix("trading-ohlc-") for s in page.svgs
            if s.startswith("trading-ohlc-")]
    assert len(ohlc) == 3
    routed = [read_parquet_dataset(demo["warehouse"] / name) for name, (job, _) in
              DATASETS.items() if job == "router"]
    volume: dict[str, float] = {}
    for frame in routed:
        for symbol, qty in frame.group_by("symbol").agg(pl.col("quantity").sum()).iter_rows():
            volume[symbol] = volume.get(symbol, 0) + qty
    assert ohlc[0] == max(volume, key=volume.__getitem__)
    # the alert timeline: every alert of the warehouse counted
    alerts = read_parquet_dataset(demo["warehouse"] / "price_alerts").height
    assert alerts > 0 and "trading-alerts-timeline" in page.svgs
    counted = re.findall(r"(MEDIUM|HIGH|CRITICAL)\s*([\d,]+)", page.text["trading-alerts-table"])
    assert sum(int(n.replace(",", "")) for _, n in counted) == alerts
    # each job's own run report: finished, conservation balanced, records in as run
    jobs = demo["report"]["jobs"]
    for job in ("router", "aggregation", "alerts", "orderbook", "enrichment"):
        assert page.text[f"{job}-state"].strip() == "finished", job
        assert page.text[f"{job}-eq-status"].strip() == "balanced", job
        assert int(page.text[f"{job}-eq-in"].replace(",", "")) == jobs[job]["records_in"]
        assert f"{job}-chart-checkpoints" in page.svgs
