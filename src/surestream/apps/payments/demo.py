"""``surestream demo payments``: the exactly-once payments system end to end.

1. simulate ``days`` of payments with retries, late events and fraud bursts (and the truth);
2. run the processor (``template.payments``) as a subprocess -- ``surestream run`` -- and
   kill it with SIGKILL in the middle of the run: at checkpoint ``kill_at`` (by default
   half-way), between one table's commit and the next (the fault point
   ``checkpoint.commit_partial``: the process kills itself, no cleanup);
3. run it again: it resumes from its last checkpoint and finishes;
4. reconcile the tables with the truth (``reconcile.py``): PASS for every day and every
   figure equal, the dedup state bounded.

Tables go to PostgreSQL when a DSN is given (or an embedded server is started), else to
the embedded DuckDB file. Returns the exit code: 0 only when everything reconciles.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from surestream.apps.payments.reconcile import Reconciliation, Tables, reconcile
from surestream.apps.payments.simulator import DATA_FILE, PaymentSimulation
from surestream.apps.payments.template import EMPTY_BY_DESIGN, TABLES, payments
from surestream.apps.payments.truth import PaymentTruth

KILL_POINT = "checkpoint.commit_partial"
EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


@dataclass
class DemoSettings:
    out: str = "out/demo-payments"
    days: int = 2
    events: int = 40_000
    seed: int = 7
    duplicate_rate: float = 0.02
    postgres: str | None = None
    embedded_postgres: bool = False
    #: checkpoints over the run (each every events/checkpoints input records)
    checkpoints: int = 20
    #: the checkpoint during whose commit the first run is killed (default: half-way)
    kill_at: int | None = None


def run_demo(s: DemoSettings, say: Callable[[str], None] = print) -> int:
    """Run the demo (see the module docstring); the exit code."""
    started = time.perf_counter()
    out = Path(s.out).resolve()
    if out.exists():
        shutil.rmtree(out)
    data = out / "data"
    sim = PaymentSimulation(seed=s.seed, days=s.days, events=s.events,
                            duplicate_rate=s.duplicate_rate)
    truth = sim.write(data)
    say(f"1. simulated {truth.events:,} payment events over {s.days} day(s) "
        f"(seed {s.seed}): {truth.unique:,} transactions, {truth.duplicates:,} network-retry "
        f"duplicates, {truth.late:,} late (> 1 h) -> {data}")
    for line in truth.table():
        say("   " + line)

    server = None
    dsn = s.postgres
    try:
        if dsn is None and s.embedded_postgres:
            from surestream.connectors.tables.postgres_server import EmbeddedPostgres

            server = EmbeddedPostgres().start()
            dsn = server.dsn(server.create_database())
            say(f"   embedded PostgreSQL on 127.0.0.1:{server.port}")
        if dsn is not None:
            taken = _existing_tables(dsn)
            if taken:
                say(f"demo payments: {', '.join(taken)} already exist in {dsn}: give a fresh "
                    "database (or drop them); the demo does not write into old tables")
                return EXIT_USAGE
        code = _run_and_reconcile(s, out, data, dsn, say, started)
    finally:
        if server is not None:
            server.stop()
    return code


def _existing_tables(dsn: str) -> list[str]:
    db = Tables(dsn)
    try:
        return [t for t in TABLES.values() if db.has(t)]
    finally:
        db.close()


def _run_and_reconcile(s: DemoSettings, out: Path, data: Path, dsn: str | None,
                       say: Callable[[str], None], started: float) -> int:
    with open(data / DATA_FILE, "rb") as f:
        lines = sum(1 for _ in f)
    every = max(1, lines // max(1, s.checkpoints))
    params: dict[str, Any] = {"input_path": str(data / DATA_FILE), "out_dir": str(out),
                              "postgres": dsn, "checkpoint_interval_ms": 3_600_000,
                              "batch_size": min(every, 65_536)}
    spec = payments(**params)
    spec["checkpoint"] = {"dir": str(out / "checkpoints"), "interval_records": every}
    spec_path = out / "payments.yaml"
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    where = "PostgreSQL" if dsn else f"DuckDB {out / 'payments.duckdb'}"
    kill_at = s.kill_at or max(1, (lines // every) // 2)
    say(f"2. running the processor ({spec_path}) into {where}, a checkpoint every "
        f"{every:,} records; SIGKILL at checkpoint {kill_at} between two tables' commits")
    first = _run(spec_path, {"SURESTREAM_FAULT": f"{KILL_POINT}:{kill_at}"})
    if first.returncode != -9:
        say(f"demo payments: the first run should have been killed (SIGKILL) at checkpoint "
            f"{kill_at} but exited {first.returncode}: {first.stderr[-2000:]}")
        return EXIT_FAIL
    say(f"   killed (SIGKILL, exit {first.returncode}) at checkpoint {kill_at}")
    second = _run(spec_path, {})
    if second.returncode != 0:
        say(f"demo payments: the resumed run failed (exit {second.returncode}): "
            f"{second.stderr[-2000:]}")
        return EXIT_FAIL
    resumed = next((ln.strip() for ln in (second.stderr + second.stdout).splitlines()
                    if ln.strip().startswith("resumed from")), "resumed from its last checkpoint")
    say(f"3. ran again: {resumed}; finished")
    result: Reconciliation = reconcile(dsn or str(out / "payments.duckdb"),
                                       PaymentTruth.read(data), out / "checkpoints")
    say("4. reconciliation (surestream payments reconcile) against the truth:")
    for line in result.lines():
        say("   " + line)
    stray = {tag: _lines(out / f"{tag}.jsonl") for tag in ("errors", *EMPTY_BY_DESIGN)}
    say("   records in errors / late windows (none expected): "
        + ", ".join(f"{tag} {n}" for tag, n in stray.items()))
    say(f"demo payments took {time.perf_counter() - started:.1f} s. Next:")
    if s.embedded_postgres and s.postgres is None:
        say("  (the embedded PostgreSQL server stops now, with its tables: give --postgres "
            "DSN to keep them)")
    else:
        tables = f"--tables {dsn}" if dsn else f"--tables {out / 'payments.duckdb'}"
        say(f"  surestream payments reconcile {tables} --truth {data} "
            f"--checkpoints {out / 'checkpoints'}")
    say(f"  surestream report {spec_path}")
    return EXIT_OK if result.ok and not any(stray.values()) else EXIT_FAIL


def _lines(path: Path) -> int:
    if not path.exists():
        return 0
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())


def _run(spec_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, **env}
    return subprocess.run([sys.executable, "-m", "surestream", "run", str(spec_path)],
                          capture_output=True, text=True, env=environment, timeout=1800)
