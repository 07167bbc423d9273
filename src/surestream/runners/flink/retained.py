"""The newest state a Flink run of a spec left behind, to continue from after a crash.

A local mini-cluster run killed mid-way (SIGKILL, a dead machine) takes no savepoint; what it
leaves is Flink's last *retained checkpoint* (``environment.flink_configuration``:
``RETAIN_ON_CANCELLATION``, one kept per job): ``<checkpoint dir>/flink/checkpoints/<job
id>/chk-N``. A stop leaves a savepoint under ``.../flink/savepoints/savepoint-...``. Flink
restores from either (``execution.savepoint.path``).

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


@dataclass(frozen=True)
class RetainedState:
    """A complete retained checkpoint or savepoint."""

    path: Path  # the chk-N or savepoint-... folder: what --from-savepoint takes
    kind: str  # "checkpoint" or "savepoint"


def _number(folder: Path) -> int:
    tail = folder.name.rpartition("-")[2]
    return int(tail) if tail.isdigit() else -1


def latest_retained(checkpoint_dir: str | Path) -> RetainedState | None:
    """The newest complete retained checkpoint or savepoint of the spec's Flink runs, or
    None (no run got as far as one)."""
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
    if not found:
        return None
    _, _, path, kind = max(found)
    return RetainedState(path, kind)
