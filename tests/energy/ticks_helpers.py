"""Shared helpers of the vendor-ticks tests (imported by the test modules beside it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl

from surestream.apps.energy.ticks_simulator import DATA_FILE, TickSimulation
from surestream.apps.energy.ticks_tables import read_tables
from surestream.apps.energy.ticks_template import vendor_ticks_yaml
from surestream.apps.energy.ticks_truth import TicksTruth

#: a small feed: 10 minutes, 4 vendors x 5 symbols, one vendor idle for 5 minutes
SMALL = TickSimulation(minutes=10, seed=7, ticks_per_s=2)
#: columns that hold processing time (one value per checkpoint): differ between runs
PROCESSING_TIME = ("processing_date", "ingested_at")


def feed(folder: Path, sim: TickSimulation = SMALL) -> TicksTruth:
    return sim.write(folder)


def workspace(folder: Path, data: Path, **params: object) -> Path:
    """A folder holding ``vendor_ticks.yaml`` over ``data``'s feed, outputs under out/."""
    folder.mkdir(parents=True, exist_ok=True)
    spec = folder / "vendor_ticks.yaml"
    spec.write_text(vendor_ticks_yaml(input_path=str(data / DATA_FILE), out_dir="out",
                                      **params))
    return spec


def run_cli(spec: Path, *sets: str, fault: str | None = None,
            summary: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``surestream run`` in a child process (killed with SIGKILL at ``fault``, if given)."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "SURESTREAM_FAULT"}
    if fault:
        env["SURESTREAM_FAULT"] = fault
    argv = [sys.executable, "-m", "surestream", "run", str(spec)]
    for s in sets:
        argv += ["--set", s]
    if summary is not None:
        argv += ["--summary", str(summary)]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)


def table_rows(out_dir: Path) -> dict[str, pl.DataFrame]:
    """Each table's rows, processing-time columns left out, in a canonical order."""
    found = {}
    for view, table in read_tables(out_dir).items():
        frame = pl.from_arrow(table)
        frame = frame.drop([c for c in PROCESSING_TIME if c in frame.columns])
        found[view] = frame.sort(frame.columns)
    return found
