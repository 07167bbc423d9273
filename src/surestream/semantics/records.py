"""Turning records produced one at a time (user code, timers) back into a ``Batch``.

Record-at-a-time operators (map, keyed process functions, error reporting) emit Python dicts,
each tied to the record or timer that caused it. ``RecordBuffer`` collects them together
with the event time, watermark and sequence number they inherit, so the batch they become
keeps the invariants of ``Batch`` (``wm`` non-decreasing, ``seq`` for ties) without every
operator re-implementing the bookkeeping.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np
import polars as pl

from surestream.model.batch import Batch


class OutputSchemaError(TypeError):
    """Records emitted by one operator in one batch cannot form a table."""


def iter_records(result: Any, producer: str) -> Iterator[dict[str, Any]]:
    """What user code returned, as records: ``None`` is none, a dict is one, an iterable
    (list, generator) gives each of its dicts in order.

    Anything else raises ``TypeError`` *while the user call is being consumed*, so that a
    wrong return value is reported as that record's error rather than crashing the table
    build later. Each record is copied: user code that reuses one dict for several
    outputs must not change records already emitted.
    """
    if result is None:
        return
    if isinstance(result, Mapping):
        yield dict(result)
        return
    if isinstance(result, str | bytes) or not isinstance(result, Iterable):
        raise TypeError(f"{producer} must return a dict, None or an iterable of dicts, "
                        f"not {type(result).__name__}")
    for item in result:
        if not isinstance(item, Mapping):
            raise TypeError(f"{producer} produced a {type(item).__name__}, not a dict")
        yield dict(item)


def frame_from_records(
    records: list[dict[str, Any]],
    *,
    operator: str,
    schema: pl.Schema | dict[str, pl.DataType] | None = None,
    hint: pl.Schema | None = None,
) -> pl.DataFrame:
    """Build a DataFrame from dicts, inferring each column's type from *all* records.

    ``schema`` fixes the columns exactly (error records). Otherwise types are inferred; a
    column that is null in every record takes its type from ``hint`` (usually the input
    schema), so that a pass-through column does not turn into ``Null`` in a batch where it
    happens to be empty. Types are never narrowed from the hint: that would silently
    truncate a value the user code changed (2.5 into an Int64 column becomes 2).
    """
    if schema is not None:
        return pl.DataFrame(records, schema=schema) if records else pl.DataFrame(schema=schema)
    if not records:
        return pl.DataFrame()
    try:
        frame = pl.DataFrame(records, infer_schema_length=None)
    except Exception as exc:  # polars raises several types for unmixable values
        raise OutputSchemaError(
            f"operator {operator!r} emitted records whose fields cannot form one table "
            f"({exc}); make the user function emit one type per field"
        ) from exc
    if hint:
        nulls = {c: hint[c] for c, t in frame.schema.items() if t == pl.Null and c in hint}
        if nulls:
            frame = frame.with_columns([pl.col(c).cast(t) for c, t in nulls.items()])
    return frame


class RecordBuffer:
    """Records in emission order, each with the ``ts``/``wm``/``seq`` it inherits.

    ``wm`` must be appended non-decreasing (the caller emits in watermark order); the
    buffer does not reorder, because emission order *is* the output order.
    """

    __slots__ = ("records", "_ts", "_wm", "_seq")

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self._ts: list[int | None] = []
        self._wm: list[int] = []
        self._seq: list[int] = []

    def __len__(self) -> int:
        return len(self.records)

    def append(self, record: dict[str, Any], ts: int | None, wm: int, seq: int) -> None:
        self.records.append(record)
        self._ts.append(ts)
        self._wm.append(wm)
        self._seq.append(seq)

    def to_batch(
        self,
        wm_end: int,
        *,
        operator: str,
        with_ts: bool,
        schema: pl.Schema | dict[str, pl.DataType] | None = None,
        hint: pl.Schema | None = None,
    ) -> Batch:
        """The buffered records as a batch ending at ``wm_end``.

        ``with_ts`` says whether the batch carries event time: it does when the input did,
        and then every appended record has a ``ts``.
        """
        return Batch(
            data=frame_from_records(self.records, operator=operator, schema=schema, hint=hint),
            wm=np.array(self._wm, dtype=np.int64),
            seq=np.array(self._seq, dtype=np.int64),
            wm_end=wm_end,
            ts=np.array(self._ts, dtype=np.int64) if with_ts else None,
        )
