"""The vendor_ticks template's definition of done, against the simulator's truth: exact
reconciliation (curated, duplicates, late, malformed, bars), no duplicate keys, the late
path measurable per tick, idle vendors not stalling the others, and a replay from
checkpoints identical to the uninterrupted run."""

from __future__ import annotations

import json

import duckdb
import pytest
from ticks_helpers import feed, run_cli, table_rows, workspace

from surestream.apps.energy.ticks_reconcile import reconcile
from surestream.apps.energy.ticks_tables import read_tables
from surestream.apps.energy.ticks_truth import BAR_MS
from surestream.model.loader import build_spec, load_spec_dict
from surestream.runners.local.runner import LocalRunner


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory):
    """One uninterrupted run over the small feed: (truth, out_dir, run result); the feed
    is in ``<out_dir>/../../data``."""
    root = tmp_path_factory.mktemp("ticks-clean")
    truth = feed(root / "data")
    spec_file = workspace(root / "run", root / "data")
    spec = build_spec(load_spec_dict(str(spec_file)), spec_file.parent, str(spec_file))
    result = LocalRunner(spec).run()
    return truth, spec_file.parent / "out", result


def test_the_feed_has_every_fault_the_template_must_handle(clean):
    truth, _, _ = clean
    assert truth.duplicates > 0 and truth.late > 0 and truth.malformed > 0 and truth.idle
    assert all(n > 0 for n in truth.malformed_kinds.values())
    assert truth.lines == truth.curated + truth.duplicates + truth.late + truth.malformed


def test_every_count_reconciles_exactly_with_the_truth(clean):
    truth, out, result = clean
    checks = reconcile(out, truth, result.counters.get("duplicates", 0))
    assert [c.name for c in checks if not c.ok] == []
    assert result.written["ticks"] == truth.curated
    assert result.written["late_vendor_ticks"] == truth.late
    assert result.written["errors"] == truth.malformed


def test_curated_ticks_have_no_duplicate_keys(clean):
    truth, out, _ = clean
    con = duckdb.connect()
    con.register("vendor_ticks", read_tables(out)["vendor_ticks"])
    rows, distinct = con.execute("SELECT COUNT(*), COUNT(DISTINCT (vendor, symbol, tick_id)) "
                                 "FROM vendor_ticks").fetchone()
    assert rows == distinct == truth.curated


def test_the_quarantine_holds_each_late_tick_with_watermark_lateness_and_timestamp(clean):
    truth, out, _ = clean
    late = table_rows(out)["late_vendor_ticks"]
    assert late.height == truth.late
    found = {(r["vendor"], r["tick_id"]): (r["original_timestamp"], r["watermark_ms"],
                                           r["lateness_ms"]) for r in late.iter_rows(named=True)}
    assert found == {(t["vendor"], t["tick_id"]): (t["event_ms"], t["watermark_ms"],
                                                   t["lateness_ms"]) for t in truth.late_ticks}
    assert all(t["lateness_ms"] >= 0 for t in truth.late_ticks)
    stamped = read_tables(out)["late_vendor_ticks"]
    assert stamped.column("processing_date").null_count == 0


def test_an_idle_vendor_does_not_stall_the_others(clean):
    truth, out, _ = clean
    (period,) = truth.idle
    begin, end, idle_vendor = period["from_ms"], period["to_ms"], period["vendor"]
    assert period["own_ticks"] == 0 and period["others_curated"] > 0
    con = duckdb.connect()
    tables = read_tables(out)
    for view, table in tables.items():
        con.register(view, table)
    # the others' ticks while the vendor was silent: all curated, none held back as late
    others = con.execute(
        "SELECT COUNT(*) FROM vendor_ticks WHERE vendor <> $v AND event_time >= "
        "make_timestamp($a * 1000) AND event_time < make_timestamp($b * 1000)",
        {"v": idle_vendor, "a": begin, "b": end}).fetchone()[0]
    assert others == period["others_curated"]
    # their bars for every minute of the silence, exactly as the truth has them
    expected = sorted((b["symbol"], b["window_start_ms"], b["ticks"], b["volume"])
                      for b in truth.bars if begin <= b["window_start_ms"] < end)
    assert len({b[1] for b in expected}) == (end - begin) // BAR_MS
    found = con.execute("SELECT symbol, window_start, ticks, volume FROM tick_bars_1m "
                        "WHERE window_start >= $a AND window_start < $b "
                        "ORDER BY ALL", {"a": begin, "b": end}).fetchall()
    assert sorted(found) == expected
    # the watermark moved on during the silence: ticks quarantined then carry it
    moving = sorted(t["watermark_ms"] for t in truth.late_ticks
                    if begin <= t["watermark_ms"] < end)
    assert len(set(moving)) >= 2
    quarantined = sorted(r[0] for r in con.execute(
        "SELECT watermark_ms FROM late_vendor_ticks WHERE watermark_ms >= $a AND "
        "watermark_ms < $b", {"a": begin, "b": end}).fetchall())
    assert quarantined == moving


def test_a_replay_from_checkpoints_is_identical_to_the_uninterrupted_run(clean, tmp_path):
    truth, out, _ = clean
    data = out.parent.parent / "data"
    spec = workspace(tmp_path / "replay", data)
    sets = ("checkpoint.interval_records=600", "runtime.batch_size=300")
    killed = run_cli(spec, *sets, fault="checkpoint.durable:3")
    assert killed.returncode == -9, killed.stderr
    summary = tmp_path / "summary.json"
    resumed = run_cli(spec, *sets, summary=summary)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(summary.read_text())["restored_from"] is not None
    replayed, uninterrupted = table_rows(spec.parent / "out"), table_rows(out)
    assert set(replayed) == set(uninterrupted) == {"vendor_ticks", "tick_bars_1m",
                                                   "late_vendor_ticks"}
    for view, frame in uninterrupted.items():
        assert replayed[view].equals(frame), view
    assert replayed["vendor_ticks"].height == truth.curated
