"""Building a window operator's output batches: firings in a fixed order, and late records.

Order is part of the result (SEMANTICS §8): the firings of one ``process`` call are sorted by
their *emission point* -- the position in the logical record sequence where they happen --
so that any cut of the sequence into batches yields the same rows in the same order:

1. position ``p`` (-1 = before the batch's first record, i = at/after record i);
2. immediate firings of record ``p`` (a late-but-allowed record) before the firings caused
   by the watermark advance that follows it;
3. immediate firings in the order Flink adds the record to its windows (newest first);
   watermark firings by ascending ``max_ts`` (Flink's timer order), then key ascending.

Each emitted row carries ``ts = window_end - 1``, ``wm`` = the watermark in force at the
emission point, and ``seq`` = the sequence number of the record at that point.

A firing for which a user aggregate function's ``result`` raised is not emitted: it goes to
the errors output, in its place in that order, with the window, the key, the revision, the
other aggregations' values and the exception (``FailedResult``). Its revision is used up:
the window's next firing, if any, has the next revision and replaces it.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import polars as pl

from surestream.model.batch import Batch
from surestream.semantics.aggregates import AggregateSet, FailedResult, UdafCallError
from surestream.semantics.errors import describe_exception, error_batch
from surestream.semantics.late import LATE_METADATA_COLUMNS, annotate_late
from surestream.semantics.windows.keys import KeyColumns

WINDOW_COLUMNS = ("window_start", "window_end", "revision")
SUPERSEDES = "supersedes"
SUPERSEDES_DTYPE = pl.List(pl.List(pl.Int64))
LATE_COLUMNS = LATE_METADATA_COLUMNS

#: Working columns of the window operator start with this (keys.py too); the factory
#: refuses key fields and aggregations named so, which would silently collide.
INTERNAL_PREFIX = "__ss_"
_P, _PHASE, _SUB = f"{INTERNAL_PREFIX}p", f"{INTERNAL_PREFIX}phase", f"{INTERNAL_PREFIX}sub"
_FAILED = f"{INTERNAL_PREFIX}failed"  # index of the firing's failure in ``failures``, or -1
IMMEDIATE, WATERMARK = 0, 1


class _Firing(NamedTuple):
    """One firing recorded on its own (its aggregation values taken at that moment)."""

    pos: int
    phase: int
    sub: int
    start: int
    end: int
    rev: int
    key: tuple
    values: list[Any]
    supersedes: list[list[int]] | None


class FiringBuffer:
    """The firings of one ``process`` call, gathered in any order, built into one batch."""

    def __init__(self, keys: KeyColumns, aggs: AggregateSet, sessions: bool, *,
                 pipeline: str = "", operator: str = "") -> None:
        self.keys = keys
        self.aggs = aggs
        self.sessions = sessions
        self.pipeline = pipeline
        self.operator = operator
        self._chunks: list[dict[str, Any]] = []
        self._rows: list[_Firing] = []

    def __len__(self) -> int:
        return sum(len(c["start"]) for c in self._chunks) + len(self._rows)

    def add_many(self, *, pos: np.ndarray, start: np.ndarray, end: np.ndarray,
                 revision: np.ndarray, keys: list[tuple], results: list[Any]) -> None:
        """Watermark firings computed together (vectorized): one entry per window."""
        if len(start):
            self._chunks.append({"pos": pos, "start": start, "end": end, "rev": revision,
                                 "keys": keys, "results": results})

    def add_one(self, *, pos: int, phase: int, sub: int, start: int, end: int, revision: int,
                key: tuple, values: list[Any], supersedes: list[list[int]] | None = None) -> None:
        """One firing whose aggregation values were taken at that moment."""
        self._rows.append(_Firing(pos, phase, sub, start, end, revision, key, values, supersedes))

    # -- building ------------------------------------------------------------------------------
    def _agg_columns(self, failures: list[UdafCallError | None]) -> list[pl.Series]:
        """One column per aggregation, rows in buffer order. A user function's value that is
        a ``FailedResult`` becomes null, its error set in ``failures`` (one entry per row,
        the first failing aggregation in spec order)."""
        out = []
        # types are read now: a min/max/first/last learns its type from its first input
        dtypes = self.aggs.dtypes()
        for i, (name, dtype) in enumerate(zip(self.aggs.names, dtypes, strict=True)):
            singles = [r.values[i] for r in self._rows]
            parts = [c["results"][i] for c in self._chunks]
            if dtype is None:  # user function: one list, one type inference
                values: list[Any] = []
                for p in parts:
                    values.extend(p)
                values.extend(singles)
                for row, value in enumerate(values):
                    if isinstance(value, FailedResult):
                        values[row] = None
                        if failures[row] is None:
                            failures[row] = value.error
                out.append(pl.Series(name, values, strict=False))
                continue
            series = [p for p in parts if len(p)]
            if singles:
                series.append(pl.Series(values=singles, dtype=dtype))
            col = pl.concat(series) if series else pl.Series(values=[], dtype=dtype)
            out.append(col.alias(name))
        return out

    def build(self, emit_wm: np.ndarray, emit_seq: np.ndarray, wm_end: int
              ) -> tuple[Batch, Batch | None]:
        """The output batch, and the error records of the firings a user ``result`` failed
        on (None when there are none); ``emit_wm``/``emit_seq`` are indexed by position + 1."""
        rows, chunks = self._rows, self._chunks

        n_many = sum(len(c["start"]) for c in chunks)
        failures: list[UdafCallError | None] = [None] * (n_many + len(rows))

        def meta(field: str, many: Any = None) -> np.ndarray:
            """A chunk field (or ``many`` for every chunk row), then the single firings'."""
            parts = [np.full(n_many, many, dtype=np.int64)] if many is not None else \
                [np.asarray(c[field], dtype=np.int64) for c in chunks]
            parts.append(np.array([getattr(r, field) for r in rows], dtype=np.int64))
            return np.concatenate(parts)

        keys = [k for c in chunks for k in c["keys"]] + [r.key for r in rows]
        columns = [
            pl.Series(_P, meta("pos")),
            pl.Series(_PHASE, meta("phase", many=WATERMARK)),
            pl.Series(_SUB, meta("sub", many=0)),
            *self.keys.series(keys),
            pl.Series("window_start", meta("start")),
            pl.Series("window_end", meta("end")),
            pl.Series("revision", meta("rev")),
            *self._agg_columns(failures),
        ]
        if self.sessions:
            sup = [[] for _ in range(n_many)] + [r.supersedes or [] for r in rows]
            columns.append(pl.Series(SUPERSEDES, sup, dtype=SUPERSEDES_DTYPE))
        failed = [e for e in failures if e is not None]
        if failed:
            numbers = iter(range(len(failed)))
            columns.append(pl.Series(_FAILED, [-1 if e is None else next(numbers)
                                               for e in failures], dtype=pl.Int64))
        frame = pl.DataFrame(columns)
        if frame.height > 1:
            frame = frame.sort([_P, _PHASE, _SUB, "window_end", *self.keys.fields],
                               nulls_last=False, maintain_order=True)
        errors = None
        if failed:
            which = frame.get_column(_FAILED).to_numpy()
            errors = self._failed_firings(frame.filter(pl.Series(which >= 0)),
                                          [failed[i] for i in which[which >= 0].tolist()],
                                          emit_wm, emit_seq, wm_end)
            frame = frame.filter(pl.Series(which < 0)).drop(_FAILED)
        p = frame.get_column(_P).to_numpy() + 1
        return Batch(
            data=frame.drop(_P, _PHASE, _SUB),
            ts=frame.get_column("window_end").to_numpy() - 1,
            wm=np.ascontiguousarray(emit_wm[p], dtype=np.int64),
            seq=np.ascontiguousarray(emit_seq[p], dtype=np.int64),
            wm_end=wm_end,
        ), errors

    def _failed_firings(self, frame: pl.DataFrame, errors: list[UdafCallError],
                        emit_wm: np.ndarray, emit_seq: np.ndarray, wm_end: int) -> Batch:
        """Error records for firings whose user ``result`` raised: ``raw`` is the firing
        (key, window, revision, the other values; the failed ones null)."""
        p = frame.get_column(_P).to_numpy() + 1
        firings = frame.drop(_P, _PHASE, _SUB, _FAILED)
        described = [describe_exception(e.cause) for e in errors]
        messages = [
            f"window {self.operator!r}: {e}; the firing of window [{row['window_start']}, "
            f"{row['window_end']}) revision {row['revision']}"
            + (f" for key {dict((f, row[f]) for f in self.keys.fields)}" if self.keys.fields
               else "")
            + " is not emitted (a later firing of the window, if any, replaces it)"
            for e, row in zip(errors, firings.iter_rows(named=True), strict=True)]
        return error_batch(
            firings, pipeline=self.pipeline, operator=self.operator,
            error_type=[kind for kind, _, _ in described], message=messages,
            traceback=[trace for _, _, trace in described],
            wm=emit_wm[p], seq=emit_seq[p], wm_end=wm_end,
            ts=firings.get_column("window_end").to_numpy() - 1)


def empty_output(keys: KeyColumns, aggs: AggregateSet, sessions: bool, wm_end: int) -> Batch:
    """A main output with no firing (it still carries the watermark downstream)."""
    schema: dict[str, Any] = {f: keys.dtypes.get(f, pl.Null) for f in keys.fields}
    schema.update({c: pl.Int64 for c in WINDOW_COLUMNS})
    schema.update({n: d if d is not None else pl.Null
                   for n, d in zip(aggs.names, aggs.dtypes(), strict=True)})
    if sessions:
        schema[SUPERSEDES] = SUPERSEDES_DTYPE
    return Batch.empty(wm_end, schema=schema)


def late_output(batch: Batch, rows: np.ndarray, watermark: np.ndarray, *, wm_end: int,
                pipeline: str, operator: str) -> Batch:
    """The records at ``rows`` with the late metadata of SEMANTICS §3 (``late.annotate_late``,
    shared with the late-data step); ``watermark`` is the watermark in force before each."""
    late = batch.take(rows)
    late = Batch(data=late.data, ts=late.ts, seq=late.seq, wm_end=wm_end,
                 wm=np.ascontiguousarray(watermark, dtype=np.int64))
    return annotate_late(late, pipeline=pipeline, operator=operator)
