"""``surestream demo iso``: a simulated day of five ISOs' real-time LMP, through the hardened
template into embedded tables, reconciled exactly with the simulator's truth.

Steps: simulate the feed (``data/lmp.jsonl`` + ``truth.json``); write the template's spec
(``pipeline.yaml``, paths relative to the demo's folder, so it can be re-run, verified or
scanned); start ClickHouse (``EmbeddedClickHouse`` when clickhouse-server is installed, or
the server ``--clickhouse HOST:PORT`` names; neither: said plainly, Iceberg alone); run the
pipeline from scratch; reconcile every table with the truth (``iso_reconcile.py``); print
the report and the commands that query the tables. Exit 0 only when every check passes.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from surestream.apps.energy.iso_nodes import ISO_NODES
from surestream.apps.energy.iso_reconcile import (
    Check,
    clickhouse_checks,
    iceberg_checks,
    run_checks,
)
from surestream.apps.energy.iso_simulator import FEED_FILE, IsoSimulation
from surestream.apps.energy.iso_template import hardened_iso_streaming
from surestream.model.loader import build_spec
from surestream.runners.local.runner import LocalRunner

EXIT_OK, EXIT_FAILED = 0, 1
SPEC_FILE = "pipeline.yaml"
CLICKHOUSE_TABLE = "rt_lmp_5m"


@dataclass
class DemoOutcome:
    checks: list[Check]
    truth: dict[str, Any]
    clickhouse: str  # how ClickHouse took part, in words
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


@contextlib.contextmanager
def clickhouse_server(address: str | None) -> Iterator[tuple[dict[str, Any] | None, str]]:
    """``({host, port}, description)`` of the server to use, or ``(None, why not)``."""
    if address:
        host, _, port = address.rpartition(":")
        yield {"host": host or "127.0.0.1", "port": int(port)}, f"ClickHouse at {address}"
        return
    from surestream.connectors.tables.clickhouse_server import (
        ClickHouseNotInstalledError,
        EmbeddedClickHouse,
    )

    try:
        server = EmbeddedClickHouse().start()
    except ClickHouseNotInstalledError:
        yield None, ("ClickHouse: clickhouse-server is not installed and no --clickhouse "
                     "HOST:PORT was given, so the ReplacingMergeTree output is left out and "
                     "Iceberg alone is reconciled (install it: scripts/test-deps.sh)")
        return
    try:
        yield ({"host": server.host, "port": server.port},
               f"embedded clickhouse-server on {server.host}:{server.port}")
    finally:
        server.stop()


def fresh_folder(out: Path) -> None:
    """Remove what an earlier demo left in ``out`` (its own files only)."""
    for name in ("data", "warehouse", "checkpoints"):
        shutil.rmtree(out / name, ignore_errors=True)
    for name in ("errors.jsonl", "late_hourly.jsonl", SPEC_FILE):
        (out / name).unlink(missing_ok=True)


def run_iso_demo(out: Path, sim: IsoSimulation, clickhouse: str | None = None,
                 say: Any = print) -> DemoOutcome:
    """The demo end to end (module docstring); ``say`` prints progress lines."""
    timings: dict[str, float] = {}
    out.mkdir(parents=True, exist_ok=True)
    fresh_folder(out)
    started = time.perf_counter()
    truth = sim.write(out / "data")
    timings["simulate"] = time.perf_counter() - started
    say(f"  simulated {truth['lines']:,} lines into {out / 'data' / FEED_FILE} "
        f"({timings['simulate']:.1f} s)")
    with clickhouse_server(clickhouse) as (connection, how):
        say(f"  {how}")
        doc = hardened_iso_streaming(input_path=f"data/{FEED_FILE}", out_dir=".",
                                     clickhouse=connection)
        if connection is not None:
            doc["outputs"]["rt_lmp_5m_clickhouse"]["table"] = CLICKHOUSE_TABLE
        # the spec left for the next commands: the embedded server stops with the demo,
        # so its output is left out there (kept when --clickhouse names a server)
        kept = doc if clickhouse else hardened_iso_streaming(
            input_path=f"data/{FEED_FILE}", out_dir=".")
        (out / SPEC_FILE).write_text(yaml.safe_dump(kept, sort_keys=False))
        spec = build_spec(doc, base_dir=out)
        started = time.perf_counter()
        result = LocalRunner(spec).run()
        timings["run"] = time.perf_counter() - started
        say(f"  ran the template over {result.records_in:,} records in {timings['run']:.1f} s "
            f"({result.checkpoints} checkpoints)")
        started = time.perf_counter()
        catalog = doc["outputs"]["rt_lmp_5m"]["catalog"]
        checks = iceberg_checks(truth, catalog, out)
        checks += run_checks(truth, result.operator_counters, out / "errors.jsonl",
                             out / "late_hourly.jsonl")
        if connection is not None:
            from clickhouse_driver import Client

            client = Client(host=connection["host"], port=connection["port"])
            checks += clickhouse_checks(truth, client, CLICKHOUSE_TABLE)
        checks.append(_accounted(truth, result))
        timings["reconcile"] = time.perf_counter() - started
    return DemoOutcome(checks, truth, how, timings)


def _accounted(truth: dict[str, Any], result: Any) -> Check:
    """Every input line in exactly one place, counted from the run's outputs."""
    ops = result.operator_counters
    ended = (result.written.get("rt_lmp_5m", 0) + result.written.get("late_iso_lmp", 0)
             + ops.get("dedup_messages", {}).get("duplicates", 0)
             + ops.get("newest_version", {}).get("duplicates", 0)
             + result.written.get("errors", 0))
    return Check("every line in exactly one place (curated + late + duplicate + "
                 "superseded + error)", truth["lines"], ended)


def report(outcome: DemoOutcome, out: Path, clickhouse: str | None) -> list[str]:
    """The demo's closing report: each check, the verdict, the next commands."""
    width = max(len(c.name) for c in outcome.checks)
    lines = ["", "reconciliation with truth.json (expected = the simulator's truth):"]
    for c in outcome.checks:
        mark = "PASS" if c.ok else "FAIL"
        exp = f"{c.expected:,}" if isinstance(c.expected, int) else str(c.expected)
        act = f"{c.actual:,}" if isinstance(c.actual, int) else str(c.actual)
        lines.append(f"  {mark}  {c.name:<{width}}  expected {exp:>8}  got {act:>8}")
    failed = [c for c in outcome.checks if not c.ok]
    total = sum(outcome.timings.values())
    lines.append("")
    if failed:
        lines.append(f"FAILED: {len(failed)} of {len(outcome.checks)} checks do not "
                     "reconcile")
    else:
        lines.append(f"all {len(outcome.checks)} checks pass: the tables reconcile exactly "
                     f"with the truth ({total:.1f} s)")
    spec = out / SPEC_FILE
    lines += ["", "next:",
              f"  surestream tables scan {spec} --output rt_lmp_5m --limit 10",
              f"  surestream tables scan {spec} --output late_iso_lmp --limit 10",
              f"  surestream tables scan {spec} --output rt_lmp_hourly --limit 10",
              f"  surestream verify {spec} --crash-points 2",
              "  python -c \"from pyiceberg.catalog.sql import SqlCatalog; "
              f"c = SqlCatalog('surestream', uri='sqlite:///{out / 'warehouse' / 'catalog.db'}', "
              f"warehouse='file://{(out / 'warehouse').resolve()}'); "
              "import duckdb; t = c.load_table('quarantine.late_iso_lmp').scan().to_arrow(); "
              "print(duckdb.sql('SELECT iso, count(*) AS late, max(lateness_ms) FROM t "
              "GROUP BY iso ORDER BY iso'))\""]
    if clickhouse:
        host, _, port = clickhouse.rpartition(":")
        lines.append(f"  clickhouse-client --host {host or '127.0.0.1'} --port {port} -q "
                     f"'SELECT iso, count() FROM {CLICKHOUSE_TABLE} FINAL GROUP BY iso'")
    return lines


def describe(sim: IsoSimulation) -> str:
    nodes = sum(len(ISO_NODES[i]) for i in sim.isos)
    return (f"{sim.hours} h of real-time 5-minute LMP for {', '.join(sim.isos)} "
            f"({nodes} nodes), seed {sim.seed}")
