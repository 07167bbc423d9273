"""The Iceberg table source: the snapshots of ``main``, read incrementally.

Units (``table_source.py``) are snapshots of ``main``'s history in order, found by walking
parents back from ``main``'s current snapshot -- so only published snapshots are read:
an Iceberg sink's write-audit-publish stages each checkpoint on a branch of its own and
the source sees it once ``main`` moves to it, as one snapshot.

* a snapshot's files: the data files it *added* (manifest entries it wrote with status
  ADDED), by file path; a ``whole`` unit: every live data file of the snapshot, by data
  sequence number then path -- the order reading its history snapshot by snapshot gives;
* a snapshot that deleted data files or added delete files (an overwrite, a delete, a
  row-level update) is not an append: refused, or passed over with ``on_non_append:
  skip``; a ``replace`` snapshot (compaction: the same rows in new files) is passed over;
* rows are read through pyiceberg's Arrow scan (``ArrowScan``) one file at a time,
  projected to the snapshot's own schema (a column added later is not in earlier
  snapshots' rows), with delete files applied in a ``whole`` unit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from surestream.connectors.readers import ReaderError
from surestream.connectors.tables.iceberg_catalog import open_catalog
from surestream.connectors.tables.table_source import (
    IncrementalTableReader,
    TableChangeRefused,
    Unit,
)
from surestream.model.spec import IcebergSource

#: how a refusal names the snapshot a position (restored, or being read) stands in
AT_POSITION = "at the source's position (read last)"


class IcebergSourceReader(IncrementalTableReader):
    """One Iceberg table as one input partition; position ``[snapshot id, file, row,
    whole]``."""

    def __init__(self, name: str, spec: IcebergSource, resolve: Callable[[str], Path]) -> None:
        super().__init__(spec.table, f"source {name!r}: Iceberg table {spec.table}",
                         live=spec.live, poll_interval_ms=spec.poll_interval_ms,
                         on_non_append=spec.on_non_append)
        self.spec = spec
        try:
            self.catalog = open_catalog(spec.catalog, resolve)
        except Exception as e:  # a catalog that does not open: named, with the cause
            raise ReaderError(f"Iceberg catalog {spec.catalog}: {e}") from e
        self.table: Any = None
        self.refresh()
        if self.table is None and not spec.live:
            raise ReaderError(f"Iceberg table {spec.table} does not exist in the catalog "
                              "(a bounded read needs it; a live source waits for it)")
        self.start_at(spec.start)

    # -- the table -------------------------------------------------------------------------
    def refresh(self) -> None:
        from pyiceberg.exceptions import NoSuchTableError

        try:
            self.table = self.catalog.load_table(self.spec.table)
        except NoSuchTableError:
            self.table = None

    def head(self) -> int | None:
        if self.table is None:
            return None
        ref = self.table.metadata.refs.get("main")
        return None if ref is None else int(ref.snapshot_id)

    def _snapshot(self, snapshot_id: int, why: str) -> Any:
        snapshot = self.table.snapshot_by_id(snapshot_id) if self.table is not None else None
        if snapshot is None:
            raise TableChangeRefused(
                f"{self.label}: snapshot {snapshot_id} {why} has expired (or the table was "
                "replaced), so what followed it cannot be read incrementally; start afresh "
                "(delete the checkpoint folder) to read the table as it is now")
        return snapshot

    def commits_after(self, commit: int | None, head: int) -> list[int]:
        """Walking parents back from ``head`` to ``commit``. pyiceberg clears a snapshot's
        parent when the parent expires, so a walk that reaches a parentless snapshot
        newer than ``commit`` crossed expired history; one that reaches a snapshot older
        than ``commit`` went round it (main was rolled back)."""
        last = None if commit is None else self._snapshot(commit, AT_POSITION)
        chain: list[int] = []
        sid: int | None = head
        while sid != commit:
            snapshot = None if sid is None else self.table.snapshot_by_id(sid)
            if snapshot is None:
                if commit is None and chain:
                    break  # older history expired: the oldest kept snapshot is read whole
                after = f" and snapshot {chain[-1]}" if chain else ""
                raise TableChangeRefused(
                    f"{self.label}: the snapshot(s) of main after snapshot {commit} (read "
                    f"last by the checkpoint){after} have expired, so their rows cannot be "
                    "read incrementally; start afresh (delete the checkpoint folder) to read "
                    "the table as it is now")
            if last is not None and snapshot.sequence_number <= last.sequence_number:
                raise TableChangeRefused(
                    f"{self.label}: main no longer descends from snapshot {commit}, the one "
                    "read last (main was rolled back or replaced); start afresh (delete the "
                    "checkpoint folder) to read the table as it is now")
            chain.append(sid)
            sid = snapshot.parent_snapshot_id
            if sid is None and commit is None:
                break
        chain.reverse()
        return chain

    # -- units -----------------------------------------------------------------------------
    def unit(self, commit: int, whole: bool) -> Unit:
        snapshot = self._snapshot(commit, AT_POSITION)
        if whole:
            return self._whole(snapshot)
        return self._added(snapshot)

    def _whole(self, snapshot: Any) -> Unit:
        """Every live data file of ``snapshot`` (delete files attached)."""
        sequence: dict[str, int] = {}
        for manifest in snapshot.manifests(self.table.io):
            for entry in manifest.fetch_manifest_entry(self.table.io, discard_deleted=True):
                sequence[entry.data_file.file_path] = int(entry.sequence_number or 0)
        tasks = list(self.table.scan(snapshot_id=snapshot.snapshot_id).plan_files())
        tasks.sort(key=lambda t: (sequence.get(t.file.file_path, 0), t.file.file_path))
        return Unit(snapshot.snapshot_id, True, tasks, len(tasks), snapshot.schema_id)

    def _added(self, snapshot: Any) -> Unit:
        """The data files ``snapshot`` appended; a refusal when it also removed rows."""
        from pyiceberg.manifest import DataFileContent, ManifestEntryStatus
        from pyiceberg.table import FileScanTask
        from pyiceberg.table.snapshots import Operation

        sid = snapshot.snapshot_id
        added, removed, deletes = [], 0, 0
        for manifest in snapshot.manifests(self.table.io):
            if manifest.added_snapshot_id != sid:
                continue
            for entry in manifest.fetch_manifest_entry(self.table.io, discard_deleted=False):
                if entry.snapshot_id != sid:
                    continue
                if entry.data_file.content != DataFileContent.DATA:
                    deletes += entry.status == ManifestEntryStatus.ADDED
                elif entry.status == ManifestEntryStatus.ADDED:
                    added.append(entry.data_file)
                elif entry.status == ManifestEntryStatus.DELETED:
                    removed += 1
        added.sort(key=lambda f: f.file_path)
        operation = snapshot.summary.operation if snapshot.summary else None
        op = getattr(operation, "value", operation)
        if operation == Operation.REPLACE:  # compaction: the same rows, rewritten
            return Unit(sid, False, [], len(added), snapshot.schema_id)
        if removed or deletes:
            what = [f"removes {removed} data file(s)" if removed else "",
                    f"adds {deletes} delete file(s)" if deletes else ""]
            refusal = (f"snapshot {sid} ({op}) " + " and ".join(w for w in what if w)
                       + ", so it changes or deletes rows that may have been read")
            return Unit(sid, False, [], len(added), snapshot.schema_id, refusal=refusal)
        return Unit(sid, False, [FileScanTask(f) for f in added], len(added),
                    snapshot.schema_id)

    def read_file(self, unit: Unit, file: Any) -> pl.DataFrame:
        from pyiceberg.expressions import AlwaysTrue
        from pyiceberg.io.pyarrow import ArrowScan

        metadata = self.table.metadata
        schema = next((s for s in metadata.schemas if s.schema_id == unit.schema_key),
                      None) or self.table.schema()
        try:
            arrow = ArrowScan(metadata, self.table.io, schema, AlwaysTrue()).to_table([file])
        except OSError as e:
            raise ReaderError(f"{self.label}: data file {file.file.file_path} of snapshot "
                              f"{unit.commit} cannot be read: {e}") from e
        frame = pl.from_arrow(arrow)
        return frame if isinstance(frame, pl.DataFrame) else frame.to_frame()

    # -- checkpoints -------------------------------------------------------------------------
    def checkpoint_state(self) -> dict[str, Any] | None:
        """The table's identity: a table dropped and created again under the same name is
        another table, whose snapshots the checkpoint's position does not name."""
        if self.table is None:
            return None
        return {"table": self.spec.table, "uuid": str(self.table.metadata.table_uuid)}

    def verify(self, state: dict[str, Any], ended: bool) -> None:
        if not state or "uuid" not in state:
            return
        now = None if self.table is None else str(self.table.metadata.table_uuid)
        if now != state["uuid"]:
            raise TableChangeRefused(
                f"{self.label} is not the table the checkpoint read (table uuid "
                f"{state['uuid']}, now {now or 'no table'}: dropped and created again?); "
                "start afresh (delete the checkpoint folder) to read it from its start")

    def close(self) -> None:
        super().close()
        with contextlib.suppress(Exception):
            if hasattr(self.catalog, "engine"):
                self.catalog.engine.dispose()
