"""An exact, vectorized map from key tuples to dense int64 slot ids.

Keyed operators (dedup first of all) need "which state belongs to this record's key" for a
whole batch at once. A Python dict costs a hash, a lookup and a tuple per record; this index
answers for all rows of a batch with a few numpy passes:

- a key is one row of a polars DataFrame (one column per key field: strings, integers,
  floats, nulls, ...), hashed to 64 bits by polars with a fixed seed;
- an open-addressing table in one int64 numpy array (power-of-two capacity, at most half
  full, growing 4x when it fills because every big fresh allocation costs page faults) holds
  ``fingerprint | slot id`` per position (31 bits of the hash above the 32-bit id), so one
  gather tells "empty", "another key" or "maybe this key". Linear probing runs in
  vectorized rounds over all unresolved rows at once;
- a fingerprint match is only a *candidate*: the stored key of the slot is compared with
  the probe key (polars ``eq_missing``, column by column, in one pass per call for all
  candidates). A mismatch -- a true hash collision -- sends the row on probing after that
  position, so two different keys never share a slot. Tests inject a deliberately bad hash
  to prove it.

Slot ids are handed out in order and never renumbered behind the owner's back: the owner
keeps per-slot state in arrays indexed by slot id. ``delete`` leaves tombstones (the table
is rebuilt, ids unchanged, when they pile up); ``compact`` renumbers the live slots densely
and returns the old ids so that the owner can permute its arrays the same way.

The keys are stored by slot id and only ever appended, so the keys of a range of ids never
change -- until the store is replaced wholesale (``compact`` renumbering, a key column
changing type, ``clear``, a restore). Each of those draws a new ``epoch``, an opaque token:
owners name incremental snapshot chunks by ``(epoch, range)`` (``key_range``), and
``restore_keys`` rebuilds the index from the concatenated ranges and the live mask.

Key columns are compared after a light normalization, so that one logical key has one hash
whatever batch it comes from: integers become Int64, floats Float64, categoricals String,
and an all-null (``Null``-typed) column adopts the type seen later. Two different non-null
types for one key column (say String, then Int64) are refused: casting would make ``"1"``
and ``1`` one key, which a record-at-a-time dict would not do. Floats follow polars
equality: ``-0.0 == 0.0`` and NaN equals NaN.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl

#: Hashes a frame of (normalized) keys to one 64-bit integer per row. Equal keys must get
#: equal hashes; different keys may collide (they only cost extra key comparisons).
HashFn = Callable[[pl.DataFrame], np.ndarray]

_SEED = 0x243F6A8885A308D3
_FIBONACCI = np.uint64(0x9E3779B97F4A7C15)
_IDX = np.uint32 if pl.get_index_type() == pl.UInt32 else np.uint64
_MIN_CAPACITY = 1024
_MAX_SLOTS = (1 << 31) - 1
#: Table entries: ``(hash & _HIGH) | slot``, never negative (a 31-bit fingerprint), so
#: the two negative markers cannot be mistaken for an entry.
_HIGH = np.int64(0x7FFFFFFF00000000)
_LOW = np.int64(0xFFFFFFFF)
EMPTY = np.int64(-1)
TOMBSTONE = np.int64(-2)
_MATCH_LIMIT = np.uint64(1 << 31)  # entry ^ (our hash & _HIGH) is below it: same print
#: Store chunks are merged this many at a time (few chunks to gather from, little copying).
_FANOUT = 32


def polars_hash(keys: pl.DataFrame) -> np.ndarray:
    """Row hashes from polars with a fixed seed. They are only stable inside one process and
    polars version, which is all the index needs: snapshots hold keys, not hashes."""
    return keys.hash_rows(seed=_SEED).to_numpy()


def _canonical(dtype: pl.DataType) -> pl.DataType:
    if dtype.is_integer():
        return pl.Int64()
    if dtype.is_float():
        return pl.Float64()
    if isinstance(dtype, pl.Categorical | pl.Enum):
        return pl.String()
    return dtype


def _take(frame: pl.DataFrame, idx: np.ndarray) -> pl.DataFrame:
    """Rows by position (an index Series is much cheaper for polars than a numpy array)."""
    return frame[pl.Series(idx.astype(_IDX, copy=False))]


def _rows_equal(a: pl.DataFrame, b: pl.DataFrame) -> np.ndarray:
    """Row-wise equality of two frames of the same schema; null equals null."""
    eq: pl.Series | None = None
    for ca, cb in zip(a.get_columns(), b.get_columns(), strict=True):
        e = ca.eq_missing(cb)
        eq = e if eq is None else eq & e
    assert eq is not None
    return eq.to_numpy().astype(bool, copy=False)


def _new_epoch() -> str:
    return secrets.token_hex(8)


def _pow2_at_least(n: int) -> int:
    return max(_MIN_CAPACITY, 1 << max(0, int(n) - 1).bit_length())


class KeyIndex:
    """Key tuples (rows of a DataFrame) -> dense slot ids, exact and vectorized.

    ``get_or_insert`` and ``lookup`` take a DataFrame whose columns are the key fields in a
    fixed order (names come from the first call; later calls are matched by position).
    ``hash_fn`` replaces the polars row hash (tests use colliding ones).
    """

    def __init__(self, hash_fn: HashFn | None = None) -> None:
        self._hash_fn: HashFn = hash_fn or polars_hash
        self.clear()

    # -- public API ---------------------------------------------------------------------
    def clear(self) -> None:
        """Forget every key (ids start again at 0)."""
        self._schema: list[tuple[str, pl.DataType]] | None = None
        self._chunks: list[pl.DataFrame] = []  # keys of slots 0..n_slots-1, in id order
        self._levels: list[int] = []  # merge level of each chunk
        self._frame_cache: pl.DataFrame | None = None
        self._n_slots = 0
        self._n_live = 0
        self._hash = np.empty(0, dtype=np.int64)  # per slot: its key's hash
        self._pos = np.empty(0, dtype=np.int32)  # per slot: its table position
        self._live = np.empty(0, dtype=bool)
        self._epoch = _new_epoch()
        self._alloc_table(_MIN_CAPACITY)

    def __len__(self) -> int:
        """Number of live keys."""
        return self._n_live

    @property
    def n_slots(self) -> int:
        """Ids handed out so far (live or deleted): per-slot arrays need this length."""
        return self._n_slots

    @property
    def capacity(self) -> int:
        """Ids the per-slot arrays hold now; owners may size their own arrays alike."""
        return int(self._hash.size)

    @property
    def epoch(self) -> str:
        """Names the current numbering of the stored keys: while it is unchanged, the keys of
        slots ``[a, b)`` (``key_range``) stay the same once ``b <= n_slots``. A new one is
        drawn whenever stored keys could change (renumbering, retyping, clear, restore) --
        random, so it is never reused by another run or timeline either, where the same
        range may hold other keys (e.g. a run resumed from a checkpoint going on with other
        input or other batch cuts)."""
        return self._epoch

    def nbytes(self) -> int:
        """Memory held (an estimate for the state gauges): the table, the per-slot arrays
        and the stored keys (polars' own estimate of its buffers). Cheap: a few
        additions over O(log n) chunks."""
        keys = sum(chunk.estimated_size() for chunk in self._chunks)
        return int(self._tab.nbytes + self._hash.nbytes + self._pos.nbytes
                   + self._live.nbytes + keys)

    @property
    def live(self) -> np.ndarray:
        """Read-only mask of the live slot ids, length ``n_slots``."""
        view = self._live[: self._n_slots]
        view.flags.writeable = False
        return view

    def get_or_insert(self, keys: pl.DataFrame | pl.Series) -> tuple[np.ndarray, np.ndarray]:
        """The slot of every row, inserting the keys not yet present.

        Returns ``(slots, is_new)``: rows with equal keys get the same slot; a key new to the
        index is inserted once, and ``is_new`` is true for every row of it. New ids are
        consecutive from ``n_slots``. They are deterministic (the same calls give the same
        ids) but follow the probing order, so after a ``restore`` new keys may be numbered
        differently than in the original; ids are handles, never part of a result.
        """
        keys = self._conform(keys)
        if keys.height == 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=bool)
        h = self._hashes(keys)
        self._reserve(keys.height)
        base = self._n_slots
        slots = self._probe(keys, h, insert=True)
        return slots, slots >= base

    def lookup(self, keys: pl.DataFrame | pl.Series) -> np.ndarray:
        """The slot of every row, or -1 where its key is absent."""
        keys = self._conform(keys)
        if keys.height == 0 or self._n_live == 0:
            return np.full(keys.height, -1, dtype=np.int64)
        return self._probe(keys, self._hashes(keys), insert=False)

    def delete(self, slots: np.ndarray) -> int:
        """Remove these slots' keys (dead or repeated ids are ignored); returns how many.

        Ids are not reused: per-slot values of the owner just go stale until ``compact``."""
        s = np.asarray(slots, dtype=np.int64)
        s = s[(s >= 0) & (s < self._n_slots)]
        s = s[self._live[s]]
        if s.size > 1 and not (s[1:] > s[:-1]).all():  # (sorted, distinct: no sort needed)
            s = np.unique(s)
        if s.size:
            self._tab[self._pos[s]] = TOMBSTONE
            self._live[s] = False
            self._n_live -= int(s.size)
            self._n_tomb += int(s.size)
        return int(s.size)

    def keys_of(self, slots: np.ndarray) -> pl.DataFrame:
        """The key of each live slot, one row per id."""
        s = np.asarray(slots, dtype=np.int64)
        if s.size and (s.min() < 0 or s.max() >= self._n_slots or not self._live[s].all()):
            raise KeyError("keys_of: some slot ids are not live")
        if self._schema is None:
            return pl.DataFrame()
        return _take(self._frame(), s)

    def key_range(self, start: int, stop: int) -> pl.DataFrame | None:
        """The keys of slots ``start .. stop-1`` (clipped to ``n_slots``) in id order, dead
        slots' keys included (never looked up again, and kept so that ranges never change
        under one epoch); None before the first key. A zero-copy slice of the store."""
        if self._schema is None:
            return None
        start = min(max(0, start), self._n_slots)
        return self._frame().slice(start, max(0, min(stop, self._n_slots) - start))

    def compact(self) -> np.ndarray:
        """Renumber the live slots 0..len-1 (keeping their order) and forget deleted ones.

        Returns the old id of every new id: the owner does ``values = values[old]``."""
        old = np.flatnonzero(self._live[: self._n_slots])
        renumber = np.full(self._n_slots, -1, dtype=np.int64)
        renumber[old] = np.arange(old.size, dtype=np.int64)
        in_table_order = renumber[self._table_ids()]
        if self._schema is not None:
            self._set_store(_take(self._frame(), old))
        self._hash = self._hash[old]
        self._pos = np.empty(old.size, dtype=np.int32)
        self._live = np.ones(old.size, dtype=bool)
        self._n_slots = self._n_live = int(old.size)
        self._rebuild(_pow2_at_least(4 * old.size), in_table_order)  # 1/4 full
        return old

    def snapshot(self) -> dict[str, Any]:
        """The live keys and their ids, as plain picklable values. Hashes are not kept: they
        are recomputed on restore, so a snapshot survives another polars version."""
        ids = np.flatnonzero(self._live[: self._n_slots])
        keys = _take(self._frame(), ids) if self._schema is not None else None
        return {"keys": keys, "slots": ids, "n_slots": self._n_slots}

    def restore(self, state: dict[str, Any]) -> None:
        """Load a ``snapshot``: the same keys under the same ids."""
        self.clear()
        keys: pl.DataFrame | None = state["keys"]
        ids = np.asarray(state["slots"], dtype=np.int64)
        n_slots = int(state["n_slots"])
        self._grow_slots(n_slots)
        self._n_slots = n_slots
        if keys is None:
            return
        keys = self._conform(keys)
        # the store has a row per id; ids deleted before the snapshot get null rows
        where = np.full(n_slots, -1, dtype=np.int64)
        where[ids] = np.arange(ids.size, dtype=np.int64)
        gather = pl.Series("i", where).to_frame().select(
            pl.when(pl.col("i") >= 0).then(pl.col("i"))).to_series()
        self._set_store(keys.select(pl.all().gather(gather)))
        self._hash[ids] = self._hashes(keys)
        self._live[ids] = True
        self._n_live = int(ids.size)
        self._rebuild(_pow2_at_least(2 * ids.size), ids)

    def restore_keys(self, keys: pl.DataFrame | None, live: np.ndarray, n_slots: int
                     ) -> None:
        """Rebuild from the keys of every slot in id order (``key_range`` over ``0 ..
        n_slots``, concatenated), the ``live`` mask and ``n_slots``: the same keys under the
        same ids, live where they were live. The index gets a new epoch."""
        live = np.asarray(live, dtype=bool)
        height = 0 if keys is None else keys.height
        if live.shape != (n_slots,) or height != n_slots:
            raise ValueError(f"KeyIndex.restore_keys: {height} keys and a live mask of "
                             f"{live.size} for {n_slots} slots")
        self.clear()
        self._grow_slots(n_slots)
        self._n_slots = n_slots
        if keys is None:
            return
        keys = self._conform(keys)
        self._set_store(keys)
        ids = np.flatnonzero(live)
        self._hash[ids] = self._hashes(keys if ids.size == n_slots else _take(keys, ids))
        self._live[:n_slots] = live
        self._n_live = int(ids.size)
        self._rebuild(_pow2_at_least(2 * ids.size), ids)

    # -- keys ---------------------------------------------------------------------------
    def _conform(self, keys: pl.DataFrame | pl.Series) -> pl.DataFrame:
        """Cast ``keys`` to the index's key schema (fixing it on first use)."""
        if isinstance(keys, pl.Series):
            keys = keys.to_frame()
        if self._schema is None:
            self._schema = [(c, _canonical(t)) for c, t in keys.schema.items()]
        if keys.width != len(self._schema):
            raise ValueError(f"KeyIndex: {keys.width} key columns, expected {len(self._schema)}")
        for i, (name, dtype) in enumerate(keys.schema.items()):
            want, have = self._schema[i][1], _canonical(dtype)
            if have == want or have == pl.Null:
                continue
            if want != pl.Null:
                raise TypeError(
                    f"KeyIndex: key column {i} ({name!r}) was {want} and is now {dtype}; "
                    "cast the key field to one type before keyed operators")
            self._upgrade_column(i, have)
        names = [c for c, _ in self._schema]
        if keys.columns != names:
            keys = keys.rename(dict(zip(keys.columns, names, strict=True)))
        if list(keys.dtypes) != [t for _, t in self._schema]:
            keys = keys.cast(dict(self._schema))  # type: ignore[arg-type]
        if keys.n_chunks() > 1:
            keys = keys.rechunk()  # gathers from many small chunks are several times slower
        return keys

    def _upgrade_column(self, i: int, dtype: pl.DataType) -> None:
        """An all-null column meets its real type: retype the stored keys and rehash them
        (the store also when it holds no ids, e.g. compacted to nothing: new keys are
        appended to it)."""
        assert self._schema is not None
        name = self._schema[i][0]
        self._schema[i] = (name, dtype)
        if self._chunks:
            frame = self._frame().with_columns(pl.col(name).cast(dtype))
            self._set_store(frame)
            self._hash[: self._n_slots] = self._hashes(frame)
            self._rebuild(self._cap)

    def _hashes(self, keys: pl.DataFrame) -> np.ndarray:
        h = np.asarray(self._hash_fn(keys))
        if h.shape != (keys.height,) or h.dtype.kind not in "iu":
            raise ValueError("KeyIndex: hash_fn must return one integer per row")
        if h.dtype.itemsize != 8:
            h = h.astype(np.int64)
        return np.ascontiguousarray(h).view(np.int64)

    # -- key store: row i = key of slot i -----------------------------------------------
    def _frame(self) -> pl.DataFrame:
        if self._frame_cache is None:
            assert self._schema is not None
            self._frame_cache = (pl.concat(self._chunks, rechunk=False) if self._chunks
                                 else pl.DataFrame(schema=dict(self._schema)))
        return self._frame_cache

    def _set_store(self, frame: pl.DataFrame) -> None:
        """Replace every stored key: ranges may hold other keys now, hence a new epoch."""
        self._chunks, self._levels, self._frame_cache = [frame], [0], None
        self._epoch = _new_epoch()

    def _append_keys(self, frame: pl.DataFrame) -> None:
        """Append one chunk; merge ``_FANOUT`` chunks of a level into one of the next, so a
        store of n keys has O(log n) chunks and each key is copied O(log n) times."""
        chunks, levels = self._chunks, self._levels
        chunks.append(frame)
        levels.append(0)
        while len(levels) >= _FANOUT and len(set(levels[-_FANOUT:])) == 1:
            merged = pl.concat(chunks[-_FANOUT:], rechunk=True)
            level = levels[-1] + 1
            del chunks[-_FANOUT:], levels[-_FANOUT:]
            chunks.append(merged)
            levels.append(level)
        self._frame_cache = None

    # -- table --------------------------------------------------------------------------
    def _alloc_table(self, cap: int) -> None:
        self._cap = cap
        self._shift = np.uint64(64 - (cap.bit_length() - 1))
        self._tab = np.full(cap, EMPTY, dtype=np.int64)
        self._n_tomb = 0

    def _home(self, h: np.ndarray) -> np.ndarray:
        """Fibonacci hashing: the top bits of h * 2^64/phi, so weak low bits do not cluster."""
        home = h.view(np.uint64) * _FIBONACCI
        home >>= self._shift
        return home.view(np.int64)  # below 2**63 after the shift

    def _table_ids(self) -> np.ndarray:
        """The live slot ids in table order (which is nearly sorted by home position)."""
        return self._tab[self._tab >= 0] & _LOW

    def _grow_slots(self, n: int) -> None:
        """Per-slot arrays for at least ``n`` ids: as many as the table can hold keys, so
        they grow (and get allocated) in the table's few big steps."""
        if n > _MAX_SLOTS:
            raise OverflowError("KeyIndex: more than 2**31 - 1 slot ids; compact() it")
        if n <= self._hash.size:
            return
        size = min(max(n, 2 * self._hash.size, self._cap // 2), _MAX_SLOTS)
        for name in ("_hash", "_pos", "_live"):
            old = getattr(self, name)
            new = np.zeros(size, dtype=old.dtype)
            new[: old.size] = old
            setattr(self, name, new)

    def _reserve(self, n: int) -> None:
        """Make room for up to ``n`` new keys at a load of at most 1/2 (tombstones count).

        A rebuild purges the tombstones; it keeps the size if that leaves a quarter of the
        table free (so rebuilds stay rare against deletes), doubles it if not, and grows
        4x when the keys need it (few rebuilds and big allocations while a stream fills)."""
        need = self._n_live + n
        if 2 * (need + self._n_tomb) <= self._cap:
            return
        if 4 * need <= self._cap:
            cap = self._cap
        elif 2 * need <= self._cap:
            cap = 2 * self._cap
        else:
            cap = max(_pow2_at_least(2 * need), 4 * self._cap)
        self._rebuild(cap)

    def _rebuild(self, cap: int, ids: np.ndarray | None = None) -> None:
        """A fresh table of ``cap`` positions holding the slots ``ids`` (default: the live
        ones, in the current table order).

        No probing: sorted by home position, linear probing puts entry i at
        ``max(home_i, pos_{i-1} + 1)``, a running maximum; entries pushed past the end wrap
        to the first free positions, which keeps every probe path unbroken."""
        if ids is None:
            ids = self._table_ids()
        self._alloc_table(cap)
        if ids.size == 0:
            return
        home = self._home(self._hash[ids])
        order = np.argsort(home, kind="stable")  # fast on nearly sorted input
        ids, pos = ids[order], home[order]
        step = np.arange(ids.size, dtype=np.int64)
        pos -= step  # in place from here on: big temporaries cost page faults
        np.maximum.accumulate(pos, out=pos)
        pos += step
        inside = int(np.searchsorted(pos, cap))
        if inside < ids.size:
            self._tab[pos[:inside]] = 0  # mark, to find the free positions
            pos[inside:] = np.flatnonzero(self._tab == EMPTY)[: ids.size - inside]
        entries = self._hash[ids]
        entries &= _HIGH
        entries |= ids
        self._tab[pos] = entries
        self._pos[ids] = pos

    def _claim(self, pos: np.ndarray, who: np.ndarray, n: int) -> np.ndarray:
        """Among rows aiming at the same empty positions, the one with the smallest ``who``
        (0 <= who < n) wins each position: deterministic, without a sort. Leaves codes
        below TOMBSTONE at those positions; the caller overwrites every one of them."""
        if who.size == 0:
            return np.zeros(0, dtype=bool)
        code = who - (n + 3)
        np.minimum.at(self._tab, pos, code)
        return self._tab[pos] == code

    # -- probing ------------------------------------------------------------------------
    def _probe(self, keys: pl.DataFrame, h: np.ndarray, *, insert: bool) -> np.ndarray:
        """Resolve every row to its slot (inserting missing keys when ``insert``).

        Fingerprint matches are taken optimistically by ``_walk``, then verified against
        the stored keys all at once (the keys new in this call are stored first); a row
        whose key differs (a collision) walks on from just after that position."""
        n = keys.height
        slots = np.full(n, -1, dtype=np.int64)
        base = self._n_slots
        src = np.empty(n, dtype=np.int64)  # the row whose key created slot base + j
        if insert:
            self._grow_slots(base + n)
        rows, pos = np.arange(n, dtype=np.int64), self._home(h)
        stored = base  # slots below this have their key in the store
        while rows.size:
            rows, cand, at = self._walk(rows, pos, h, slots, src, base, insert=insert)
            if self._n_slots > stored:
                self._append_keys(_take(keys, src[stored - base: self._n_slots - base]))
                stored = self._n_slots
            if not rows.size:
                break
            same = _rows_equal(_take(keys, rows), _take(self._frame(), cand))
            slots[rows[same]] = cand[same]
            rows, pos = rows[~same], (at[~same] + 1) & (self._cap - 1)
        return slots

    def _walk(self, rows: np.ndarray, pos: np.ndarray, h: np.ndarray, slots: np.ndarray,
              src: np.ndarray, base: int, *, insert: bool,
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Probe until every row stops at an empty position or a fingerprint match.

        A round looks at a window of positions per row (1 position in the first two rounds,
        where most rows stop, then 4, 16, 64, so long runs cost few rounds). An empty
        position ends a lookup (slot -1), or is claimed by one row per position, which gets
        a new slot; the other rows stay and meet the claimed key there next round.
        Returns the rows that stopped at a match, with the matched slot and position."""
        mask, n = self._cap - 1, h.size
        hi_all = h & _HIGH
        found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        width, rounds = 1, 0
        while rows.size:
            hi = hi_all[rows] if rows.size < n else hi_all
            if width == 1:
                at = pos
                ent = np.take(self._tab, at)
                # a live entry with our fingerprint; markers are negative: never below
                match = (ent ^ hi).view(np.uint64) < _MATCH_LIMIT
                empty = ent == EMPTY
                go_on = np.flatnonzero(~(match | empty))
            else:
                win = (pos[:, None] + np.arange(width, dtype=np.int64)) & mask
                went = np.take(self._tab, win)
                wstop = ((went ^ hi[:, None]).view(np.uint64) < _MATCH_LIMIT) | (went == EMPTY)
                j = wstop.argmax(axis=1)
                ent = went[np.arange(rows.size), j]
                at = (pos + j) & mask
                empty = ent == EMPTY
                match = (ent ^ hi).view(np.uint64) < _MATCH_LIMIT
                go_on = np.flatnonzero(~wstop[np.arange(rows.size), j])
            m = np.flatnonzero(match)
            found.append((rows[m], ent[m] & _LOW, at[m]))
            next_rows, next_pos = [rows[go_on]], [(pos[go_on] + width) & mask]
            if insert:
                e = np.flatnonzero(empty)
                er, ep = rows[e], at[e]
                won = self._claim(ep, er, n)
                lose = np.flatnonzero(~won)
                next_rows.append(er[lose])  # they stay: the winner's key may be theirs
                next_pos.append(ep[lose])
                self._add(er[won], ep[won], h, hi_all, slots, src, base)
            rows, pos = np.concatenate(next_rows), np.concatenate(next_pos)
            rounds += 1
            width = 1 if rounds < 2 else min(4 * width, 64)
        return tuple(np.concatenate(parts) for parts in zip(*found, strict=True))  # type: ignore[return-value]

    def _add(self, rows: np.ndarray, at: np.ndarray, h: np.ndarray, hi: np.ndarray,
             slots: np.ndarray, src: np.ndarray, base: int) -> None:
        """New slots (consecutive ids) for the keys of ``rows``, at table positions ``at``."""
        k = rows.size
        first = self._n_slots
        ids = np.arange(first, first + k, dtype=np.int64)
        self._tab[at] = hi[rows] | ids
        self._hash[first: first + k] = h[rows]
        self._pos[first: first + k] = at
        self._live[first: first + k] = True
        src[first - base: first - base + k] = rows
        slots[rows] = ids
        self._n_slots += k
        self._n_live += k
