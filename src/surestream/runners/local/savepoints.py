"""Savepoints: a checkpoint copied out of the rotating folder, and adopted back into it.

A savepoint is one checkpoint -- its manifest and the state files it references -- in a
folder of its own, where retention never deletes it. Both directions are durable copies:

``copy_checkpoint(cp, target)``
    every state file is copied to a temp name, fsynced and renamed; then the manifest the
    same way, and the folder is fsynced: the savepoint exists from that moment. Only then
    are other manifests in ``target`` removed (one folder holds one savepoint).

``install_savepoint(savepoint, live, lock)``
    makes a savepoint the pipeline's latest checkpoint, dropping the newer timeline, without
    ever leaving ``live`` empty or half-written -- a crash or an error at any step leaves
    either the old folder or the new one:

    1. the savepoint is copied (as above) into ``.<live>.incoming`` beside ``live`` (same
       file system, so the swap below is a rename);
    2. the lock file the run holds is hard-linked into it, so after the swap ``live/.lock``
       is still the file this process locked (``FolderLock.verify`` keeps passing);
    3. the two folders are swapped in one ``renameat2(RENAME_EXCHANGE)`` and the parent is
       fsynced; the old timeline, now at ``.<live>.incoming``, is deleted.

    Where the file system cannot exchange two names, ``live`` is renamed to
    ``.<live>.replaced`` and the new folder to ``live``; a crash between the two renames is
    finished by ``finish_interrupted_install`` at the next start.

The caller checks that the savepoint fits the pipeline before any of this (the runner
restores its operator states and source positions in memory first).
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
from pathlib import Path

from surestream.io import fsync_dir, makedirs_durable, write_atomic
from surestream.io.lock import LOCK_FILE, FolderLock
from surestream.runners.local.checkpoint_store import Checkpoint, CheckpointError, CheckpointStore


def _copy_durable(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` through a temp file that is fsynced, then renamed: ``dst``
    is never torn. The caller fsyncs the folder."""
    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.copyfile(src, tmp)
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, dst)


def copy_checkpoint(cp: Checkpoint, target: Path) -> Path:
    """Copy one checkpoint (manifest and the state files it references) into ``target``,
    durably; other manifests there are removed once the copy is complete."""
    target = Path(target)
    if target.resolve() == cp.store.dir.resolve():
        raise CheckpointError(f"{target} is the checkpoint directory itself; a savepoint "
                              "goes elsewhere (retention would delete it there)")
    state = target / "state"
    makedirs_durable(state)
    for name in cp.files():  # operator states and their chunk files
        _copy_durable(cp.store.dir / "state" / name, state / name)
    fsync_dir(state)
    manifest = f"chk-{cp.id:010d}.json"
    write_atomic(target / manifest, (cp.store.dir / manifest).read_bytes())
    fsync_dir(target)
    stale = [old for old in target.glob("chk-*.json") if old.name != manifest]
    for old in stale:  # an earlier savepoint here would shadow this one
        old.unlink()
    if stale:
        fsync_dir(target)
    return target


def load_savepoint(path: Path) -> Checkpoint:
    cp = CheckpointStore(Path(path)).latest()
    if cp is None:
        raise CheckpointError(f"{path} holds no readable checkpoint")
    return cp


def _incoming(live: Path) -> Path:
    return live.parent / f".{live.name}.incoming"


def _replaced(live: Path) -> Path:
    return live.parent / f".{live.name}.replaced"


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``); False where the
    C library or the file system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, f"cannot swap {a} and {b}: {os.strerror(err)}")


def install_savepoint(savepoint: Checkpoint, live: Path, lock: FolderLock | None) -> None:
    """Make ``savepoint`` the only checkpoint of the folder ``live`` (held by ``lock``, whose
    file moves along): copy, fsync, swap -- ``live`` is never empty or partial (module
    docstring)."""
    live = Path(live)
    incoming, replaced = _incoming(live), _replaced(live)
    for leftover in (incoming, replaced):  # of an earlier attempt that failed
        shutil.rmtree(leftover, ignore_errors=True)
    try:
        copy_checkpoint(savepoint, incoming)  # durable: its folder made durably, fsynced
        if lock is not None:
            os.link(lock.path, incoming / LOCK_FILE)
    except BaseException:
        shutil.rmtree(incoming, ignore_errors=True)
        raise
    if _exchange(incoming, live):
        fsync_dir(live.parent)  # the moment the savepoint is the latest checkpoint
        shutil.rmtree(incoming)  # the old timeline
    else:
        os.rename(live, replaced)
        os.rename(incoming, live)
        fsync_dir(live.parent)
        shutil.rmtree(replaced)


def finish_interrupted_install(live: Path) -> None:
    """Finish an ``install_savepoint`` that crashed between the two renames of its
    fallback (``live`` moved aside, the complete new folder not yet in its place)."""
    live = Path(live)
    incoming, replaced = _incoming(live), _replaced(live)
    if live.exists() or not replaced.is_dir():
        return
    source = incoming if incoming.is_dir() else replaced
    try:
        os.rename(source, live)
    except FileNotFoundError:
        return  # another process finished it first
    fsync_dir(live.parent)
    if source is incoming:
        shutil.rmtree(replaced, ignore_errors=True)  # the old timeline
