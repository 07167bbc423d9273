"""Session windows: Flink's merging WindowOperator (MergingWindowSet + EventTimeTrigger).

Sessions are processed record by record -- merging depends on every earlier record of the
key -- with the watermark advanced between records exactly as the batch's ``wm`` says.

A record's window ``[ts, ts + gap)`` merges with every session of its key it touches
(``a.start <= b.end and a.end >= b.start``). Then, as in Flink: a new window that merged
with nothing and is already late (``cleanup <= W``) sends the record to the late output;
otherwise the record is added and the window fires at once if ``max_ts <= W``, or when the
watermark reaches ``max_ts``. Windows are dropped when ``W >= cleanup``.

Revisions (our addition, SEMANTICS §5): a merge that absorbs fired windows creates a *new*
window; its first firing has ``revision = 1 + the highest revision it absorbed`` and lists
the absorbed firings ``[start, end, revision]`` in ``supersedes``, so that a sink can
retract them. The absorbed accumulators are merged in ascending start order into the
earliest one (Flink picks "any" state window; we fix the order so float sums are
reproducible).

User aggregate functions (``udaf_adds.SlotAdds``): a record's ``add`` calls -- and the
``merge`` calls of the sessions it would merge -- succeed together or the record goes to
errors, joins no session and changes nothing (no merge happens either).
"""

from __future__ import annotations

import bisect
import heapq
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from surestream.model.batch import POS_INF, Batch
from surestream.model.steps import WindowStep
from surestream.semantics.aggregates import BatchInput, FailedResult, UdafCallError
from surestream.semantics.operator import Outputs
from surestream.semantics.state_size import (
    DICT_ENTRY_BYTES,
    HEAP_ENTRY_BYTES,
    KEY_BYTES,
    WINDOW_OBJECT_BYTES,
    accumulators_bytes,
)
from surestream.semantics.windows.assigners import session_window
from surestream.semantics.windows.base import Timeline, WindowOperatorBase
from surestream.semantics.windows.keys import normalize_key
from surestream.semantics.windows.output import IMMEDIATE, WATERMARK, FiringBuffer
from surestream.semantics.windows.slots import SlotPool
from surestream.semantics.windows.udaf_adds import SlotAdds


@dataclass(slots=True, eq=False)
class Session:
    """One live session window of one key."""

    key: tuple
    start: int
    end: int
    slot: int
    #: Identity version: changes when a merge changes the window, so that timers registered
    #: for the old window are recognised as deleted.
    gen: int
    rev: int = -1  # revision of this window's own last firing; -1 = not fired yet
    base: int = -1  # highest revision of itself and of the fired windows it absorbed
    supersedes: list[list[int]] = field(default_factory=list)  # absorbed, not yet reported
    timer: bool = False  # waits for the watermark to reach max_ts

    @property
    def max_ts(self) -> int:
        return self.end - 1


class SessionWindowOperator(WindowOperatorBase):
    """Keyed event-time session windows with allowed lateness and a late output."""

    sessions = True

    def __init__(self, step: WindowStep, pipeline: str) -> None:
        if step.kind != "session":
            raise ValueError(f"SessionWindowOperator takes session windows, not {step.kind!r}")
        super().__init__(step, pipeline)
        self.gap = int(step.gap_ms)
        self._clear()

    def _clear(self) -> None:
        self.pool = SlotPool()
        self.by_key: dict[tuple, list[Session]] = {}  # sorted by start, pairwise disjoint
        self.by_gen: dict[int, Session] = {}
        self.timers: list[tuple[int, int]] = []  # heap of (max_ts, gen)
        self.cleanups: list[tuple[int, int]] = []  # heap of (cleanup time, gen)
        self._gen = 0

    def _cleanup_time(self, s: Session) -> int:
        return POS_INF if s.max_ts > POS_INF - self.lateness else s.max_ts + self.lateness

    # -- session bookkeeping ------------------------------------------------------------------
    def _new_gen(self, s: Session) -> None:
        """Give ``s`` a new identity; its cleanup timer is registered (Flink registers it
        after each element; one per identity is the same)."""
        self.by_gen.pop(s.gen, None)
        self._gen += 1
        s.gen = self._gen
        s.timer = False
        self.by_gen[s.gen] = s
        heapq.heappush(self.cleanups, (self._cleanup_time(s), s.gen))

    def _open(self, key: tuple, start: int, end: int) -> Session:
        slot = self.pool.allocate(1)
        self.aggs.grow(self.pool.capacity)
        self.aggs.reset(slot)
        s = Session(key=key, start=start, end=end, slot=int(slot[0]), gen=-1)
        self._new_gen(s)
        return s

    def _merge(self, absorbed: list[Session], start: int, end: int) -> Session:
        """Merge ``absorbed`` (ascending start) into one new window ``[start, end)``; the
        user functions' accumulators are the caller's to install (``SlotAdds.merged``)."""
        target = absorbed[0]
        superseded: list[list[int]] = []
        for s in absorbed:
            superseded.extend(s.supersedes)
            if s.rev >= 0:
                superseded.append([s.start, s.end, s.rev])
            if s is not target:
                self.aggs.merge(target.slot, s.slot, udafs=False)
                self.pool.release([s.slot])
                self.by_gen.pop(s.gen, None)
        target.base = max(s.base for s in absorbed)
        target.rev = -1
        target.supersedes = sorted(superseded)
        target.start, target.end = start, end
        self._new_gen(target)
        return target

    def _drop(self, s: Session) -> None:
        sessions = self.by_key[s.key]
        sessions.remove(s)
        if not sessions:
            del self.by_key[s.key]
        self.by_gen.pop(s.gen, None)
        self.pool.release([s.slot])

    def _fire(self, s: Session, pos: int, phase: int, firings: FiringBuffer) -> None:
        revision = s.base + 1
        values = self.aggs.values(s.slot)
        firings.add_one(pos=pos, phase=phase, sub=0, start=s.start, end=s.end,
                        revision=revision, key=s.key, values=values,
                        supersedes=s.supersedes)
        s.rev = s.base = revision
        if not any(isinstance(v, FailedResult) for v in values):
            s.supersedes = []  # else the firing went to errors: the next one retracts them

    def _advance(self, wm: int, pos: int, firings: FiringBuffer) -> None:
        """The watermark moves to ``wm`` after position ``pos``: fire due windows (ascending
        max_ts), then drop those past their cleanup time."""
        while self.timers and self.timers[0][0] <= wm:
            t, gen = heapq.heappop(self.timers)
            s = self.by_gen.get(gen)
            if s is not None and s.timer and s.max_ts == t:
                s.timer = False
                self._fire(s, pos, WATERMARK, firings)
        while self.cleanups and self.cleanups[0][0] <= wm:
            _, gen = heapq.heappop(self.cleanups)
            s = self.by_gen.get(gen)
            if s is not None:
                self._drop(s)
        self.wm = max(self.wm, wm)

    # -- processing --------------------------------------------------------------------------
    def process(self, batch: Batch) -> Outputs:
        self._check(batch)
        skip, refused = self._refuse_unusable(batch)
        timeline = Timeline.of(batch, self.wm, self.last_seq)
        firings = FiringBuffer(self.keys, self.aggs, sessions=True, pipeline=self.pipeline,
                               operator=self.name)
        late: list[int] = []
        failures: dict[int, UdafCallError] = {}
        if len(batch):
            inp = BatchInput(batch.data, batch.ts, batch.seq)
            adds = SlotAdds(self.aggs.udafs, inp.records()) if self.aggs.udafs else None
            keys = self.keys.tuples(batch.data)
            for i, (key, ts, wm) in enumerate(zip(keys, batch.ts.tolist(),
                                                  timeline.before.tolist(), strict=True)):
                if wm > self.wm:
                    self._advance(wm, i - 1, firings)
                if skip is not None and skip[i]:
                    continue  # refused: added to nothing, not late (its time still counts)
                try:
                    if not self._add(key, ts, i, inp, adds, firings):
                        late.append(i)
                except UdafCallError as error:
                    failures[i] = error
        self._advance(timeline.end, len(batch) - 1, firings)
        failed = self._udaf_errors(batch, failures) if failures else None
        out = self._outputs(batch, timeline, firings, np.array(late, dtype=np.int64))
        return self._add_errors(out, refused, failed)

    def _add(self, key: tuple, ts: int, row: int, inp: BatchInput, adds: SlotAdds | None,
             firings: FiringBuffer) -> bool:
        """Add one record; False when it is late (added to no window). With user aggregate
        functions (``adds``), a ``UdafCallError`` means the record was added to nothing and
        nothing changed."""
        wm = self.wm
        start, end = session_window(ts, self.gap)
        sessions = self.by_key.get(key, [])
        hi = bisect.bisect_right(sessions, end, key=lambda s: s.start)
        lo = hi
        while lo > 0 and sessions[lo - 1].end >= start:
            lo -= 1
        if lo == hi:
            max_ts = end - 1
            if (POS_INF if max_ts > POS_INF - self.lateness else max_ts + self.lateness) <= wm:
                return False
            started = adds.started(row) if adds else None
            target = self._open(key, start, end)
            if adds:
                adds.install(target.slot, started, started_by=row)
            self.by_key.setdefault(key, sessions).insert(lo, target)
        else:
            absorbed = sessions[lo:hi]
            m_start, m_end = min(start, absorbed[0].start), max(end, absorbed[-1].end)
            if len(absorbed) == 1 and (m_start, m_end) == (absorbed[0].start, absorbed[0].end):
                target = absorbed[0]  # inside an existing session: no merge (as Flink)
                if adds:
                    adds.add(row, target.slot)
            else:
                merged = adds.merged([s.slot for s in absorbed], row) if adds else None
                target = self._merge(absorbed, m_start, m_end)
                if adds:
                    adds.install(target.slot, merged)
                sessions[lo:hi] = [target]
        self.aggs.add_one(target.slot, row, inp, udafs=False)
        if target.max_ts <= wm:
            self._fire(target, row, IMMEDIATE, firings)
        elif not target.timer:
            target.timer = True
            heapq.heappush(self.timers, (target.max_ts, target.gen))
        return True

    # -- gauges and checkpoints ----------------------------------------------------------------
    def state_gauges(self) -> dict[str, int]:
        """Keys with a live session, live sessions (pending: not yet fired, or kept for
        the allowed lateness), and bytes: the accumulator arrays plus a fixed cost per
        session, key and timer (``state_size``)."""
        windows, keys = len(self.by_gen), len(self.by_key)
        return {"keys": keys, "windows": windows,
                "bytes": accumulators_bytes(self.aggs)
                + windows * (WINDOW_OBJECT_BYTES + DICT_ENTRY_BYTES + 8)
                + keys * (DICT_ENTRY_BYTES + KEY_BYTES + 56)
                + (len(self.timers) + len(self.cleanups)) * HEAP_ENTRY_BYTES}

    def snapshot(self) -> dict[str, Any]:
        sessions = [s for lst in self.by_key.values() for s in lst]
        return {
            "kind": "session",
            "counters": dict(self.counters),
            "wm": self.wm,
            "last_seq": self.last_seq,
            "key_dtypes": self.keys.snapshot(),
            "sessions": [
                {"key": s.key, "start": s.start, "end": s.end, "rev": s.rev, "base": s.base,
                 "supersedes": [list(x) for x in s.supersedes], "timer": s.timer}
                for s in sessions
            ],
            "aggs": self.aggs.snapshot(np.array([s.slot for s in sessions], dtype=np.int64)),
        }

    def restore(self, state: dict[str, Any]) -> None:
        if state.get("kind") != "session":
            raise ValueError(f"window {self.name!r}: the checkpoint holds {state.get('kind')!r} "
                             "windows, the pipeline has session windows")
        self._clear()
        self.aggs = type(self.aggs)(self.step.aggregations)
        self.wm, self.last_seq = int(state["wm"]), int(state["last_seq"])
        self.counters = {"late": 0, "errors": 0, **state.get("counters", {})}
        self.keys.restore(state["key_dtypes"])
        slots = []
        for d in state["sessions"]:
            s = self._open(normalize_key(d["key"]), int(d["start"]), int(d["end"]))
            s.rev, s.base = int(d["rev"]), int(d["base"])
            s.supersedes = [list(x) for x in d["supersedes"]]
            if d["timer"]:
                s.timer = True
                heapq.heappush(self.timers, (s.max_ts, s.gen))
            self.by_key.setdefault(s.key, []).append(s)
            slots.append(s.slot)
        self.aggs.restore(state["aggs"], np.array(slots, dtype=np.int64))
