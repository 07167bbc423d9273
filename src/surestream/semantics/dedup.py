"""Keyed deduplication with event-time state TTL (SEMANTICS §4).

Two small classes over shared helpers, as Flink's deduplicate operators:

- ``KeepFirstDedup``: per key, the first record kept has event time t0; a later record with
  ``ts < t0 + window`` is a duplicate (dropped, counted, optionally audited); one at or after
  ``t0 + window`` starts a new window and is kept.
- ``KeepLastDedup``: per key and window, the last record seen is emitted once the watermark
  passes ``t0 + window - 1``.

A key's state is gone for a record when ``W >= t0 + state_ttl`` (W before that record). Event
time, not wall time, so a replay sees exactly the same state. Physical removal happens
lazily at batch ends; the rule itself is checked per record, so it is exact either way.

``KeepFirstDedup`` is on the hot path of most pipelines, so it avoids per-record Python: an
exact ``KeyIndex`` maps each row's key to a dense slot, t0 is a numpy array by slot, and a
batch is decided with array operations that reproduce the record-by-record rule (the rare
keys whose records interact inside a batch, e.g. a new window opening, take the per-record
path). ``KeepLastDedup`` holds whole records and stays record-at-a-time.

``KeepFirstDedup`` snapshots incrementally (a ``ChunkedState``): slot ids are only appended
between renumberings, so the keys of each complete range of ``_CHUNK`` ids never change
under one index epoch; such a range is a chunk named by epoch and range, which the
checkpoint store writes once and then references. What changes with every batch (t0 and
liveness per slot, the keys of the last, incomplete range, the counters) is the head.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from surestream.io import ChunkedState
from surestream.model.batch import POS_INF, Batch
from surestream.model.steps import KeyedDedupStep
from surestream.semantics.key_index import HashFn, KeyIndex
from surestream.semantics.operator import MAIN, Outputs

_BLOCK_BITS = 12
_BLOCK = 1 << _BLOCK_BITS  # slots per expiry block
_COMPACT_MIN = 1 << 16  # renumber slots only when this many ids are dead (and most are)
_SAFE = 1 << 62  # |event time| and window/ttl below this: numpy sums cannot overflow
_UNMARKED = np.iinfo(np.int32).max
_CHUNK = 1 << 16  # slot ids per key chunk of a snapshot
_SNAPSHOT_FORMAT = 2  # 1: {"index": KeyIndex.snapshot(), "t0", "counters"}; 2: ChunkedState


def key_values(data: pl.DataFrame, fields: list[str]) -> list[Hashable]:
    """One hashable key per row: the value itself for one field, a tuple for several.
    A missing column gives null keys (such records share the null key)."""
    cols = [data.get_column(f).to_list() if f in data.columns else [None] * data.height
            for f in fields]
    return cols[0] if len(cols) == 1 else list(zip(*cols, strict=True))


def key_frame(data: pl.DataFrame, fields: list[str]) -> pl.DataFrame:
    """The key columns of a batch, in field order (a missing column is an all-null key
    column, as in ``key_values``; columns are renamed so a field may repeat)."""
    n = data.height
    return pl.DataFrame([
        (data.get_column(f) if f in data.columns else pl.Series([None] * n, dtype=pl.Null))
        .alias(f"k{i}") for i, f in enumerate(fields)])


def _safe(ts: np.ndarray, prior: np.ndarray, window: int, ttl: int) -> bool:
    """Whether ``t + window`` and ``t + ttl`` fit in int64 for every event time involved."""
    return (max(window, ttl) < _SAFE and (ts.size == 0 or -_SAFE < ts.min() <= ts.max() < _SAFE)
            and (prior.size == 0 or -_SAFE < prior.min() <= prior.max() < _SAFE))


def _due(t0: np.ndarray, ttl: int) -> np.ndarray:
    """``t0 + ttl`` saturated at POS_INF: when a state expires (POS_INF: only at the end)."""
    return np.minimum(t0, POS_INF - ttl) + ttl


@dataclass(frozen=True, slots=True)
class _Groups:
    """A batch's rows by key: each key's first row, the later rows (in arrival order) with
    the index of their key, and the key's state before the batch (t0 if ``had``)."""

    first: np.ndarray
    later: np.ndarray
    key_of: np.ndarray
    had: np.ndarray
    prior: np.ndarray


class _DedupBase:
    def __init__(self, step: KeyedDedupStep, pipeline: str) -> None:
        self.step = step
        self.name = step.name
        self.pipeline = pipeline
        self.window = step.time_window_ms
        self.ttl = step.ttl_ms
        self.counters = {"duplicates": 0}

    def output_tags(self) -> set[str]:
        tag = self.step.duplicates_output_tag
        return {tag} if tag else set()

    def _outputs(self, batch: Batch, main: Batch, dup_mask: np.ndarray) -> Outputs:
        n_dup = int(dup_mask.sum())
        self.counters["duplicates"] += n_dup
        out: Outputs = {MAIN: main}
        if n_dup and self.step.duplicates_output_tag:
            out[self.step.duplicates_output_tag] = batch.filter(dup_mask)
        return out


class KeepFirstDedup(_DedupBase):
    """Keeps the first record of each key per window; state: t0 per key slot.

    Keys map to dense slots through an exact ``KeyIndex``; t0 lives in a numpy array by
    slot. A batch is decided for all rows at once (``_keep_mask``), with the per-record rule
    ``_keep_sequential`` only for the rare keys whose rows interact inside the batch.
    """

    def __init__(self, step: KeyedDedupStep, pipeline: str, hash_fn: HashFn | None = None
                 ) -> None:
        super().__init__(step, pipeline)
        self.index = KeyIndex(hash_fn)
        self._reset_arrays()

    def process(self, batch: Batch) -> Outputs:
        if batch.ts is None:
            raise ValueError(f"{self.name}: needs event time; put a watermark step before it")
        keep = np.zeros(0, dtype=bool)
        if len(batch):
            keys = key_frame(batch.data, self.step.key_fields)
            slots, is_new = self.index.get_or_insert(keys)
            self._fit(self.index.n_slots)
            keep = self._keep_mask(slots, is_new, batch.ts, batch.wm)
        self._expire(batch.wm_end)
        return self._outputs(batch, batch.filter(keep), ~keep)

    # -- the rule ---------------------------------------------------------------------
    def _keep_mask(self, slots: np.ndarray, is_new: np.ndarray, ts: np.ndarray,
                   wm: np.ndarray) -> np.ndarray:
        """Exactly what the per-record rule decides, in arrival order, for every row.

        The first row of each key in the batch meets the state from before the batch;
        every later row meets the t0 the first one leaves. If no later row would start a
        window or find that state expired, all of them are duplicates -- the common case,
        decided with numpy. Otherwise the rows of just those keys go through the
        per-record rule, as do all rows when event times are near the int64 limits
        (Python ints cannot overflow)."""
        n, window, ttl = slots.size, self.window, self.ttl
        rows = np.arange(n, dtype=np.int32)
        mark = self._mark  # _UNMARKED everywhere between calls
        np.minimum.at(mark, slots, rows)
        first_row = mark[slots]  # the first row of each row's key
        mark[slots] = _UNMARKED
        head = first_row == rows
        first = np.flatnonzero(head)
        later = np.flatnonzero(~head)
        key_of = np.searchsorted(first, first_row[later])  # index of a later row's key
        key_slot = slots[first]
        had = ~is_new[first]
        prior = np.where(had, self._t0[key_slot], 0)
        keep = np.zeros(n, dtype=bool)
        group = _Groups(first, later, key_of, had, prior)
        if not _safe(ts, prior, window, ttl):
            t0 = self._keep_sequential(np.arange(first.size), group, ts, wm, keep, prior)
        else:
            fts = ts[first]
            keep_first = ~had | (prior + ttl <= wm[first]) | (fts >= prior + window)
            t0 = np.where(keep_first, fts, prior)
            keep[first] = keep_first
            if later.size:
                cur = t0[key_of]
                again = (cur + ttl <= wm[later]) | (ts[later] >= cur + window)
                if again.any():
                    t0 = self._keep_sequential(np.unique(key_of[again]), group, ts, wm,
                                               keep, t0)
        self._store(key_slot, t0)
        return keep

    def _keep_sequential(self, keys: np.ndarray, group: _Groups, ts: np.ndarray,
                         wm: np.ndarray, keep: np.ndarray, t0: np.ndarray) -> np.ndarray:
        """The per-record rule (SEMANTICS §4) over all rows of the given keys: kept iff no
        state, state expired (t0 + ttl <= W) or ts >= t0 + window; a kept record sets t0.
        Writes ``keep`` for those rows; returns ``t0`` (per key) updated for those keys."""
        window, ttl = self.window, self.ttl
        rows_of: dict[int, list[int]] = {k: [int(group.first[k])] for k in keys.tolist()}
        wanted = np.isin(group.key_of, keys)
        for i, k in zip(group.later[wanted].tolist(), group.key_of[wanted].tolist(),
                        strict=True):
            rows_of[k].append(i)
        out = t0.copy()
        for k, key_rows in rows_of.items():
            cur = int(group.prior[k]) if group.had[k] else None
            for i in key_rows:
                t = int(ts[i])
                kept = cur is None or cur + ttl <= int(wm[i]) or t >= cur + window
                keep[i] = kept
                if kept:
                    cur = t
            out[k] = cur
        return out

    def _store(self, key_slot: np.ndarray, t0: np.ndarray) -> None:
        """Write t0 back, and lower the expiry bound of the blocks (an unchanged t0 was
        already below its block's bound: a no-op, cheaper than finding the changed)."""
        self._t0[key_slot] = t0
        np.minimum.at(self._block_due, key_slot >> _BLOCK_BITS, _due(t0, self.ttl))

    # -- state upkeep -----------------------------------------------------------------
    def _fit(self, n_slots: int) -> None:
        """Per-slot arrays cover ``n_slots`` ids (whole blocks)."""
        if n_slots <= self._t0.size:
            return
        size = max(n_slots, 2 * self._t0.size, self.index.capacity, _BLOCK)
        size = -(-size // _BLOCK) * _BLOCK
        t0 = np.zeros(size, dtype=np.int64)
        t0[: self._t0.size] = self._t0
        due = np.full(size // _BLOCK, POS_INF, dtype=np.int64)
        due[: self._block_due.size] = self._block_due
        self._t0, self._block_due = t0, due
        self._mark = np.full(size, _UNMARKED, dtype=np.int32)

    def _expire(self, watermark: int) -> None:
        """Free the state of keys whose TTL has passed (``W >= t0 + ttl``).

        Only memory is at stake (the rule checks expiry per record), so this reads just
        the blocks whose bound has passed, and renumbers slots when most ids are dead."""
        if watermark == POS_INF:  # end of input: every state has expired
            if self.index.n_slots:
                self._reset()
            return
        blocks = np.flatnonzero(self._block_due <= watermark)
        if blocks.size == 0:
            return
        ids = (blocks[:, None] * _BLOCK + np.arange(_BLOCK, dtype=np.int64)).ravel()
        live = np.zeros(ids.size, dtype=bool)
        in_use = ids < self.index.n_slots
        live[in_use] = self.index.live[ids[in_use]]
        due = _due(self._t0[ids], self.ttl)
        expired = live & (due <= watermark)
        self.index.delete(ids[expired])
        still = np.where(live & ~expired, due, POS_INF)
        self._block_due[blocks] = still.reshape(blocks.size, _BLOCK).min(axis=1)
        dead = self.index.n_slots - len(self.index)
        if dead > max(len(self.index), _COMPACT_MIN):
            self._compact()

    def _compact(self) -> None:
        """Renumber the live slots densely (the index's ``compact``), per-slot arrays too."""
        old = self.index.compact()
        t0 = self._t0[old]
        self._reset_arrays()
        self._fit(old.size)
        self._t0[: old.size] = t0
        self._recompute_blocks()

    def _recompute_blocks(self) -> None:
        live = np.zeros(self._t0.size, dtype=bool)
        live[: self.index.n_slots] = self.index.live
        due = np.where(live, _due(self._t0, self.ttl), POS_INF)
        self._block_due = due.reshape(-1, _BLOCK).min(axis=1)

    def _reset(self) -> None:
        self.index.clear()
        self._reset_arrays()

    def _reset_arrays(self) -> None:
        self._t0 = np.zeros(0, dtype=np.int64)  # per slot: event time of the kept record
        self._mark = np.zeros(0, dtype=np.int32)  # per slot: scratch to group a batch's rows
        # per block of _BLOCK slots: a lower bound of t0 + ttl over its live slots, so the
        # sweep at a batch end only reads blocks that may hold expired state
        self._block_due = np.zeros(0, dtype=np.int64)

    # -- checkpoints ------------------------------------------------------------------
    def snapshot(self) -> ChunkedState:
        """Head: t0 and liveness (a bit each) of every slot, the keys of the last
        incomplete chunk, the counters. Chunks: the keys of each complete range of
        ``_CHUNK`` slot ids, named by the index epoch -- fixed content per name, so the
        store writes each only once. Values are zero-copy slices of the (immutable) key
        frames, taken now."""
        n, epoch = self.index.n_slots, self.index.epoch
        full = n // _CHUNK
        head = {"format": _SNAPSHOT_FORMAT, "epoch": epoch, "n_slots": n,
                "live": np.packbits(self.index.live), "t0": self._t0[:n].copy(),
                "tail": self.index.key_range(full * _CHUNK, n),
                "counters": dict(self.counters)}
        chunks = {_chunk_name(epoch, k): self.index.key_range(k * _CHUNK, (k + 1) * _CHUNK)
                  for k in range(full)}
        return ChunkedState(head, chunks)

    def restore(self, state: Any) -> None:
        """Load a ``snapshot``: a ``ChunkedState``, or the dict of earlier versions."""
        self._reset()
        if isinstance(state, ChunkedState):
            self._restore_chunked(state)
            counters = state.head["counters"]
        else:
            self._restore_v1(state)
            counters = state["counters"]
        self._recompute_blocks()
        self.counters = dict(counters)

    def _restore_chunked(self, state: ChunkedState) -> None:
        """Keys from the chunks named by the head's epoch plus its tail, in slot order: the
        index gets the same ids (and a new epoch: this run may go on differently)."""
        head = state.head
        if head.get("format") != _SNAPSHOT_FORMAT:
            raise ValueError(f"unknown snapshot format {head.get('format')!r}")
        n = int(head["n_slots"])
        names = [_chunk_name(head["epoch"], k) for k in range(n // _CHUNK)]
        missing = [name for name in names if name not in state.chunks]
        if missing:
            raise ValueError(f"snapshot lacks the key chunks {missing}")
        parts = [state.value(name) for name in names]
        if head["tail"] is not None:
            parts.append(head["tail"])
        keys = pl.concat(parts, rechunk=True) if parts else None
        live = np.unpackbits(head["live"], count=n).astype(bool)
        self.index.restore_keys(keys, live, n)
        self._fit(n)
        self._t0[:n] = head["t0"]

    def _restore_v1(self, state: dict[str, Any]) -> None:
        """The format before chunked snapshots: live keys, their slot ids and t0s."""
        self.index.restore(state["index"])
        self._fit(self.index.n_slots)
        self._t0[state["index"]["slots"]] = state["t0"]


def _chunk_name(epoch: str, k: int) -> str:
    """The chunk of slot ids ``[k * _CHUNK, (k + 1) * _CHUNK)`` under index epoch ``epoch``."""
    return f"keys-e{epoch}-{k}"


class KeepLastDedup(_DedupBase):
    """Holds the last record of each key's window; emits it when W >= t0 + window - 1.

    Every other record of the window is a duplicate: counted when a newer record replaces
    it (or when it arrives after its window was emitted) and sent to the audit tag if any.
    """

    def __init__(self, step: KeyedDedupStep, pipeline: str) -> None:
        super().__init__(step, pipeline)
        # key -> window [t0, last row, its ts, its seq, emitted?]; the heap holds every
        # window not yet emitted, also those a newer window of the same key replaced
        self.windows: dict[Hashable, list[Any]] = {}
        self._due: list[tuple[int, int, list[Any]]] = []  # (t0 + window - 1, order, window)
        self._order = 0
        self._schema: pl.Schema | None = None

    def process(self, batch: Batch) -> Outputs:
        if batch.ts is None:
            raise ValueError(f"{self.name}: needs event time; put a watermark step before it")
        if self._schema is None and batch.data.width:
            self._schema = batch.data.schema
        keys = key_values(batch.data, self.step.key_fields)
        ts, wm, seq = batch.ts.tolist(), batch.wm.tolist(), batch.seq.tolist()
        rows = batch.data.to_dicts() if len(batch) else []
        emitted: list[tuple[dict, int, int, int]] = []  # (row, ts, wm at emission, seq)
        duplicates: list[tuple[dict, int, int, int]] = []
        for i, k in enumerate(keys):
            self._emit_due(wm[i], emitted)
            t = ts[i]
            cur = self.windows.get(k)
            if cur is not None and cur[0] + self.ttl <= wm[i]:
                cur = None  # state expired
            if cur is None or t >= cur[0] + self.window:
                new = [t, rows[i], t, seq[i], False]
                self.windows[k] = new
                heapq.heappush(self._due, (t + self.window - 1, self._order, new))
                self._order += 1
            elif cur[4]:
                duplicates.append((rows[i], t, wm[i], seq[i]))  # its window was emitted
            else:
                duplicates.append((cur[1], cur[2], wm[i], cur[3]))
                cur[1], cur[2], cur[3] = rows[i], t, seq[i]
        self._emit_due(batch.wm_end, emitted)
        self._expire(batch.wm_end)
        self.counters["duplicates"] += len(duplicates)
        out: Outputs = {MAIN: self._batch(emitted, batch.wm_end)}
        if self.step.duplicates_output_tag and duplicates:
            out[self.step.duplicates_output_tag] = self._batch(duplicates, batch.wm_end)
        return out

    def _emit_due(self, watermark: int, emitted: list) -> None:
        while self._due and self._due[0][0] <= watermark:
            _, _, window = heapq.heappop(self._due)
            window[4] = True
            emitted.append((window[1], window[2], watermark, window[3]))

    def _expire(self, watermark: int) -> None:
        dead = [k for k, w in self.windows.items() if w[4] and w[0] + self.ttl <= watermark]
        for k in dead:
            del self.windows[k]

    def _batch(self, rows: list[tuple[dict, int, int, int]], wm_end: int) -> Batch:
        if not rows:
            return Batch.empty(wm_end, schema=self._schema)
        return Batch(
            data=pl.DataFrame([r[0] for r in rows], schema=self._schema, orient="row"),
            ts=np.array([r[1] for r in rows], dtype=np.int64),
            wm=np.array([r[2] for r in rows], dtype=np.int64),
            seq=np.array([r[3] for r in rows], dtype=np.int64),
            wm_end=wm_end,
        )

    def snapshot(self) -> Any:
        # one pickle keeps the identity shared between `windows` and `_due`
        return {"windows": self.windows, "due": self._due, "order": self._order,
                "counters": dict(self.counters), "schema": self._schema}

    def restore(self, state: Any) -> None:
        self.windows = state["windows"]
        self._due = state["due"]
        self._order = state["order"]
        self.counters = dict(state["counters"])
        self._schema = state["schema"]


def build_dedup_operator(step: KeyedDedupStep, pipeline: str) -> KeepFirstDedup | KeepLastDedup:
    return (KeepFirstDedup if step.strategy == "first" else KeepLastDedup)(step, pipeline)
