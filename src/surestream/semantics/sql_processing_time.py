"""Processing time in SQL (``CURRENT_DATE``, ``CURRENT_TIMESTAMP``, ``NOW()``, ...), replayed.

polars SQL reads the machine's local clock where it parses such a function, so a step
evaluating it gave a value that no recovery could reproduce: a restart after midnight gave
the records it processed again another day. Here the functions take their value from one
stamp per checkpoint interval, exactly as the ``processing_time`` step does (SEMANTICS §1):
the (injected) clock's reading at the first batch of a fresh run, a fresh reading each time
a checkpoint snapshots the operator, and on restore the reading stored in the checkpoint.

The expression text is rewritten before it is parsed: each call becomes a typed literal of
the stamp (``CAST('2026-01-01' AS DATE)``...), with the same type polars gives the
function (``Date``, a naive ``Datetime("us")``, ``Time``), in UTC -- whatever the
machine's time zone, so a recovery on another machine gives the same values. Parsing
happens once per stamp, not per batch: the hot path evaluates literals.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import polars as pl

from surestream.semantics.watermarks import Clock

#: a string literal or quoted identifier (left alone), or a processing-time function;
#: ``NOW`` only as a call (a bare ``now`` is a column), the others with or without ``()``
_TOKENS = re.compile(
    r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|`[^`]*`"""
    r"""|\b(?P<fn>CURRENT_TIMESTAMP|CURRENT_DATE|CURRENT_TIME|LOCALTIMESTAMP|LOCALTIME)\b"""
    r"""(?:\s*\(\s*\d*\s*\))?"""
    r"""|\b(?P<now>NOW)\s*\(\s*\)""",
    re.IGNORECASE)

_KIND = {"CURRENT_TIMESTAMP": "TIMESTAMP", "LOCALTIMESTAMP": "TIMESTAMP", "NOW": "TIMESTAMP",
         "CURRENT_DATE": "DATE", "CURRENT_TIME": "TIME", "LOCALTIME": "TIME"}


def uses_processing_time(sql: str) -> bool:
    """Whether the expression calls a processing-time function (outside string literals
    and quoted names)."""
    return any(m.group("fn") or m.group("now") for m in _TOKENS.finditer(sql))


def _literal(kind: str, stamp_ms: int) -> str:
    at = datetime.fromtimestamp(stamp_ms / 1000, tz=UTC)
    if kind == "DATE":
        return f"CAST('{at:%Y-%m-%d}' AS DATE)"
    ms = f"{stamp_ms % 1000:03d}"
    if kind == "TIME":
        return f"CAST('{at:%H:%M:%S}.{ms}' AS TIME)"
    return f"CAST('{at:%Y-%m-%d %H:%M:%S}.{ms}' AS TIMESTAMP)"


def pin_processing_time(sql: str, stamp_ms: int) -> str:
    """``sql`` with every processing-time function replaced by the stamp's UTC value."""
    def replace(m: re.Match[str]) -> str:
        name = m.group("fn") or m.group("now")
        return _literal(_KIND[name.upper()], stamp_ms) if name else m.group(0)

    return _TOKENS.sub(replace, sql)


class StampedSql:
    """The SQL expressions of one step, compiled with the stamp of the current checkpoint
    interval when any of them reads processing time (otherwise compiled once, and the
    step's checkpointed state is what it always was)."""

    def __init__(self, texts: list[str], clock: Clock) -> None:
        self.texts = texts
        self.clock = clock
        self.stamped = any(uses_processing_time(t) for t in texts)
        self.stamp: int | None = None  # taken at the first batch of a fresh run
        self._compiled_for: int | None = None
        self._exprs = [] if self.stamped else [pl.sql_expr(t) for t in texts]

    def begin_batch(self) -> None:
        """Take the stamp if the run has none yet (a fresh run, or one restored from a
        checkpoint written before these values were checkpointed)."""
        if self.stamped and self.stamp is None:
            self.stamp = int(self.clock())

    def exprs(self) -> list[pl.Expr]:
        if self.stamped:
            self.begin_batch()
            if self._compiled_for != self.stamp:
                stamp = int(self.stamp)  # type: ignore[arg-type] - begin_batch set it
                self._exprs = [pl.sql_expr(pin_processing_time(t, stamp)) for t in self.texts]
                self._compiled_for = stamp
        return self._exprs

    def snapshot(self) -> dict[str, Any]:
        """The stamp of the interval this checkpoint opens, read from the clock now and
        stored with the checkpoint (nothing for a step that reads no processing time)."""
        if not self.stamped:
            return {}
        self.stamp = int(self.clock())
        return {"processing_time_stamp": self.stamp}

    def restore(self, state: dict[str, Any]) -> None:
        """The stored stamp; a checkpoint without one leaves it to the first batch."""
        if self.stamped:
            stamp = state.get("processing_time_stamp")
            self.stamp = None if stamp is None else int(stamp)
