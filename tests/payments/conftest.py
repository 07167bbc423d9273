"""Fixtures of the payments tests: a small simulated stream with its truth, the processor
run as ``surestream run`` would run it, and a PostgreSQL server of our own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from postgres_server import postgres_server  # noqa: F401 -- the shared session server

from surestream.apps.payments.simulator import DATA_FILE, PaymentSimulation
from surestream.apps.payments.template import payments
from surestream.apps.payments.truth import PaymentTruth

#: small but with every fault: two days, retries earlier and later, late events, bursts
SMALL = {"seed": 11, "days": 2, "events": 3000, "late_rate": 0.003}


@pytest.fixture(scope="session")
def payments_data(tmp_path_factory) -> tuple[Path, PaymentTruth]:
    folder = tmp_path_factory.mktemp("payments-data")
    truth = PaymentSimulation(**SMALL).write(folder)
    return folder, truth


def write_spec(folder: Path, data: Path, postgres: str | None = None,
               every: int = 500) -> Path:
    """The processor's spec (factory defaults) over ``data``, a checkpoint every
    ``every`` input records, in ``folder``."""
    spec = payments(input_path=str(data / DATA_FILE), out_dir=str(folder), postgres=postgres,
                    batch_size=every)
    spec["checkpoint"] = {"dir": str(folder / "checkpoints"), "interval_records": every}
    path = folder / "payments.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def run(spec: Path, fault: str | None = None, **kw: Any) -> subprocess.CompletedProcess[str]:
    """``surestream run spec`` in a subprocess (``fault``: SURESTREAM_FAULT point:n)."""
    env = {**os.environ}
    if fault:
        env["SURESTREAM_FAULT"] = fault
    return subprocess.run([sys.executable, "-m", "surestream", "run", str(spec)],
                          capture_output=True, text=True, env=env, timeout=300, **kw)


@pytest.fixture(scope="session")
def duckdb_run(payments_data, tmp_path_factory) -> Path:
    """One clean run of the processor into DuckDB; its folder."""
    data, _ = payments_data
    folder = tmp_path_factory.mktemp("payments-duckdb")
    done = run(write_spec(folder, data))
    assert done.returncode == 0, done.stderr
    return folder
