"""User functions of the Flink UDF tests (tests/flink/test_flink_udf.py): plain module-level
functions, as a user writes them; the Flink runner ships this module with the job."""

from __future__ import annotations

from typing import Any

import polars as pl


def enrich(record: dict[str, Any]) -> Any:
    """map: doubles ``v``, adds ``tag``; drops ``drop``, fans ``twice`` out, fails ``bad``."""
    if record["id"] == "bad":
        raise ZeroDivisionError(f"cannot enrich {record['id']}")
    if record["id"] == "drop":
        return None
    out = {"id": record["id"], "k": record["k"], "ts": record["ts"],
           "v": None if record["v"] is None else record["v"] * 2,
           "tag": f"{record['k']}-{record['n']}"}
    if record["id"] == "twice":
        return [out, {**out, "id": "twice-2"}]
    return out


def keep(record: dict[str, Any]) -> bool:
    """filter: keeps records with ``v`` above 1 (or no ``v``); fails ``bad-filter``."""
    if record["id"] == "bad-filter":
        raise ValueError("cannot judge bad-filter")
    return record["v"] is None or record["v"] > 1


def scale(frame: pl.DataFrame) -> pl.DataFrame:
    """map_batches: adds ``v10`` and ``n_plus``; any batch holding ``boom`` fails whole."""
    if (frame["id"] == "boom").any():
        raise ValueError("boom in this batch\nsecond line")
    return frame.with_columns((pl.col("v") * 10).alias("v10"),
                              (pl.col("n") + 1).alias("n_plus"),
                              (pl.col("k") == "a").alias("is_a"))


def wrong_type(record: dict[str, Any]) -> dict[str, Any]:
    """map: returns a string where output_schema declares an int (for id ``small``)."""
    return {"id": record["id"], "n": "not a number" if record["id"] == "small" else record["n"]}


def count_per_key(record: dict[str, Any], ctx: Any) -> None:
    """process: a keyed function (refused on Flink: keyed state and timers)."""
    ctx.output("main", record)
