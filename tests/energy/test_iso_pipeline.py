"""The ISO teams' definition of done, run on the hardened_iso_streaming template over a
simulated feed, into real Iceberg tables (SQLite catalog) and a real ClickHouse server.
Every expectation comes from the simulator's truth, never from the pipeline's output."""

from __future__ import annotations

import uuid
from pathlib import Path

import duckdb
import pytest
from clickhouse_driver import Client

from surestream.apps.energy.iso_reconcile import (
    CURATED,
    QUARANTINE,
    clickhouse_checks,
    iceberg_checks,
    run_checks,
)
from surestream.apps.energy.iso_simulator import IsoSimulation
from surestream.apps.energy.iso_template import hardened_iso_streaming
from surestream.apps.energy.iso_time import parse_utc
from surestream.connectors.tables.iceberg_read import canonical_order, read_table
from surestream.model.loader import build_spec
from surestream.runners.local.runner import LocalRunner

FAULTS = {"duplicate_rate": 0.05, "late_rate": 0.03, "correction_rate": 0.05,
          "malformed_rate": 0.02}


def run_template(folder: Path, clickhouse: dict | None, **params):
    doc = hardened_iso_streaming(input_path="data/lmp.jsonl", out_dir="out",
                                 clickhouse=clickhouse, **params)
    return doc, LocalRunner(build_spec(doc, base_dir=folder)).run()


@pytest.fixture(scope="module")
def iso_run(tmp_path_factory, clickhouse_server):
    folder = tmp_path_factory.mktemp("iso")
    truth = IsoSimulation(hours=2, seed=11, **FAULTS).write(folder / "data")
    table = f"lmp_{uuid.uuid4().hex[:10]}"
    ch = {"host": clickhouse_server.host, "port": clickhouse_server.port, "table": table}
    doc, result = run_template(folder, ch, checkpoint_interval_records=200,
                               checkpoint_interval_ms=None, batch_size=64)
    client = Client(host=clickhouse_server.host, port=clickhouse_server.port)
    return {"folder": folder, "truth": truth, "doc": doc, "result": result,
            "client": client, "table": table,
            "catalog": doc["outputs"]["rt_lmp_5m"]["catalog"]}


def table(run, name: str):
    return read_table(run["catalog"], name, lambda p: run["folder"] / p)


def test_every_table_reconciles_with_the_truth(iso_run):
    truth, folder = iso_run["truth"], iso_run["folder"]
    assert truth["expected"]["late"] and truth["expected"]["superseded"]  # faults happened
    checks = iceberg_checks(truth, iso_run["catalog"], folder)
    checks += run_checks(truth, iso_run["result"].operator_counters,
                         folder / "out" / "errors.jsonl", folder / "out" / "late_hourly.jsonl")
    checks += clickhouse_checks(truth, iso_run["client"], iso_run["table"])
    assert [c for c in checks if not c.ok] == []


def test_no_duplicates_in_curated_data_iceberg_and_clickhouse_final(iso_run):
    curated = table(iso_run, CURATED).to_arrow()  # noqa: F841 -- read by duckdb below
    distinct, rows = duckdb.sql(
        "SELECT COUNT(DISTINCT (iso, node, interval_start)), COUNT(*) FROM curated"
    ).fetchall()[0]
    assert distinct == rows == iso_run["truth"]["expected"]["curated_rows"]
    distinct, rows = iso_run["client"].execute(
        "SELECT COUNT(DISTINCT (iso, node, interval_start)), COUNT(*) "
        f"FROM {iso_run['table']} FINAL")[0]
    assert distinct == rows == iso_run["truth"]["expected"]["curated_rows"]


def test_quarantined_count_is_the_injected_late_count(iso_run):
    truth = iso_run["truth"]
    late = table(iso_run, QUARANTINE)
    assert late.height == truth["expected"]["late"]
    assert sorted(late["message_id"]) == sorted(m for m, _ in truth["late_messages"])
    delayed = {m for m, cause in truth["late_messages"] if cause == "delayed"}
    assert len(delayed) == truth["injected"]["late"]  # every injected late message ...
    assert delayed <= set(late["message_id"])  # ... is in quarantine
    assert (late["lateness_ms"] > 0).all()
    assert ((late["watermark_ms"] - late["original_timestamp"]) == late["lateness_ms"]).all()
    assert late["processing_date"].null_count() == 0


def test_corrections_end_as_the_newest_event_version_per_key(iso_run):
    truth = iso_run["truth"]
    newest = {(i, n, s): (v, lmp) for i, n, s, v, lmp, _ in truth["final"] if v > 1}
    assert newest  # some keys end corrected
    curated = table(iso_run, CURATED)
    got = {(r["iso"], r["node"], r["interval_start"].strftime("%Y-%m-%dT%H:%M:%SZ")):
           (r["event_version"], r["lmp"]) for r in curated.iter_rows(named=True)
           if r["event_version"] > 1}
    assert got == newest
    rows = iso_run["client"].execute(
        f"SELECT iso, node, toString(interval_start), event_version, lmp "
        f"FROM {iso_run['table']} FINAL WHERE event_version > 1")
    assert {(i, n, s.replace(" ", "T") + "Z"): (v, lmp) for i, n, s, v, lmp in rows} == newest
    # ClickHouse took the superseded versions too, and replaced them
    raw = iso_run["client"].execute(f"SELECT count() FROM {iso_run['table']}")[0][0]
    assert raw >= truth["expected"]["curated_rows"]


def test_the_silent_iso_does_not_stall_the_others(iso_run):
    truth = iso_run["truth"]
    silence = truth["injected"]["silence"]
    start, end = parse_utc(silence["from"]), parse_utc(silence["to"])
    assert end - start == 40 * 60_000
    # the others' prices during the silence are all curated, on time
    curated = table(iso_run, CURATED)
    keys = {(i, n, s) for i, n, s, *_ in truth["final"]
            if i != silence["iso"] and start <= parse_utc(s) < end}
    got = {(r["iso"], r["node"], r["interval_start"].strftime("%Y-%m-%dT%H:%M:%SZ"))
           for r in curated.iter_rows(named=True)
           if r["iso"] != silence["iso"]
           and silence["from"] <= r["interval_start"].strftime("%Y-%m-%dT%H:%M:%SZ")
           < silence["to"]}
    assert got == keys and keys
    # the watermark moved on while it was silent: its back-fill is judged against the
    # watermark the truth expects at its return, 10 minutes behind the other ISOs
    late = table(iso_run, QUARANTINE)
    ids = {m for m, cause in truth["late_messages"] if cause == "backfill"}
    backfilled = late.filter(late["message_id"].is_in(ids))
    assert backfilled.height == truth["expected"]["late_by_cause"]["backfill"]
    assert backfilled["watermark_ms"].min() == silence["watermark_at_resume_ms"]
    assert backfilled["watermark_ms"].min() > start + 20 * 60_000


def test_results_do_not_depend_on_batch_size_or_checkpoint_interval(iso_run, tmp_path):
    (tmp_path / "data").symlink_to(iso_run["folder"] / "data")
    doc, _ = run_template(tmp_path, None, checkpoint_interval_records=300,
                          checkpoint_interval_ms=None, batch_size=13)
    for name in (CURATED, "curated.rt_lmp_hourly"):
        again = read_table(doc["outputs"]["rt_lmp_5m"]["catalog"], name,
                           lambda p: tmp_path / p)
        assert canonical_order(again).equals(canonical_order(table(iso_run, name)))
    quarantine = read_table(doc["outputs"]["rt_lmp_5m"]["catalog"], QUARANTINE,
                            lambda p: tmp_path / p).drop("processing_date", "ingested_at")
    first = table(iso_run, QUARANTINE).drop("processing_date", "ingested_at")
    assert canonical_order(quarantine).equals(canonical_order(first))
