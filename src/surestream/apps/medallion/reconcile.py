"""Reconcile the medallion's tables with the simulator's truth (and with each other).

Each check compares a figure read back from the tables (pyiceberg scans, the DLQ messages)
with what the truth says or what another layer holds, and PASSes only when equal:

* bronze = all received: its rows per feed equal the lines delivered, and each feed's
  ``raw`` column, in offset order, equals the landing lines byte for byte; no line twice;
* silver = valid unique: its rows per feed equal the truth's; no event_id twice;
* DLQ = invalid: ``silver.dlq_events`` per reason equals the truth's; the ``dlq-events``
  messages number the same;
* every bronze row in exactly one place: bronze - silver - DLQ = the re-sent duplicates;
* gold = silver: per event_type and source, gold's summed counts and measures equal
  silver's (recomputed from the silver table); per window they equal the truth's;
* nothing late, nothing in the error files (either would be a record in no table).

Measures are floats: sums compare equal within 1e-6 (absolute) or 1e-9 (relative) --
summing in another order may change the last bits; counts compare exactly.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from surestream.apps.medallion.schemas import FEED_TOPICS, INVALID_REASONS, TOPIC_FEEDS
from surestream.apps.medallion.templates import BRONZE_TABLE, DLQ_TABLE, GOLD_TABLE, SILVER_TABLE
from surestream.apps.medallion.truth import MedallionTruth
from surestream.apps.medallion.validation import feed_of
from surestream.apps.reconcile_check import Check


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)


#: the columns the checks read, per table: what a table never created (a hop that had
#: nothing to write there, e.g. no invalid event) reads as, with no rows
READ_COLUMNS: dict[str, dict[str, pl.DataType]] = {
    BRONZE_TABLE: {"raw": pl.String(), "ingest_source": pl.String(),
                   "ingest_partition": pl.Int64(), "ingest_offset": pl.Int64()},
    SILVER_TABLE: {"event_id": pl.String(), "feed": pl.String(), "event_type": pl.String(),
                   "source": pl.String(), "measure": pl.Float64()},
    DLQ_TABLE: {"dlq_reason": pl.String(), "dlq_field": pl.String()},
    GOLD_TABLE: {"event_type": pl.String(), "source": pl.String(),
                 "window_start": pl.Datetime("us"), "event_count": pl.Int64(),
                 "measure_sum": pl.Float64()},
}


def read_table(catalog_config: dict[str, Any], base: Path, table: str) -> pl.DataFrame:
    """The whole of an Iceberg table (its current snapshot) as a polars frame; a table
    that was never created has no rows (``READ_COLUMNS``)."""
    from pyiceberg.exceptions import NoSuchTableError

    from surestream.connectors.tables.iceberg_catalog import open_catalog

    catalog = open_catalog(catalog_config, lambda p: (base / p))
    try:
        return pl.from_arrow(catalog.load_table(table).scan().to_arrow())
    except NoSuchTableError:
        return pl.DataFrame(schema=READ_COLUMNS.get(table, {}))


def _per_feed(frame: pl.DataFrame, column: str) -> dict[str, int]:
    counts = {feed: 0 for feed in FEED_TOPICS}
    for source, n in frame.group_by(column).len().iter_rows():
        feed = feed_of(source) if column != "feed" else source
        counts[feed or f"unknown:{source}"] = counts.get(feed or f"unknown:{source}", 0) + n
    return counts


def _by_type_source(frame: pl.DataFrame, count: str | None, measure: str,
                    ) -> dict[str, tuple[int, float | None]]:
    """event_type|source -> (count, measure sum; None when no measure)."""
    grouped = frame.group_by("event_type", "source").agg(
        (pl.len() if count is None else pl.col(count).sum()).alias("n"),
        pl.col(measure).sum().alias("s"), pl.col(measure).count().alias("k"))
    return {f"{t}|{s}": (int(n), float(v) if k else None)
            for t, s, n, v, k in grouped.iter_rows()}


def _equal_sums(actual: dict[str, tuple[int, float | None]],
                expected: dict[str, tuple[int, float | None]]) -> int:
    """How many keys of ``expected`` ``actual`` matches (count exact, sum close), minus
    the keys ``actual`` has that ``expected`` lacks."""
    same = sum(1 for key, (n, s) in expected.items()
               if key in actual and actual[key][0] == n and _close(actual[key][1], s))
    return same - len(set(actual) - set(expected))


def _truth_pairs(table: dict[str, dict[str, Any]]) -> dict[str, tuple[int, float | None]]:
    return {k: (v["count"], v["measure_sum"]) for k, v in table.items()}


def lines_of(path: Path) -> int:
    """Non-blank lines of a file (0 when it does not exist)."""
    if not path.exists():
        return 0
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())


def reconcile(truth: MedallionTruth, landing: dict[str, list[str]],
              catalog: dict[str, Any], base: Path,
              dlq_messages: Callable[[], int], stray_files: list[Path]) -> list[Check]:
    """Every check of the module docstring. ``landing``: feed -> the lines delivered (the
    simulator's, in order); ``dlq_messages``: counts the ``dlq-events`` messages;
    ``stray_files``: late and error outputs, which must be empty."""
    bronze = read_table(catalog, base, BRONZE_TABLE)
    silver = read_table(catalog, base, SILVER_TABLE)
    dlq = read_table(catalog, base, DLQ_TABLE)
    gold = read_table(catalog, base, GOLD_TABLE)
    checks = [
        Check("bronze = all received (rows per feed)", truth.received,
              _per_feed(bronze, "ingest_source")),
        Check("bronze = the landing lines byte for byte, in order (feeds equal)",
              len(FEED_TOPICS), _feeds_equal(bronze, landing)),
        Check("bronze: no line or message twice (distinct source/partition/offset)",
              bronze.height, bronze.select("ingest_source", "ingest_partition",
                                           "ingest_offset").n_unique()),
        Check("silver = valid unique (rows per feed)", truth.valid_unique,
              _per_feed(silver, "feed")),
        Check("silver: no event_id twice (distinct event_ids = rows)", silver.height,
              silver["event_id"].n_unique()),
        Check("DLQ = invalid (silver.dlq_events rows by reason)",
              {r: truth.invalid_by_reason.get(r, 0) for r in INVALID_REASONS},
              {r: int(dlq.filter(pl.col("dlq_reason") == r).height) for r in INVALID_REASONS}
              | _unknown_reasons(dlq)),
        Check("DLQ = invalid (silver.dlq_events reason:field pairs with the truth's count)",
              len(truth.invalid_by_field), _same_counts(_by_field(dlq), truth.invalid_by_field)),
        Check("DLQ = invalid (dlq-events messages)", truth.total_invalid, dlq_messages()),
        Check("duplicates = bronze - silver - DLQ (every row in exactly one place)",
              truth.total_duplicates, bronze.height - silver.height - dlq.height),
        Check("gold sums = silver sums (count and measure per event_type/source)",
              len(truth.by_type_source),
              _equal_sums(_by_type_source(gold, "event_count", "measure_sum"),
                          _by_type_source(silver, None, "measure"))),
        Check("silver sums = truth (count and measure per event_type/source)",
              len(truth.by_type_source),
              _equal_sums(_by_type_source(silver, None, "measure"),
                          _truth_pairs(truth.by_type_source))),
        Check("gold = truth (count and measure per 5-minute window/event_type/source)",
              len(truth.gold), _equal_sums(_gold_windows(gold), _truth_pairs(truth.gold))),
        Check("nothing late or in error files (" + ", ".join(p.name for p in stray_files)
              + ")", 0, sum(lines_of(p) for p in stray_files)),
    ]
    return checks


def _feeds_equal(bronze: pl.DataFrame, landing: dict[str, list[str]]) -> int:
    """How many feeds' bronze ``raw`` column (in offset order) equals its landing lines."""
    feeds = bronze.with_columns(feed=pl.col("ingest_source").str.split("/").list.last()
                                .str.replace(r"\.jsonl$", "")
                                .replace_strict(TOPIC_FEEDS, default=None))
    equal = 0
    for feed, lines in landing.items():
        rows = feeds.filter(pl.col("feed") == feed)
        equal += rows.sort("ingest_partition", "ingest_offset")["raw"].to_list() == lines
    return equal


def _unknown_reasons(dlq: pl.DataFrame) -> dict[str, int]:
    other = dlq.filter(~pl.col("dlq_reason").is_in(list(INVALID_REASONS)))
    return {f"unexpected:{r}": n for r, n in other.group_by("dlq_reason").len().iter_rows()}


def _same_counts(actual: dict[str, int], expected: dict[str, int]) -> int:
    """Keys of ``expected`` with the same count in ``actual``, minus keys only in
    ``actual``."""
    return (sum(1 for k, n in expected.items() if actual.get(k) == n)
            - len(set(actual) - set(expected)))


def _by_field(dlq: pl.DataFrame) -> dict[str, int]:
    keys = dlq.select(pl.when(pl.col("dlq_field").is_null()).then(pl.col("dlq_reason"))
                      .otherwise(pl.col("dlq_reason") + ":" + pl.col("dlq_field")).alias("k"))
    return dict(sorted((k, n) for k, n in keys.group_by("k").len().iter_rows()))


def _gold_windows(gold: pl.DataFrame) -> dict[str, tuple[int, float | None]]:
    start = gold["window_start"]
    ms = (start.dt.epoch("ms") if isinstance(start.dtype, pl.Datetime) else start).to_list()
    return {f"{w}|{t}|{s}": (int(n), m) for w, t, s, n, m in
            zip(ms, gold["event_type"].to_list(), gold["source"].to_list(),
                gold["event_count"].to_list(), gold["measure_sum"].to_list(), strict=True)}


def report_lines(checks: list[Check]) -> list[str]:
    """One PASS/FAIL line per check, then the verdict."""
    lines = []
    for c in checks:
        mark = "PASS" if c.ok else "FAIL"
        lines.append(f"{mark}  {c.name}: expected {_show(c.expected)}, got {_show(c.actual)}")
    failed = [c for c in checks if not c.ok]
    lines.append(f"FAILED: {len(failed)} of {len(checks)} checks" if failed else
                 f"all {len(checks)} checks PASS: every layer reconciles with the truth")
    return lines


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return json.dumps(dict(sorted(value.items())),
                          separators=(", ", " ")).replace('"', "")
    return f"{value:,}" if isinstance(value, int) else str(value)
