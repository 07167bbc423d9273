"""The Delta Lake table source: the table's versions, read incrementally.

Units (``table_source.py``) are versions in order. A version's files are the ``add``
actions of its commit in the Delta log (``_delta_log/<version>.json``), by path; a
``whole`` unit is every file of the table at that version, by path. A version that
removes files with ``dataChange: true`` (an overwrite, a delete, a merge, an update) or
adds deletion vectors is not an append: refused, or passed over with ``on_non_append:
skip``; a version whose actions all have ``dataChange: false`` (``optimize``: the same
rows in new files) is passed over.

Rows are read with pyarrow through the version's own dataset (deltalake's
``to_pyarrow_dataset``), so partition columns (kept in paths, not in the files) and the
version's schema come with them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import polars as pl

from surestream.connectors.readers import ReaderError
from surestream.connectors.tables.table_source import (
    IncrementalTableReader,
    TableChangeRefused,
    Unit,
)
from surestream.model.spec import DeltaSource


def table_uri(path: str, resolve: Callable[[str], Path]) -> str:
    """A folder relative to the spec's folder, or a URI as given (as the Delta sink)."""
    return path if "://" in path else str(resolve(path).resolve())


def _commit_order(table: Any, paths: dict[str, Any]) -> list[str]:
    """The files of a version in the order they were added, as near as the log says: by
    the add action's ``modificationTime`` (written with each commit), then path -- the
    same order at every read, close to what reading version by version gives."""
    actions = table.get_add_actions(flatten=True)  # an Arrow table (arro3)
    names = [unquote(str(p)) for p in actions.column("path").to_pylist()]
    times = actions.column("modification_time").to_pylist()  # epoch ms
    when = {p: int(t or 0) for p, t in zip(names, times, strict=True)}
    return sorted(paths, key=lambda p: (when.get(p, 0), p))


class DeltaSourceReader(IncrementalTableReader):
    """One Delta table as one input partition; position ``[version, file, row, whole]``."""

    def __init__(self, name: str, spec: DeltaSource, resolve: Callable[[str], Path]) -> None:
        super().__init__(spec.path, f"source {name!r}: Delta table {spec.path}",
                         live=spec.live, poll_interval_ms=spec.poll_interval_ms,
                         on_non_append=spec.on_non_append)
        self.spec = spec
        self.uri = table_uri(spec.path, resolve)
        self.table: Any = None
        self._datasets: dict[int, Any] = {}  # version -> (its table, its pyarrow dataset)
        self.refresh()
        if self.table is None and not spec.live:
            raise ReaderError(f"Delta table {self.uri} does not exist (a bounded read needs "
                              "it; a live source waits for it)")
        self.start_at(spec.start)

    # -- the table -------------------------------------------------------------------------
    def refresh(self) -> None:
        from deltalake import DeltaTable

        if self.table is not None:
            self.table.update_incremental()
        elif DeltaTable.is_deltatable(self.uri, self.spec.storage_options or None):
            self.table = DeltaTable(self.uri, storage_options=self.spec.storage_options or None)

    def head(self) -> int | None:
        return None if self.table is None else int(self.table.version())

    def commits_after(self, commit: int | None, head: int) -> list[int]:
        first = 0 if commit is None else int(commit) + 1
        return list(range(first, int(head) + 1))

    # -- units -----------------------------------------------------------------------------
    def _dataset(self, version: int) -> Any:
        """The pyarrow dataset of the table at ``version`` (its files, partition columns
        and schema then); a version whose log is gone is refused, named."""
        from deltalake import DeltaTable

        if version not in self._datasets:
            try:
                table = DeltaTable(self.uri, version=version,
                                   storage_options=self.spec.storage_options or None)
                self._datasets = {version: (table, table.to_pyarrow_dataset())}
            except Exception as e:  # deltalake raises its own errors for a missing version
                raise TableChangeRefused(
                    f"{self.label}: version {version} cannot be loaded ({e}): its log entry "
                    "was removed (log retention, vacuum)? Start afresh (delete the "
                    "checkpoint folder) to read the table as it is now") from e
        return self._datasets[version]

    def _actions(self, version: int) -> list[dict[str, Any]]:
        """The actions of ``version``'s commit, from the Delta log."""
        from deltalake.fs import DeltaStorageHandler

        handler = DeltaStorageHandler(self.table.table_uri, self.spec.storage_options or None)
        log = f"_delta_log/{int(version):020d}.json"
        try:
            with handler.open_input_file(log) as f:
                text = f.read().decode()
        except (OSError, FileNotFoundError) as e:
            raise TableChangeRefused(
                f"{self.label}: the log entry of version {version} ({log}) is gone (log "
                "retention), so what it added cannot be read incrementally; start afresh "
                "(delete the checkpoint folder) to read the table as it is now") from e
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def unit(self, commit: int, whole: bool) -> Unit:
        version = int(commit)
        table, dataset = self._dataset(version)
        by_path = {unquote(f.path): f for f in dataset.get_fragments()}
        key = str(dataset.schema)
        if whole:
            return Unit(version, True, [by_path[p] for p in _commit_order(table, by_path)],
                        len(by_path), key)
        actions = self._actions(version)
        adds = [a["add"] for a in actions if "add" in a]
        removes = [a["remove"] for a in actions if "remove" in a]
        added = sorted(unquote(a["path"]) for a in adds if a.get("dataChange", True))
        operation = next((a["commitInfo"].get("operation") for a in actions
                          if "commitInfo" in a), None) or "unknown"
        changing = [r for r in removes if r.get("dataChange", True)]
        vectors = [a for a in adds if a.get("deletionVector")]
        if not added and not changing and adds:  # optimize: the same rows rewritten
            return Unit(version, False, [], 0, key)
        if changing or vectors:
            what = [f"removes {len(changing)} file(s)" if changing else "",
                    f"adds {len(vectors)} deletion vector(s)" if vectors else ""]
            refusal = (f"version {version} ({operation}) " + " and ".join(w for w in what if w)
                       + ", so it changes or deletes rows that may have been read")
            return Unit(version, False, [], len(added), key, refusal=refusal)
        missing = [p for p in added if p not in by_path]
        if missing:
            raise ReaderError(f"{self.label}: version {version} adds {missing[0]}, which its "
                              "own snapshot does not list")
        return Unit(version, False, [by_path[p] for p in added], len(added), key)

    def read_file(self, unit: Unit, file: Any) -> pl.DataFrame:
        _, dataset = self._dataset(int(unit.commit))
        try:
            arrow = file.to_table(schema=dataset.schema)
        except OSError as e:
            raise ReaderError(f"{self.label}: data file {file.path} of version "
                              f"{unit.commit} cannot be read (vacuumed?): {e}") from e
        frame = pl.from_arrow(arrow)
        return frame if isinstance(frame, pl.DataFrame) else frame.to_frame()

    # -- checkpoints -------------------------------------------------------------------------
    def checkpoint_state(self) -> dict[str, Any] | None:
        """The table's id: a table created again in the same folder is another table."""
        if self.table is None:
            return None
        return {"table": self.uri, "id": self.table.metadata().id}

    def verify(self, state: dict[str, Any], ended: bool) -> None:
        if not state or "id" not in state:
            return
        now = None if self.table is None else self.table.metadata().id
        if now != state["id"]:
            raise TableChangeRefused(
                f"{self.label} is not the table the checkpoint read (table id {state['id']}, "
                f"now {now or 'no table'}: deleted and created again?); start afresh "
                "(delete the checkpoint folder) to read it from its start")

    def close(self) -> None:
        super().close()
        self._datasets = {}
