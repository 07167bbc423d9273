"""The payment processor reading Kafka: the simulated stream published to a topic by
``surestream simulate payments --kafka``, a bounded run (``stop_at: end``) of the template's
Kafka source whose connection settings come only from the environment
(``KAFKA_BOOTSTRAP_SERVERS``, ``KAFKA_TOPIC_PAYMENTS``, ``CHECKPOINT_LOCATION``), and
tables equal to the file run's and to the simulator's truth. Real broker (tansu)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import duckdb
import polars as pl
import pytest
import yaml
from conftest import SMALL  # tests/payments/conftest.py

from surestream.apps.payments.reconcile import PASS, reconcile
from surestream.apps.payments.template import TABLES, payments


def tables(db) -> dict[str, pl.DataFrame]:
    """Every table of a DuckDB file, rows sorted (so order of commits does not matter)."""
    with duckdb.connect(str(db), read_only=True) as con:
        return {name: (frame := con.sql(f"SELECT * FROM {name}").pl()).sort(frame.columns)
                for name in TABLES.values()}


def environment(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("KAFKA_BOOTSTRAP_SERVERS", "KAFKA_TOPIC_PAYMENTS",
                        "CHECKPOINT_LOCATION", "SURESTREAM_BOOTSTRAP")}
    return {**env, **settings}


@pytest.fixture(scope="module")
def kafka_run(kafka_bootstrap, tmp_path_factory, payments_data):
    """The small stream published with the CLI, then the Kafka-sourced processor run
    bounded with its settings from the environment only; (run folder, checkpoint folder,
    the published tally)."""
    topic = f"payments.kafka-run.{uuid.uuid4().hex[:8]}"  # (kafka_topic: per test)
    folder = tmp_path_factory.mktemp("payments-kafka")
    published = subprocess.run(
        [sys.executable, "-m", "surestream", "simulate", "payments", "--kafka",
         "--seed", str(SMALL["seed"]), "--days", str(SMALL["days"]),
         "--events", str(SMALL["events"]), "--late-rate", str(SMALL["late_rate"]),
         "--out", str(folder / "truth")],
        capture_output=True, text=True, timeout=120,
        env=environment(KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap, KAFKA_TOPIC_PAYMENTS=topic))
    assert published.returncode == 0, published.stderr
    spec = payments(source="kafka", out_dir=str(folder), batch_size=500)
    spec["checkpoint"]["interval_records"] = 500  # several checkpoints in a small run
    path = folder / "payments-kafka.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    checkpoints = tmp_path_factory.mktemp("payments-kafka-checkpoints")
    done = subprocess.run(
        [sys.executable, "-m", "surestream", "run", str(path)], capture_output=True,
        text=True, timeout=300,
        env=environment(KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap, KAFKA_TOPIC_PAYMENTS=topic,
                        CHECKPOINT_LOCATION=str(checkpoints)))
    assert done.returncode == 0, done.stderr
    return folder, checkpoints, published.stdout


def test_the_spec_names_its_connection_settings_only_as_environment_placeholders():
    spec = payments(source="kafka")
    assert spec["source"]["bootstrap"] == "${KAFKA_BOOTSTRAP_SERVERS:-}"
    assert spec["source"]["topics"] == ["${KAFKA_TOPIC_PAYMENTS:-payments}"]
    assert spec["checkpoint"]["dir"] == "${CHECKPOINT_LOCATION:-out/payments/checkpoints}"
    with pytest.raises(ValueError, match="source"):
        payments(source="kinesis")


def test_every_event_was_published_and_acknowledged(kafka_run, payments_data):
    _, truth = payments_data
    _, _, printed = kafka_run
    assert f"{truth.events:,} sent, {truth.events:,} acknowledged" in printed


def test_kafka_run_reconciles_exactly_with_the_truth(kafka_run, payments_data):
    folder, checkpoints, _ = kafka_run
    _, truth = payments_data
    result = reconcile(str(folder / "payments.duckdb"), truth, checkpoints)
    assert [d.day for d in result.days] == sorted(truth.days)
    for day in result.days:
        want = truth.days[day.day]
        assert day.status == PASS
        assert (day.distinct, day.rows) == (want.transactions, want.transactions)
        assert day.duplicates == want.duplicates and day.late == want.late
        assert day.mismatches == {}
    assert result.ok
    # the checkpoints went where CHECKPOINT_LOCATION said, not to the spec's default
    assert any(checkpoints.iterdir()) and not (folder / "checkpoints").exists()


def test_kafka_run_writes_the_same_tables_as_the_file_run(kafka_run, duckdb_run):
    folder, _, _ = kafka_run
    from_kafka = tables(folder / "payments.duckdb")
    from_file = tables(duckdb_run / "payments.duckdb")
    for name in TABLES.values():
        assert from_kafka[name].equals(from_file[name]), name
    assert from_kafka["payment_transactions"].height > 0
