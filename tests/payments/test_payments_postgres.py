"""The payment processor into a real PostgreSQL server, killed with SIGKILL in the middle
of the run at two points (between two tables' commits; after a table's rows and commit
row are in but before the checkpoint is done) and resumed: nothing lost, nothing doubled,
every figure equal to the simulator's truth."""

from __future__ import annotations

import psycopg
from conftest import run, write_spec

from surestream.apps.payments.reconcile import PASS, reconcile


def test_sigkill_mid_run_loses_and_doubles_nothing(payments_data, postgres_server,
                                                   tmp_path):
    data, truth = payments_data
    dsn = postgres_server.dsn(postgres_server.create_database())
    spec = write_spec(tmp_path, data, postgres=dsn)
    for fault in ("checkpoint.commit_partial:2", "postgres.committed:3"):
        killed = run(spec, fault=fault)
        assert killed.returncode == -9, killed.stderr
    with psycopg.connect(dsn) as con:  # the kills left part of the run committed
        partial = con.execute("SELECT COUNT(*) FROM payment_transactions").fetchone()[0]
    assert 0 < partial < truth.unique
    done = run(spec)
    assert done.returncode == 0, done.stderr
    result = reconcile(dsn, truth, tmp_path / "checkpoints")
    for day in result.days:
        assert day.status == PASS and day.mismatches == {}, (day.day, day.mismatches)
        assert day.distinct == day.rows == truth.days[day.day].transactions
    assert result.ok
    with psycopg.connect(dsn) as con:
        audit = con.execute("SELECT SUM(duplicate_occurrences - 1) FROM "
                            "deduplication_audit").fetchone()[0]
        late = con.execute("SELECT COUNT(*) FROM quarantine_late_payments").fetchone()[0]
    assert (audit, late) == (truth.duplicates, truth.late)
