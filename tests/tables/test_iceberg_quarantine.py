"""The ISO quarantine example: late records into the Iceberg table
``quarantine.late_iso_lmp`` (partitioned by processing date and ISO) with the late metadata
columns; processing time stamped once per checkpoint, so a restart after midnight gives the
records it processes again the date the interrupted run gave them; ``verify`` passes."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

import surestream.examples
from surestream.connectors.tables.iceberg_catalog import open_catalog
from surestream.model.loader import load_spec
from surestream.runners.local.runner import LocalRunner

EXAMPLE = Path(surestream.examples.__file__).parent / "iso"
SRC = str(Path(__file__).resolve().parents[2] / "src")
DAY_MS = 86_400_000
#: 23:59:00 UTC on 2026-11-26: a restart a minute later is another processing date
BEFORE_MIDNIGHT = int(dt.datetime(2026, 11, 26, 23, 59, tzinfo=dt.UTC).timestamp() * 1000)


class Crash(Exception):
    """Stands for the process dying: the open checkpoint interval is never committed."""


def example(folder: Path) -> Path:
    shutil.copytree(EXAMPLE, folder, dirs_exist_ok=True)
    return folder / "late_iso_lmp.yaml"


def table(folder: Path, name: str):
    spec = load_spec(folder / "late_iso_lmp.yaml")
    return open_catalog(spec.outputs["late_iso_lmp"].catalog, spec.resolve).load_table(name)


def late_rows(folder: Path) -> pl.DataFrame:
    return pl.from_arrow(table(folder, "quarantine.late_iso_lmp").scan().to_arrow()).sort(
        "interval_start")


def test_late_records_land_in_the_quarantine_table_with_their_late_metadata(tmp_path):
    result = LocalRunner(load_spec(example(tmp_path)), clock=lambda: BEFORE_MIDNIGHT).run()
    assert result.written["curated"] == 144 and result.written["late_iso_lmp"] == 3
    assert len(result.rows("late_iso_lmp")) == 3  # read back from the table
    quarantine = table(tmp_path, "quarantine.late_iso_lmp")
    assert [(f.name, str(f.transform)) for f in quarantine.spec().fields] == [
        ("processing_date", "identity"), ("iso", "identity")]
    late = late_rows(tmp_path)
    assert late["iso"].to_list() == ["ERCOT"] * 3
    assert late["processing_date"].to_list() == [dt.date(2026, 11, 26)] * 3
    assert (late["lateness_ms"] > 0).all()
    assert (late["original_timestamp"] < late["watermark_ms"]).all()
    files = {Path(p).parent.parent.name + "/" + Path(p).parent.name
             for p in quarantine.inspect.files()["file_path"].to_pylist()}
    assert files == {"processing_date=2026-11-26/iso=ERCOT"}


def test_a_restart_after_midnight_keeps_the_stored_processing_date(tmp_path):
    clean, crashed = tmp_path / "clean", tmp_path / "crashed"
    LocalRunner(load_spec(example(clean)), clock=lambda: BEFORE_MIDNIGHT).run()
    batches = []

    def crash_late(progress) -> None:
        batches.append(progress)
        if len(batches) == 8:  # 128 records read: checkpoints after 48 and 96 records
            raise Crash

    with pytest.raises(Crash):
        LocalRunner(load_spec(example(crashed)), clock=lambda: BEFORE_MIDNIGHT,
                    progress=crash_late).run()
    # the late record read after the second checkpoint was stamped but never committed
    assert late_rows(crashed).height == 1
    restarted = LocalRunner(load_spec(example(crashed)),
                            clock=lambda: BEFORE_MIDNIGHT + DAY_MS).run()
    assert restarted.restored_from is not None
    # 00:35, stamped before the crash and processed again after midnight, keeps the date
    # (and ingested_at) stored with checkpoint 2, byte for byte; 01:10, first read after
    # the restart's own first checkpoint, has the new day's
    after, before = late_rows(crashed), late_rows(clean)
    assert after.height == 3
    assert after.head(2).equals(before.head(2))
    assert after["processing_date"].to_list() == [dt.date(2026, 11, 26)] * 2 + [
        dt.date(2026, 11, 27)]


def test_verify_passes_on_the_example(tmp_path):
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-m", "surestream", "verify",
                           str(example(tmp_path)), "--crash-points", "2",
                           "--workdir", str(tmp_path / "verify")],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("PASS") == 4 and "FAIL" not in proc.stdout
