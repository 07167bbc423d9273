"""Keeping an Iceberg output's table small: compaction of small files, snapshot expiry.

A pipeline checkpointing every second makes one snapshot and a few small files per
checkpoint. ``compact`` rewrites the table's rows into one file per partition in one
snapshot; ``expire`` drops old snapshots. Both keep what recovery reads
(``iceberg.py``): the newest checkpoint marker of every output that writes the table.
Compaction copies those markers into its own snapshot's summary -- so the current
snapshot always carries them -- and expiry never drops the current snapshot, the newest
snapshot carrying each marker, or a branch head (a staged checkpoint).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from surestream.connectors.tables.iceberg import CHECKPOINT_KEY, RECORDS_KEY, ancestry


@dataclass(frozen=True)
class Compaction:
    table: str
    files_before: int
    files_after: int
    rows: int
    expired: int


def newest_markers(table: Any) -> tuple[dict[str, str], set[int]]:
    """(the newest value of every checkpoint marker key on ``main``, the snapshots that
    carry them)."""
    markers: dict[str, str] = {}
    carriers: set[int] = set()
    current = table.current_snapshot()
    for snapshot in ancestry(table, current.snapshot_id if current else None):
        props = snapshot.summary.additional_properties if snapshot.summary else {}
        for key, value in props.items():
            if key.startswith((CHECKPOINT_KEY, RECORDS_KEY)) and key not in markers:
                markers[key] = value
                carriers.add(snapshot.snapshot_id)
    return markers, carriers


#: the summary key marking a snapshot that rewrites ``main``'s rows unchanged (pyiceberg
#: has no ``replace`` commit): a table source passes over it, as over a ``replace``
REWRITE_KEY, COMPACTION = "surestream.rewrite", "compaction"


def data_files(table: Any) -> int:
    return 0 if table.current_snapshot() is None else table.inspect.files().num_rows


def compact(table: Any) -> tuple[int, int, int]:
    """Rewrite ``main``'s rows in one overwrite snapshot carrying the newest markers;
    returns (files before, files after, rows). Nothing when there is at most one file per
    partition."""
    before = data_files(table)
    partitions = table.inspect.partitions().num_rows if table.spec().fields else 1
    if before <= max(partitions, 1):  # one file per partition already: nothing to gain
        return before, before, 0
    markers, _ = newest_markers(table)
    rows = table.scan().to_arrow()
    table.overwrite(rows, snapshot_properties={**markers, REWRITE_KEY: COMPACTION})
    table = table.refresh()
    return before, data_files(table), rows.num_rows


def expire(table: Any, keep: int) -> int:
    """Expire every snapshot but the ``keep`` newest of ``main``'s ancestry, the newest
    carrier of each marker and the branch heads; returns how many were expired."""
    current = table.current_snapshot()
    kept = {s.snapshot_id for _, s in zip(range(max(keep, 1)),
                                           ancestry(table, current.snapshot_id if current
                                                    else None), strict=False)}
    kept |= newest_markers(table)[1]
    kept |= {ref.snapshot_id for ref in table.refs().values()}
    doomed = [s.snapshot_id for s in table.snapshots() if s.snapshot_id not in kept]
    if doomed:
        table.maintenance.expire_snapshots().by_ids(doomed).commit()
    return len(doomed)


def compact_and_expire(catalog: Any, identifier: str, keep: int) -> Compaction:
    table = catalog.load_table(identifier)
    before, after, rows = compact(table)
    expired = expire(catalog.load_table(identifier), keep)
    return Compaction(identifier, before, after, rows, expired)
