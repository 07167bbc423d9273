"""Run-time failures that name what they concern: an input, an output, the checkpoints.

An operating-system error says what went wrong ("No space left on device") but not where
in the pipeline: the file being written is often a staging file the user never named.
The runner performs every read, write and commit inside ``concerning(label)``, which turns
an ``OSError`` into a ``RunFailure`` whose message starts with the part of the pipeline it
concerns, as the spec names it::

    output 'main' (/data/out/windows.jsonl): No space left on device
    input 'trades' (/data/trades.jsonl): Permission denied
    checkpoint folder /data/.surestream/checkpoints/vwap: Disk quota exceeded

The command line prints that as the run's one line of failure (exit 1).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class RunFailure(Exception):
    """A run failed at one named part of the pipeline; ``cause`` is the original error."""

    def __init__(self, what: str, cause: BaseException) -> None:
        self.what = what
        self.cause = cause
        super().__init__(f"{what}: {reason(cause)}")


def reason(error: BaseException) -> str:
    """What went wrong, in words: the system's reason for an OS error (with the file it
    names, when that is not the part already named), else the error's class and text."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror + (f" ({error.filename})" if error.filename else "")
    return f"{type(error).__name__}: {error}"


@contextmanager
def concerning(what: str) -> Iterator[None]:
    """Inside this block, an ``OSError`` becomes a ``RunFailure`` naming ``what``."""
    try:
        yield
    except OSError as e:
        raise RunFailure(what, e) from e


def output_label(tag: str, sink: Any) -> str:
    """``output 'main' (/data/out/windows.jsonl)``: the tag and where its records go."""
    path: Path | None = getattr(sink, "path", None)
    table = getattr(sink, "table", None)
    if path is None:
        return f"output {tag!r}"
    return f"output {tag!r} ({path}{f', table {table}' if table else ''})"


def input_label(source: str, partition: str) -> str:
    """``input 'trades' (/data/trades.jsonl)``: the source and the file (or generator)."""
    return f"input {source!r} ({partition})"
