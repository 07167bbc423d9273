"""The journal of a live run: which records went into which micro-batch, for a byte-exact
replay (``surestream replay SPEC --journal DIR``).

A live run's batches close on wall time, so which records share a batch -- and with it
processing-time idleness, processing-time timers and the stamps of ``processing_time``
steps -- depends on timing that no bounded re-read would reproduce. The journal records
exactly that, compactly, in ``<checkpoint dir>/journal.jsonl``, one JSON line each:

- a header: ``{"journal": 1, "pipeline", "now", "partitions": [[source, name], ...]}`` --
  the partitions in id order and the processing time read at start;
- a step: ``{"s": n, "now": ms, "c": [[pid, from, next, count], ...], "add": [[source,
  name], ...]}`` -- the processing time the step used, the chunks it read (positions are
  offsets for Kafka), the partitions added before it (new Kafka partitions);
- a checkpoint: ``{"cp": id, "after": n, "now": ms}`` -- taken after step n, with the
  processing time it recorded.

Lines are appended as the run goes and made durable (fsync) just before each checkpoint is
written, so every durable checkpoint has its steps in the journal. A run restored from
checkpoint N cuts the journal back to N's line: the steps after it were undone (sinks roll
back to N) and are read again, into new journal lines.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from surestream.io.durable import fsync_dir

JOURNAL_FILE = "journal.jsonl"
VERSION = 1


class JournalError(Exception):
    """A journal cannot be read or cannot reproduce the run (it names why)."""


def journal_path(folder: Path) -> Path:
    return Path(folder) / JOURNAL_FILE


class JournalWriter:
    """Appends a live run's lines; ``sync`` before each checkpoint."""

    def __init__(self, folder: Path) -> None:
        self.path = journal_path(folder)
        self._file: Any = None

    def start(self, pipeline: str, now: int, partitions: list[tuple[str, str]]) -> None:
        """A fresh run: a new journal with its header."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "w", encoding="utf-8")  # noqa: SIM115 - kept open
        self._line({"journal": VERSION, "pipeline": pipeline, "now": now,
                    "partitions": [list(p) for p in partitions]})
        self.sync()
        fsync_dir(self.path.parent)

    def resume(self, pipeline: str, checkpoint_id: int, now: int,
               partitions: list[tuple[str, str]]) -> int | None:
        """A run restored from ``checkpoint_id``: cut the journal back to that checkpoint's
        line and append from there. The step the checkpoint followed; None if the journal
        does not reach it (a new journal is started: it cannot replay from the start)."""
        kept: list[str] = []
        after = None
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:
                    break  # a torn last line
                kept.append(line)
                if entry.get("cp") == checkpoint_id:
                    after = int(entry["after"])
                    break
        if after is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "w", encoding="utf-8")  # noqa: SIM115
            self._line({"journal": VERSION, "pipeline": pipeline, "now": now,
                        "partitions": [list(p) for p in partitions],
                        "resumed_from": checkpoint_id})
            self.sync()
            return None
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        fsync_dir(self.path.parent)
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
        return after

    def step(self, n: int, now: int, chunks: list[tuple[int, Any, Any, int]],
             added: list[tuple[str, str]]) -> None:
        entry: dict[str, Any] = {"s": n, "now": now, "c": [list(c) for c in chunks]}
        if added:
            entry["add"] = [list(a) for a in added]
        self._line(entry)

    def checkpoint(self, checkpoint_id: int, after: int, now: int) -> None:
        """The checkpoint about to be taken; durable with every step before it."""
        self._line({"cp": checkpoint_id, "after": after, "now": now})
        self.sync()

    def _line(self, entry: dict[str, Any]) -> None:
        self._file.write(json.dumps(entry, separators=(",", ":")) + "\n")

    def sync(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


@dataclass
class ReplayPlan:
    """A journal read back: the header and its events in order."""

    pipeline: str
    now: int
    partitions: list[tuple[str, str]]
    #: ("step", entry) or ("checkpoint", entry), in the order they happened
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    @property
    def steps(self) -> int:
        return sum(1 for kind, _ in self.events if kind == "step")


def read_journal(folder: Path) -> ReplayPlan:
    """The journal in ``folder`` (a live run's checkpoint folder, or the file itself).
    Lines after the last checkpoint are dropped: their outputs were never committed, so
    the live run's outputs end at that checkpoint."""
    path = Path(folder)
    if path.is_dir():
        path = journal_path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise JournalError(f"cannot read the journal {path}: {e}") from e
    if not lines:
        raise JournalError(f"{path} is empty")
    try:
        header = json.loads(lines[0])
    except ValueError as e:
        raise JournalError(f"{path}: the first line is not a journal header") from e
    if header.get("journal") != VERSION:
        raise JournalError(f"{path} is not a surestream journal (version {VERSION})")
    if "resumed_from" in header:
        raise JournalError(
            f"{path} starts at checkpoint {header['resumed_from']} (the run was restored "
            "from a checkpoint its journal did not reach), so it cannot replay the run "
            "from its start")
    plan = ReplayPlan(header["pipeline"], int(header["now"]),
                      [(s, n) for s, n in header["partitions"]])
    events: list[tuple[str, dict[str, Any]]] = []
    last_cp = 0
    for line in lines[1:]:
        try:
            entry = json.loads(line)
        except ValueError:
            break  # a torn last line (the process died while writing it)
        events.append(("checkpoint" if "cp" in entry else "step", entry))
        if "cp" in entry:
            last_cp = len(events)
    plan.events = events[:last_cp]
    return plan
