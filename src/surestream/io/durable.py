"""Durable file writes: what a crash (or a power loss) cannot tear.

A rename is atomic but not durable until the folder holding it is fsynced; a file's bytes
are not durable until the file is fsynced. Every commit path of surestream goes through
these helpers so that the rule is written once: a folder created on a commit path is
fsynced into its parent (``makedirs_durable``), a rename is followed by ``fsync_dir`` of its
folder, a file's bytes by ``os.fsync``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def fsync_dir(path: Path) -> None:
    """fsync a directory, so that entries created, renamed or removed in it are durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, before_rename: Callable[[], None] | None = None,
                 ) -> None:
    """Write to a temp file, fsync it, rename it over ``path``: never a torn ``path``.

    ``before_rename`` runs between the fsync and the rename (a fault-injection point).
    The caller fsyncs the folder when the rename itself must be durable."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    if before_rename is not None:
        before_rename()
    os.replace(tmp, path)


def makedirs_durable(path: Path) -> None:
    """``mkdir -p`` whose every new folder survives a power loss: each one created is
    fsynced into its parent before the next is made (a folder that exists is left alone).
    A file written into a folder whose own entry was never fsynced can vanish with it."""
    path = Path(path)
    missing: list[Path] = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for folder in reversed(missing):
        try:
            folder.mkdir()
        except FileExistsError:
            if not folder.is_dir():
                raise
        fsync_dir(folder.parent)
