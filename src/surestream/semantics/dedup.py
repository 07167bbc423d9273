"""Keyed deduplication with event-time state TTL (SEMANTICS §4).

Small operators over shared helpers, as Flink's deduplicate operators:

- ``KeepFirstDedup`` (``dedup_first``): per key, the first record of each window passes at
  once; later ones inside the window are duplicates. Vectorized: the hot path.
- ``KeepLastDedup`` (``dedup_last``): per key and window, the last record seen is emitted
  once the watermark passes the window; it holds the output watermark back meanwhile.
- ``KeepEarliestDedup`` / ``KeepLatestDedup`` (``dedup_by_time``): keep-last whose held
  record is the one with the smallest / largest event time (ties by arrival).

``dedup_common`` holds what they share: keys, the null-key policy (``on_null_key``), the
duplicates output.
"""

from __future__ import annotations

from surestream.model.steps import KeyedDedupStep
from surestream.semantics.dedup_by_time import KeepEarliestDedup, KeepLatestDedup
from surestream.semantics.dedup_common import key_frame, key_values
from surestream.semantics.dedup_first import KeepFirstDedup
from surestream.semantics.dedup_last import KeepLastDedup

__all__ = ["KeepEarliestDedup", "KeepFirstDedup", "KeepLastDedup", "KeepLatestDedup",
           "build_dedup_operator", "key_frame", "key_values"]

_OPERATORS: dict[str, type[KeepFirstDedup] | type[KeepLastDedup]] = {
    "first": KeepFirstDedup, "last": KeepLastDedup, "earliest": KeepEarliestDedup,
    "latest": KeepLatestDedup}


def build_dedup_operator(step: KeyedDedupStep, pipeline: str) -> KeepFirstDedup | KeepLastDedup:
    return _OPERATORS[step.strategy](step, pipeline)
