"""Reconcile the ISO pipeline's tables with the simulator's truth, exactly.

Each check compares what the tables hold (read back from Iceberg, and from ClickHouse with
``FINAL`` when it was written) with ``truth.json`` -- figures the simulator worked out from
the feed alone (``iso_truth.py``), never from the pipeline's output. A run reconciles only
when every check passes.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import polars as pl

from surestream.apps.reconcile_check import Check
from surestream.connectors.tables.iceberg_read import read_table

CURATED, HOURLY, QUARANTINE = "curated.rt_lmp_5m", "curated.rt_lmp_hourly", \
    "quarantine.late_iso_lmp"
KEY = ["iso", "node", "interval_start"]
LATE_METADATA = ("watermark_ms", "lateness_ms", "original_timestamp")


def _ts_text(frame: pl.DataFrame, column: str) -> pl.Expr:
    dtype = frame.schema[column]
    if isinstance(dtype, pl.Datetime):
        return pl.col(column).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return pl.col(column).cast(pl.String)


def _final_rows(frame: pl.DataFrame) -> set[tuple[Any, ...]]:
    """``(iso, node, interval_start, event_version, lmp)`` of each row."""
    if frame.is_empty():
        return set()
    rows = frame.select("iso", "node", _ts_text(frame, "interval_start"),
                        pl.col("event_version").cast(pl.Int64), "lmp")
    return set(rows.iter_rows())


def iceberg_checks(truth: dict[str, Any], catalog: dict[str, Any], base: Path) -> list[Check]:
    """Curated rows, keys, final versions and prices; quarantine; hourly aggregates."""
    exp = truth["expected"]
    resolve = lambda p: (base / p)  # noqa: E731 -- the spec's relative-path rule
    curated = read_table(catalog, CURATED, resolve)
    truth_final = {(iso, node, start, version, lmp)
                   for iso, node, start, version, lmp, _ in truth["final"]}
    keys = curated.select(KEY).n_unique() if curated.height else 0
    corrected = (curated.filter(pl.col("event_version") > 1).height if curated.height else 0)
    checks = [
        Check("curated rows (Iceberg curated.rt_lmp_5m)", exp["curated_rows"], curated.height),
        Check("curated distinct keys = rows (no duplicates)", curated.height, keys),
        Check("keys ending on a correction (event_version > 1)", exp["corrected_keys"],
              corrected),
        Check("rows differing from the truth's newest version and price", 0,
              len(_final_rows(curated) ^ truth_final)),
    ]
    late = read_table(catalog, QUARANTINE, resolve)
    checks.append(Check("quarantined late messages (quarantine.late_iso_lmp)", exp["late"],
                        late.height))
    truth_late = Counter(m for m, _ in truth["late_messages"])
    got_late = Counter(late["message_id"].to_list()) if late.height else Counter()
    checks.append(Check("quarantined messages not the truth's late ones", 0,
                        sum(((truth_late - got_late) + (got_late - truth_late)).values())))
    missing_meta = [c for c in LATE_METADATA if late.height and c not in late.columns]
    nulls = sum(late[c].null_count() for c in LATE_METADATA if c in late.columns)
    checks.append(Check("quarantine rows without watermark, lateness, original timestamp",
                        0, len(missing_meta) * late.height + nulls))
    hourly = read_table(catalog, HOURLY, resolve)
    checks.append(Check("hourly per-node rows (curated.rt_lmp_hourly)", exp["hourly_rows"],
                        hourly.height))
    checks.append(Check("hourly rows differing from the truth (count, min, max, avg)", 0,
                        _hourly_mismatches(hourly, truth["hourly"])))
    return checks


def _hourly_mismatches(hourly: pl.DataFrame, truth_rows: list[list[Any]]) -> int:
    want = {(iso, node, start): (n, avg, lo, hi) for iso, node, start, n, avg, lo, hi
            in truth_rows}
    got: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    if hourly.height:
        frame = hourly.select("iso", "node", _ts_text(hourly, "window_start"),
                              "interval_count", "avg_lmp", "min_lmp", "max_lmp")
        got = {row[:3]: row[3:] for row in frame.iter_rows()}
    bad = len(set(want) ^ set(got))
    for key in set(want) & set(got):
        (n, avg, lo, hi), (gn, gavg, glo, ghi) = want[key], got[key]
        if (n, lo, hi) != (gn, glo, ghi) or abs(avg - gavg) > 1e-9:
            bad += 1
    return bad


def clickhouse_checks(truth: dict[str, Any], client: Any, table: str) -> list[Check]:
    """The ReplacingMergeTree table read with FINAL: one row per key, the newest version."""
    data, types = client.execute(
        f"SELECT iso, node, interval_start, event_version, lmp FROM {table} FINAL",
        columnar=True, with_column_types=True)
    frame = pl.DataFrame({n: list(v) for (n, _), v in zip(types, data, strict=True)}) \
        if data else pl.DataFrame()
    distinct = client.execute(
        f"SELECT uniqExact(iso, node, interval_start) FROM {table} FINAL")[0][0]
    truth_final = {(iso, node, start, version, lmp)
                   for iso, node, start, version, lmp, _ in truth["final"]}
    rows = frame.height
    return [
        Check("ClickHouse rows with FINAL (ReplacingMergeTree)",
              truth["expected"]["curated_rows"], rows),
        Check("ClickHouse COUNT(DISTINCT key) = COUNT(*) with FINAL", rows, distinct),
        Check("ClickHouse rows differing from the truth's newest version and price", 0,
              len(_final_rows(frame) ^ truth_final) if rows else len(truth_final)),
    ]


def run_checks(truth: dict[str, Any], operator_counters: dict[str, dict[str, int]],
               errors_file: Path, late_hourly_file: Path) -> list[Check]:
    """The run's own counts: duplicates dropped, superseded versions, errors, and that every
    line ended in exactly one place."""
    exp = truth["expected"]
    errors = _lines(errors_file)
    return [
        Check("re-sent duplicates dropped (dedup_messages)", exp["duplicates"],
              operator_counters.get("dedup_messages", {}).get("duplicates", 0)),
        Check("superseded versions replaced by corrections (newest_version)",
              exp["superseded"],
              operator_counters.get("newest_version", {}).get("duplicates", 0)),
        Check("malformed lines in errors (bad JSON, missing fields, non-numeric price)",
              exp["errors"], errors),
        Check("records too late for an hourly window", 0, _lines(late_hourly_file)),
    ]


def _lines(path: Path) -> int:
    if not path.exists():
        return 0
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())

