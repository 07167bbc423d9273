"""Keep-first deduplication (SEMANTICS §4), vectorized: the hot path of most pipelines.

Per key, the first record kept has event time t0; a later record with ``ts < t0 + window``
is a duplicate (dropped, counted, optionally audited); one at or after ``t0 + window``
starts a new window and is kept. A key's state is gone for a record when
``W >= t0 + state_ttl`` (W before that record). Event time, not wall time, so a replay sees
exactly the same state. Physical removal happens lazily at batch ends; the rule itself is
checked per record, so it is exact either way.

No per-record Python: an exact ``KeyIndex`` maps each row's key to a dense slot, t0 is a
numpy array by slot, and a batch is decided with array operations that reproduce the
record-by-record rule (the rare keys whose records interact inside a batch, e.g. a new
window opening, take the per-record path).

Snapshots are incremental (a ``ChunkedState``): slot ids are only appended between
renumberings, so the keys of each complete range of ``_CHUNK`` ids never change under one
index epoch; such a range is a chunk named by epoch and range, which the checkpoint store
writes once and then references. What changes with every batch (t0 and liveness per slot,
the keys of the last, incomplete range, the counters) is the head.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from surestream.io import ChunkedState
from surestream.model.batch import NEG_INF, POS_INF, Batch
from surestream.model.steps import KeyedDedupStep
from surestream.semantics.dedup_common import DedupBase, key_frame
from surestream.semantics.key_index import HashFn, KeyIndex
from surestream.semantics.operator import Outputs
from surestream.semantics.state_size import arrays_bytes

_BLOCK_BITS = 12
_BLOCK = 1 << _BLOCK_BITS  # slots per expiry block
_COMPACT_MIN = 1 << 16  # renumber slots only when this many ids are dead (and most are)
_SAFE = 1 << 62  # |event time| and window/ttl below this: numpy sums cannot overflow
_UNMARKED = np.iinfo(np.int32).max
_CHUNK = 1 << 16  # slot ids per key chunk of a snapshot
_SNAPSHOT_FORMAT = 2  # 1: {"index": KeyIndex.snapshot(), "t0", "counters"}; 2: ChunkedState


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



class KeepFirstDedup(DedupBase):
    """Keeps the first record of each key per window; state: t0 per key slot.

    Keys map to dense slots through an exact ``KeyIndex``; t0 lives in a numpy array by
    slot. A batch is decided for all rows at once (``_keep_mask``), with the per-record rule
    ``_keep_sequential`` only for the rare keys whose rows interact inside the batch.
    """

    def __init__(self, step: KeyedDedupStep, pipeline: str, hash_fn: HashFn | None = None
                 ) -> None:
        super().__init__(step, pipeline)
        self.index = KeyIndex(hash_fn)
        self._wm = NEG_INF  # the watermark the last batch ended with
        self._reset_arrays()

    def process(self, batch: Batch) -> Outputs:
        if batch.ts is None:
            raise ValueError(f"{self.name}: needs event time; put a watermark step before it")
        # the watermark never goes down (SEMANTICS §2): a batch from an operator that holds
        # records back may carry a lower one than the last batch ended with
        wm = np.maximum.accumulate(np.concatenate(([self._wm], batch.wm)))[1:]
        keep = np.zeros(len(batch), dtype=bool)
        unusable = self._unusable_keys(batch)
        rows = np.arange(len(batch)) if unusable is None else np.flatnonzero(~unusable)
        if rows.size:
            data = batch.data if unusable is None else batch.data[rows]
            keys = key_frame(data, self.step.key_fields)
            slots, is_new = self.index.get_or_insert(keys)
            self._fit(self.index.n_slots)
            keep[rows] = self._keep_mask(slots, is_new, batch.ts[rows], wm[rows])
        self._wm = max(self._wm, int(wm[-1]) if len(wm) else NEG_INF, batch.wm_end)
        self._expire(self._wm)
        if unusable is None:
            return self._outputs(batch, batch.filter(keep), ~keep)
        if self.step.on_null_key == "keep":  # passed through, never deduplicated
            keep |= unusable
            return self._outputs(batch, batch.filter(keep), ~keep)
        out = self._outputs(batch, batch.filter(keep), ~keep & ~unusable)
        return self._add_errors(out, self._null_key_errors(batch, unusable))

    def state_gauges(self) -> dict[str, int]:
        """Live keys, and the bytes of the index and the per-slot arrays (``state_size``)."""
        return {"keys": len(self.index),
                "bytes": self.index.nbytes() + arrays_bytes(self._t0, self._mark,
                                                            self._block_due)}

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
                "counters": dict(self.counters), "wm": self._wm}
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
        self.counters = {"duplicates": 0, "errors": 0, **counters}
        self._wm = int(state.head.get("wm", NEG_INF)) if isinstance(state, ChunkedState) \
            else NEG_INF

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

