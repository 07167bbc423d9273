"""Reconcile a ``vendor_ticks`` run's tables with the simulator's truth, exactly.

Every expected value comes from ``truth.json`` (``ticks_truth``), never from the run; every
found value from what the run committed (its Iceberg tables, its errors file) -- plus the
run's duplicates counter where one is given (the template counts dropped duplicates; it
does not store them).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from surestream.apps.energy.ticks_tables import error_lines, read_tables
from surestream.apps.energy.ticks_truth import TicksTruth, keys_digest

BAR_COLUMNS = ("symbol", "window_start", "ticks", "volume", "open", "high", "low", "close")


@dataclass(frozen=True)
class Check:
    """One reconciliation line: what the run produced against what the truth says."""

    name: str
    found: Any
    expected: Any

    @property
    def ok(self) -> bool:
        return self.found == self.expected


def reconcile(out_dir: str | Path, truth: TicksTruth,
              duplicates_dropped: int | None = None) -> list[Check]:
    """The checks of one run's outputs in ``out_dir`` against ``truth``."""
    tables = read_tables(out_dir)
    con = duckdb.connect()
    for view, table in tables.items():
        con.register(view, table)
    curated = tables.get("vendor_ticks")
    rows = distinct = 0
    keys: list[str] = []
    if curated is not None:
        rows, distinct = con.execute("SELECT COUNT(*), COUNT(DISTINCT (vendor, symbol, tick_id)) "
                                 "FROM vendor_ticks").fetchone()
        keys = sorted(f"{v}\t{s}\t{t}" for v, s, t in con.execute(
            "SELECT vendor, symbol, tick_id FROM vendor_ticks").fetchall())
    checks = [
        Check("curated ticks (curated.vendor_ticks)", rows, truth.curated),
        Check("curated: COUNT(DISTINCT key) = COUNT(*)", distinct, rows),
        Check("curated keys (sha256 of the sorted keys)", keys_digest(keys),
              truth.curated_keys_sha256),
    ]
    if duplicates_dropped is not None:
        checks.append(Check("duplicates dropped (dedup counter)", duplicates_dropped,
                            truth.duplicates))
    late = tables.get("late_vendor_ticks")
    quarantined = _late_rows(con) if late is not None else []
    checks += [
        Check("late ticks quarantined (quarantine.late_vendor_ticks)", len(quarantined),
              truth.late),
        Check("quarantine: watermark, lateness, original timestamp per tick",
              sorted(quarantined), sorted(
                  (t["vendor"], t["symbol"], t["tick_id"], t["event_ms"], t["watermark_ms"],
                   t["lateness_ms"]) for t in truth.late_ticks)),
        Check("malformed -> errors.jsonl", len(error_lines(out_dir)), truth.malformed),
    ]
    bars = _bars(con) if tables.get("tick_bars_1m") is not None else []
    checks += [
        Check("1-minute bars (curated.tick_bars_1m)", len(bars), len(truth.bars)),
        Check("bars: open, high, low, close, volume, ticks", bars,
              [tuple(b[c if c != "window_start" else "window_start_ms"] for c in BAR_COLUMNS)
               for b in truth.bars]),
        Check("late bars (late_bars.jsonl)", _lines(Path(out_dir) / "late_bars.jsonl"), 0),
    ]
    for vendor, counts in truth.per_vendor.items():
        found = sum(1 for k in keys if k.split("\t", 1)[0] == vendor)
        checks.append(Check(f"curated ticks of {vendor}", found, counts["curated"]))
    for period in truth.idle:
        found = con.execute(
            "SELECT COUNT(*) FROM vendor_ticks WHERE vendor <> $v AND event_time >= "
            "make_timestamp($a * 1000) AND event_time < make_timestamp($b * 1000)",
            {"v": period["vendor"], "a": period["from_ms"], "b": period["to_ms"]}
        ).fetchone()[0] if curated is not None else 0
        checks.append(Check(f"others' ticks while {period['vendor']} was idle", found,
                            period["others_curated"]))
    return checks


def _late_rows(con: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
    return con.execute("SELECT vendor, symbol, tick_id, original_timestamp, watermark_ms, "
                   "lateness_ms FROM late_vendor_ticks").fetchall()


def _bars(con: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
    return con.execute(f"SELECT {', '.join(BAR_COLUMNS)} FROM tick_bars_1m "
                   "ORDER BY symbol, window_start").fetchall()


def _lines(path: Path) -> int:
    return len(path.read_bytes().splitlines()) if path.is_file() else 0
