"""Durable, atomic checkpoints in a directory (SEMANTICS §7).

Layout of ``checkpoint.dir``::

    chk-0000000007.json        the manifest of checkpoint 7: metadata, source positions,
                               sink committables, and for every operator its state file
                               with a SHA-256 (and its chunk files, below); the manifest's
                               own checksum is inside it
    state/<operator>.<id>.state
                               one operator's state as of the checkpoint that wrote it
    state/<operator>.chunk.<name>.<id>.state
                               one chunk of a chunked state, written by checkpoint <id>

State files are data, never code (``surestream.io.state_codec``: a JSON tree with raw
and Arrow IPC blocks): restoring reads values and builds nothing a file names, so a
savepoint from elsewhere cannot run code. Every file name a manifest holds is checked to
be a plain name inside ``state/`` before it is opened, copied or deleted. Checkpoints of
format 1 (pickles, surestream 0.1) are refused, never loaded.

Writing checkpoint n, in this order (a crash anywhere leaves the previous one intact):

1. each operator's state is encoded; if its digest equals the one in checkpoint n-1 the
   previous file is referenced again (unchanged state costs no write); otherwise it is
   written to a temp file, fsynced, and renamed into place;
2. the manifest is written to a temp file, fsynced, renamed to ``chk-<n>.json``, and the
   directory is fsynced -- this rename is the moment checkpoint n exists;
3. retention: manifests beyond the last ``retain`` and state files no retained manifest
   references are deleted.

Chunked state (cost grows with changed state, not total state): an operator may snapshot a
``ChunkedState(head, chunks)``. Its ``head`` is stored like any state. Each chunk gets a
file of its own, and a chunk *name* is a promise that its content never changes: a chunk
whose name checkpoint n-1 already lists for that operator is not materialized, encoded,
hashed or written again -- its manifest entry (file, sha256, bytes) is copied. So a big
state whose bulk sits in named, immutable chunks costs only its head and its new chunks.
The operator keeps the promise by putting what identifies the content into the name (the
dedup key chunks carry the key index's epoch, which changes whenever ids are renumbered).

One damaged file must not take down every retained checkpoint. After checkpoint n the
retained ones are n - retain + 1 .. n, and a file written by checkpoint w is referenced by
no checkpoint before w; so a file -- plain state, head or chunk alike -- is referenced
again by checkpoint n only while ``n - w < retain - 1`` (then the oldest retained
checkpoint does not use it), and written anew after that, under a new name (file names
carry the id of the checkpoint that wrote them). Hence every chunk is rewritten at least
once every ``retain - 1`` checkpoints (and never reused with ``retain`` <= 2): the
steady-state cost of a chunked state is its head, its new chunks, and the chunks that
reached that age.

Reading: the newest manifest whose checksum and whose state files' checksums (chunk files
included) verify is the latest checkpoint; a torn or corrupt one is reported and the one
before it used. ``Checkpoint.files()`` lists every state file a checkpoint needs (to copy
it elsewhere, e.g. as a savepoint).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from surestream.io import ChunkedState, fsync_dir, makedirs_durable, state_codec, write_atomic
from surestream.runners.local import faults

log = logging.getLogger("surestream.checkpoints")

MANIFEST = re.compile(r"^chk-(\d{10})\.json$")
FORMAT_VERSION = 2  # 1: pickled state files (never loaded: a pickle can run code)
#: a state file name as this store writes it: a plain name (no folders, no leading dot)
_STATE_FILE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,250}\.\d{10}\.state$")
#: chunk names go into file names: no dots (the id is found after the last two), no paths
_CHUNK_NAME = re.compile(r"^[A-Za-z0-9_-]{1,120}$")


class CheckpointError(Exception):
    """A checkpoint cannot be used (corrupt, or it does not fit the pipeline)."""


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _encode(value: Any, operator: str, what: str = "state") -> bytes:
    label = f"state of {operator!r}" if what == "state" else f"{what} of {operator!r}"
    return state_codec.encode(value, label)


def _written_by(file: str) -> int:
    """The id of the checkpoint that wrote a state file (``<...>.<id>.state``)."""
    return int(file.rsplit(".", 2)[-2])


def state_file_path(folder: Path, file: Any) -> Path:
    """``folder/state/file`` for a state file name read from a manifest, refusing any name
    this store would not have written (a path, ``..``, a hidden file), so a crafted
    manifest cannot make a restore, copy or clean-up touch anything outside the folder."""
    if not isinstance(file, str) or not _STATE_FILE.match(file):
        raise CheckpointError(f"{folder}: a manifest names the state file {file!r}, which is "
                              "not a state file name; the checkpoint is refused")
    return folder / "state" / file


def _safe_name(name: str) -> str:
    """An operator name as the start of a file name: plain characters, no leading dot."""
    return re.sub(r"^[.-]|[^A-Za-z0-9_.-]", "_", name)


def _file_entries(entry: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """An operator's state files with their entries (file, sha256, bytes): the state (or
    head) file first, then its chunks, labelled for messages."""
    return [("state", entry), *((f"chunk {name!r}", e)
                                for name, e in entry.get("chunks", {}).items())]


def referenced_files(meta: dict[str, Any]) -> list[str]:
    """Every state file (under ``state/``) a checkpoint's manifest body references."""
    return [e["file"] for entry in meta["operators"].values() for _, e in _file_entries(entry)]


@dataclass
class Checkpoint:
    """A checkpoint's manifest, and access to its operator states."""

    store: CheckpointStore
    id: int
    meta: dict[str, Any]

    @property
    def positions(self) -> dict[str, Any]:
        return self.meta["positions"]

    @property
    def committables(self) -> dict[str, Any]:
        return self.meta["sinks"]

    @property
    def finished(self) -> bool:
        return bool(self.meta.get("finished"))

    def operator_names(self) -> list[str]:
        return list(self.meta["operators"])

    def files(self) -> list[str]:
        """Every state file (under ``state/``) this checkpoint needs, chunk files included."""
        return referenced_files(self.meta)

    def state(self, operator: str) -> Any:
        """An operator's state as snapshotted: the value, or a ``ChunkedState`` whose chunks
        are loaded. Every file is checked against its digest as it is read."""
        entry = self.meta["operators"][operator]
        head = self._load(operator, "state", entry)
        if "chunks" not in entry:
            return head
        return ChunkedState(head, {name: self._load(operator, f"chunk {name!r}", e)
                                   for name, e in entry["chunks"].items()})

    def _load(self, operator: str, what: str, e: dict[str, Any]) -> Any:
        data = state_file_path(self.store.dir, e["file"]).read_bytes()
        suffix = "" if what == "state" else f" ({what})"
        if _digest(data) != e["sha256"]:
            raise CheckpointError(
                f"checkpoint {self.id}: state of {operator!r} is corrupt{suffix}")
        try:
            return state_codec.decode(data)
        except state_codec.StateCodecError as err:
            raise CheckpointError(f"checkpoint {self.id}: state of {operator!r}{suffix} "
                                  f"cannot be read: {err}") from None


@dataclass
class _Writes:
    """The state files of one checkpoint being written: which to reference again, which to
    write, and how many bytes that took."""

    store: CheckpointStore
    checkpoint_id: int
    written: int = 0
    files: set[str] = field(default_factory=set)

    def put_state(self, operator: str, state: Any, prev: dict[str, Any] | None
                  ) -> dict[str, Any]:
        """The manifest entry (file, sha256, bytes[, chunks]) of one operator's state."""
        stem = _safe_name(operator)
        if not isinstance(state, ChunkedState):
            return self._put_value(operator, stem, state, prev)
        entry = self._put_value(operator, stem, state.head, prev)
        entry["chunks"] = self._put_chunks(operator, stem, state,
                                           (prev or {}).get("chunks", {}))
        return entry

    def _put_value(self, operator: str, stem: str, value: Any, prev: dict[str, Any] | None
                   ) -> dict[str, Any]:
        """A state compared by digest: unchanged, the previous file is referenced again."""
        data = _encode(value, operator)
        sha = _digest(data)
        if (prev is not None and prev["sha256"] == sha
                and self.store._reusable(prev["file"], self.checkpoint_id)):
            return {"file": prev["file"], "sha256": sha, "bytes": len(data)}
        return self._write(stem, data, sha)

    def _put_chunks(self, operator: str, stem: str, state: ChunkedState,
                    prev: dict[str, Any]) -> dict[str, Any]:
        """Chunks compared by name (the promise): one the previous checkpoint holds keeps
        its entry, untouched; the others are materialized and written."""
        out: dict[str, Any] = {}
        for name in state.chunks:
            if not _CHUNK_NAME.match(name):
                raise ValueError(f"chunk name {name!r}: use 1-120 letters, digits, _ or -")
            old = prev.get(name)
            if old is not None and self.store._reusable(old["file"], self.checkpoint_id):
                out[name] = {"file": old["file"], "sha256": old["sha256"], "bytes": old["bytes"]}
            else:
                data = _encode(state.value(name), operator, f"chunk {name!r}")
                out[name] = self._write(f"{stem}.chunk.{name}", data, _digest(data))
        return out

    def _write(self, stem: str, data: bytes, sha: str) -> dict[str, Any]:
        file = f"{stem}.{self.checkpoint_id:010d}.state"
        if file in self.files:  # two operators whose names differ only in unsafe characters
            raise CheckpointError(f"checkpoint {self.checkpoint_id}: two states would share "
                                  f"the file {file}; rename one of the operators")
        self.files.add(file)
        write_atomic(self.store.dir / "state" / file, data)
        self.written += len(data)
        return {"file": file, "sha256": sha, "bytes": len(data)}


@dataclass
class CheckpointStore:
    dir: Path
    retain: int = 3
    #: operator -> its manifest entry (file, sha256, bytes[, chunks]) in the last
    #: checkpoint made durable (or, in a new process, the latest on disk)
    _previous: dict[str, dict[str, Any]] = field(default_factory=dict)
    _loaded: bool = False

    def __post_init__(self) -> None:
        self.dir = Path(self.dir)

    # -- writing ------------------------------------------------------------------------
    def write(self, checkpoint_id: int, states: dict[str, Any], *, positions: dict[str, Any],
              sinks: dict[str, Any], pipeline: str, operators_info: dict[str, Any],
              finished: bool = False, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Make checkpoint ``checkpoint_id`` durable; returns its manifest."""
        started = time.perf_counter()
        state_dir = self.dir / "state"
        makedirs_durable(state_dir)  # a folder made and not fsynced can vanish with its files
        if not self._loaded:
            self._load_previous()
        batch = _Writes(self, checkpoint_id)
        files = {name: batch.put_state(name, state, self._previous.get(name))
                 for name, state in states.items()}
        entries = {name: {**e, **operators_info.get(name, {})} for name, e in files.items()}
        fsync_dir(state_dir)
        faults.reached("checkpoint.state_written")
        body = {
            "format": FORMAT_VERSION,
            "id": checkpoint_id,
            "pipeline": pipeline,
            "wall_time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "positions": positions,
            "sinks": sinks,
            "operators": entries,
            "finished": finished,
            "bytes_written": batch.written,
            "bytes_total": sum(e["bytes"] for entry in entries.values()
                               for _, e in _file_entries(entry)),
            **(extra or {}),
        }
        body["duration_ms"] = round((time.perf_counter() - started) * 1000, 3)
        text = json.dumps(body, sort_keys=True, default=str)
        manifest = {"checksum": _digest(text.encode()), "body": body}
        write_atomic(self.dir / f"chk-{checkpoint_id:010d}.json",
                     json.dumps(manifest, sort_keys=True, default=str).encode(),
                     before_rename=lambda: faults.reached("checkpoint.manifest_temp"))
        fsync_dir(self.dir)
        self._previous.update(files)  # only a durable checkpoint is "the previous" one
        self._apply_retention()
        return body

    def _reusable(self, file: str, checkpoint_id: int) -> bool:
        """Whether checkpoint ``checkpoint_id`` may reference ``file`` again: it exists and
        was written fewer than ``retain - 1`` checkpoints ago, so that the oldest retained
        checkpoint never shares it with the newest (one damaged file cannot take down every
        retained checkpoint)."""
        return (checkpoint_id - _written_by(file) < max(1, self.retain - 1)
                and state_file_path(self.dir, file).exists())

    def _load_previous(self) -> None:
        latest = self.latest()
        if latest is not None:
            self._previous = {name: {k: v for k, v in e.items()
                                     if k in ("file", "sha256", "bytes", "chunks")}
                              for name, e in latest.meta["operators"].items()}
        self._loaded = True

    def _apply_retention(self) -> None:
        ids = self._ids()
        for old in ids[: max(0, len(ids) - self.retain)]:
            (self.dir / f"chk-{old:010d}.json").unlink(missing_ok=True)
        keep: set[str] = set()
        for cp_id in self._ids():
            meta = self._read_manifest(cp_id)
            if meta is not None:
                keep.update(referenced_files(meta))
        for f in (self.dir / "state").iterdir():
            if f.suffix == ".state" and f.name not in keep:
                f.unlink(missing_ok=True)

    # -- reading ------------------------------------------------------------------------
    def _ids(self) -> list[int]:
        if not self.dir.is_dir():
            return []
        return sorted(int(m.group(1)) for p in self.dir.iterdir()
                      if (m := MANIFEST.match(p.name)))

    def _read_manifest(self, checkpoint_id: int) -> dict[str, Any] | None:
        path = self.dir / f"chk-{checkpoint_id:010d}.json"
        try:
            manifest = json.loads(path.read_bytes())
            body = manifest["body"]
            text = json.dumps(body, sort_keys=True, default=str)
            if _digest(text.encode()) != manifest["checksum"]:
                raise CheckpointError("checksum mismatch")
            return body
        except (OSError, ValueError, KeyError, TypeError, CheckpointError) as e:
            log.warning("checkpoint %s at %s is unreadable (%s); using an earlier one",
                        checkpoint_id, path, e)
            return None

    def _verify_states(self, meta: dict[str, Any]) -> bool:
        for name, entry in meta["operators"].items():
            for what, e in _file_entries(entry):
                try:
                    data = state_file_path(self.dir, e["file"]).read_bytes()
                    if _digest(data) != e["sha256"]:
                        raise CheckpointError(
                            f"{what} of {name!r} does not match its checksum")
                except (OSError, CheckpointError) as err:
                    log.warning("checkpoint %s: %s; using an earlier one", meta["id"], err)
                    return False
        return True

    def latest(self) -> Checkpoint | None:
        """The newest checkpoint that verifies, or None."""
        for cp_id in reversed(self._ids()):
            meta = self._read_manifest(cp_id)
            if meta is not None and meta.get("format") != FORMAT_VERSION:
                if meta.get("finished"):  # a finished run: the next one starts afresh,
                    return Checkpoint(self, cp_id, meta)  # its state is never read
                raise CheckpointError(
                    f"checkpoint {cp_id} in {self.dir} is in format {meta.get('format')} "
                    f"(pickled state, surestream 0.1); this version reads format "
                    f"{FORMAT_VERSION} only and never loads pickles (they can run code): "
                    "finish the run with the version that wrote it, or delete the folder "
                    "to start afresh (which rewrites every output)")
            if meta is not None and self._verify_states(meta):
                return Checkpoint(self, cp_id, meta)
        return None

    def newest_manifest(self) -> dict[str, Any] | None:
        """The newest readable manifest's body, its state files not read: a quick look
        (``surestream status``) at a folder a run may be writing; ``latest`` is the one to
        restore from."""
        for cp_id in reversed(self._ids()):
            if not (self.dir / f"chk-{cp_id:010d}.json").exists():
                continue  # retention removed it since the listing: a newer one exists
            meta = self._read_manifest(cp_id)
            if meta is not None:
                return meta
        return None

    def list(self) -> list[dict[str, Any]]:
        """Metadata of every checkpoint on disk, oldest first (``valid`` says if usable)."""
        out = []
        for cp_id in self._ids():
            meta = self._read_manifest(cp_id)
            if meta is None:
                out.append({"id": cp_id, "valid": False})
            else:
                out.append({**meta, "valid": meta.get("format") == FORMAT_VERSION
                            and self._verify_states(meta)})
        return out

    def next_id(self) -> int:
        ids = self._ids()
        return (ids[-1] + 1) if ids else 1

    # -- a finished run's last commit ------------------------------------------------------
    def _done_path(self, checkpoint_id: int) -> Path:
        return self.dir / f"chk-{checkpoint_id:010d}.done"

    def mark_done(self, checkpoint_id: int) -> None:
        """Every sink committed finished checkpoint ``checkpoint_id``: the run is over, and
        the next start begins afresh. Durable, so a crash before it is seen as one."""
        path = self._done_path(checkpoint_id)
        path.write_bytes(b"")
        fsync_dir(self.dir)

    def is_done(self, checkpoint_id: int) -> bool:
        """Whether finished checkpoint ``checkpoint_id`` was committed by every sink (False:
        the run was killed between the checkpoint and its commit, and is not over yet)."""
        return self._done_path(checkpoint_id).exists()

    def clear(self) -> None:
        """Forget every checkpoint (a fresh run). The manifests go first, durably: were the
        state files' removal durable first, a power loss could leave manifests whose state
        is gone -- none verifies, and the pipeline would refuse to start."""
        ids = self._ids()
        for cp_id in ids:
            (self.dir / f"chk-{cp_id:010d}.json").unlink(missing_ok=True)
            self._done_path(cp_id).unlink(missing_ok=True)
        if ids:
            fsync_dir(self.dir)
        state = self.dir / "state"
        if state.is_dir():
            for f in state.iterdir():
                f.unlink(missing_ok=True)
        self._previous.clear()
        self._loaded = False
