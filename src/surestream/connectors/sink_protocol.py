"""The one sink protocol every connector follows (Flink's SinkWriter + Committer split).

    reject(data)           which records of ``data`` the sink cannot hold, and why (or None);
                           the runner sends those to the errors output and writes the rest
    write(data)            buffer inside the open transaction (nothing visible yet)
    pre_commit(n)          stage everything since the last checkpoint; return a committable
                           (plain JSON values) that is enough to finish the commit later
    -- checkpoint n is made durable, the committables inside it --
    commit(committable)    make checkpoint n's output visible; idempotent: the sink can tell
                           whether checkpoint n already landed and then does nothing
    recover(committable, n)  on restart from checkpoint n: commit n's pending output if it
                           has not landed, and discard anything staged (or, where the sink
                           can, committed) after n
    open(fresh=True)       a run with no checkpoint: discard all previous output

Each sink declares its ``guarantee``: ``exactly_once`` (two-phase commit as above),
``idempotent`` (replays overwrite by key) or ``at_least_once``.

Why ``reject`` comes before ``write``: a record the format cannot hold (a nested object
bound for CSV, a NaN bound for JSON) would otherwise make ``write`` raise for the whole
batch -- and, since a replay reads the same record again, stop the pipeline on every run,
forever -- or, worse, be written changed. Asking first lets one such record cost exactly
that record, with a reason naming the output and the column, whatever the batch size. A
sink must never change a value to make it fit. The checks are per column type first, so a
batch of representable types costs one look at its schema.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import polars as pl

Guarantee = Literal["exactly_once", "idempotent", "at_least_once"]


@dataclass(frozen=True, slots=True)
class Rejection:
    """The records of a frame a sink cannot hold: their row numbers, ascending, and one
    reason each (naming the output, the column and what is wrong with the value)."""

    rows: np.ndarray
    reasons: list[str]

    def __len__(self) -> int:
        return len(self.rows)


@runtime_checkable
class Sink(Protocol):
    guarantee: Guarantee
    records: int  # records made visible (committed) so far

    def open(self, fresh: bool) -> None: ...
    def reject(self, data: pl.DataFrame) -> Rejection | None: ...
    def write(self, data: pl.DataFrame) -> None: ...
    def pre_commit(self, checkpoint_id: int) -> Any: ...
    def commit(self, committable: Any) -> None: ...
    def recover(self, committable: Any, checkpoint_id: int) -> None: ...
    def close(self) -> None: ...


class SinkRecoveryError(Exception):
    """A sink cannot be brought back to the restored checkpoint without losing or
    duplicating output; the run stops instead of guessing."""


class UnwritableError(Exception):
    """The errors output itself cannot hold an error record: there is nowhere left to put
    it, so the run stops (naming the output) rather than lose it or loop."""


# -- building rejections ------------------------------------------------------------------
#: A column check: (column name, its series) -> None when every row is fine, else a mask of
#: the rows the sink cannot hold and the reason for one such row, given its value.
ColumnCheck = Callable[[str, pl.Series], tuple[np.ndarray, Callable[[Any], str]] | None]
#: Names what a column type is when a format cannot hold it ("a nested value"), else None.
TypeRule = Callable[[pl.DataType], str | None]


def reject_rows(data: pl.DataFrame, checks: list[ColumnCheck]) -> Rejection | None:
    """Run every check on every column; a row is rejected with the reason of its first
    failing check (columns in frame order, checks in the order given)."""
    reasons: dict[int, str] = {}
    for name in data.columns:
        series = data.get_column(name)
        for check in checks:
            found = check(name, series)
            if found is None:
                continue
            mask, why = found
            rows = np.flatnonzero(mask)
            for row, value in zip(rows.tolist(), _values(series.gather(rows)), strict=True):
                if row not in reasons:
                    reasons[row] = why(value)
    if not reasons:
        return None
    rows = sorted(reasons)
    return Rejection(np.array(rows, dtype=np.int64), [reasons[r] for r in rows])


def _values(series: pl.Series) -> list[Any]:
    """The values for reasons: as Python values, or as text where Python has none (a date
    of the year -221 or 10183, which ``datetime`` cannot hold)."""
    try:
        return series.to_list()
    except (ValueError, OverflowError):
        return series.cast(pl.String).to_list()


def shown(value: Any, limit: int = 120) -> str:
    """A value for a reason, cut so one huge value cannot flood the errors output."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def type_check(refuses: TypeRule, output: str, advice: str) -> ColumnCheck:
    """Rejects every present (non-null) value of a column whose type the output cannot
    hold. A null is fine in any column: it is written as the format's empty value."""

    def check(name: str, series: pl.Series) -> tuple[np.ndarray, Callable[[Any], str]] | None:
        what = refuses(series.dtype)
        if what is None or series.null_count() == len(series):
            return None
        return series.is_not_null().to_numpy(), lambda value: (
            f"{output} cannot hold {what} ({series.dtype}) in column {name!r}: "
            f"{shown(value)}; {advice}")

    return check


def non_finite_check(output: str, advice: str) -> ColumnCheck:
    """Rejects NaN and infinite floats (for formats such as JSON that have no such number
    and would otherwise write null in their place)."""

    def check(name: str, series: pl.Series) -> tuple[np.ndarray, Callable[[Any], str]] | None:
        if not series.dtype.is_float():
            return None
        bad = (~series.is_finite()).fill_null(False)
        if not bad.any():
            return None
        return bad.to_numpy(), lambda value: (
            f"{output} cannot hold the float {value} in column {name!r}; {advice}")

    return check


def blank_refused_columns(data: pl.DataFrame, refuses: TypeRule) -> pl.DataFrame:
    """``data`` with each column of a refused type -- null in every row once the rejected
    rows are gone -- turned into a column of the null type, which every writer takes.
    A refused column that still holds a value is a caller's mistake (``reject`` first)."""
    blanks = []
    for name, dtype in data.schema.items():
        if refuses(dtype) is None:
            continue
        if data.get_column(name).null_count() != data.height:
            raise ValueError(f"column {name!r} ({dtype}) holds values this output cannot "
                             "write; call reject() before write()")
        blanks.append(pl.lit(None).alias(name))
    return data.with_columns(blanks) if blanks else data


def contains_type(dtype: pl.DataType, pred: Callable[[pl.DataType], bool]) -> bool:
    """Does ``dtype`` or any type nested in it satisfy ``pred``?"""
    if pred(dtype):
        return True
    if isinstance(dtype, pl.Struct):
        return any(contains_type(f.dtype, pred) for f in dtype.fields)
    inner = getattr(dtype, "inner", None)
    return inner is not None and contains_type(inner, pred)


def refuses_objects(dtype: pl.DataType) -> str | None:
    """No file or database can hold an opaque Python object (polars' Object type, e.g.
    from a ``map_batches`` function): Parquet would store its memory address."""
    return "an opaque Python object" if contains_type(dtype, lambda d: d == pl.Object) else None
