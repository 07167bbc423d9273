"""A record's adds into user aggregate functions: all of them, or none.

A user ``AggregateFunction`` whose ``add`` raises on one record must cost that record, not
the run, and the failed call must have no effect (what SEMANTICS §6 asks of user code): the
record goes to errors and joins no window -- neither the user functions' accumulators nor
the built-ins' -- like a record whose value ``sum`` cannot use (``aggregate_inputs``).

User code may change an accumulator in place before it raises, so undoing a call needs the
accumulator as it was. Copying it before every call would cost its size per record --
quadratic for an accumulator that keeps its values, such as a median. Instead a window's
accumulators are copied once per batch, at its first add of the batch, and the rows added
since are remembered; a failure rebuilds the window from that copy and those rows (the
failing record left out), and the rebuilt state becomes the new copy. Good data costs one
deep copy per window and batch; a failure, one rebuild. (Rebuilding calls ``add`` again
for records it has seen: a user function must be deterministic and keep no state outside
its accumulator -- which replaying a checkpoint needs anyway.)

Two uses:

- ``TrialAdds`` (tumbling and sliding windows): before the batch is windowed, every record's
  adds are tried on working copies, in arrival order, into the windows the record will join
  (its late windows left out). The records that fail are skipped by the rest of the
  operator, as the records ``sum`` cannot use are. A window that got only on-time records
  in the batch takes the trial's accumulators as they are (``Tried.finals``): its records all come
  before it can fire, so nothing reads it in between. A window that also got
  late-but-allowed records fires in the middle of the batch, between adds, so the operator
  calls ``add`` once more for its pairs, with the same accumulators and records.
- ``SlotAdds`` (session windows, record by record): the adds are made on the window's own
  accumulators and undone the same way; a record that would merge sessions is tried on
  copies first (``merged``), so a failing ``merge`` leaves the sessions unmerged.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from surestream.semantics.aggregates import UdafAcc, UdafCallError

#: values a copy can share: nothing can change them in place
_IMMUTABLE = frozenset({int, float, str, bool, bytes, type(None), complex})


def snapshot(value: Any) -> Any:
    """A copy of an accumulator that later in-place changes cannot reach: ``deepcopy``,
    but cheap for the usual shapes (a number, a tuple, or a list/dict of plain values)."""
    kind = type(value)
    if kind in _IMMUTABLE:
        return value
    if kind is tuple and all(type(v) in _IMMUTABLE for v in value):
        return value
    if kind is list and all(type(v) in _IMMUTABLE for v in value):
        return value.copy()
    if kind is dict and all(type(k) in _IMMUTABLE and type(v) in _IMMUTABLE
                            for k, v in value.items()):
        return value.copy()
    return copy.deepcopy(value)


def _snapshots(values: list[Any]) -> list[Any]:
    return [snapshot(v) for v in values]


def _not_deterministic(error: UdafCallError) -> RuntimeError:
    return RuntimeError(f"{error} while redoing adds that had succeeded: a user aggregate "
                        "function must be deterministic and keep no state outside its "
                        "accumulator")


@dataclass(frozen=True, slots=True)
class Tried:
    """What the trial hands to the window operator: the batch's rows as dicts (copies the
    trial never gave to user code), and per window whose accumulators the trial completed,
    those accumulators (one per user function)."""

    records: list[dict[str, Any]]
    finals: dict[Hashable, list[Any]]

    def piece(self, lo: int, hi: int) -> Tried:
        return Tried(self.records[lo:hi], self.finals)


class TrialAdds:
    """Tries records' adds on working copies; the windows' own accumulators are untouched.

    Windows are numbered as they are first seen (``ids``). ``slot_of(window)`` is the slot
    of an open window, or None for a window the batch would open (``create``). The trial
    keeps no list of rows per window: a failure finds the rows to replay in the pairs tried
    so far (one numpy scan), so good data costs one user call and a few list operations per
    pair."""

    def __init__(self, udafs: Sequence[UdafAcc], records: list[dict[str, Any]],
                 slot_of: Callable[[Hashable], int | None]) -> None:
        self.udafs = list(udafs)
        self.records = records
        self._slot_of = slot_of
        self._ids: dict[Hashable, int] = {}
        self._windows: list[Hashable] = []
        self._accs: list[list[Any] | None] = []  # working accumulators; None: not begun
        self._base: list[list[Any] | None] = []  # start point (never changed); None: create()
        self._since: list[int] = []  # the pair index the start point stands at
        self._rows = np.zeros(0, dtype=np.int64)  # every pair tried: its row ...
        self._pair_ids = np.zeros(0, dtype=np.int64)  # ... and its window's id
        self._failed: set[int] = set()

    def ids(self, windows: Sequence[Hashable]) -> np.ndarray:
        """The id of each window, numbering new ones."""
        out = np.empty(len(windows), dtype=np.int64)
        for n, window in enumerate(windows):
            i = self._ids.get(window)
            if i is None:
                i = self._ids[window] = len(self._windows)
                self._windows.append(window)
                self._accs.append(None)
                self._base.append(None)
                self._since.append(0)
            out[n] = i
        return out

    def try_pairs(self, rows: np.ndarray, ids: np.ndarray) -> dict[int, UdafCallError]:
        """Try every record's adds: record ``rows[j]`` into window ``ids[j]``, a record's
        pairs adjacent, records in arrival order (continuing earlier calls). Returns the
        failures by row."""
        offset = len(self._rows)
        self._rows = np.concatenate([self._rows, rows])
        self._pair_ids = np.concatenate([self._pair_ids, ids])
        ends = [*(np.flatnonzero(np.diff(rows)) + 1).tolist(), len(rows)]
        failures: dict[int, UdafCallError] = {}
        udafs = self.udafs
        adds = [udaf.function.add for udaf in udafs]
        one = adds[0] if len(adds) == 1 else None
        records, working = self.records, self._accs
        row_list, id_list = rows.tolist(), ids.tolist()
        j = 0
        for k in ends:
            row = row_list[j]
            record = records[row]
            touched = j  # pairs j..touched-1 have had this record's adds (some of them)
            i = 0  # the user function being called
            try:
                while touched < k:
                    w = id_list[touched]
                    accs = working[w]
                    if accs is None:
                        accs = working[w] = self._begin(w)
                    touched += 1
                    if one is not None:
                        accs[0] = one(accs[0], record)
                    else:
                        for i, add in enumerate(adds):
                            accs[i] = add(accs[i], record)
            except UdafCallError as error:  # a create raised (in _begin)
                failures[row] = error
            except Exception as exc:  # user code may raise anything
                failures[row] = UdafCallError(udafs[i].name, udafs[i].function, "add", exc)
            else:
                j = k
                continue
            self._failed.add(row)
            for m in range(j, touched):
                self._rebuild(id_list[m], offset + j)
            j = k
        return failures

    def _begin(self, w: int) -> list[Any]:
        """Window ``w``'s working accumulators at its first pair of the batch."""
        slot = self._slot_of(self._windows[w])
        if slot is None:
            return [udaf.create() for udaf in self.udafs]
        base = self._base[w] = [udaf.accs[slot] for udaf in self.udafs]  # never changed
        return _snapshots(base)

    def _rebuild(self, w: int, upto: int) -> None:
        """Window ``w``'s accumulators from its start point and the pairs before ``upto``
        that did not fail; they become its new start point."""
        base, since = self._base[w], self._since[w]
        pairs = since + np.flatnonzero(self._pair_ids[since:upto] == w)
        try:
            accs = [udaf.create() for udaf in self.udafs] if base is None else _snapshots(base)
            for row in self._rows[pairs].tolist():
                if row not in self._failed:
                    record = self.records[row]
                    accs = [udaf.added(acc, record)
                            for udaf, acc in zip(self.udafs, accs, strict=True)]
        except UdafCallError as error:
            raise _not_deterministic(error) from error.cause
        self._accs[w] = accs
        self._base[w] = _snapshots(accs)
        self._since[w] = upto

    def finals(self, unfinished: set[Hashable]) -> dict[Hashable, list[Any]]:
        """The working accumulators of every window tried, but those in ``unfinished``."""
        return {window: accs for window, accs in zip(self._windows, self._accs, strict=True)
                if accs is not None and window not in unfinished}


@dataclass(slots=True)
class _Since:
    """A slot's accumulators at a known point of the batch, and the rows added since."""

    base: list[Any] | None  # one per user function, never changed; None: create()
    rows: list[int] = field(default_factory=list)


class SlotAdds:
    """Adds records to the accumulators of window slots themselves (session windows):
    each slot is copied at its first add of the batch (``_Since``); a failing record's
    slot is rebuilt from there."""

    def __init__(self, udafs: Sequence[UdafAcc], records: list[dict[str, Any]]) -> None:
        self.udafs = list(udafs)
        self.records = records
        self._since: dict[int, _Since] = {}

    def add(self, row: int, slot: int) -> None:
        """Add record ``row`` to every user function of ``slot``, or -- when a call raises --
        to none: the slot is rebuilt without the record and the ``UdafCallError`` raised."""
        since = self._since.get(slot)
        if since is None:
            since = self._since[slot] = _Since(_snapshots([u.accs[slot] for u in self.udafs]))
        record = self.records[row]
        try:
            for udaf in self.udafs:
                udaf.accs[slot] = udaf.added(udaf.accs[slot], record)
        except UdafCallError:
            self._rebuild(slot)
            raise
        since.rows.append(row)

    def _rebuild(self, slot: int) -> None:
        since = self._since[slot]
        try:
            accs = ([u.create() for u in self.udafs] if since.base is None
                    else _snapshots(since.base))
            for row in since.rows:
                record = self.records[row]
                accs = [u.added(acc, record) for u, acc in zip(self.udafs, accs, strict=True)]
        except UdafCallError as error:
            raise _not_deterministic(error) from error.cause
        for udaf, acc in zip(self.udafs, accs, strict=True):
            udaf.accs[slot] = acc
        self._since[slot] = _Since(_snapshots(accs))  # later failures replay from here

    def started(self, row: int) -> list[Any]:
        """The accumulators of a new window holding record ``row`` only (``create`` then
        ``add``, on nothing that exists yet), for ``install``; raises ``UdafCallError``."""
        record = self.records[row]
        return [u.added(u.create(), record) for u in self.udafs]

    def merged(self, slots: Sequence[int], row: int) -> list[Any]:
        """The accumulators of ``slots`` merged in that order and record ``row`` added --
        computed on copies, so a failure leaves every slot as it was; for ``install``."""
        record = self.records[row]
        out = []
        for udaf in self.udafs:
            acc = snapshot(udaf.accs[slots[0]])
            for slot in slots[1:]:
                acc = udaf.merged(acc, snapshot(udaf.accs[slot]))
            out.append(udaf.added(acc, record))
        return out

    def install(self, slot: int, accs: list[Any], *, started_by: int | None = None) -> None:
        """Make ``accs`` (from ``started``/``merged``) the slot's accumulators. For a new
        window started by record ``started_by`` a rebuild is ``create`` plus that record;
        otherwise the slot is copied again at its next add."""
        for udaf, acc in zip(self.udafs, accs, strict=True):
            udaf.accs[slot] = acc
        if started_by is None:
            self._since.pop(slot, None)
        else:
            self._since[slot] = _Since(None, [started_by])
