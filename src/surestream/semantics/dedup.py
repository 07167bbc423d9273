"""Keyed deduplication with event-time state TTL (SEMANTICS §4).

Two small operators over shared helpers, as Flink's deduplicate operators:

- ``KeepFirstDedup`` (``dedup_first``): per key, the first record of each window passes at
  once; later ones inside the window are duplicates. Vectorized: the hot path.
- ``KeepLastDedup`` (``dedup_last``): per key and window, the last record seen is emitted
  once the watermark passes the window; it holds the output watermark back meanwhile.

``dedup_common`` holds what they share: keys, the null-key policy (``on_null_key``), the
duplicates output.
"""

from __future__ import annotations

from surestream.model.steps import KeyedDedupStep
from surestream.semantics.dedup_common import key_frame, key_values
from surestream.semantics.dedup_first import KeepFirstDedup
from surestream.semantics.dedup_last import KeepLastDedup

__all__ = ["KeepFirstDedup", "KeepLastDedup", "build_dedup_operator", "key_frame",
           "key_values"]


def build_dedup_operator(step: KeyedDedupStep, pipeline: str) -> KeepFirstDedup | KeepLastDedup:
    return (KeepFirstDedup if step.strategy == "first" else KeepLastDedup)(step, pipeline)
