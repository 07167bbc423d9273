"""``surestream demo medallion --kafka``: the feeds published to their topics on a real
(embedded) broker, bronze read from them (raw messages, topic/partition/offset), the DLQ
to the ``dlq-events`` topic; bronze and silver killed with SIGKILL mid-commit and resumed;
every layer reconciled exactly with the truth (the DLQ topic read back whole)."""

from __future__ import annotations

from pathlib import Path

from surestream.apps.medallion.demo import DemoSettings, run_demo
from surestream.apps.medallion.templates import BRONZE_TABLE, default_catalog


def test_medallion_through_kafka_reconciles_after_kills(tmp_path: Path) -> None:
    said: list[str] = []
    outcome = run_demo(DemoSettings(out=str(tmp_path / "demo"), events=400, seed=9,
                                    checkpoints=3, kafka=True), say=said.append)
    text = "\n".join(said)
    assert outcome.ok, text
    assert text.count("killed with SIGKILL") == 2, text
    assert text.count("resumed from checkpoint") == 2, text
    checks = {c.name: c for c in outcome.checks}
    assert checks["DLQ = invalid (dlq-events messages)"].actual > 0
    # bronze's lineage is the topic and the offset of each message
    from surestream.apps.medallion.reconcile import read_table

    bronze = read_table(default_catalog("."), tmp_path / "demo", BRONZE_TABLE)
    assert set(bronze["ingest_source"].unique()) == {"raw-events", "raw-transactions",
                                                    "raw-metrics"}
    assert bronze.filter(bronze["ingest_source"] == "raw-metrics")["ingest_offset"] \
        .sort().to_list() == list(range(int((bronze["ingest_source"] == "raw-metrics").sum())))
