"""Exactly-once Iceberg table sink: write-audit-publish, one staged snapshot per checkpoint.

``pre_commit(n)`` writes checkpoint n's records as one snapshot on a branch of their own,
``surestream-<pipeline>-<output>-cp<n>``, made from ``main``'s current snapshot; the
snapshot's summary carries ``surestream.checkpoint.<pipeline>/<output> = n`` and the
records this output has committed to the table up to and including n. The staged data is
then read back from the snapshot's own data files and audited (``iceberg_audit.py``).
``commit(n)`` publishes it: ``main`` is moved to the staged snapshot and the branch is
removed, in one catalog commit -- but only after checking that ``main``'s current
snapshot is an ancestor of the staged one (pyiceberg's ``set_current_snapshot`` does not
check): a snapshot someone else committed since would otherwise vanish from ``main``.

Whether checkpoint n landed is read from the table, never remembered: walking ``main``'s
ancestry from its current snapshot, the first snapshot carrying this output's marker
names the newest checkpoint published (checkpoints publish in order, so every older one
has landed too). Maintenance keeps that marker (``iceberg_maintenance.py`` copies it into
a compaction's snapshot; expiry keeps the current snapshot), so recovery needs no old
snapshot. A newer checkpoint than the restored one on ``main`` -- the newer checkpoint
file is gone -- is refused, as is a table that lost records committed before the
restored checkpoint (dropped, replaced).

A run with no checkpoint (``open(fresh=True)``) empties the table in a snapshot whose
marker is checkpoint 0: like every output, it is rewritten by a fresh run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from surestream.connectors.sink_protocol import (
    Guarantee,
    Rejection,
    SinkRecoveryError,
    blank_refused_columns,
    reject_rows,
    type_check,
)
from surestream.connectors.tables.iceberg_audit import audit
from surestream.connectors.tables.iceberg_catalog import create_table, open_catalog
from surestream.connectors.tables.iceberg_types import (
    arrow_table,
    conflict_check,
    iceberg_frame,
    refused_by_iceberg,
    value_checks,
)
from surestream.model.spec import IcebergSink

CHECKPOINT_KEY = "surestream.checkpoint."
RECORDS_KEY = "surestream.records."
AUDIT_COLUMN = "_audit_failures"


class AuditFailedError(RuntimeError):
    """A checkpoint's staged data broke the output's audit rules (``on_audit_failure:
    fail``): nothing of it is published, and the run stops (exit 1, a run-time failure: a
    restart replays the same data and stops again until the data or the rules change)."""


def marker_keys(sink_id: str) -> tuple[str, str]:
    """The snapshot summary keys of one output's checkpoint marker and record count."""
    return CHECKPOINT_KEY + sink_id, RECORDS_KEY + sink_id


def ancestry(table: Any, snapshot_id: int | None) -> Any:
    """Snapshots from ``snapshot_id`` back through its parents (while they are kept)."""
    while snapshot_id is not None:
        snapshot = table.snapshot_by_id(snapshot_id)
        if snapshot is None:
            return
        yield snapshot
        snapshot_id = snapshot.parent_snapshot_id


def published_marker(table: Any, sink_id: str) -> tuple[int, int] | None:
    """(newest checkpoint published, records committed by then) by output ``sink_id`` on
    ``main``, or None when no snapshot of ``main``'s ancestry carries its marker."""
    cp_key, rec_key = marker_keys(sink_id)
    current = table.current_snapshot()
    for snapshot in ancestry(table, current.snapshot_id if current else None):
        props = snapshot.summary.additional_properties if snapshot.summary else {}
        if cp_key in props:
            return int(props[cp_key]), int(props.get(rec_key, 0))
    return None


class _TableWriter:
    """One table this output writes (its target, or its quarantine table): staging on a
    branch, publishing, and reading the marker back."""

    def __init__(self, catalog: Any, identifier: str, sink_id: str, spec: IcebergSink) -> None:
        self.catalog, self.identifier, self.sink_id, self.spec = catalog, identifier, sink_id, spec
        self.branch_prefix = "surestream-" + sink_id.replace("/", "-") + "-cp"
        self.table: Any = None

    @property
    def label(self) -> str:
        return f"Iceberg table {self.identifier}"

    def load(self) -> Any:
        from pyiceberg.exceptions import NoSuchTableError

        try:
            self.table = self.catalog.load_table(self.identifier)
        except NoSuchTableError:
            self.table = None
        return self.table

    def schema(self) -> pa.Schema | None:
        return self.table.schema().as_arrow() if self.table is not None else None

    def marker(self) -> tuple[int, int] | None:
        return published_marker(self.table, self.sink_id) if self.table is not None else None

    def summary(self, checkpoint_id: int, records: int) -> dict[str, str]:
        cp_key, rec_key = marker_keys(self.sink_id)
        return {cp_key: str(checkpoint_id), rec_key: str(records)}

    def branch(self, checkpoint_id: int) -> str:
        return f"{self.branch_prefix}{int(checkpoint_id)}"

    def staged_branches(self) -> dict[int, str]:
        """checkpoint id -> branch, for this output's staged (unpublished) checkpoints."""
        if self.table is None:
            return {}
        found = {}
        for name in self.table.refs():
            tail = name[len(self.branch_prefix):]
            if name.startswith(self.branch_prefix) and tail.isdigit():
                found[int(tail)] = name
        return found

    def drop_branches(self, keep: Callable[[int], bool]) -> None:
        doomed = [b for n, b in self.staged_branches().items() if not keep(n)]
        if doomed:
            manage = self.table.manage_snapshots()
            for name in doomed:
                manage = manage.remove_branch(name)
            manage.commit()
            self.load()

    def empty(self) -> None:
        """A fresh run: remove staged branches and every row, in a snapshot marked
        checkpoint 0 (history keeps the earlier snapshots until they expire)."""
        if self.load() is None:
            return
        self.drop_branches(keep=lambda n: False)
        self.table.overwrite(self.table.schema().as_arrow().empty_table(),
                             snapshot_properties=self.summary(0, 0))
        self.load()

    def stage(self, data: pa.Table, checkpoint_id: int, records: int) -> int:
        """Write ``data`` as one snapshot on checkpoint ``checkpoint_id``'s branch, made
        from ``main``'s current snapshot (new columns added to the table's schema in the
        same catalog commit); returns the staged snapshot's id."""
        from pyiceberg.table.update.snapshot import ManageSnapshots

        summary = self.summary(checkpoint_id, records)
        if self.load() is None:
            properties = {**self.spec.options, "write.wap.enabled": "true"} \
                if self.spec.write_audit_publish else dict(self.spec.options)
            self.table = create_table(self.catalog, self.identifier, data.schema,
                                      self.spec.partition_by, self.spec.sort_by,
                                      properties, self.summary(0, 0))
        branch = self.branch(checkpoint_id)
        if self.table.current_snapshot() is None:  # made elsewhere, never written: a branch
            self.table.append(data.schema.empty_table(),  # needs a snapshot to start from
                              snapshot_properties=self.summary(0, 0))
            self.load()
        base = self.table.current_snapshot()
        with self.table.transaction() as tx:
            missing = [f for f in data.schema if f.name not in self.table.schema().column_names]
            if missing:
                with tx.update_schema() as update:  # additive only: new columns, never drops
                    update.union_by_name(pa.schema(missing))
            manage = ManageSnapshots(tx)
            if branch in self.table.refs():
                manage = manage.remove_branch(branch)  # a torn earlier attempt at n
            manage.create_branch(base.snapshot_id, branch).commit()
            tx.append(data, snapshot_properties=summary, branch=branch)
        self.load()
        return int(self.table.snapshot_by_name(branch).snapshot_id)

    def staged_data(self, snapshot_id: int) -> pl.DataFrame:
        """The rows the staged snapshot added, read from its own data files."""
        table = self.table
        snapshot = table.snapshot_by_id(snapshot_id)
        frames = []
        for manifest in snapshot.manifests(table.io):
            if manifest.added_snapshot_id != snapshot_id:
                continue
            for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
                if entry.snapshot_id == snapshot_id:
                    with table.io.new_input(entry.data_file.file_path).open() as f:
                        frames.append(pl.from_arrow(pq.read_table(f)))
        return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()

    def publish(self, checkpoint_id: int, snapshot_id: int) -> None:
        """Move ``main`` to the staged snapshot, if ``main`` is still one of its ancestors;
        nothing when checkpoint ``checkpoint_id`` is published already."""
        self.load()
        if self.table is None:
            raise SinkRecoveryError(
                f"{self.label} is gone (dropped by something else) with checkpoint "
                f"{checkpoint_id} staged in it; restore it, or delete the checkpoint folder "
                "to start afresh (which rewrites every output)")
        landed = self.marker()
        if landed is not None and landed[0] >= checkpoint_id:
            self.drop_branches(keep=lambda n: n > checkpoint_id)
            return
        staged = self.table.snapshot_by_id(snapshot_id)
        if staged is None:
            raise SinkRecoveryError(
                f"{self.label}: the snapshot {snapshot_id} staged for checkpoint "
                f"{checkpoint_id} is gone (its branch {self.branch(checkpoint_id)} was "
                "removed or the snapshot expired) and it was never published; restore the "
                "table, or delete the checkpoint folder to start afresh")
        current = self.table.current_snapshot()
        lineage = {s.snapshot_id for s in ancestry(self.table, snapshot_id)}
        if current is not None and current.snapshot_id not in lineage:
            raise SinkRecoveryError(
                f"{self.label}: another writer committed snapshot {current.snapshot_id} to "
                f"main after checkpoint {checkpoint_id} was staged (as snapshot "
                f"{snapshot_id} on top of {staged.parent_snapshot_id}); publishing would "
                "drop its data, so nothing was published. Stop the other writer, then roll "
                f"main back to snapshot {staged.parent_snapshot_id} to publish this run's "
                "output, or delete the checkpoint folder to start afresh")
        manage = self.table.manage_snapshots().set_current_snapshot(snapshot_id)
        for n, name in self.staged_branches().items():
            if n <= checkpoint_id:
                manage = manage.remove_branch(name)
        manage.commit()
        self.load()


class IcebergTableSink:
    """An Iceberg output (``IcebergSink``), exactly once by write-audit-publish."""

    guarantee: Guarantee = "exactly_once"

    def __init__(self, spec: IcebergSink, resolve: Callable[[str], Path], pipeline: str,
                 tag: str) -> None:
        self.spec, self.resolve = spec, resolve
        self.sink_id = f"{pipeline}/{tag}"
        self.table = spec.table
        self.records = 0
        self._frames: list[pl.DataFrame] = []
        self._catalog: Any = None
        self.main: _TableWriter | None = None
        self.quarantine: _TableWriter | None = None

    @property
    def output(self) -> str:
        return f"Iceberg table {self.spec.table}"

    def _writers(self) -> list[_TableWriter]:
        return [w for w in (self.main, self.quarantine) if w is not None]

    def open(self, fresh: bool) -> None:
        self._catalog = open_catalog(self.spec.catalog, self.resolve)
        self.main = _TableWriter(self._catalog, self.spec.table, self.sink_id, self.spec)
        if self.spec.quarantine_table is not None:
            self.quarantine = _TableWriter(self._catalog, self.spec.quarantine_table,
                                           self.sink_id, self.spec)
        for writer in self._writers():
            if fresh:
                writer.empty()
            else:
                writer.load()
        self.records = self._committed()

    def _committed(self) -> int:
        return sum((w.marker() or (0, 0))[1] for w in self._writers())

    def reject(self, data: pl.DataFrame) -> Rejection | None:
        if not data.height:
            return None
        checks = [type_check(refused_by_iceberg, self.output, "convert it to a plain type first"),
                  *value_checks(self.output),
                  conflict_check(self.output, self.main.schema() if self.main else None)]
        return reject_rows(data, checks)

    def write(self, data: pl.DataFrame) -> None:
        if data.height:
            self._frames.append(blank_refused_columns(data, refused_by_iceberg))

    def pre_commit(self, checkpoint_id: int) -> dict[str, Any]:
        """Stage the open checkpoint's records as a snapshot on its branch and audit it."""
        frames, self._frames = self._frames, []
        held = {w.identifier: (w.marker() or (0, 0))[1] for w in self._writers()}
        rows = sum(f.height for f in frames)
        committable: dict[str, Any] = {"checkpoint": checkpoint_id, "rows": rows,
                                       "held": held}
        if not rows:
            return committable
        assert self.main is not None
        data = pl.concat([iceberg_frame(f) for f in frames], how="diagonal_relaxed")
        arrow = arrow_table(data, self.main.schema())
        snapshot = self.main.stage(arrow, checkpoint_id, held[self.main.identifier] + rows)
        target = self.main
        failures = audit(self.main.staged_data(snapshot), self.spec.audit) \
            if self.spec.audit is not None and self.spec.write_audit_publish else []
        if failures:
            if self.spec.on_audit_failure == "fail" or self.quarantine is None:
                raise AuditFailedError(
                    f"{self.output}: checkpoint {checkpoint_id}'s {rows:,} records failed "
                    f"the audit, so nothing was published (the staged snapshot {snapshot} "
                    f"stays on branch {self.main.branch(checkpoint_id)} for inspection): "
                    + "; ".join(failures) + ". Fix the data or the rules and run again, or "
                    "set on_audit_failure: quarantine")
            self.main.drop_branches(keep=lambda n: n != checkpoint_id)
            target = self.quarantine
            flagged = data.with_columns(pl.lit("; ".join(failures)).alias(AUDIT_COLUMN))
            snapshot = target.stage(arrow_table(flagged, target.schema()), checkpoint_id,
                                    held[target.identifier] + rows)
        committable.update(table=target.identifier, snapshot=snapshot, audit=failures)
        return committable

    def _writer(self, identifier: str) -> _TableWriter:
        for writer in self._writers():
            if writer.identifier == identifier:
                return writer
        raise SinkRecoveryError(
            f"{self.output}: checkpoint staged its records in {identifier}, which this output "
            "no longer names (table or quarantine_table changed); restore the spec, or "
            "delete the checkpoint folder to start afresh")

    def commit(self, committable: dict[str, Any]) -> None:
        if not committable.get("rows"):
            return
        writer = self._writer(committable["table"])
        writer.publish(int(committable["checkpoint"]), int(committable["snapshot"]))
        self.records = self._committed()

    def recover(self, committable: dict[str, Any] | None, checkpoint_id: int) -> None:
        """Back to checkpoint ``checkpoint_id``: refuse a table holding a newer one, or
        fewer records than were committed before it; drop newer staged branches; publish
        its own staged snapshot if it has not landed."""
        for writer in self._writers():
            landed = writer.marker()
            if landed is not None and landed[0] > checkpoint_id:
                raise SinkRecoveryError(
                    f"{writer.label} already holds checkpoint {landed[0]} of "
                    f"{self.sink_id}, newer than the restored checkpoint {checkpoint_id} "
                    "(the newer checkpoint file is corrupt or was removed); restore it, or "
                    "start afresh by deleting the checkpoint directory")
            held = (committable or {}).get("held", {}).get(writer.identifier)
            if held is None:
                continue
            now = 0 if landed is None else landed[1]
            if landed is not None and landed[0] == checkpoint_id \
                    and committable.get("table") == writer.identifier:
                now -= int(committable["rows"])  # n itself landed: count what was before
            if now != held:
                why = ("was dropped or replaced by something else" if now < held
                       else "was written by another run since")
                raise SinkRecoveryError(
                    f"{writer.label}: checkpoint {checkpoint_id} was taken after {held:,} "
                    f"committed records of {self.sink_id}, but the table now holds {now:,}: "
                    f"it {why}; restore it, or delete the checkpoint folder to start afresh "
                    "(which rewrites every output)")
        for writer in self._writers():
            writer.drop_branches(keep=lambda n: n <= checkpoint_id)
        self._frames = []
        if committable is not None:
            self.commit(committable)
        self.records = self._committed()

    def committed_reader(self) -> Callable[[], pl.DataFrame]:
        """Reads the target table as this run left it (its current snapshot now), so a
        later run's commits do not show up as this run's records."""
        spec, resolve = self.spec, self.resolve
        current = self.main.table.current_snapshot() if self.main and self.main.table else None
        snapshot_id = current.snapshot_id if current is not None else None

        def read() -> pl.DataFrame:
            if snapshot_id is None:
                return pl.DataFrame()
            table = open_catalog(spec.catalog, resolve).load_table(spec.table)
            return pl.from_arrow(table.scan(snapshot_id=snapshot_id).to_arrow())

        return read

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self._catalog is not None and hasattr(self._catalog, "engine"):
                self._catalog.engine.dispose()
        self._catalog = None
