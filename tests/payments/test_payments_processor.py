"""The payment processor into DuckDB, judged against the simulator's truth: every table,
the fraud flags, the earliest occurrence kept, the audit, the late path, and a planted
duplicate that the reconciliation must catch."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import duckdb
import polars as pl

from surestream.apps.payments.reconcile import FAIL_DUPLICATES, PASS, reconcile
from surestream.apps.payments.simulator import DATA_FILE
from surestream.apps.payments.truth import TRANSACTIONS_FILE


def table(folder, name: str) -> pl.DataFrame:
    with duckdb.connect(str(folder / "payments.duckdb"), read_only=True) as con:
        return con.sql(f"SELECT * FROM {name}").pl()


def expected(data) -> pl.DataFrame:
    return pl.read_parquet(data / TRANSACTIONS_FILE)


def test_every_day_passes_and_every_figure_equals_the_truth(payments_data, duckdb_run):
    data, truth = payments_data
    result = reconcile(str(duckdb_run / "payments.duckdb"), truth, duckdb_run / "checkpoints")
    assert [d.day for d in result.days] == sorted(truth.days)
    for day in result.days:
        want = truth.days[day.day]
        assert day.status == PASS
        assert (day.distinct, day.rows) == (want.transactions, want.transactions)
        assert day.amount_cents == {c: v for c, v in want.amount_cents.items() if v}
        assert day.duplicates == want.duplicates and day.late == want.late
        assert day.mismatches == {}
    assert result.ok
    # the dedup state is bounded: far below the transactions of the whole run
    assert result.state is not None and len(result.state.keys) >= 5
    assert result.state.bounded and result.state.peak < truth.unique // 3


def test_fraud_flags_equal_the_truth(payments_data, duckdb_run):
    data, truth = payments_data
    want = expected(data).select("transaction_id", "velocity_count", "velocity_flag",
                                 "risk_level", "fraud_score", "is_suspicious")
    got = table(duckdb_run, "payment_transactions_fraud").select(want.columns)
    assert got.sort("transaction_id").equals(want.sort("transaction_id"))
    assert want["velocity_flag"].sum() >= 3 * 3  # bursts were injected and found
    assert (want["risk_level"] == "HIGH").sum() > 0


def test_dedup_keeps_the_occurrence_with_the_earliest_event_time(payments_data, duckdb_run):
    data, _ = payments_data
    lines = [json.loads(x) for x in (data / DATA_FILE).read_text().splitlines()]
    first_arrival: dict[str, str] = {}
    for r in lines:
        first_arrival.setdefault(r["transaction_id"], r["event_time"])
    want = expected(data).select("transaction_id", "event_time_ms", "amount_cents")
    got = table(duckdb_run, "payment_transactions")
    joined = want.join(got.select("transaction_id", "event_time_ms", "event_time"),
                       on="transaction_id", suffix="_got")
    assert joined.height == want.height == got.height
    assert (joined["event_time_ms"] == joined["event_time_ms_got"]).all()
    # retries that came later but carried an earlier event time exist, and won
    retried_earlier = [t for t, e in zip(joined["transaction_id"], joined["event_time"],
                                         strict=True) if e < first_arrival[t]]
    assert len(retried_earlier) >= 3


def test_audit_table_counts_every_occurrence(payments_data, duckdb_run):
    data, truth = payments_data
    want = expected(data).filter(pl.col("occurrences") > 1).select(
        "transaction_id", first_occurrence_time="event_time_ms",
        duplicate_occurrences="occurrences")
    got = table(duckdb_run, "deduplication_audit").select(want.columns)
    assert got.sort("transaction_id").equals(want.sort("transaction_id"))
    assert int((got["duplicate_occurrences"] - 1).sum()) == truth.duplicates
    assert table(duckdb_run, "duplicate_payments").height == truth.duplicates


def test_late_payments_are_quarantined_and_counted(payments_data, duckdb_run):
    _, truth = payments_data
    late = table(duckdb_run, "quarantine_late_payments")
    assert truth.late >= 3 and late.height == truth.late
    assert (late["lateness_ms"] > 0).all()
    assert not set(late["transaction_id"]) & set(
        table(duckdb_run, "payment_transactions")["transaction_id"])


def test_a_planted_duplicate_fails_the_day(payments_data, duckdb_run, tmp_path):
    data, truth = payments_data
    planted = tmp_path / "planted.duckdb"
    shutil.copy(duckdb_run / "payments.duckdb", planted)
    with duckdb.connect(str(planted)) as con:
        con.execute("INSERT INTO payment_transactions SELECT * FROM payment_transactions "
                    "WHERE event_date = (SELECT MAX(event_date) FROM payment_transactions) "
                    "LIMIT 1")
    result = reconcile(str(planted), truth)
    statuses = {d.day: d.status for d in result.days}
    last = max(truth.days)
    assert statuses[last] == FAIL_DUPLICATES
    assert all(s == PASS for day, s in statuses.items() if day != last)
    assert not result.ok
    cli = subprocess.run([sys.executable, "-m", "surestream", "payments", "reconcile",
                          "--tables", str(planted), "--truth", str(data)],
                         capture_output=True, text=True)
    assert cli.returncode == 1 and FAIL_DUPLICATES in cli.stdout
    assert "RECONCILIATION FAIL" in cli.stdout
