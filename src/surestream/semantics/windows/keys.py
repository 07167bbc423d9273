"""Window keys: grouping a batch by (key, window), and keys as dict keys and output columns.

Keys stay in the user's columns and types; the operator only needs (1) a group id per
(record, window) pair of a batch, computed by polars in one pass, and (2) one hashable
tuple per *distinct* group, to find that window's slot in a dict. Nulls are a key like any
other value (polars groups them together; ``None`` is hashable).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl

_ROW = "__ss_row"
_START = "__ss_start"
#: One shared NaN object, so that NaN keys find their dict entry (``nan != nan``, but dict
#: lookups compare identity first).
_NAN = float("nan")


def normalize_key(key: tuple) -> tuple:
    """A key tuple as used in dicts (NaN -> the shared NaN, lists -> tuples); restored
    snapshots pass their keys through it again, since unpickling makes new NaN objects."""
    return tuple(_hashable(v) for v in key)


def _hashable(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return _NAN
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    return value


class KeyColumns:
    """The key fields of a window operator, and the types they had in the input."""

    def __init__(self, fields: list[str]) -> None:
        self.fields = list(fields)
        self.dtypes: dict[str, pl.DataType] = {}

    def observe(self, data: pl.DataFrame) -> None:
        """Remember each key column's type (the first one that is not Null)."""
        for f in self.fields:
            if f not in self.dtypes or self.dtypes[f] == pl.Null:
                try:
                    self.dtypes[f] = data.schema[f]
                except KeyError:
                    raise KeyError(
                        f"key field {f!r} is not a column of the input (columns: "
                        f"{data.columns}); fix key_fields or the steps before the window"
                    ) from None

    def tuples(self, data: pl.DataFrame, rows: np.ndarray | None = None) -> list[tuple]:
        """One hashable key tuple per row of ``data`` (or per index in ``rows``)."""
        if not self.fields:
            return [()] * (data.height if rows is None else len(rows))
        frame = data.select(self.fields)
        if rows is not None:
            frame = frame[rows]
        return [normalize_key(r) for r in frame.rows()]

    def group(self, data: pl.DataFrame, rows: np.ndarray | None,
              starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Group (row, window start) pairs by key and start.

        ``rows`` selects the pairs' rows of ``data`` (None = every row once). Returns the
        dense group id of each pair (numbered by first appearance) and the index of each
        group's first pair."""
        start = pl.Series(_START, starts, dtype=pl.Int64)
        if self.fields:
            frame = data.select(self.fields)
            if rows is not None:
                frame = frame[rows]
            frame = frame.with_columns(start)
        else:  # a global window: group by window start only
            frame = start.to_frame()
        frame = frame.with_row_index(_ROW)
        first = frame.select(pl.col(_ROW).first().over([*self.fields, _START]))
        first = first.to_series().to_numpy().astype(np.int64, copy=False)
        is_first = first == np.arange(len(first), dtype=np.int64)
        dense = np.cumsum(is_first) - 1
        return dense[first], np.flatnonzero(is_first)

    def series(self, keys: list[tuple]) -> list[pl.Series]:
        """Output columns for a list of key tuples, in the input's types."""
        out = []
        for i, f in enumerate(self.fields):
            values = [k[i] for k in keys]
            dtype = self.dtypes.get(f)
            try:
                out.append(pl.Series(f, values, dtype=dtype))
            except (TypeError, ValueError, OverflowError, pl.exceptions.PolarsError):
                out.append(pl.Series(f, values, strict=False))
        return out

    def snapshot(self) -> dict[str, pl.DataType]:
        return dict(self.dtypes)

    def restore(self, dtypes: dict[str, pl.DataType]) -> None:
        self.dtypes = dict(dtypes)
