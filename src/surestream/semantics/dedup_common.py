"""What keep-first and keep-last deduplication share: key extraction, the null-key policy,
configuration and the duplicates output (SEMANTICS §4).

Null keys. A record whose key has a null or missing field has no identity to compare: two
trades without a ``trade_id`` are not the same trade. ``on_null_key`` says what happens to
such a record (a key of several fields is unusable when any field is null or missing):

- ``error`` (default): it goes to the errors output, with a reason naming the step and the
  field(s), and counts in the operator's ``errors`` counter;
- ``keep``: it passes through, never deduplicated;
- ``group``: null is one more key value (all such records share one key) -- the behaviour
  before ``on_null_key`` existed, for inputs where a null really is an identity.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import numpy as np
import polars as pl

from surestream.model.batch import Batch
from surestream.model.steps import KeyedDedupStep
from surestream.semantics.errors import NULL_KEY, error_batch
from surestream.semantics.operator import ERRORS, MAIN, Outputs


def key_values(data: pl.DataFrame, fields: list[str]) -> list[Hashable]:
    """One hashable key per row: the value itself for one field, a tuple for several.
    A missing column gives null keys; list and struct values become tuples."""
    cols = [_column_values(data, f) for f in fields]
    return cols[0] if len(cols) == 1 else list(zip(*cols, strict=True))


def _column_values(data: pl.DataFrame, field: str) -> list[Hashable]:
    if field not in data.columns:
        return [None] * data.height
    column = data.get_column(field)
    values = column.to_list()
    return [_frozen(v) for v in values] if column.dtype.is_nested() else values


def _frozen(value: Any) -> Hashable:
    """A list/struct value as nested tuples, so it can be a dict key."""
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return tuple((k, _frozen(v)) for k, v in value.items())
    return value


def key_frame(data: pl.DataFrame, fields: list[str]) -> pl.DataFrame:
    """The key columns of a batch, in field order (a missing column is an all-null key
    column, as in ``key_values``; columns are renamed so a field may repeat)."""
    n = data.height
    return pl.DataFrame([
        (data.get_column(f) if f in data.columns else pl.Series([None] * n, dtype=pl.Null))
        .alias(f"k{i}") for i, f in enumerate(fields)])


def null_key_fields(data: pl.DataFrame, fields: list[str]) -> np.ndarray | None:
    """Per row, a bit mask of the key fields that are null or missing (bit j: field j), or
    None when every row has a usable key (the common case, decided from null counts)."""
    n = data.height
    present = [f in data.columns for f in fields]
    if n == 0 or (all(present) and not any(data.get_column(f).null_count() for f in fields)):
        return None
    code = np.zeros(n, dtype=np.int64)
    for j, f in enumerate(fields):
        null = data.get_column(f).is_null().to_numpy() if present[j] else np.ones(n, bool)
        code |= null.astype(np.int64) << j
    return code


class DedupBase:
    """Configuration, counters and outputs of both strategies."""

    def __init__(self, step: KeyedDedupStep, pipeline: str) -> None:
        self.step = step
        self.name = step.name
        self.pipeline = pipeline
        self.window = step.time_window_ms
        self.ttl = step.ttl_ms
        self.counters = {"duplicates": 0, "errors": 0}

    def output_tags(self) -> set[str]:
        return {t for t in (self.step.duplicates_output_tag,
                            self.step.occurrences_output_tag) if t}

    def _unusable_keys(self, batch: Batch) -> np.ndarray | None:
        """Rows whose key is unusable (null or missing field) under ``error`` / ``keep``;
        None when there are none, or when ``group`` makes null a key like any other."""
        if self.step.on_null_key == "group":
            return None
        code = null_key_fields(batch.data, self.step.key_fields)
        return None if code is None else code != 0

    def _null_key_errors(self, batch: Batch, rows: np.ndarray) -> Batch:
        """The errors output for ``rows`` (a mask) of ``batch``: one reason per row naming
        the step and its null or missing key field(s); counted in ``errors``."""
        code = null_key_fields(batch.data, self.step.key_fields)
        assert code is not None
        bad = code[rows]
        messages = {c: self._null_key_message(int(c)) for c in np.unique(bad).tolist()}
        self.counters["errors"] += int(bad.size)
        part = batch.filter(rows)
        return error_batch(part.data, pipeline=self.pipeline, operator=self.name,
                           error_type=NULL_KEY, message=[messages[c] for c in bad.tolist()],
                           wm=part.wm, seq=part.seq, wm_end=batch.wm_end, ts=part.ts)

    def _null_key_message(self, code: int) -> str:
        fields = [f for j, f in enumerate(self.step.key_fields) if code >> j & 1]
        what = (f"key field {fields[0]!r} is" if len(fields) == 1
                else f"key fields {', '.join(map(repr, fields))} are")
        return (f"keyed_dedup step {self.name!r}: {what} null or missing, so the record has "
                "no key to deduplicate on (on_null_key: error); fix the input, or set "
                "on_null_key to keep (pass such records through) or group (null is one key)")

    def _outputs(self, batch: Batch, main: Batch, dup_mask: np.ndarray) -> Outputs:
        n_dup = int(dup_mask.sum())
        self.counters["duplicates"] += n_dup
        out: Outputs = {MAIN: main}
        if n_dup and self.step.duplicates_output_tag:
            out[self.step.duplicates_output_tag] = batch.filter(dup_mask)
        return out

    def _add_errors(self, out: Outputs, errors: Batch | None) -> Outputs:
        if errors is not None and len(errors):
            out[ERRORS] = errors
        return out
