"""``surestream demo medallion`` end to end on a small input: three hops into Iceberg, the
bronze and silver hops killed with SIGKILL mid-commit and resumed, every layer reconciled
exactly with the truth -- and the reconciliation FAILs when a fault is planted in a table
(so it cannot pass vacuously)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from surestream.apps.medallion.reconcile import Check, lines_of, reconcile
from surestream.apps.medallion.simulator import MedallionSimulation
from surestream.apps.medallion.templates import SILVER_TABLE, default_catalog
from surestream.apps.medallion.truth import MedallionTruth
from surestream.cli.main import main

SETTINGS = {"events": 500, "seed": 5, "checkpoints": 4}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("medallion") / "demo"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["demo", "medallion", "--out", str(out), "--events",
                     str(SETTINGS["events"]), "--seed", str(SETTINGS["seed"]),
                     "--checkpoints", str(SETTINGS["checkpoints"])])
    return {"out": out, "code": code, "text": printed.getvalue()}


def _checks(out: Path) -> dict[str, Check]:
    sim = MedallionSimulation(seed=SETTINGS["seed"], events=SETTINGS["events"])
    landing, _ = sim.feed_lines()
    checks = reconcile(MedallionTruth.read(out / "data"), landing, default_catalog("."), out,
                       lambda: lines_of(out / "dlq-events.jsonl"), [])
    return {c.name: c for c in checks}


def test_demo_reconciles_exactly_after_kills(demo: dict[str, Any]) -> None:
    text = demo["text"]
    assert demo["code"] == 0, text
    # bronze and silver were each killed mid-commit and resumed from a checkpoint
    assert text.count("killed with SIGKILL at checkpoint 2") == 2, text
    assert text.count("resumed from checkpoint") == 2, text
    assert "FAIL" not in text
    assert text.count("PASS  ") == 13
    truth = MedallionTruth.read(demo["out"] / "data")
    assert truth.total_invalid > 0 and truth.total_duplicates > 0
    # the DLQ file holds the platform's message shape, one per invalid event
    messages = pl.read_ndjson(demo["out"] / "dlq-events.jsonl")
    assert messages.columns == ["original_message", "error", "timestamp"]
    assert messages.height == truth.total_invalid


def test_reconciliation_fails_on_planted_faults(demo: dict[str, Any]) -> None:
    out = demo["out"]
    assert all(c.ok for c in _checks(out).values())
    # a DLQ message lost
    dlq = out / "dlq-events.jsonl"
    dlq.write_text("".join(dlq.read_text().splitlines(keepends=True)[1:]))
    # an event written twice into silver
    from surestream.connectors.tables.iceberg_catalog import open_catalog

    catalog = open_catalog(default_catalog("."), lambda p: out / p)
    table = catalog.load_table(SILVER_TABLE)
    table.append(table.scan(limit=1).to_arrow().cast(table.schema().as_arrow()))
    failed = {c.name for c in _checks(out).values() if not c.ok}
    assert "silver: no event_id twice (distinct event_ids = rows)" in failed
    assert "silver = valid unique (rows per feed)" in failed
    assert "DLQ = invalid (dlq-events messages)" in failed
    assert "duplicates = bronze - silver - DLQ (every row in exactly one place)" in failed


def test_bad_kill_at_is_a_usage_error(tmp_path: Path) -> None:
    with contextlib.redirect_stderr(io.StringIO()) as err:
        code = main(["demo", "medallion", "--out", str(tmp_path), "--kill-at", "platinum"])
    assert code == 2
    assert "'platinum' is not a hop" in err.getvalue()


def test_a_table_never_written_reads_as_no_rows(tmp_path: Path) -> None:
    # e.g. silver.dlq_events of an input without an invalid event: the DLQ checks then
    # compare 0 with the truth's 0 instead of failing to find the table
    from surestream.apps.medallion.reconcile import read_table
    from surestream.apps.medallion.templates import DLQ_TABLE

    empty = read_table(default_catalog("."), tmp_path, DLQ_TABLE)
    assert (empty.height, empty.columns) == (0, ["dlq_reason", "dlq_field"])
