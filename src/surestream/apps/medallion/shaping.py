"""The columns each silver table gets (``map_batches`` steps after validation).

* ``silver_columns``: silver.events -- the cleaned event (``validation.SILVER_TYPES``) with
  ``event_time`` as a UTC timestamp beside ``event_time_ms``, and its lineage in bronze
  (``bronze_source``, ``bronze_partition``, ``bronze_offset``: the line or message it came
  from, so any silver row can be traced to the raw bytes).
* ``dlq_columns``: silver.dlq_events -- why (``dlq_reason``, ``dlq_field``, ``error``), the
  raw line as received, the event_id as received (text; null when absent or unreadable),
  the feed and the bronze lineage, and when it was dead-lettered (processing time).
* ``dlq_message``: the platform's ``dlq-events`` message ``{original_message, error,
  timestamp}`` (timestamp: processing time, when it was dead-lettered).
"""

from __future__ import annotations

import polars as pl

from surestream.apps.medallion.validation import SILVER_TYPES

LINEAGE = {"ingest_source": "bronze_source", "ingest_partition": "bronze_partition",
           "ingest_offset": "bronze_offset"}
SILVER_COLUMNS = [*SILVER_TYPES, "event_time", *LINEAGE.values()]
DLQ_COLUMNS = ["dlq_reason", "dlq_field", "error", "raw", "received_event_id", "feed",
               *LINEAGE.values(), "dead_lettered_at"]


def silver_columns(frame: pl.DataFrame) -> pl.DataFrame:
    """silver.events' columns (module docstring)."""
    return frame.rename(LINEAGE).with_columns(
        pl.from_epoch("event_time_ms", time_unit="ms").dt.cast_time_unit("us")
        .alias("event_time")).select(SILVER_COLUMNS)


def dlq_columns(frame: pl.DataFrame) -> pl.DataFrame:
    """silver.dlq_events' columns (module docstring)."""
    return frame.rename(LINEAGE).select(DLQ_COLUMNS)


def dlq_message(frame: pl.DataFrame) -> pl.DataFrame:
    """The ``dlq-events`` message of each invalid event (module docstring)."""
    return frame.select(pl.col("raw").alias("original_message"), "error", "timestamp")
