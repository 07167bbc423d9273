"""Reading a table incrementally, commit by commit: what the Iceberg and Delta sources share.

A table changes by commits (Iceberg snapshots of ``main``, Delta versions). The source
reads them in commit order as *units*; each unit is a list of data files in a fixed order,
read row by row:

* the first unit of a run started with ``start: earliest`` is the table's whole content at
  the commit current at start (``whole``), so history that was expired or rewritten
  before the start does not matter;
* every later unit is one commit's appended files. A commit that removes or rewrites
  rows is refused with the table, the commit and the reason (``on_non_append: fail``,
  the default, as Spark's streaming sources do) or passed over (``skip``); a compaction
  (same rows in new files) is passed over silently.

The position -- what checkpoints and a live run's journal store -- is the JSON list
``[commit, file index, row offset, whole]``: files ``[0, file index)`` of the commit's
unit are read, and ``row offset`` rows of the next. ``file index == the unit's file
count`` is the commit read to its end; ``-1``: none of it read yet (not even its refusal
checked). A position names everything it needs (the commit and the unit's kind), so a
resumed run or a replay reads exactly the same rows after it, and a kill and resume
re-reads nothing and skips nothing. ``commit`` None: nothing read
yet of a table that had no commit at start.

Columns: each unit's rows come with the columns of the table's schema at that commit. A
slice never holds rows of two schemas (``Chunk.cut``), so a record's columns never
depend on the batch size.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import polars as pl

from surestream.connectors.readers import Chunk, ReaderError

#: the file index of a position at a commit none of whose files was read yet (a commit
#: with no files to read would otherwise look read to its end: a delete that adds nothing)
NOT_BEGUN = -1


class TableChangeRefused(ReaderError):
    """A commit the source cannot stream: it removes or rewrites rows, or it expired
    before it was read."""


@dataclass
class Unit:
    """One commit's rows as the source reads them."""

    commit: Any
    whole: bool
    #: the data files to read, in read order (empty: the commit is passed over)
    files: list[Any]
    #: the count a position's file index reaches when the unit is read to its end
    #: (for a passed-over commit: its added files, so the count never depends on whether
    #: it was read)
    n: int
    #: the columns' version (a schema id): a new one cuts the slice
    schema_key: Any
    #: why the commit cannot be streamed (None: it can); raised or skipped when reached
    refusal: str | None = None


class IncrementalTableReader:
    """The PartitionReader of a table source (``connectors/readers.py``): one partition,
    units read in commit order. Subclasses say what the commits and units are."""

    restartable = True
    schema = None  # types come from the table, the same at every position

    def __init__(self, name: str, label: str, *, live: bool, poll_interval_ms: int,
                 on_non_append: str) -> None:
        self.name, self.label = name, label
        self._live = live
        self.poll_s = poll_interval_ms / 1000
        self.on_non_append = on_non_append
        self.position: list[Any] = [None, 0, 0, False]
        self._unit: Unit | None = None
        self._rows: pl.DataFrame | None = None  # the current file's rows
        self._served_key: Any = None  # the schema of the rows served last
        self._polled = time.monotonic()
        self._pending: list[Any] = []  # commits after the position's, in order (known now)
        #: the newest commit a bounded run reads (``stop_at: end``); live: unused
        self.end: Any = None

    # -- what a subclass provides ----------------------------------------------------------
    def head(self) -> Any:
        """The newest commit of the table as last loaded (None: none yet); no I/O."""
        raise NotImplementedError

    def commits_after(self, commit: Any, head: Any) -> list[Any]:
        """The commits after ``commit`` up to ``head``, oldest first (``commit`` None: all
        that are kept); refuses (``TableChangeRefused``) when one is gone."""
        raise NotImplementedError

    def unit(self, commit: Any, whole: bool) -> Unit:
        raise NotImplementedError

    def read_file(self, unit: Unit, file: Any) -> pl.DataFrame:
        raise NotImplementedError

    def refresh(self) -> None:
        """Ask the table for new commits (live)."""
        raise NotImplementedError

    # -- the protocol ----------------------------------------------------------------------
    @property
    def live(self) -> bool:
        return self._live

    def start_at(self, start: str) -> None:
        """The position of a run with no checkpoint (``start``); for ``stop_at: end`` the
        last commit read is the one current now."""
        head = self.head()
        if not self._live:
            self.end = head
        if head is None:
            self.seek([None, 0, 0, False])
        elif start == "earliest":
            self.seek([head, NOT_BEGUN, 0, True])
        else:
            self.seek([head, self.unit(head, False).n, 0, False])

    def seek(self, position: Any) -> None:
        """Stand at ``position``; its commit must still be there (a restore refuses a
        snapshot or version expired from under the checkpoint here, naming it)."""
        commit, index, row, whole = position
        self.position = [commit, int(index), int(row), bool(whole)]
        self._unit, self._rows, self._pending = None, None, []
        self._served_key = None
        if commit is not None:
            self._unit = self.unit(commit, bool(whole))

    def read(self, n: int) -> Chunk:
        """Exactly ``n`` rows, fewer only at the end (bounded) or where the columns
        change (``cut``). A live reader waits for new commits (a replay's reads)."""
        chunk = self._take(n, poll=False)
        while self._live and chunk.n < n and not chunk.cut:
            time.sleep(self.poll_s)
            self._poll(force=True)
            chunk = _joined(chunk, self._take(n - chunk.n, poll=False))
        return chunk

    def read_available(self, n: int) -> Chunk:
        """Up to ``n`` rows of the commits known now; the table is asked for new ones at
        most every ``poll_interval_ms`` (a live step never waits on the table)."""
        return self._take(n, poll=True)

    def checkpoint_state(self) -> dict[str, Any] | None:
        return None

    def verify(self, state: dict[str, Any], ended: bool) -> None:
        return None

    def close(self) -> None:
        self._unit, self._rows = None, None

    # -- reading ---------------------------------------------------------------------------
    def _take(self, n: int, poll: bool) -> Chunk:
        frames: list[pl.DataFrame] = []
        got = 0
        while got < n:
            unit = self._current_unit()
            if unit is None:  # (its unit stays cached: an idle live run asks again)
                if not self._next_unit(poll=poll):  # bounded: its end; live: none yet
                    return self._chunk(frames, got, exhausted=not self._live)
                continue
            if unit.schema_key != self._served_key:
                if got or self._served_key is not None:
                    self._served_key = unit.schema_key
                    return self._chunk(frames, got, cut=True)
                self._served_key = unit.schema_key
            _, index, row, _ = self.position
            if self._rows is None:
                self._rows = self.read_file(unit, unit.files[index])
            take = min(n - got, self._rows.height - row)
            if take > 0:
                frames.append(self._rows.slice(row, take))
                got += take
                row += take
            if row >= self._rows.height:
                self.position = [unit.commit, index + 1, 0, unit.whole]
                self._rows = None
            else:
                self.position = [unit.commit, index, row, unit.whole]
        return self._chunk(frames, got)

    def _current_unit(self) -> Unit | None:
        """The unit of the position's commit while files of it remain to be read."""
        commit, index, _, whole = self.position
        if commit is None:
            return None
        if self._unit is None or self._unit.commit != commit or self._unit.whole != whole:
            self._unit = self.unit(commit, whole)
            self._rows = None
        unit = self._unit
        if index >= 0 and unit.n <= index:
            return None  # read to its end
        if unit.refusal is not None and self.on_non_append == "fail":
            raise TableChangeRefused(
                f"{self.label}: {unit.refusal}; a table source streams appends only. Set "
                "the source's on_non_append: skip to pass over such changes (their removed "
                "rows stay in the results downstream), or start afresh from the table as "
                "it is now (delete the checkpoint folder; start: earliest)")
        if not unit.files:  # passed over: a compaction, or skipped
            self.position = [commit, unit.n, 0, whole]
            return None
        if index < 0:
            self.position = [commit, 0, 0, whole]
        return unit

    def _next_unit(self, poll: bool) -> bool:
        """Move the position to the start of the next commit; False when none is known
        (a bounded run: its end; live: none yet)."""
        commit = self.position[0]
        if not self._live and (self.end is None or commit == self.end):
            return False
        if not self._pending:
            if self._live and poll:
                self._poll()
            head = self.end if not self._live else self.head()
            if head is None or head == commit:
                return False
            self._pending = self.commits_after(commit, head)
            if not self._pending:
                return False
        nxt = self._pending.pop(0)
        self.position = [nxt, NOT_BEGUN, 0, commit is None]
        return True

    def _poll(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._polled >= self.poll_s:
            self._polled = now
            self.refresh()

    def _chunk(self, frames: list[pl.DataFrame], got: int, exhausted: bool = False,
               cut: bool = False) -> Chunk:
        if not frames:
            data = pl.DataFrame()
        elif len(frames) == 1:
            data = frames[0]
        else:
            data = pl.concat(frames, how="vertical_relaxed")
        return Chunk(data, got, exhausted=exhausted and not cut, cut=cut)


def _joined(first: Chunk, rest: Chunk) -> Chunk:
    data = pl.concat([first.data, rest.data], how="vertical_relaxed") if rest.n \
        else first.data
    return Chunk(data, first.n + rest.n, exhausted=rest.exhausted, cut=rest.cut)
