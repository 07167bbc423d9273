"""Fingerprints of the part of an input file a checkpoint has consumed.

A checkpoint stores, per file, how many bytes were read and the SHA-256 of the first and of
the last 64 KiB of them. On restore the file must still start with those bytes: a file that
is shorter, or whose first or last bytes read differ (edited, truncated, replaced), would
mix records of two versions of the input, so the restore is refused with what changed and
what to do. Bytes appended after the position are new input and are read as usual.

Hashing two blocks (not the whole prefix) keeps a checkpoint's cost independent of the
input's size; an edit that keeps every byte offset and touches neither hashed block goes
unnoticed -- it cannot change what the resumed run reads.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

BLOCK = 64 << 10


class FileChanged(Exception):
    """An input file no longer holds what a checkpoint read from it."""


def _sha(fd: int, start: int, end: int) -> str:
    data = os.pread(fd, end - start, start)
    return hashlib.sha256(data).hexdigest()


def fingerprint(path: Path, consumed: int) -> dict[str, Any]:
    """The fingerprint of the first ``consumed`` bytes of ``path``."""
    fd = os.open(path, os.O_RDONLY)
    try:
        fp: dict[str, Any] = {"bytes": consumed, "head": _sha(fd, 0, min(BLOCK, consumed))}
        if consumed > BLOCK:
            fp["tail"] = _sha(fd, consumed - BLOCK, consumed)
        return fp
    finally:
        os.close(fd)


def verify(path: Path, fp: dict[str, Any], no_growth: str | None = None) -> None:
    """Raise ``FileChanged`` (saying what changed) unless ``path`` still starts with the
    bytes ``fp`` describes. ``no_growth``: why the file may not have grown either (it was
    read to its end; it is not line-oriented), or ``None`` when appends are fine."""
    consumed = int(fp["bytes"])
    try:
        size = path.stat().st_size
    except OSError as e:
        raise FileChanged(f"it cannot be read any more ({e.strerror})") from None
    if size < consumed:
        raise FileChanged(f"it is shorter ({size:,} bytes) than the {consumed:,} bytes read")
    fresh = fingerprint(path, consumed)
    if fresh["head"] != fp["head"]:
        raise FileChanged(f"its first {min(BLOCK, consumed):,} bytes differ from the ones read")
    if fresh.get("tail") != fp.get("tail"):
        raise FileChanged(f"the last {BLOCK:,} of the {consumed:,} bytes read differ")
    if no_growth and size > consumed:
        raise FileChanged(f"it grew by {size - consumed:,} bytes: {no_growth}")
