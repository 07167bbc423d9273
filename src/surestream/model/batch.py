"""The unit of data between operators: a columnar slice of the logical record sequence.

A pipeline's input is one logical sequence of records (partitions interleaved in a fixed
order, SEMANTICS §8). The local runner cuts it into micro-batches, but every operator must
give the same result whatever the cut. To make that possible without per-record Python,
a batch carries, next to the user's columns, three int64 arrays aligned with its rows:

- ``ts``  -- the event time of each record (ms since the epoch), set by the watermark step;
- ``wm``  -- the watermark in force *before* the record (SEMANTICS §2: W advances per record);
- ``seq`` -- the record's position in the logical sequence (ties and determinism);

and ``wm_end``, the watermark after the last record. The watermark after record ``i`` is
therefore ``wm[i + 1]`` (or ``wm_end`` for the last one): an operator can tell exactly
between which two records the watermark crossed a window end or a timer, and a batch with
no rows can still move the watermark (end of a partition, end of input).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

#: The watermark before any record (Flink's ``Long.MIN_VALUE``).
NEG_INF: int = int(np.iinfo(np.int64).min)
#: The watermark at the end of a bounded input; fires every window and timer.
POS_INF: int = int(np.iinfo(np.int64).max)

_EMPTY_I64 = np.empty(0, dtype=np.int64)


def _i64(values: Any) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class Batch:
    """Records plus their event time, watermark-before and sequence number.

    ``ts`` is ``None`` until a watermark step has assigned event time. ``partition`` is set
    only on batches that come straight from a source (the watermark step needs it).
    """

    data: pl.DataFrame
    wm: np.ndarray
    seq: np.ndarray
    wm_end: int
    ts: np.ndarray | None = None
    partition: np.ndarray | None = None
    #: Partitions that reached their end inside this batch: (index of the last row read
    #: before the end, or -1 when the end comes before the first row; partition id).
    ended: tuple[tuple[int, int], ...] = field(default=())

    def __post_init__(self) -> None:
        n = self.data.height
        if len(self.wm) != n or len(self.seq) != n or (self.ts is not None and len(self.ts) != n):
            raise ValueError(
                f"batch arrays disagree with its {n} rows: wm={len(self.wm)} "
                f"seq={len(self.seq)} ts={None if self.ts is None else len(self.ts)}"
            )

    # -- construction -------------------------------------------------------------------
    @staticmethod
    def empty(wm_end: int, schema: pl.Schema | dict | None = None, with_ts: bool = True) -> Batch:
        """A batch with no rows that only moves the watermark to ``wm_end``."""
        return Batch(
            data=pl.DataFrame(schema=schema),
            wm=_EMPTY_I64,
            seq=_EMPTY_I64,
            wm_end=wm_end,
            ts=_EMPTY_I64 if with_ts else None,
        )

    @staticmethod
    def from_rows(
        rows: Sequence[dict[str, Any]],
        *,
        ts: Iterable[int] | None = None,
        wm: Iterable[int] | None = None,
        seq: Iterable[int] | None = None,
        wm_end: int | None = None,
        schema: pl.Schema | dict | None = None,
    ) -> Batch:
        """Build a batch from dicts (tests, user-function outputs). Missing arrays default to
        an unknown watermark (``NEG_INF``) and sequence numbers 0..n-1."""
        n = len(rows)
        data = pl.DataFrame(list(rows), schema=schema, infer_schema_length=None, orient="row") \
            if n else pl.DataFrame(schema=schema)
        wm_arr = _i64(list(wm)) if wm is not None else np.full(n, NEG_INF, dtype=np.int64)
        if wm_end is None:
            wm_end = int(wm_arr[-1]) if n else NEG_INF
        return Batch(
            data=data,
            wm=wm_arr,
            seq=_i64(list(seq)) if seq is not None else np.arange(n, dtype=np.int64),
            wm_end=wm_end,
            ts=_i64(list(ts)) if ts is not None else None,
        )

    # -- views --------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.data.height

    @property
    def wm_after(self) -> np.ndarray:
        """The watermark after each record: ``wm[i + 1]``, and ``wm_end`` for the last."""
        out = np.empty(len(self.wm), dtype=np.int64)
        if len(out):
            out[:-1] = self.wm[1:]
            out[-1] = self.wm_end
        return out

    def rows(self) -> list[dict[str, Any]]:
        """The records as dicts, for record-at-a-time user code."""
        return self.data.to_dicts()

    # -- derivation ---------------------------------------------------------------------
    def filter(self, mask: np.ndarray) -> Batch:
        """The rows where ``mask`` is true. The watermark after the batch is kept, so a
        dropped record's watermark advance still reaches downstream operators (through the
        next kept record's ``wm`` or through ``wm_end``); so are the partition ends (a
        ``where`` before the watermark step must not lose them)."""
        mask = np.asarray(mask, dtype=bool)
        if mask.all():
            return self
        # partition ends keep their place: after the last *kept* row read before the end
        kept_before = np.cumsum(mask)
        ended = tuple((int(kept_before[i]) - 1 if i >= 0 else -1, p) for i, p in self.ended)
        return Batch(
            data=self.data.filter(pl.Series(mask)) if self.data.width else self.data.clear(),
            wm=self.wm[mask],
            seq=self.seq[mask],
            wm_end=self.wm_end,
            ts=None if self.ts is None else self.ts[mask],
            partition=None if self.partition is None else self.partition[mask],
            ended=ended,
        )

    def take(self, indices: np.ndarray) -> Batch:
        """Rows by position, in the given order (must keep ``wm`` non-decreasing)."""
        idx = _i64(indices)
        return Batch(
            data=self.data[idx] if self.data.width else self.data.clear(),
            wm=self.wm[idx],
            seq=self.seq[idx],
            wm_end=self.wm_end,
            ts=None if self.ts is None else self.ts[idx],
            partition=None if self.partition is None else self.partition[idx],
        )

    def with_data(self, data: pl.DataFrame) -> Batch:
        """The same records' arrays with new columns (same row count and order)."""
        return Batch(data=data, wm=self.wm, seq=self.seq, wm_end=self.wm_end, ts=self.ts,
                     partition=self.partition, ended=self.ended)

    def with_time(self, ts: np.ndarray, wm: np.ndarray, wm_end: int) -> Batch:
        """The same records with event time and watermark assigned (watermark step)."""
        return Batch(data=self.data, wm=_i64(wm), seq=self.seq, wm_end=int(wm_end), ts=_i64(ts))


def concat(batches: Sequence[Batch], wm_end: int | None = None) -> Batch:
    """Concatenate batches in order (their ``wm`` must be non-decreasing across them).

    Schemas are aligned diagonally: a column missing in one batch is null there."""
    batches = [b for b in batches if b is not None]
    if not batches:
        return Batch.empty(NEG_INF if wm_end is None else wm_end)
    end = batches[-1].wm_end if wm_end is None else wm_end
    non_empty = [b for b in batches if len(b)]
    if not non_empty:
        return Batch.empty(end, schema=batches[-1].data.schema,
                           with_ts=batches[-1].ts is not None)
    if len(non_empty) == 1:
        b = non_empty[0]
        return Batch(data=b.data, wm=b.wm, seq=b.seq, wm_end=end, ts=b.ts)
    has_ts = all(b.ts is not None for b in non_empty)
    return Batch(
        data=pl.concat([b.data for b in non_empty], how="diagonal_relaxed"),
        wm=np.concatenate([b.wm for b in non_empty]),
        seq=np.concatenate([b.seq for b in non_empty]),
        wm_end=end,
        ts=np.concatenate([b.ts for b in non_empty]) if has_ts else None,
    )
