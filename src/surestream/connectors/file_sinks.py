"""Exactly-once file sinks.

JSON lines and CSV: one output file, appended to only at commit. Records of the open
checkpoint go to a pending file; ``pre_commit(n)`` renames it to ``part-<n>`` in the hidden
staging folder; ``commit`` truncates the output to the length the commit log last
recorded (removing any torn append), appends the part, fsyncs, and records
``(n, new length)`` in the commit log (written atomically). A checkpoint whose id is in the
log has landed, so commit is idempotent, and the log's history lets recovery roll the file
back to any retained checkpoint.

Parquet: ``path`` is a dataset folder of part files ``part-<n>.parquet`` (one per
checkpoint with data), staged in ``.staging/`` and renamed in at commit; parts newer than a
restored checkpoint are deleted. The folder belongs to the output alone: one that holds
anything but its part files, partition folders and ``.staging`` is refused before anything
is deleted, and a fresh start deletes those, never the folder.

Durability (power loss, not only a crash): every step that returns has fsynced what it
did -- the part and its folder at pre-commit; the output file, then the commit log's folder
after its rename, at commit; the truncation and the rolled-back log at recovery and at a
fresh start; every folder created on the way into its parent (``makedirs_durable``).

What each format cannot hold is said by ``reject`` (sink_protocol.py) before ``write``: a
value is never changed to fit (polars would write a NaN as null in JSON, and cannot write a
nested value to CSV at all).
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from surestream.connectors.committables import (
    check_line_committable,
    check_parquet_committable,
    line_part_name,
    parquet_part_name,
)
from surestream.connectors.sink_protocol import (
    ColumnCheck,
    Guarantee,
    Rejection,
    SinkRecoveryError,
    blank_refused_columns,
    contains_type,
    non_finite_check,
    refuses_objects,
    reject_rows,
    shown,
    type_check,
)
from surestream.io import fsync_dir, makedirs_durable, write_atomic

LOG_HISTORY = 64  # commits remembered for roll-back (more than any checkpoint retention)
_LINE_PART = re.compile(r"^part-\d+$")  # a line file's staged part (``pending`` is not one)


# -- what each format can hold (sink_protocol: reject before write) ----------------------
def refused_by_csv(dtype: pl.DataType) -> str | None:
    """CSV cells hold flat text: no nested values (never turned into some text form on the
    quiet), no opaque objects, no binary data, no durations (polars cannot write them)."""
    if dtype.is_nested():
        return "a nested value"
    if dtype == pl.Object:
        return "an opaque Python object"
    if dtype == pl.Binary:
        return "binary data"
    if dtype == pl.Duration:
        return "a duration"
    return None


def refused_by_json(dtype: pl.DataType) -> str | None:
    """JSON holds nested values, but not opaque objects or binary data (at any depth)."""
    if contains_type(dtype, lambda d: d == pl.Binary):
        return "binary data"
    return refuses_objects(dtype)


CSV_TYPE_ADVICE = ("write this output as jsonl or parquet, or turn the value into flat "
                   "columns or text with a with_columns step")
JSON_TYPE_ADVICE = "turn it into text or numbers before this output, or write parquet"
JSON_FLOAT_ADVICE = ("JSON has no NaN or infinity (it would become null); map it to a "
                      "value or null with a with_columns step, or write parquet")


class LineFileSink:
    """JSON lines (``format: jsonl``) or CSV, exactly once into a single file."""

    guarantee: Guarantee = "exactly_once"

    def __init__(self, path: Path, fmt: str = "jsonl") -> None:
        self.path = path
        self.fmt = fmt
        self.staging = path.parent / f".{path.name}.staging"
        self.log_path = path.parent / f".{path.name}.commits"
        self.records = 0
        self._pending: io.BufferedWriter | None = None
        self._pending_rows = 0
        self._columns: list[str] | None = None

    # -- the commit log ------------------------------------------------------------------
    def _log(self) -> list[dict[str, Any]]:
        try:
            return json.loads(self.log_path.read_text())["commits"]
        except (OSError, ValueError, KeyError):
            return []

    def _write_log(self, commits: list[dict[str, Any]]) -> None:
        """Replace the log atomically and durably: the rename is only durable once the
        folder is fsynced (without it, a power loss could bring back the previous log, and
        the checkpoint after this commit would then find the file "rewritten")."""
        write_atomic(self.log_path, json.dumps({"commits": commits[-LOG_HISTORY:]}).encode())
        fsync_dir(self.log_path.parent)

    def _committed_length(self, commits: list[dict[str, Any]]) -> int:
        return commits[-1]["length"] if commits else 0

    def _check_holds_commits(self, commits: list[dict[str, Any]]) -> None:
        """Refuse a file shorter than its committed length: it was deleted or truncated by
        something else, and "truncating" it up to that length would fill it with NUL bytes
        in place of the committed records -- a silent loss with exit 0."""
        length = self._committed_length(commits)
        size = self.path.stat().st_size if self.path.exists() else 0
        if size < length:
            raise SinkRecoveryError(
                f"{self.path} holds {size:,} bytes but checkpoint {commits[-1]['checkpoint']} "
                f"committed {length:,}: it was deleted or truncated by something else; "
                "restore it, or delete the checkpoint folder to start afresh (which rewrites "
                "every output)")

    def _describe(self) -> str:
        return f"{'CSV' if self.fmt == 'csv' else 'JSON lines'} file {self.path}"

    # -- protocol -------------------------------------------------------------------------
    def open(self, fresh: bool) -> None:
        makedirs_durable(self.path.parent)
        if fresh:
            # durable before the new run's first checkpoint can be, else a power loss could
            # pair that checkpoint with the previous run's log and file: the truncation by
            # fsync, the log's removal by the fsync of the folder that making the staging
            # folder anew does below
            shutil.rmtree(self.staging, ignore_errors=True)
            self.log_path.unlink(missing_ok=True)
            with open(self.path, "wb") as f:
                os.fsync(f.fileno())
        makedirs_durable(self.staging)
        self._start_pending()

    def _refuses(self, dtype: pl.DataType) -> str | None:
        return refused_by_csv(dtype) if self.fmt == "csv" else refused_by_json(dtype)

    def reject(self, data: pl.DataFrame) -> Rejection | None:
        """Values this file cannot hold as they are: types the format has no place for, a
        NaN or infinity in JSON (polars would write null), and in CSV a value in a column
        the file's header (fixed by the first records written) does not have."""
        if not data.height:
            return None
        output = self._describe()
        advice = CSV_TYPE_ADVICE if self.fmt == "csv" else JSON_TYPE_ADVICE
        checks = [type_check(self._refuses, output, advice)]
        if self.fmt == "jsonl":
            checks.append(non_finite_check(output, JSON_FLOAT_ADVICE))
        else:
            checks.append(self._header_check(output, self._header(data)))
        return reject_rows(data, checks)

    def _header(self, data: pl.DataFrame) -> list[str]:
        """The CSV header: the file's own, or the columns of the first records written."""
        if self._columns is None:
            self._columns = self._header_columns() or data.columns
        return self._columns

    @staticmethod
    def _header_check(output: str, header: list[str]) -> ColumnCheck:
        def check(name: str, series: pl.Series) -> tuple[np.ndarray, Any] | None:
            if name in header or series.null_count() == len(series):
                return None
            return series.is_not_null().to_numpy(), lambda value: (
                f"{output} has no column {name!r} (its header is {header}): {shown(value)}; "
                "a CSV file has one header: write this output as jsonl or parquet to keep "
                "every column")
        return check

    def _start_pending(self) -> None:
        self._pending = open(self.staging / "pending", "wb")  # noqa: SIM115 - closed at pre_commit
        self._pending_rows = 0

    def write(self, data: pl.DataFrame) -> None:
        if not data.height:
            return
        buf = io.BytesIO()
        data = blank_refused_columns(data, self._refuses)  # null wherever reject() passed
        if self.fmt == "jsonl":
            data.write_ndjson(buf)
        else:
            # every row has the header's fields, in its order (a missing one is empty)
            data.select([pl.col(c) if c in data.columns else pl.lit(None).alias(c)
                         for c in self._header(data)]).write_csv(buf, include_header=False)
        self._pending.write(buf.getvalue())
        self._pending_rows += data.height

    def _header_columns(self) -> list[str] | None:
        try:
            with open(self.path, "rb") as f:
                line = f.readline().decode().strip()
        except OSError:
            return None
        return line.split(",") if line else None

    def pre_commit(self, checkpoint_id: int) -> dict[str, Any]:
        self._pending.flush()
        os.fsync(self._pending.fileno())
        self._pending.close()
        part = None
        if self._pending_rows:
            part = line_part_name(checkpoint_id)
            os.replace(self.staging / "pending", self.staging / part)
            fsync_dir(self.staging)
        rows = self._pending_rows
        self._start_pending()
        # "offset": the committed length this checkpoint's output goes after; recovery
        # checks the file still holds that history (and not another run's output)
        committable = {"checkpoint": checkpoint_id, "part": part, "rows": rows,
                       "offset": self._committed_length(self._log())}
        if self.fmt == "csv":
            # the header, for a restarted sink that finishes this commit without having
            # seen a record (a crash between pre_commit and commit of the first data)
            committable["columns"] = self._columns
        return committable

    def commit(self, committable: dict[str, Any]) -> None:
        check_line_committable(committable, self._describe())  # before any file is touched
        n = committable["checkpoint"]
        commits = self._log()
        if any(c["checkpoint"] == n for c in commits):
            self._drop_part(committable)  # landed already: commit is idempotent
            return
        length = self._committed_length(commits)
        self._check_holds_commits(commits)
        part = committable["part"]
        if part is not None and not (self.staging / part).exists():
            raise SinkRecoveryError(
                f"{self.path}: the output of checkpoint {n} is neither in the file (its "
                f"commit log has no entry for it) nor staged in {self.staging}")
        with open(self.path, "r+b" if self.path.exists() else "w+b") as out:
            out.truncate(length)  # a torn earlier append never stays
            out.seek(length)
            if part is not None:
                columns = committable.get("columns") or self._columns
                if self.fmt == "csv" and length == 0 and columns:
                    out.write((",".join(columns) + "\n").encode())
                with open(self.staging / part, "rb") as f:
                    shutil.copyfileobj(f, out)
            out.flush()
            os.fsync(out.fileno())
            length = out.tell()
        total = (commits[-1]["records"] if commits else 0) + committable["rows"]
        self._write_log([*commits, {"checkpoint": n, "length": length, "records": total}])
        self.records = total
        self._drop_part(committable)

    def _drop_part(self, committable: dict[str, Any]) -> None:
        if committable.get("part"):
            (self.staging / committable["part"]).unlink(missing_ok=True)

    def recover(self, committable: dict[str, Any] | None, checkpoint_id: int) -> None:
        """Back to checkpoint ``checkpoint_id``: roll back newer commits, commit its own.
        Refused, before anything changes, when the checkpoint's commit record names what
        this sink never writes, or the file no longer holds what was committed."""
        if committable is not None:
            check_line_committable(committable, self._describe(), checkpoint_id)
        commits = [c for c in self._log() if c["checkpoint"] <= checkpoint_id]
        if committable is not None and "offset" in committable:
            before = [c for c in commits if c["checkpoint"] < committable["checkpoint"]]
            if not before and committable["offset"] and not self.log_path.exists():
                raise SinkRecoveryError(
                    f"{self.path}: its commit log {self.log_path.name} is gone, but "
                    f"checkpoint {checkpoint_id} was taken after {committable['offset']:,} "
                    "committed bytes: the output was deleted by something else; restore "
                    "it with its commit log, or delete the checkpoint folder to start "
                    "afresh (which rewrites every output)")
            if self._committed_length(before) != committable["offset"]:
                raise SinkRecoveryError(
                    f"{self.path} does not hold the output the restored checkpoint "
                    f"{checkpoint_id} was taken after ({committable['offset']} bytes; the "
                    f"commit log has {self._committed_length(before)}): it was rewritten by "
                    f"another run, or the checkpoint is older than the {LOG_HISTORY} "
                    "commits the log remembers; restore a newer checkpoint, or start afresh")
        self._check_holds_commits(commits)
        self._write_log(commits)
        for f in self.staging.iterdir() if self.staging.is_dir() else ():
            if _LINE_PART.match(f.name) and int(f.name.split("-")[1]) > checkpoint_id:
                f.unlink()  # staged after the restored checkpoint: never happened
        with open(self.path, "r+b" if self.path.exists() else "w+b") as out:
            out.truncate(self._committed_length(commits))
            os.fsync(out.fileno())  # rolled-back records must not come back
        self.records = commits[-1]["records"] if commits else 0
        if committable is not None:
            self.commit(committable)

    def close(self) -> None:
        if self._pending is not None:
            self._pending.close()
            self._pending = None


#: what a dataset folder may hold: its part files, hive partition folders, ``.staging``
_PART_FILE = re.compile(r"^part-\d+\.parquet$")
_PARTITION_FOLDER = re.compile(r"^[^.=][^=]*=.*$")


def _hive_value(value: Any) -> str:
    """A partition value as a folder-name-safe string (hive's convention for null)."""
    return "__HIVE_DEFAULT_PARTITION__" if value is None else quote(str(value), safe="")


def dataset_parts(path: Path) -> list[Path]:
    """The committed part files of a dataset (staging left out): partition by partition,
    each in checkpoint order -- so reading them gives every partition's records in arrival
    order, whatever the checkpoints were."""
    path = Path(path)
    if not path.is_dir():
        return []
    parts = [p for p in path.rglob("part-*.parquet")
             if not any(x.startswith(".") for x in p.relative_to(path).parts)]
    return sorted(parts, key=lambda p: (str(p.parent), ParquetDatasetSink.part_id(p)))


class OutputOwnershipError(SinkRecoveryError):
    """An output's place holds what is not the output's own; nothing was touched."""


class ParquetDatasetSink:
    """A folder of Parquet part files, one per checkpoint with data (and per partition,
    with ``partition_by``: ``date=2026-01-01/symbol=ABC/part-<n>.parquet``, hive style);
    exactly once: parts are staged in ``.staging/`` and renamed into place at commit."""

    guarantee: Guarantee = "exactly_once"

    def __init__(self, path: Path, partition_by: list[str] | None = None) -> None:
        self.path = path
        self.partition_by = list(partition_by or [])
        self.staging = path / ".staging"
        self.records = 0
        self._frames: list[pl.DataFrame] = []

    def foreign_entries(self) -> list[Path]:
        """What the dataset folder holds that is not the output's own: anything but part
        files, partition folders of part files, and ``.staging`` (the path itself, if it
        is not a folder)."""
        if not self.path.exists() and not self.path.is_symlink():
            return []
        if not self.path.is_dir():
            return [self.path]
        foreign: list[Path] = []
        folders = [self.path]
        while folders:
            folder = folders.pop()
            for entry in sorted(folder.iterdir()):
                if entry.is_symlink():
                    foreign.append(entry)  # (never followed, never deleted through)
                elif entry.is_dir() and entry == self.staging:
                    continue
                elif entry.is_dir() and _PARTITION_FOLDER.match(entry.name):
                    folders.append(entry)
                elif not (entry.is_file() and _PART_FILE.match(entry.name)):
                    foreign.append(entry)
        return foreign

    def check_owned(self) -> None:
        """Refuse (before anything is deleted) a dataset folder holding what is not ours."""
        foreign = self.foreign_entries()
        if foreign:
            shown = ", ".join(str(p.relative_to(self.path)) if p != self.path else p.name
                              for p in foreign[:5])
            more = f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
            what = ("is a file, not a dataset folder" if foreign == [self.path] else
                    f"holds {len(foreign)} entries that are not its part files ({shown}{more})")
            raise OutputOwnershipError(
                f"Parquet output {self.path} {what}; a dataset folder belongs to its output "
                "alone and is emptied on a fresh start, so nothing was touched. Point the "
                "output at a new or empty folder (or move those files out)")

    def open(self, fresh: bool) -> None:
        if fresh:
            self.check_owned()
            self._discard_all()
        makedirs_durable(self.staging)

    def _discard_all(self) -> None:
        """Delete every part (committed and staged) and the partition folders they
        leave empty -- never the folder itself, nor anything else in it. (All of it is
        made durable by the fsync of the folder when ``open`` makes ``.staging`` anew.)"""
        if not self.path.is_dir():
            return
        emptied: set[Path] = set()
        for part in dataset_parts(self.path):
            part.unlink()
            emptied.add(part.parent)
        shutil.rmtree(self.staging, ignore_errors=True)
        for folder in sorted(emptied, key=lambda p: len(p.parts), reverse=True):
            while folder != self.path and folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()  # a partition folder of ours, now empty
                folder = folder.parent

    def _describe(self) -> str:
        return f"Parquet dataset {self.path}"

    def reject(self, data: pl.DataFrame) -> Rejection | None:
        """Parquet holds every polars type but opaque Python objects."""
        if not data.height:
            return None
        return reject_rows(data, [type_check(refuses_objects, self._describe(),
                                             "convert it to a plain type first")])

    def write(self, data: pl.DataFrame) -> None:
        if data.height:
            self._frames.append(blank_refused_columns(data, refuses_objects))

    def _groups(self, frame: pl.DataFrame) -> list[tuple[Path, pl.DataFrame]]:
        if not self.partition_by:
            return [(Path(), frame)]
        # a record without a partition column lands in hive's default (null) partition
        frame = frame.with_columns([pl.lit(None).alias(c) for c in self.partition_by
                                    if c not in frame.columns])
        groups = frame.partition_by(self.partition_by, as_dict=True, maintain_order=True)
        return sorted(((Path(*[f"{c}={_hive_value(v)}" for c, v in
                               zip(self.partition_by, values, strict=True)]), part)
                       for values, part in groups.items()), key=lambda g: str(g[0]))

    def pre_commit(self, checkpoint_id: int) -> dict[str, Any]:
        rows = sum(f.height for f in self._frames)
        parts: list[list[Any]] = []  # [relative path, rows]
        if rows:
            frame = pl.concat(self._frames, how="diagonal_relaxed")
            for folder, group in self._groups(frame):
                rel = folder / parquet_part_name(checkpoint_id)
                target = self.staging / rel
                makedirs_durable(target.parent)
                tmp = target.with_name(f".{target.name}.tmp")
                pq.write_table(group.to_arrow(), tmp)
                with open(tmp, "rb") as f:
                    os.fsync(f.fileno())
                os.replace(tmp, target)
                fsync_dir(target.parent)
                parts.append([str(rel), group.height])
        self._frames = []
        # "before": the rows committed ahead of this checkpoint, which recovery checks
        return {"checkpoint": checkpoint_id, "parts": parts, "rows": rows,
                "before": self.records}

    @staticmethod
    def _parts_of(committable: dict[str, Any]) -> list[list[Any]]:
        if "parts" in committable:
            return committable["parts"]
        part = committable.get("part")  # the one-part form of earlier checkpoints
        return [[part, committable["rows"]]] if part else []

    def commit(self, committable: dict[str, Any]) -> None:
        """Rename each staged part into place; a part already in place has landed, so a
        commit interrupted half-way finishes the rest when repeated."""
        check_parquet_committable(committable, self._describe())  # before any rename
        for rel, rows in self._parts_of(committable):
            dest = self.path / rel
            if dest.exists():
                continue
            if not (self.staging / rel).exists():
                raise SinkRecoveryError(
                    f"{self.path}: the part {rel} of checkpoint {committable['checkpoint']} "
                    "is neither in the dataset nor staged: it was deleted by something "
                    "else; restore it, or delete the checkpoint folder to start afresh "
                    "(which rewrites every output)")
            makedirs_durable(dest.parent)
            os.replace(self.staging / rel, dest)
            fsync_dir(dest.parent)
            self.records += rows

    def _parts(self) -> list[Path]:
        return dataset_parts(self.path)

    @staticmethod
    def part_id(path: Path) -> int:
        return int(path.name.split("-")[1].split(".")[0])

    def recover(self, committable: dict[str, Any] | None, checkpoint_id: int) -> None:
        """Back to checkpoint ``checkpoint_id``: delete newer parts, commit its own.
        Refused, before anything changes, when its commit record names what this sink
        never writes, or the dataset no longer holds the rows committed before it."""
        if committable is not None:
            check_parquet_committable(committable, self._describe(), checkpoint_id)
        rows = {p: pq.ParquetFile(p).metadata.num_rows for p in self._parts()}
        if committable is not None and "before" in committable:
            before = sum(n for p, n in rows.items()
                         if self.part_id(p) < committable["checkpoint"])
            if before != committable["before"]:
                raise SinkRecoveryError(
                    f"{self.path} holds {before:,} rows in the parts before checkpoint "
                    f"{checkpoint_id} but {committable['before']:,} were committed before it: "
                    "part files were deleted by something else, or another run rewrote the "
                    "dataset since; restore them (or a newer checkpoint), or delete the "
                    "checkpoint folder to start afresh (which rewrites every output)")
        staged = [p for p in self.staging.rglob("part-*.parquet")
                  if _PART_FILE.match(p.name)] if self.staging.is_dir() else []
        dropped: set[Path] = set()
        for f in [*rows, *staged]:
            if self.part_id(f) > checkpoint_id:
                f.unlink()
                rows.pop(f, None)
                dropped.add(f.parent)
        for folder in dropped:  # rolled-back parts must not come back after a power loss
            fsync_dir(folder)
        self.records = sum(rows.values())
        if committable is not None:
            self.commit(committable)

    def close(self) -> None:
        self._frames = []


def read_parquet_dataset(path: Path) -> pl.DataFrame:
    """All committed records of a dataset (an empty frame if none): partition by partition,
    in arrival order within each. Partition columns are in the files themselves."""
    parts = dataset_parts(path)
    return pl.concat([pl.read_parquet(p) for p in parts], how="diagonal_relaxed") \
        if parts else pl.DataFrame()
