"""The newest state a Flink run of a spec left behind, to continue from after a crash.

A local mini-cluster run killed mid-way (SIGKILL, a dead machine) takes no savepoint; what it
leaves is Flink's last *retained checkpoint* (``environment.flink_configuration``:
``RETAIN_ON_CANCELLATION``, one kept per job): ``<checkpoint dir>/flink/checkpoints/<job
id>/chk-N``. A stop leaves a savepoint under ``.../flink/savepoints/savepoint-...``. Flink
restores from either (``execution.savepoint.path``).

Older states can belong to another timeline, and restoring one would write records twice:

- a run that *finished* leaves no checkpoint of its own (Flink discards a finished job's),
  only the older ones of the runs it continued;
- a fresh start (the outputs deleted) makes every earlier state stale.

So the command marks both (``mark``: ``.../flink/timeline``, "finished JOB" or "fresh"),
and only states newer than those marks count; a newest "finished" mark is what
``latest_retained`` returns: nothing to continue. A job started from a state is marked
"restored JOB": the state it started from stays a candidate (its mark is newer than that
state) until the job takes a state of its own, which is newer. Such a job may crash and be
resumed in turn: the file source keeps its read position across restores
(``sql_source.JSON_FORMAT``; Flink's own ``raw`` format did not, and a second resume wrote
records twice). (The "finished"
mark is written once the driver reported the end: a kill in between leaves it unwritten. A
cluster job submitted without ``--wait`` is not watched.)

Complete means: its ``_metadata`` file exists. Flink writes that file last, under a
temporary name renamed at the end, after every operator's state is on disk; a ``chk-N``
without it is a checkpoint the crash interrupted (never restorable), and its part files
were never committed. Among complete ones the newest ``_metadata`` wins: a job restored from
a checkpoint is a new job id whose checkpoints are newer than the ones it started from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from surestream.runners.flink.environment import flink_folders

METADATA = "_metadata"
FINISHED, FRESH, RESTORED = "finished", "fresh", "restored"
TIMELINE = "timeline"


@dataclass(frozen=True)
class RetainedState:
    """A complete retained checkpoint or savepoint."""

    path: Path  # the chk-N or savepoint-... folder: what --from-savepoint takes
    kind: str  # "checkpoint", "savepoint", or "finished" (the mark of a finished run)


def _number(folder: Path) -> int:
    tail = folder.name.rpartition("-")[2]
    return int(tail) if tail.isdigit() else -1


def latest_retained(checkpoint_dir: str | Path) -> RetainedState | None:
    """The newest complete retained checkpoint or savepoint of the spec's Flink runs newer
    than the timeline mark; else the mark if it says the run finished; else None (no run of
    this timeline got as far as one)."""
    folders = flink_folders(checkpoint_dir)
    found: list[tuple[int, int, Path, str]] = []
    for pattern, root, kind in ((f"*/chk-*/{METADATA}", folders["checkpoints"], "checkpoint"),
                                (f"*/{METADATA}", folders["savepoints"], "savepoint")):
        for metadata in root.glob(pattern):
            try:
                mtime = metadata.stat().st_mtime_ns
            except OSError:  # discarded (subsumed) while we looked
                continue
            found.append((mtime, _number(metadata.parent), metadata.parent, kind))
    timeline = folders["checkpoints"].parent / TIMELINE
    try:
        since, words = timeline.stat().st_mtime_ns, timeline.read_text().split()
    except (OSError, UnicodeDecodeError):
        since, words = -1, []
    if words[:1] != [RESTORED]:  # a restored job's start keeps the state it started from
        found = [entry for entry in found if entry[0] > since]
    if not found:
        return RetainedState(timeline, FINISHED) if words[:1] == [FINISHED] else None
    _, _, path, kind = max(found)
    return RetainedState(path, kind)


def mark(checkpoint_dir: str | Path, what: str, job_id: str = "") -> None:
    """Record that the spec's Flink run started afresh (``FRESH``) or ended ``FINISHED``
    (job ``job_id``): no state older than now is to be continued."""
    path = flink_folders(checkpoint_dir)["checkpoints"].parent / TIMELINE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{what} {job_id}".strip() + "\n")
