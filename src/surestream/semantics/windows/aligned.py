"""Tumbling and sliding event-time windows: Flink's WindowOperator with EventTimeTrigger.

The on-time path is vectorized over the batch. It rests on one observation about Flink's
rules (SEMANTICS §5): for a window w, the records added to it *on time* (``max_ts(w) > W``)
all arrive before the watermark crosses ``max_ts(w)``, and the *late-but-allowed* ones
(``max_ts(w) <= W < cleanup(w)``) all arrive after. So a batch is processed as

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
from surestream.semantics.aggregates import BatchInput, Pairs
from surestream.semantics.operator import ERRORS, MAIN, Outputs
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

_EMPTY = np.zeros(0, dtype=np.int64)
_MAX_PAIRS = 1 << 22


def _pieces(batch: Batch, rows: int) -> list[Batch]:
    """``batch`` as consecutive batches of at most ``rows`` records."""
    n = len(batch)
    out = []
    for a in range(0, n, rows):
        b = min(a + rows, n)
        out.append(Batch(data=batch.data.slice(a, b - a), ts=batch.ts[a:b], wm=batch.wm[a:b],
                         seq=batch.seq[a:b], wm_end=int(batch.wm[b]) if b < n else batch.wm_end))
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
        for s, k, st in zip(slots.tolist(), keys, starts.tolist(), strict=True):
            self.slot_keys[s] = k
            self.index[(k, st)] = s
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
        batch, refused = self._refuse_unusable(batch)
        # A sliding window puts each record in up to ceil(size/slide) windows; cap the pairs
        # held at once by cutting the batch (results do not depend on the cut).
        per_record = 1 if self.slide is None else -(-self.size // self.slide)
        rows = max(1, _MAX_PAIRS // per_record)
        if len(batch) <= rows:
            out = self._process(batch)
        else:
            parts = [self._process(piece) for piece in _pieces(batch, rows)]
            out = {}
            for tag in dict.fromkeys(t for p in parts for t in p):
                out[tag] = concat([p.get(tag) for p in parts], wm_end=parts[-1][MAIN].wm_end)
        if refused is not None:
            out[ERRORS] = refused
        return out

    def _process(self, batch: Batch) -> Outputs:
        timeline = Timeline.of(batch, self.wm, self.last_seq)
        late_rows, allowed = _EMPTY, None
        if len(batch):
            late_rows, allowed = self._add_on_time(batch, timeline)
        firings = FiringBuffer(self.keys, self.aggs, sessions=False)
        self._fire_due(timeline, firings)
        if allowed is not None:
            self._add_allowed(*allowed, firings)
        self._drop_expired(timeline.end)
        return self._outputs(batch, timeline, firings, late_rows)

    def _add_on_time(self, batch: Batch, timeline: Timeline
                     ) -> tuple[np.ndarray, tuple[Pairs, np.ndarray, BatchInput] | None]:
        """Steps 1-2. Returns the late rows and the late-but-allowed pairs (with their rank
        among the record's windows) for step 4."""
        a = self._assign(batch.ts)
        wm = timeline.before[a.rows]
        max_ts = a.starts + (self.size - 1)
        kept = saturating_add(max_ts, self.lateness) > wm
        late_rows = _EMPTY
        identity = self.slide is None
        if not kept.all():
            added = np.zeros(len(batch), dtype=bool)
            added[a.rows[kept]] = True
            late_rows = np.flatnonzero(~added)
            a = Assignment(a.rows[kept], a.starts[kept], a.order[kept])
            wm, max_ts = wm[kept], max_ts[kept]
            identity = False
        if not len(a.rows):
            return late_rows, None
        gid, first = self.keys.group(batch.data, None if identity else a.rows, a.starts)
        gkeys = self.keys.tuples(batch.data, a.rows[first])
        gslots = self._slots_for(gkeys, a.starts[first])
        pairs = Pairs(rows=a.rows, slots=gslots[gid], gid=gid, gslots=gslots)
        inp = BatchInput(batch.data, batch.ts, batch.seq)
        on_time = max_ts > wm
        if on_time.all():
            self.aggs.add(pairs, inp)
            self.timer[gslots] = True
            return late_rows, None
        self.aggs.add(pairs.subset(on_time), inp)
        self.timer[pairs.slots[on_time]] = True
        allowed = ~on_time
        return late_rows, (pairs.subset(allowed), a.order[allowed], inp)

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
        for s in dead.tolist():
            del self.index[(self.slot_keys[s], int(self.start[s]))]
            self.slot_keys[s] = None
        self.live[dead] = False
        self.timer[dead] = False
        self.pool.release(dead)

    # -- checkpoints -----------------------------------------------------------------------
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
