"""The columns every payments table shares, added once after the late split (a vectorized
``map_batches`` step): ``amount_cents`` (the exact amount in cents, the unit of every
total: float sums of amounts drift by a cent over a day), ``event_time_ms`` (epoch ms,
UTC) and ``event_date`` (the UTC day, the reconciliation's partition)."""

from __future__ import annotations

import polars as pl


def event_columns(frame: pl.DataFrame) -> pl.DataFrame:
    """Add ``amount_cents``, ``event_time_ms`` and ``event_date`` (same rows, same order).

    ``amount`` is a number with at most two decimals, or its decimal text; ``event_time``
    ISO-8601 with a zone (``Z`` or an offset), read as UTC."""
    stamp = pl.col("event_time").str.to_datetime(time_zone="UTC", time_unit="ms")
    return frame.with_columns(
        amount_cents=(pl.col("amount").cast(pl.Float64) * 100).round(0).cast(pl.Int64),
        event_time_ms=stamp.dt.epoch("ms"),
        event_date=stamp.dt.date().cast(pl.String),
    )


#: the columns of ``deduplication_audit``
AUDIT_COLUMNS = ("transaction_id", "first_occurrence_time", "duplicate_occurrences")


def audit_columns(frame: pl.DataFrame) -> pl.DataFrame:
    """The audit's columns from the dedup step's occurrence records (``transaction_id``,
    ``first_occurrence_ms``, ``occurrences``: one per transaction seen more than once,
    at the release of its window)."""
    return frame.select(
        "transaction_id",
        pl.col("first_occurrence_ms").alias("first_occurrence_time"),
        pl.col("occurrences").alias("duplicate_occurrences"))
