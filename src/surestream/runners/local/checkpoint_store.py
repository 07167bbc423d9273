"""Durable, atomic checkpoints in a directory (SEMANTICS §7).

Layout of ``checkpoint.dir``::

    chk-0000000007.json        the manifest of checkpoint 7: metadata, source positions,
                               sink committables, and for every operator its state file
                               with a SHA-256; the manifest's own checksum is inside it
    state/<operator>.<id>.pkl  one operator's state as of the checkpoint that wrote it

Writing checkpoint n, in this order (a crash anywhere leaves the previous one intact):

1. each operator's state is pickled; if its digest equals the one in checkpoint n-1 the
   previous file is referenced again (unchanged state costs no write); otherwise it is
   written to a temp file, fsynced, and renamed into place;
2. the manifest is written to a temp file, fsynced, renamed to ``chk-<n>.json``, and the
   directory is fsynced -- this rename is the moment checkpoint n exists;
3. retention: manifests beyond the last ``retain`` and state files no retained manifest
   references are deleted.

Reading: the newest manifest whose checksum and whose state files' checksums verify is the
latest checkpoint; a torn or corrupt one is reported and the one before it used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from surestream.runners.local import faults

log = logging.getLogger("surestream.checkpoints")

MANIFEST = re.compile(r"^chk-(\d{10})\.json$")
FORMAT_VERSION = 1


class CheckpointError(Exception):
    """A checkpoint cannot be used (corrupt, or it does not fit the pipeline)."""


def fsync_dir(path: Path) -> None:
    """fsync a directory, so that renames inside it are durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, fault_point: str | None = None) -> None:
    """Write to a temp file, fsync it, rename it over ``path``: never a torn ``path``."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    if fault_point:
        faults.reached(fault_point)
    os.replace(tmp, path)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _written_by(file: str) -> int:
    """The id of the checkpoint that wrote a state file (``<operator>.<id>.pkl``)."""
    return int(file.rsplit(".", 2)[-2])


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


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

    def state(self, operator: str) -> Any:
        entry = self.meta["operators"][operator]
        data = (self.store.dir / "state" / entry["file"]).read_bytes()
        if _digest(data) != entry["sha256"]:
            raise CheckpointError(f"checkpoint {self.id}: state of {operator!r} is corrupt")
        return pickle.loads(data)


@dataclass
class CheckpointStore:
    dir: Path
    retain: int = 3
    #: operator -> (sha256, file, bytes) of its state in the last checkpoint written
    _digests: dict[str, tuple[str, str, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.dir = Path(self.dir)

    # -- writing ------------------------------------------------------------------------
    def write(self, checkpoint_id: int, states: dict[str, Any], *, positions: dict[str, Any],
              sinks: dict[str, Any], pipeline: str, operators_info: dict[str, Any],
              finished: bool = False, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Make checkpoint ``checkpoint_id`` durable; returns its manifest."""
        started = time.perf_counter()
        state_dir = self.dir / "state"
        state_dir.mkdir(parents=True, exist_ok=True)
        if not self._digests:
            self._load_previous_digests()
        entries: dict[str, Any] = {}
        written = 0
        for name, state in states.items():
            data = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
            sha = _digest(data)
            prev = self._digests.get(name)
            if (prev is not None and prev[0] == sha and (state_dir / prev[1]).exists()
                    and checkpoint_id - _written_by(prev[1]) < max(1, self.retain - 1)):
                # unchanged: reference the file again -- but not by every retained
                # checkpoint, so that one damaged file cannot take all of them down
                file = prev[1]
            else:
                file = f"{_safe_name(name)}.{checkpoint_id:010d}.pkl"
                write_atomic(state_dir / file, data)
                written += len(data)
            entries[name] = {"file": file, "sha256": sha, "bytes": len(data),
                             **operators_info.get(name, {})}
            self._digests[name] = (sha, file, len(data))
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
            "bytes_written": written,
            "bytes_total": sum(e["bytes"] for e in entries.values()),
            **(extra or {}),
        }
        body["duration_ms"] = round((time.perf_counter() - started) * 1000, 3)
        text = json.dumps(body, sort_keys=True, default=str)
        manifest = {"checksum": _digest(text.encode()), "body": body}
        write_atomic(self.dir / f"chk-{checkpoint_id:010d}.json",
                     json.dumps(manifest, sort_keys=True, default=str).encode(),
                     fault_point="checkpoint.manifest_temp")
        fsync_dir(self.dir)
        self._apply_retention()
        return body

    def _load_previous_digests(self) -> None:
        latest = self.latest()
        if latest is not None:
            for name, e in latest.meta["operators"].items():
                self._digests[name] = (e["sha256"], e["file"], e["bytes"])

    def _apply_retention(self) -> None:
        ids = self._ids()
        for old in ids[: max(0, len(ids) - self.retain)]:
            (self.dir / f"chk-{old:010d}.json").unlink(missing_ok=True)
        keep: set[str] = set()
        for cp_id in self._ids():
            meta = self._read_manifest(cp_id)
            if meta is not None:
                keep.update(e["file"] for e in meta["operators"].values())
        for f in (self.dir / "state").iterdir():
            if f.suffix == ".pkl" and f.name not in keep:
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
        for name, e in meta["operators"].items():
            path = self.dir / "state" / e["file"]
            try:
                if _digest(path.read_bytes()) != e["sha256"]:
                    raise CheckpointError(f"state of {name!r} does not match its checksum")
            except (OSError, CheckpointError) as err:
                log.warning("checkpoint %s: %s; using an earlier one", meta["id"], err)
                return False
        return True

    def latest(self) -> Checkpoint | None:
        """The newest checkpoint that verifies, or None."""
        for cp_id in reversed(self._ids()):
            meta = self._read_manifest(cp_id)
            if meta is not None and self._verify_states(meta):
                return Checkpoint(self, cp_id, meta)
        return None

    def list(self) -> list[dict[str, Any]]:
        """Metadata of every checkpoint on disk, oldest first (``valid`` says if usable)."""
        out = []
        for cp_id in self._ids():
            meta = self._read_manifest(cp_id)
            if meta is None:
                out.append({"id": cp_id, "valid": False})
            else:
                out.append({**meta, "valid": self._verify_states(meta)})
        return out

    def next_id(self) -> int:
        ids = self._ids()
        return (ids[-1] + 1) if ids else 1

    def clear(self) -> None:
        """Forget every checkpoint (a fresh run)."""
        for cp_id in self._ids():
            (self.dir / f"chk-{cp_id:010d}.json").unlink(missing_ok=True)
        state = self.dir / "state"
        if state.is_dir():
            for f in state.iterdir():
                f.unlink(missing_ok=True)
        self._digests.clear()
