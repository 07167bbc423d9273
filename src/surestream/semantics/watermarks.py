"""Per-partition bounded-out-of-orderness watermarks with idleness (SEMANTICS §2).

Flink's BoundedOutOfOrdernessWatermarks, made stricter so that results never depend on
timing: the watermark advances after *every* record, as a function of the records so far.

- partition p holds ``max_ts[p] - D - 1``; before its first record, -infinity;
- the stream watermark W is the minimum over partitions that are neither idle nor ended,
  and never decreases; a partition that reached its end counts as +infinity;
- a partition idle for ``idle_timeout_ms`` of processing time (a clock must be injected;
  bounded replays have none, so they never judge idleness) is left out until its next record;
  a partition that has given no record yet counts from the first step that saw it (a
  live Kafka partition with no data, or one created while the run goes on);
  when every unfinished partition is idle, W stays where it is (Flink's idle status);
- with ``open_ended`` (a trigger's run, whose source may gain files later), once no
  unfinished partition remains W stays at the watermark of the last partition to end (its
  ``max_ts - D - 1``), not +infinity: the input has not ended.

The tracker is vectorized: one call computes the watermark before each row of a batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np

from surestream.model.batch import NEG_INF, POS_INF

Clock = Callable[[], int]


def _minus_delay(values: np.ndarray, delay: int) -> np.ndarray:
    """``values - delay - 1`` that keeps +-infinity where they are (no int64 overflow)."""
    out = values - (delay + 1)
    out[values == NEG_INF] = NEG_INF
    out[values == POS_INF] = POS_INF
    low = (values != NEG_INF) & (values < NEG_INF + delay + 1)
    out[low] = NEG_INF
    return out


class WatermarkTracker:
    """Stream watermark over declared partitions, advanced row by row (vectorized)."""

    def __init__(self, max_out_of_orderness_ms: int, idle_timeout_ms: int | None = None,
                 clock: Clock | None = None) -> None:
        self.delay = int(max_out_of_orderness_ms)
        self.idle_timeout_ms = idle_timeout_ms
        self.clock = clock
        self.current: int = NEG_INF
        self.max_ts: dict[int, int] = {}
        self.partitions: list[int] = []
        self.ended: set[int] = set()
        self.last_active: dict[int, int] = {}
        #: more partitions may come (files under a trigger): W never jumps to +infinity
        #: because every partition known so far has ended -- only the runner's final step
        #: ends the input. Configuration, not state: the runner sets it each run.
        self.open_ended = False

    def declare_partitions(self, ids: Iterable[int]) -> None:
        """Partitions that exist before they deliver anything: they hold W at -infinity."""
        for p in ids:
            if p not in self.partitions:
                self.partitions.append(int(p))
                self.max_ts.setdefault(int(p), NEG_INF)

    def _idle_partitions(self) -> set[int]:
        if self.idle_timeout_ms is None or self.clock is None:
            return set()
        now = self.clock()
        for p in self.partitions:  # a partition that has given nothing yet: its idle
            self.last_active.setdefault(p, now)  # time counts from when it was first seen
        return {p for p in self.partitions if p not in self.ended
                and now - self.last_active[p] >= self.idle_timeout_ms}

    def advance(self, ts: np.ndarray, partition: np.ndarray | None = None,
                ended: Sequence[tuple[int, int]] = ()) -> tuple[np.ndarray, int]:
        """Watermark before each row, and after the last one.

        ``ended`` lists ``(row index after which, partition)`` for partitions that finished
        inside this slice (index -1: before its first row).
        """
        n = len(ts)
        part = np.zeros(n, dtype=np.int64) if partition is None else np.asarray(partition)
        self.declare_partitions(np.unique(part).tolist())
        for _, p in ended:
            self.declare_partitions([p])
        idle = self._idle_partitions()
        if self.clock is not None:
            now = self.clock()
            for p in np.unique(part).tolist():
                self.last_active[p] = now
        end_at = {p: i for i, p in ended}

        rows_min = np.full(n + 1, POS_INF, dtype=np.int64)  # min over counted partitions
        counted = np.zeros(n + 1, dtype=bool)  # some unfinished, non-idle partition counted
        any_idle = np.zeros(n + 1, dtype=bool)
        # open-ended: per row, the row index the latest partition ended at and its max_ts
        last_end = np.full(n + 1, -2, dtype=np.int64)
        hold = np.full(n + 1, NEG_INF, dtype=np.int64)
        for p in self.partitions:
            if p in self.ended:
                continue
            mask = part == p
            vals = np.where(mask, ts, NEG_INF)
            running = np.empty(n + 1, dtype=np.int64)
            running[0] = self.max_ts[p]
            np.maximum.accumulate(np.concatenate(([self.max_ts[p]], vals)), out=running)
            excluded = np.zeros(n + 1, dtype=bool)
            if p in idle:  # left out until its next record
                rows = np.flatnonzero(mask)
                first = rows[0] + 1 if len(rows) else n + 1
                excluded[:first] = True
                any_idle |= excluded
            if p in end_at:
                if self.open_ended:
                    self._note_end(end_at[p], int(running[end_at[p] + 1]), last_end, hold)
                    self.max_ts[p] = int(running[end_at[p] + 1])
                running[end_at[p] + 1:] = POS_INF
                excluded[end_at[p] + 1:] = False
            live = ~excluded & (running != POS_INF)
            counted |= live
            np.minimum(rows_min, np.where(excluded, POS_INF, running), out=rows_min)
            self.max_ts[p] = int(running[n]) if running[n] != POS_INF else self.max_ts[p]
        # Every unfinished partition idle: W holds (no +infinity jump).
        rows_min[~counted & any_idle] = NEG_INF
        if self.open_ended:  # none counted: W stays at the last ended one's, or where it is
            rows_min[~counted] = hold[~counted]
        candidate = _minus_delay(rows_min, self.delay)
        candidate[0] = max(candidate[0], self.current)
        after = np.maximum.accumulate(candidate)
        self.ended.update(end_at)
        self.current = int(after[n])
        return after[:n].copy(), self.current

    @staticmethod
    def _note_end(at: int, final: int, last_end: np.ndarray, hold: np.ndarray) -> None:
        """A partition ended after row ``at`` with ``final`` its max_ts: the rows after it
        hold at ``final`` where it is the latest partition to end (the largest; a tie of
        two ending before their first row)."""
        rows = slice(at + 1, None)
        later, tie = at > last_end[rows], at == last_end[rows]
        hold[rows] = np.where(later, final, np.where(tie, np.maximum(hold[rows], final),
                                                     hold[rows]))
        last_end[rows] = np.maximum(last_end[rows], at)

    def lag_ms(self) -> int | None:
        """How far (event time) the watermark trails the newest record seen; None while
        the watermark is at -infinity or +infinity."""
        seen = [t for t in self.max_ts.values() if t != NEG_INF]
        if not seen or self.current in (NEG_INF, POS_INF):
            return None
        return max(seen) - self.current

    def snapshot(self) -> dict:
        state = {"current": self.current, "max_ts": dict(self.max_ts),
                 "partitions": list(self.partitions), "ended": sorted(self.ended)}
        if self.last_active:  # (idleness on a clock: a resumed run judges it the same)
            state["last_active"] = dict(self.last_active)
        return state

    def restore(self, state: dict) -> None:
        self.current = state["current"]
        self.max_ts = dict(state["max_ts"])
        self.partitions = list(state["partitions"])
        self.ended = set(state["ended"])
        self.last_active = dict(state.get("last_active", {}))
