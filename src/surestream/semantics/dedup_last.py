"""Keep-last deduplication (SEMANTICS §4): per key and window, the last record seen is
emitted once the watermark passes ``t0 + window - 1``.

A key's window opens with its first record (event time t0); a later record of the key with
``ts < t0 + window`` replaces the held one, which becomes a duplicate (counted, and sent to
the audit tag if any); a record at or after ``t0 + window`` opens the key's next window. A
record whose window was already emitted is a duplicate itself. A key's state is gone for a
record when ``W >= t0 + state_ttl`` (W before that record), as for keep-first.

The watermark downstream. A released record left the input long ago: by the time W passes
its window, W has usually passed the record's own event time as well. Stamped with that
watermark, every released record would be late for a following late step or window. So
this operator holds back the watermark it passes on (as Flink's interval join delays its
output watermark): the output watermark follows the input watermark, but never reaches the
event time of a record held here, unless that record was already at or behind it when it
came in. A released record carries the output watermark in force before the advance that
released it (that is, after the last input record before the release), and the ``seq`` of
that input record. So a record on time when it reaches this step is on time for the steps
after it, and neither its ``wm`` nor its ``seq`` depends on how the input is cut into
batches. (A record late when it comes in may be on time after this step, where the
watermark is lower; put the late step first to catch it.)

What a batch passes on as ``wm_end`` follows from that: while any record is held, the output
watermark after the last input record (the stamp the next release carries), not the one the
advance to the batch's ``wm_end`` reached. The input watermark moves without a record at a
batch end and at the end of input, and one batch size gives those as two advances where
another gives one; passing the first on would put the records released by the second
behind a watermark downstream had already seen -- a window after this step then judged a
held record that was late at input by where the batches were cut. So, while records are
held, the watermark passed on moves only with input records (docs/concepts.md, "Keep-last
and the watermark after it").

Held records stay columnar: each batch's frame is kept (cut down at the batch end to the
rows still held), and windows point at (frame, row). So dtypes survive exactly, and a
snapshot is plain data -- the frames, and numpy arrays per window -- from which ``restore``
rebuilds the dicts and heaps.

Occurrences. With ``occurrences_output_tag``, each window also counts its records and keeps
the smallest event time among them; a window seen more than once sends, as it is released,
one record to that tag: its key fields, ``first_occurrence_ms`` and ``occurrences`` (the
kept record included). A record whose window was already released is a duplicate as
always, but the window's occurrence record is out: with the late split before this step and
an out-of-orderness no longer than the window, no such record reaches it.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from surestream.model.batch import NEG_INF, POS_INF, Batch
from surestream.model.steps import KeyedDedupStep
from surestream.semantics.dedup_common import DedupBase, key_values
from surestream.semantics.operator import MAIN, Outputs
from surestream.semantics.state_size import (
    DICT_ENTRY_BYTES,
    HEAP_ENTRY_BYTES,
    KEY_BYTES,
    SET_ENTRY_BYTES,
    WINDOW_OBJECT_BYTES,
)

_SNAPSHOT_FORMAT = 3  # 1: pickled dicts of row dicts; 2: frames + arrays (plain data);
# 3: 2 + each window's occurrence count and smallest event time (2 still restores)
_MAX_FRAMES = 32  # merge frames of one schema when there are more than this many


@dataclass(slots=True, eq=False)
class _Window:
    """One window of one key: its t0 and the record it holds (at ``frame``, ``row``)."""

    key: Hashable
    t0: int
    ts: int  # event time of the held record
    frame: int
    row: int
    order: int  # creation order: the window's id, and ties among windows due together
    emitted: bool = False
    holds: bool = False  # the held record holds the output watermark back
    count: int = 1  # records of the window seen before its release
    first_ts: int = 0  # their smallest event time


#: One output row: where its record is (frame, row), and what it carries (ts, wm, seq).
_Out = tuple[int, int, int, int, int]


class KeepLastDedup(DedupBase):
    """Holds the last record of each key's window; emits it when W >= t0 + window - 1."""

    def __init__(self, step: KeyedDedupStep, pipeline: str) -> None:
        super().__init__(step, pipeline)
        self._clear()

    def _clear(self) -> None:
        self._key_window: dict[Hashable, _Window] = {}  # key -> its current window
        self._windows: dict[int, _Window] = {}  # order -> every window with state
        self._due: list[tuple[int, int]] = []  # (t0 + window - 1, order), not yet emitted
        self._holds: list[tuple[int, int]] = []  # (held ts, order); lazily deleted
        self._expiry: list[tuple[int, int]] = []  # (t0 + ttl, order) of emitted windows
        self._frames: dict[int, pl.DataFrame] = {}
        self._members: dict[int, set[int]] = {}  # frame -> orders of windows pointing in it
        self._next_frame = 0
        self._next_order = 0
        self._in_wm = NEG_INF  # input watermark (the highest seen)
        self._out_wm = NEG_INF  # output watermark (held back below held records)
        self._stamp = NEG_INF  # what a release carries: the output W after the last row
        self._last_seq = -1  # seq of the last input row
        self._empty = pl.DataFrame()  # the latest input schema, for outputs with no rows
        self._occ: list[_Out] = []  # occurrence records of the batch's released windows
        self._occ_counts: list[int] = []

    # -- processing ---------------------------------------------------------------------
    def process(self, batch: Batch) -> Outputs:
        if batch.ts is None:
            raise ValueError(f"{self.name}: needs event time; put a watermark step before it")
        if batch.data.width:
            self._empty = batch.data.clear()
        unusable = self._unusable_keys(batch)
        frame = self._add_frame(batch.data)
        keys = key_values(batch.data, self.step.key_fields)
        ts, wm, seq = batch.ts.tolist(), batch.wm.tolist(), batch.seq.tolist()
        out: list[_Out] = []
        dups: list[_Out] = []
        self._occ: list[_Out] = []
        self._occ_counts: list[int] = []
        keep_null = self.step.on_null_key == "keep"
        due = self._due
        for i, key in enumerate(keys):
            w = max(wm[i], self._in_wm)  # the watermark never goes down
            if w > self._in_wm or (due and due[0][0] <= w):
                self._advance(w, out)
            if unusable is not None and unusable[i]:
                if keep_null:  # passes through, never deduplicated
                    out.append((frame, i, ts[i], self._out_wm, seq[i]))
            else:
                self._take(key, ts[i], w, seq[i], frame, i, dups)
            self._stamp, self._last_seq = self._out_wm, seq[i]
        end = max(batch.wm_end, self._in_wm)
        if end > self._in_wm or (due and due[0][0] <= end):
            self._advance(end, out)
        self._expire()
        self.counters["duplicates"] += len(dups)
        passed_on = self._passed_on()
        result: Outputs = {MAIN: self._batch(out, passed_on)}
        if self.step.duplicates_output_tag and dups:
            result[self.step.duplicates_output_tag] = self._batch(dups, batch.wm_end)
        if self.step.occurrences_output_tag and self._occ:
            result[self.step.occurrences_output_tag] = self._occurrences(passed_on)
        if unusable is not None and self.step.on_null_key == "error":
            self._add_errors(result, self._null_key_errors(batch, unusable))
        self._shrink(frame)
        return result

    def state_gauges(self) -> dict[str, int]:
        """Keys with state, and bytes: the held records' frames plus a fixed cost per
        window, key and heap entry (``state_size``)."""
        windows = len(self._windows)
        heaps = len(self._due) + len(self._holds) + len(self._expiry)
        frames = sum(f.estimated_size() for f in self._frames.values())
        return {"keys": len(self._key_window),
                "bytes": frames + windows * (WINDOW_OBJECT_BYTES + DICT_ENTRY_BYTES
                                             + SET_ENTRY_BYTES)
                + len(self._key_window) * (DICT_ENTRY_BYTES + KEY_BYTES)
                + heaps * HEAP_ENTRY_BYTES}

    def _take(self, key: Hashable, t: int, w: int, seq: int, frame: int, row: int,
              dups: list[_Out]) -> None:
        """The rule for one record with a usable key, W = ``w`` before it."""
        cur = self._key_window.get(key)
        if cur is not None and (cur.t0 + self.ttl <= w or t >= cur.t0 + self.window):
            if not cur.emitted:  # a new window while the old one waits: both are kept
                cur = None
            else:  # expired (emitted long ago: ttl >= window) or superseded
                self._windows.pop(cur.order)
                self._members[cur.frame].discard(cur.order)
                cur = None
        if cur is None:
            order = self._next_order
            self._next_order += 1
            new = _Window(key, t, t, frame, row, order, first_ts=t)
            self._windows[order] = new
            self._members[frame].add(order)
            self._key_window[key] = new
            heapq.heappush(self._due, (min(t + self.window - 1, POS_INF), order))
            self._hold(new)
        elif cur.emitted:
            dups.append((frame, row, t, w, seq))  # its window is out
        elif not self._replaces(cur.ts, t):
            dups.append((frame, row, t, w, seq))  # it keeps its record
            cur.count += 1
            cur.first_ts = min(cur.first_ts, t)
        else:
            dups.append((cur.frame, cur.row, cur.ts, w, seq))  # replaced
            self._members[cur.frame].discard(cur.order)
            self._members[frame].add(cur.order)
            cur.frame, cur.row, cur.ts = frame, row, t
            cur.count += 1
            cur.first_ts = min(cur.first_ts, t)
            self._hold(cur)

    def _replaces(self, held_ts: int, ts: int) -> bool:
        """Whether a record at ``ts`` takes the place of the one held (at ``held_ts``) in
        its key's open window: for keep-last, always (the last one seen wins)."""
        return True

    def _hold(self, window: _Window) -> None:
        """A record just taken in holds the output watermark below its event time, unless
        it is already behind it (then it is late downstream, as it would be anyway)."""
        window.holds = window.ts > self._out_wm
        if window.holds:
            heapq.heappush(self._holds, (window.ts, window.order))

    def _advance(self, w: int, out: list[_Out]) -> None:
        """The input watermark moves up to ``w``: release the windows due (ascending due
        time, then creation order), then move the output watermark as far as the held
        records allow."""
        due = self._due
        while due and due[0][0] <= w:
            order = heapq.heappop(due)[1]
            window = self._windows[order]
            window.emitted = True
            out.append((window.frame, window.row, window.ts, self._stamp, self._last_seq))
            if window.count > 1:
                self._occ.append((window.frame, window.row, window.first_ts, self._stamp,
                                  self._last_seq))
                self._occ_counts.append(window.count)
            if self._key_window.get(window.key) is window:
                heapq.heappush(self._expiry, (min(window.t0 + self.ttl, POS_INF), order))
            else:  # the key has a newer window: nothing refers to this one any more
                del self._windows[order]
                self._members[window.frame].discard(order)
        self._in_wm = w
        lowest = self._lowest_held() if self._holds else POS_INF + 1
        if min(w, lowest - 1) > self._out_wm:
            self._out_wm = min(w, lowest - 1)

    def _passed_on(self) -> int:
        """The watermark passed on at the end of a batch. While a record is held, it is the
        output watermark after the last input record (``_stamp``): the next release carries
        that stamp, so passing on more -- the advance to the batch's ``wm_end`` -- would put
        a record behind a watermark downstream has already seen, and only where a batch
        ends (the end of input merges that advance with its own in one batch, not in
        another). With nothing held, no release can follow before the next input record:
        the output watermark goes on whole."""
        return min(self._out_wm, self._stamp) if self._due else self._out_wm

    def _lowest_held(self) -> int:
        """The smallest event time among held records that hold the watermark (or +inf)."""
        holds, windows = self._holds, self._windows
        while holds:
            ts, order = holds[0]
            window = windows.get(order)
            if window is not None and window.holds and not window.emitted and window.ts == ts:
                return ts
            heapq.heappop(holds)
        return POS_INF + 1

    def _expire(self) -> None:
        """Free the state of emitted windows whose TTL has passed (``W >= t0 + ttl``)."""
        expiry = self._expiry
        while expiry and expiry[0][0] <= self._in_wm:
            order = heapq.heappop(expiry)[1]
            window = self._windows.get(order)
            if window is not None and self._key_window.get(window.key) is window:
                del self._key_window[window.key], self._windows[order]
                self._members[window.frame].discard(order)

    # -- held records -------------------------------------------------------------------
    def _add_frame(self, data: pl.DataFrame) -> int:
        number = self._next_frame
        self._next_frame += 1
        self._frames[number] = data
        self._members[number] = set()
        return number

    def _shrink(self, current: int) -> None:
        """Cut the batch's frame (and any frame now mostly unused) down to the rows windows
        still point at; merge frames of one schema when there are many."""
        for number in list(self._frames):
            used = len(self._members[number])
            if number == current or 2 * used < self._frames[number].height:
                self._repack(number)
        if len(self._frames) > _MAX_FRAMES:
            self._merge_frames()

    def _repack(self, number: int) -> None:
        members = sorted(self._members[number])
        if not members:
            del self._frames[number], self._members[number]
            return
        windows = [self._windows[o] for o in members]
        rows = [w.row for w in windows]
        self._frames[number] = self._frames[number][rows]
        for new_row, window in enumerate(windows):
            window.row = new_row

    def _merge_frames(self) -> None:
        """One frame per schema (a frame keeps its exact dtypes: keys stay what they were)."""
        by_schema: dict[tuple, list[int]] = {}
        for number, frame in self._frames.items():
            by_schema.setdefault(tuple(frame.schema.items()), []).append(number)
        for numbers in by_schema.values():
            if len(numbers) < 2:
                continue
            target = self._add_frame(pl.concat([self._frames[n] for n in numbers],
                                               rechunk=True))
            offset = 0
            for n in numbers:
                for order in self._members.pop(n):
                    window = self._windows[order]
                    window.frame, window.row = target, window.row + offset
                    self._members[target].add(order)
                offset += self._frames.pop(n).height

    def _batch(self, rows: list[_Out], wm_end: int) -> Batch:
        """The records of ``rows``, in that order, as a batch."""
        if not rows:
            return Batch.empty(wm_end, schema=self._empty.schema)
        frame, row, ts, wm, seq = (list(column) for column in zip(*rows, strict=True))
        parts, positions = [], []
        for number in dict.fromkeys(frame):
            picked = [j for j, f in enumerate(frame) if f == number]
            parts.append(self._frames[number][[row[j] for j in picked]])
            positions.extend(picked)
        data = parts[0] if len(parts) == 1 else pl.concat(parts, how="diagonal_relaxed")
        if positions != sorted(positions):
            data = data[np.argsort(np.array(positions), kind="stable")]
        return Batch(data=data, ts=np.array(ts, dtype=np.int64), wm=np.array(wm, dtype=np.int64),
                     seq=np.array(seq, dtype=np.int64), wm_end=wm_end)

    def _occurrences(self, wm_end: int) -> Batch:
        """The occurrence records of the windows released by this batch, in release order:
        the key columns (their exact dtypes, from the held records), then
        ``first_occurrence_ms`` and ``occurrences``."""
        released = self._batch(self._occ, wm_end)
        fields = list(dict.fromkeys(self.step.key_fields))
        keys = released.data.select([f for f in fields if f in released.data.columns])
        data = keys.with_columns(
            pl.Series("first_occurrence_ms", released.ts, dtype=pl.Int64),
            pl.Series("occurrences", self._occ_counts, dtype=pl.Int64))
        return Batch(data=data, ts=released.ts, wm=released.wm, seq=released.seq,
                     wm_end=wm_end)

    # -- checkpoints --------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """Plain data: the held records as frames (each keeps its batch's exact dtypes; only
        the rows windows point at), and per window, in creation order, numpy arrays of where
        its record is, t0, the record's event time and flags. No object is shared between
        two places; the same state always gives the same snapshot."""
        # one pass over the windows into one int64 table (in creation order); the rest is
        # numpy: where each held record lands in the snapshot's frames
        key_window, by_order = self._key_window, self._windows
        table = np.array(
            [(w.frame, w.row, w.order, w.t0, w.ts, w.emitted, w.holds,
              key_window.get(w.key) is w, w.count, w.first_ts)
             for w in (by_order[o] for o in sorted(by_order))],
            dtype=np.int64).reshape(-1, 10)
        frame_of, row_of = table[:, 0], table[:, 1]
        numbers = np.unique(frame_of)
        frame_index = np.searchsorted(numbers, frame_of)
        row_index = np.empty(frame_of.size, dtype=np.int64)
        frames = []
        for i, number in enumerate(numbers.tolist()):
            in_frame = frame_index == i
            rows, inverse = np.unique(row_of[in_frame], return_inverse=True)
            frames.append(self._frames[number][rows.tolist()])
            row_index[in_frame] = inverse.reshape(-1)

        def ints(j: int) -> np.ndarray:
            return np.ascontiguousarray(table[:, j])

        def flags(j: int) -> np.ndarray:
            return table[:, j].astype(bool)

        return {
            "format": _SNAPSHOT_FORMAT,
            "frames": frames,
            "frame": frame_index.astype(np.int64),
            "row": row_index,
            "order": ints(2),
            "t0": ints(3),
            "ts": ints(4),
            "emitted": flags(5),
            "holds": flags(6),
            "current": flags(7),
            "count": ints(8),
            "first_ts": ints(9),
            "next_order": self._next_order,
            "in_wm": self._in_wm,
            "out_wm": self._out_wm,
            "stamp": self._stamp,
            "last_seq": self._last_seq,
            "empty": self._empty,
            "counters": dict(self.counters),
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Rebuild windows, keys (from the held records' key columns) and heaps."""
        if state.get("format") not in (2, _SNAPSHOT_FORMAT):
            raise ValueError(f"keyed_dedup step {self.name!r}: unknown keep-"
                             f"{self.step.strategy} snapshot format {state.get('format')!r}")
        self._clear()
        frame_numbers = [self._add_frame(f) for f in state["frames"]]
        keys = [key_values(f, self.step.key_fields) for f in state["frames"]]
        n = state["order"].size
        counts = state.get("count", np.ones(n, dtype=np.int64))  # format 2: not counted
        firsts = state.get("first_ts", state["ts"])
        columns = zip(state["frame"].tolist(), state["row"].tolist(), state["order"].tolist(),
                      state["t0"].tolist(), state["ts"].tolist(), state["emitted"].tolist(),
                      state["holds"].tolist(), state["current"].tolist(), counts.tolist(),
                      firsts.tolist(), strict=True)
        for frame, row, order, t0, ts, emitted, holds, current, count, first in columns:
            window = _Window(keys[frame][row], t0, ts, frame_numbers[frame], row, order,
                             emitted, holds, count, first)
            self._windows[order] = window
            self._members[window.frame].add(order)
            if current:
                self._key_window[window.key] = window
            if not emitted:
                self._due.append((min(t0 + self.window - 1, POS_INF), order))
                if holds:
                    self._holds.append((ts, order))
            elif current:
                self._expiry.append((min(t0 + self.ttl, POS_INF), order))
        for heap in (self._due, self._holds, self._expiry):
            heapq.heapify(heap)
        self._next_order = int(state["next_order"])
        self._in_wm, self._out_wm = int(state["in_wm"]), int(state["out_wm"])
        self._stamp, self._last_seq = int(state["stamp"]), int(state["last_seq"])
        self._empty = state["empty"]
        self.counters = {"duplicates": 0, "errors": 0, **state["counters"]}
