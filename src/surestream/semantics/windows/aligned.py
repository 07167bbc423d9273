"""Tumbling and sliding event-time windows: Flink's WindowOperator with EventTimeTrigger.

The on-time path is vectorized over the batch. It rests on one observation about Flink's
rules (SEMANTICS §5): for a window w, the records added to it *on time* (``max_ts(w) > W``)
all arrive before the watermark crosses ``max_ts(w)``, and the *late-but-allowed* ones
(``max_ts(w) <= W < cleanup(w)``) all arrive after. So a batch is processed as

0. (with user aggregate functions) try every record's adds first, and refuse the records
   an ``add`` raises on (``udaf_adds.TrialAdds``): they go to errors and join no window;
1. assign every record its windows; drop the pairs whose window is late
   (``cleanup(w) <= W``); a record left with no window goes to the late output;
2. fold all on-time pairs into their windows' accumulators (``ufunc.at``, arrival order);
3. find where the watermark crosses each pending window's ``max_ts`` (``searchsorted`` on
   the watermark-after array) and take those windows' results: they hold exactly the
   records before the crossing;
4. only then, record by record, add each late-but-allowed pair and fire its window again;
5. drop the windows whose cleanup time the watermark has reached.

A window's revision is its number of earlier firings. Firing rows are put in emission
order by ``output.FiringBuffer``, so the result does not depend on how batches are cut.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from surestream.model.batch import Batch, concat
from surestream.model.steps import WindowStep
from surestream.semantics.aggregates import BatchInput, Pairs, UdafCallError
from surestream.semantics.operator import MAIN, Outputs
from surestream.semantics.state_size import (
    DICT_ENTRY_BYTES,
    HEAP_ENTRY_BYTES,
    KEY_BYTES,
    accumulators_bytes,
    arrays_bytes,
)
from surestream.semantics.windows.assigners import (
    Assignment,
    saturating_add,
    sliding_assignment,
    tumbling_assignment,
)
from surestream.semantics.windows.base import Timeline, WindowOperatorBase
from surestream.semantics.windows.keys import normalize_key
from surestream.semantics.windows.output import IMMEDIATE, FiringBuffer
from surestream.semantics.windows.slots import SlotPool
from surestream.semantics.windows.udaf_adds import TrialAdds, Tried

_EMPTY = np.zeros(0, dtype=np.int64)
_MAX_PAIRS = 1 << 22


def _pieces(batch: Batch, rows: int, tried: Tried | None, skip: np.ndarray | None
            ) -> list[tuple[Batch, Tried | None, np.ndarray | None]]:
    """``batch`` as consecutive batches of at most ``rows`` records (with their part of
    what step 0 found and of the rows to skip)."""
    n = len(batch)
    out = []
    for a in range(0, n, rows):
        b = min(a + rows, n)
        out.append((Batch(data=batch.data.slice(a, b - a), ts=batch.ts[a:b], wm=batch.wm[a:b],
                          seq=batch.seq[a:b],
                          wm_end=int(batch.wm[b]) if b < n else batch.wm_end),
                    None if tried is None else tried.piece(a, b),
                    None if skip is None else skip[a:b]))
    return out


class AlignedWindowOperator(WindowOperatorBase):
    """Keyed tumbling or sliding windows with allowed lateness and a late output."""

    def __init__(self, step: WindowStep, pipeline: str) -> None:
        if step.kind not in ("tumbling", "sliding"):
            raise ValueError(f"AlignedWindowOperator takes tumbling/sliding, not {step.kind!r}")
        super().__init__(step, pipeline)
        self.size = int(step.size_ms)
        self.slide = int(step.slide_ms) if step.kind == "sliding" else None
        self.offset = int(step.offset_ms)
        self._clear()

    def _clear(self) -> None:
        self.pool = SlotPool()
        self.start = np.zeros(0, dtype=np.int64)  # window start per slot
        self.fires = np.zeros(0, dtype=np.int64)  # firings so far = the next revision
        self.timer = np.zeros(0, dtype=bool)  # has on-time records, waits for the watermark
        self.live = np.zeros(0, dtype=bool)
        self.slot_keys: list[tuple | None] = []
        self.index: dict[tuple[tuple, int], int] = {}  # (key, start) -> slot
        self.key_windows: dict[tuple, int] = {}  # key -> its live windows (state gauges)

    # -- slots ---------------------------------------------------------------------------
    def _grow(self) -> None:
        cap = self.pool.capacity
        if cap <= len(self.start):
            return
        extra = cap - len(self.start)
        self.start = np.concatenate([self.start, np.zeros(extra, dtype=np.int64)])
        self.fires = np.concatenate([self.fires, np.zeros(extra, dtype=np.int64)])
        self.timer = np.concatenate([self.timer, np.zeros(extra, dtype=bool)])
        self.live = np.concatenate([self.live, np.zeros(extra, dtype=bool)])
        self.slot_keys.extend([None] * extra)
        self.aggs.grow(cap)

    def _open(self, keys: list[tuple], starts: np.ndarray) -> np.ndarray:
        """New windows for (key, start) pairs; returns their slots."""
        slots = self.pool.allocate(len(keys))
        self._grow()
        self.start[slots] = starts
        self.fires[slots] = 0
        self.timer[slots] = False
        self.live[slots] = True
        key_windows = self.key_windows
        for s, k, st in zip(slots.tolist(), keys, starts.tolist(), strict=True):
            self.slot_keys[s] = k
            self.index[(k, st)] = s
            key_windows[k] = key_windows.get(k, 0) + 1
        self.aggs.reset(slots)
        return slots

    def _slots_for(self, keys: list[tuple], starts: np.ndarray) -> np.ndarray:
        """The slot of each distinct (key, start) of a batch, opening the missing windows."""
        index = self.index
        slots = np.array([index.get((k, s), -1) for k, s in zip(keys, starts.tolist(),
                                                                 strict=True)], dtype=np.int64)
        missing = np.flatnonzero(slots < 0)
        if len(missing):
            slots[missing] = self._open([keys[i] for i in missing.tolist()], starts[missing])
        return slots

    # -- processing ----------------------------------------------------------------------
    def _assign(self, ts: np.ndarray) -> Assignment:
        if self.slide is None:
            return tumbling_assignment(ts, self.size, self.offset)
        return sliding_assignment(ts, self.size, self.slide, self.offset)

    def process(self, batch: Batch) -> Outputs:
        self._check(batch)
        skip, refused = self._refuse_unusable(batch)
        # A sliding window puts each record in up to ceil(size/slide) windows; cap the pairs
        # held at once by cutting the batch (results do not depend on the cut).
        per_record = 1 if self.slide is None else -(-self.size // self.slide)
        rows = max(1, _MAX_PAIRS // per_record)
        failed, tried = None, None
        if self.aggs.udafs and len(batch):
            skip, failed, tried = self._refuse_failing_udafs(batch, rows, skip)
        if len(batch) <= rows:
            out = self._process(batch, tried, skip)
        else:
            parts = [self._process(*piece) for piece in _pieces(batch, rows, tried, skip)]
            out = {}
            for tag in dict.fromkeys(t for p in parts for t in p):
                out[tag] = concat([p.get(tag) for p in parts], wm_end=parts[-1][MAIN].wm_end)
        return self._add_errors(out, refused, failed)

    def _refuse_failing_udafs(self, batch: Batch, piece_rows: int, skip: np.ndarray | None
                              ) -> tuple[np.ndarray | None, Batch | None, Tried]:
        """Step 0: try each record's user ``add`` calls, in arrival order, into the windows
        steps 1-4 will add it to (the same lateness rule; rows in ``skip`` are left out), on
        copies (``TrialAdds``). Returns ``skip`` with the records a call raised on, their
        error records, and what steps 1-4 take from the trial."""
        before = Timeline.of(batch, self.wm, self.last_seq).before
        records = batch.data.to_dicts()
        trial = TrialAdds(self.aggs.udafs, [dict(r) for r in records], self.index.get)
        failures: dict[int, UdafCallError] = {}
        refire: set[tuple[tuple, int]] = set()  # windows with late-but-allowed pairs
        for lo in range(0, len(batch), piece_rows):  # pairs held at once, as in process()
            hi = min(lo + piece_rows, len(batch))
            a = self._assign(batch.ts[lo:hi])
            wm = before[lo:hi][a.rows]
            max_ts = a.starts + (self.size - 1)
            kept = saturating_add(max_ts, self.lateness) > wm
            if skip is not None:
                kept &= ~skip[lo:hi][a.rows]
            rows, starts = a.rows[kept] + lo, a.starts[kept]
            if not len(rows):
                continue
            # (key, start) of each pair, built once per distinct window
            gid, first = self.keys.group(batch.data, rows, starts)
            gkeys = self.keys.tuples(batch.data, rows[first])
            distinct = list(zip(gkeys, starts[first].tolist(), strict=True))
            refire.update(distinct[g] for g in np.unique(gid[max_ts[kept] <= wm[kept]]).tolist())
            failures.update(trial.try_pairs(rows, trial.ids(distinct)[gid]))
        tried = Tried(records, trial.finals(refire))
        if not failures:
            return skip, None, tried
        if skip is None:
            skip = np.zeros(len(batch), dtype=bool)
        skip[list(failures)] = True
        return skip, self._udaf_errors(batch, failures), tried

    def _process(self, batch: Batch, tried: Tried | None = None,
                 skip: np.ndarray | None = None) -> Outputs:
        """Steps 1-5 (``tried``: what step 0 found, with user aggregate functions; ``skip``:
        the records refused, added to no window and not late)."""
        timeline = Timeline.of(batch, self.wm, self.last_seq)
        late_rows, allowed = _EMPTY, None
        if len(batch):
            late_rows, allowed = self._add_on_time(batch, timeline, tried, skip)
        firings = FiringBuffer(self.keys, self.aggs, sessions=False, pipeline=self.pipeline,
                               operator=self.name)
        self._fire_due(timeline, firings)
        if allowed is not None:
            self._add_allowed(*allowed, firings)
        self._drop_expired(timeline.end)
        return self._outputs(batch, timeline, firings, late_rows)

    def _add_on_time(self, batch: Batch, timeline: Timeline, tried: Tried | None = None,
                     skip: np.ndarray | None = None
                     ) -> tuple[np.ndarray, tuple[Pairs, np.ndarray, BatchInput] | None]:
        """Steps 1-2. Returns the late rows and the late-but-allowed pairs (with their rank
        among the record's windows) for step 4. A window the trial completed takes its
        user functions' accumulators from there instead of adding its pairs again."""
        a = self._assign(batch.ts)
        wm = timeline.before[a.rows]
        max_ts = a.starts + (self.size - 1)
        kept = saturating_add(max_ts, self.lateness) > wm
        if skip is not None:
            kept &= ~skip[a.rows]
        late_rows = _EMPTY
        identity = self.slide is None
        if not kept.all():
            added = np.zeros(len(batch), dtype=bool)
            added[a.rows[kept]] = True
            late_rows = np.flatnonzero(~added if skip is None else ~added & ~skip)
            a = Assignment(a.rows[kept], a.starts[kept], a.order[kept])
            wm, max_ts = wm[kept], max_ts[kept]
            identity = False
        if not len(a.rows):
            return late_rows, None
        gid, first = self.keys.group(batch.data, None if identity else a.rows, a.starts)
        gkeys = self.keys.tuples(batch.data, a.rows[first])
        gslots = self._slots_for(gkeys, a.starts[first])
        pairs = Pairs(rows=a.rows, slots=gslots[gid], gid=gid, gslots=gslots)
        inp = BatchInput(batch.data, batch.ts, batch.seq,
                         records=None if tried is None else tried.records)
        on_time = max_ts > wm
        udaf_pairs = None
        if tried is not None and tried.finals:
            done = self._install_finals(tried.finals, gkeys, a.starts[first], gslots)
            udaf_pairs = pairs.subset(on_time & ~done[gid])
        if on_time.all():
            self.aggs.add(pairs, inp, udaf_pairs=udaf_pairs)
            self.timer[gslots] = True
            return late_rows, None
        self.aggs.add(pairs.subset(on_time), inp, udaf_pairs=udaf_pairs)
        self.timer[pairs.slots[on_time]] = True
        allowed = ~on_time
        return late_rows, (pairs.subset(allowed), a.order[allowed], inp)

    def _install_finals(self, finals: dict[Any, list[Any]], keys: list[tuple],
                        starts: np.ndarray, slots: np.ndarray) -> np.ndarray:
        """Give the batch's windows (``keys``/``starts``/``slots``, one per group) that the
        trial completed their user functions' accumulators; which groups those are."""
        done = np.zeros(len(slots), dtype=bool)
        udafs = self.aggs.udafs
        for g, (key, start, slot) in enumerate(zip(keys, starts.tolist(), slots.tolist(),
                                                    strict=True)):
            accs = finals.get((key, start))
            if accs is not None:
                for udaf, acc in zip(udafs, accs, strict=True):
                    udaf.accs[slot] = acc
                done[g] = True
        return done

    def _fire_due(self, timeline: Timeline, firings: FiringBuffer) -> None:
        """Step 3: every pending window whose max_ts the watermark reaches in this batch."""
        pending = np.flatnonzero(self.timer)
        if not len(pending):
            return
        q = np.searchsorted(timeline.after, self.start[pending] + (self.size - 1), side="left")
        due = q < len(timeline.after)
        if not due.any():
            return
        slots = pending[due]
        revision = self.fires[slots].copy()
        self.fires[slots] += 1
        self.timer[slots] = False
        firings.add_many(pos=q[due] - 1, start=self.start[slots],
                         end=self.start[slots] + self.size, revision=revision,
                         keys=[self.slot_keys[s] for s in slots.tolist()],
                         results=self.aggs.results(slots))

    def _add_allowed(self, pairs: Pairs, order: np.ndarray, inp: BatchInput,
                     firings: FiringBuffer) -> None:
        """Step 4: each late-but-allowed record re-fires its window at once (Flink's
        EventTimeTrigger.onElement with max_ts <= W)."""
        for slot, row, sub in zip(pairs.slots.tolist(), pairs.rows.tolist(), order.tolist(),
                                  strict=True):
            self.aggs.add_one(slot, row, inp)
            revision = int(self.fires[slot])
            self.fires[slot] += 1
            start = int(self.start[slot])
            firings.add_one(pos=row, phase=IMMEDIATE, sub=sub, start=start,
                            end=start + self.size, revision=revision,
                            key=self.slot_keys[slot], values=self.aggs.values(slot))

    def _drop_expired(self, wm: int) -> None:
        """Step 5: windows whose cleanup time ``max_ts + L`` the watermark reached."""
        live = np.flatnonzero(self.live)
        if not len(live):
            return
        dead = live[saturating_add(self.start[live] + (self.size - 1), self.lateness) <= wm]
        if not len(dead):
            return
        key_windows = self.key_windows
        for s in dead.tolist():
            key = self.slot_keys[s]
            del self.index[(key, int(self.start[s]))]
            self.slot_keys[s] = None
            if key_windows[key] == 1:
                del key_windows[key]
            else:
                key_windows[key] -= 1
        self.live[dead] = False
        self.timer[dead] = False
        self.pool.release(dead)

    # -- gauges and checkpoints -------------------------------------------------------------
    def state_gauges(self) -> dict[str, int]:
        """Keys with a live window, live windows (pending: not yet fired, or kept for the
        allowed lateness), and bytes: the per-slot and accumulator arrays plus a fixed cost
        per window and key in the dicts (``state_size``)."""
        windows, keys = len(self.index), len(self.key_windows)
        return {"keys": keys, "windows": windows,
                "bytes": arrays_bytes(self.start, self.fires, self.timer, self.live)
                + accumulators_bytes(self.aggs) + 8 * len(self.slot_keys)
                + windows * (DICT_ENTRY_BYTES + HEAP_ENTRY_BYTES)
                + keys * (DICT_ENTRY_BYTES + KEY_BYTES)}

    def snapshot(self) -> dict[str, Any]:
        live = np.flatnonzero(self.live)
        return {
            "kind": self.step.kind,
            "counters": dict(self.counters),
            "wm": self.wm,
            "last_seq": self.last_seq,
            "key_dtypes": self.keys.snapshot(),
            "keys": [self.slot_keys[s] for s in live.tolist()],
            "start": self.start[live].copy(),
            "fires": self.fires[live].copy(),
            "timer": self.timer[live].copy(),
            "aggs": self.aggs.snapshot(live),
        }

    def restore(self, state: dict[str, Any]) -> None:
        if state.get("kind") != self.step.kind:
            raise ValueError(f"window {self.name!r}: the checkpoint holds {state.get('kind')!r} "
                             f"windows, the pipeline has {self.step.kind!r}")
        self._clear()
        self.aggs = type(self.aggs)(self.step.aggregations)
        self.wm, self.last_seq = int(state["wm"]), int(state["last_seq"])
        self.counters = {"late": 0, "errors": 0, **state.get("counters", {})}
        self.keys.restore(state["key_dtypes"])
        keys = [normalize_key(k) for k in state["keys"]]
        slots = self._open(keys, np.asarray(state["start"], dtype=np.int64))
        self.fires[slots] = state["fires"]
        self.timer[slots] = state["timer"]
        self.aggs.restore(state["aggs"], slots)
