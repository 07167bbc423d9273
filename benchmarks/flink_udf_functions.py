"""The user functions of benchmarks/flink_udf.py (a user module the Flink runner ships)."""

from __future__ import annotations

from typing import Any

import polars as pl


def double(record: dict[str, Any]) -> dict[str, Any]:
    """map, one record at a time: ``v`` doubled."""
    return {**record, "v2": record["v"] * 2}


def double_batch(frame: pl.DataFrame) -> pl.DataFrame:
    """map_batches: the same over a whole Arrow batch."""
    return frame.with_columns((pl.col("v") * 2).alias("v2"))
