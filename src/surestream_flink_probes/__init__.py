"""User functions for the supported-step table's probes (``surestream.runners.flink.support``).

Why a package of its own, beside ``surestream``: the Flink runner ships a user function's
top-level package to Flink's Python workers and refuses functions of ``surestream`` itself
(surestream is not installed in the Flink environment, and its imports would not resolve
there). A probe for ``map``, ``filter`` or ``map_batches`` must name a function the way a
user would -- in a module of their own -- or its row would read "refused" for a reason that
is about the probe, not the step. The differential suite runs these probes on both runners,
so they must also run: they import nothing but the standard library (records are dicts;
``map_batches`` gets a ``polars.DataFrame`` and hands it back).
"""

from __future__ import annotations

from typing import Any


def identity(record: dict) -> dict:
    """``map``: the record as it is."""
    return record


def identity_batch(batch: Any) -> Any:
    """``map_batches``: the batch as it is."""
    return batch


def keep_positive(record: dict) -> bool:
    """``filter``: records whose ``v`` is above zero (a null ``v`` is dropped)."""
    return record.get("v") is not None and record["v"] > 0


def process_element(record: dict, ctx: Any) -> None:
    """``process``: emits nothing (the step is refused on Flink before it would run)."""
    return None


def no_records(**_: Any) -> list:
    """``generator`` source: no records (refused on Flink before it would run)."""
    return []
