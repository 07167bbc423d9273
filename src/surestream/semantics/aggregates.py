"""Window accumulators: the state of every aggregation of every live window, in columns.

A window operator gives each live (key, window) a *slot* -- an integer -- and every
accumulator keeps its state in arrays indexed by slot. Adding a batch is one call per
aggregation over all ``(row, slot)`` pairs of the batch (``np.add.at`` and friends), not a
Python call per record.

Determinism (SEMANTICS §8) is the rule that shapes this module: a window's result must be
bit-identical whatever the batch size. Float addition is not associative, so every sum is a
sequential left-to-right fold in arrival order, continued from the slot's previous value:
``np.add.at`` folds its operands in the order given, which is exactly that. ``np.sum``,
pairwise or ``reduceat`` summation and group-by sums do not, and are not used here. The
record-at-a-time paths (allowed-late records, sessions) use ``add_one``, which performs the
very same float64 operations, so both paths agree bit for bit.

Built-ins (``model.aggregations.BUILTIN_ARITY``): ``count`` (int64; with a column it counts
that column's non-null values), ``sum`` (int64 over integers and booleans, exact -- never
wrapped, see ``SumAcc``; float64 over other numbers), ``avg``/``vwap`` (float64), ``min``/
``max``/``first``/``last`` (float64 for numeric inputs, the input's own type otherwise).
Integer sums are exact in any order, so only float folds need the rule above.
``sum``/``avg``/``vwap`` read text as (float) numbers; a record whose value is not a number
never gets here: the window operator sends it to errors first (``aggregate_inputs``). Null
inputs are ignored; an aggregation that saw no value yields null (``vwap`` also when its
weights sum to 0). ``first``/``last`` go by event time, ties by arrival. User
``AggregateFunction``s are called record by record in arrival order; ``merge`` is used
when sessions merge.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from surestream.io.state_codec import round_trip
from surestream.model.aggregations import AggregateFunction, AggregationSpec
from surestream.semantics.aggregate_inputs import float_values
from surestream.semantics.user_state import codec_of

_I64_MAX = int(np.iinfo(np.int64).max)
_I64_MIN = int(np.iinfo(np.int64).min)
#: an integer sum beyond int64 is kept as ``high * _HIGH_UNIT + low`` (``SumAcc``)
_HIGH_UNIT = 2**62


# -- inputs -------------------------------------------------------------------------------
class BatchInput:
    """One batch's columns as numpy arrays, converted once and shared by all accumulators."""

    def __init__(self, data: pl.DataFrame, ts: np.ndarray, seq: np.ndarray,
                 records: list[dict[str, Any]] | None = None) -> None:
        self.data = data
        self.ts = ts
        self.seq = seq
        self._numeric: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
        self._integers: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
        self._objects: dict[str, tuple[list[Any], np.ndarray | None]] = {}
        self._records = records  # the rows as dicts, if the caller has them already
        self._schema = data.schema  # polars rebuilds it on every access
        self._kinds: dict[str, str] = {}

    def kind(self, column: str) -> str:
        """``"numeric"``, ``"object"`` or ``"null"`` (a column of nulls only, nothing to add)."""
        kind = self._kinds.get(column)
        if kind is None:
            dtype = self.dtype(column)
            if dtype == pl.Null:
                kind = "null"
            else:
                kind = "numeric" if dtype.is_numeric() or dtype == pl.Boolean else "object"
            self._kinds[column] = kind
        return kind

    def dtype(self, column: str) -> pl.DataType:
        """The column's type; a column no record of the batch has is all null (``Null``):
        a field is optional, and another cut of the input could hold it with nulls."""
        return self._schema.get(column, pl.Null())

    def column(self, column: str) -> pl.Series:
        if column in self._schema:
            return self.data.get_column(column)
        return pl.Series(column, [None] * self.data.height, dtype=pl.Null)

    def numeric(self, column: str) -> tuple[np.ndarray, np.ndarray | None]:
        """float64 values and a validity mask (``None`` when every value counts); text is
        parsed per value (``aggregate_inputs.float_values``)."""
        if column not in self._numeric:
            self._numeric[column] = float_values(self.column(column))
        return self._numeric[column]

    def integers(self, column: str) -> tuple[np.ndarray, np.ndarray | None]:
        """Exact values of an integer or boolean column and a validity mask: int64 when
        every value fits (null as 0), else Python integers (``object``; UInt64, Int128)."""
        if column not in self._integers:
            s = self.column(column)
            valid = None if s.null_count() == 0 else s.is_not_null().to_numpy()
            s = s.fill_null(0)
            if s.dtype == pl.Boolean or s.dtype in _INT64_SAFE or (
                    len(s) and s.min() >= _I64_MIN and s.max() <= _I64_MAX):
                values = s.cast(pl.Int64).to_numpy()
            else:
                values = np.array(s.to_list(), dtype=object)
            self._integers[column] = (values, valid)
        return self._integers[column]

    def objects(self, column: str) -> tuple[list[Any], np.ndarray | None]:
        """Python values and a validity mask, for non-numeric columns."""
        if column not in self._objects:
            s = self.column(column)
            valid = None if s.null_count() == 0 else s.is_not_null().to_numpy()
            self._objects[column] = (s.to_list(), valid)
        return self._objects[column]

    def records(self) -> list[dict[str, Any]]:
        """The rows as dicts, for user aggregate functions (built on first use)."""
        if self._records is None:
            self._records = self.data.to_dicts()
        return self._records


@dataclass(frozen=True, slots=True)
class Pairs:
    """Records added to windows, in arrival order: pair ``j`` adds batch row ``rows[j]`` to
    slot ``slots[j]``. ``gid[j]`` numbers the pair's slot among the batch's distinct slots
    ``gslots`` (0..G-1), so per-batch scratch arrays can be O(G) instead of O(capacity)."""

    rows: np.ndarray
    slots: np.ndarray
    gid: np.ndarray
    gslots: np.ndarray

    def subset(self, mask: np.ndarray) -> Pairs:
        return Pairs(self.rows[mask], self.slots[mask], self.gid[mask], self.gslots)

    def __len__(self) -> int:
        return len(self.rows)


# -- helpers ------------------------------------------------------------------------------
#: integer types whose every value is an int64
_INT64_SAFE = frozenset({pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16,
                         pl.UInt32})


def _is_integer(dtype: pl.DataType) -> bool:
    """Integers and booleans (true = 1): what ``sum`` adds exactly."""
    return dtype.is_integer() or dtype == pl.Boolean


def _max_abs(values: np.ndarray) -> int:
    """The largest magnitude among int64 ``values`` as a Python integer (``abs`` of the
    smallest int64 does not fit an int64)."""
    if not len(values):
        return 0
    return max(abs(int(values.min())), abs(int(values.max())))


def _grown(arr: np.ndarray, capacity: int, fill: Any) -> np.ndarray:
    """``arr`` extended to ``capacity`` entries, the new ones set to ``fill``."""
    if len(arr) >= capacity:
        return arr
    out = np.full(capacity, fill, dtype=arr.dtype)
    out[: len(arr)] = arr
    return out


def _float_series(values: np.ndarray, valid: np.ndarray) -> pl.Series:
    """A Float64 series with nulls where ``valid`` is false (NaN stays a value)."""
    if valid.all():
        return pl.Series(values=values, dtype=pl.Float64)
    return pl.Series(values=pa.array(values, mask=~valid), dtype=pl.Float64)


def _valid_pairs(pairs: Pairs, valid: np.ndarray | None) -> Pairs:
    return pairs if valid is None else pairs.subset(valid[pairs.rows])


# -- accumulator protocol -------------------------------------------------------------------
class Accumulator(ABC):
    """The state of one aggregation for every slot."""

    #: Output type, or ``None`` when it is inferred from the values (user functions).
    dtype: pl.DataType | None = pl.Float64

    @abstractmethod
    def grow(self, capacity: int) -> None:
        """Make room for slots ``0..capacity-1``."""

    @abstractmethod
    def reset(self, slots: np.ndarray) -> None:
        """Give ``slots`` the empty state (a new window)."""

    @abstractmethod
    def add(self, pairs: Pairs, inp: BatchInput) -> None:
        """Fold the pairs in, per slot in the order given (arrival order)."""

    @abstractmethod
    def add_one(self, slot: int, row: int, inp: BatchInput) -> None:
        """Fold one record in; the same operations as ``add`` with a single pair."""

    @abstractmethod
    def merge(self, dst: int, src: int) -> None:
        """Fold slot ``src``'s state into ``dst`` (session merges); ``src`` is left as is."""

    @abstractmethod
    def results(self, slots: np.ndarray) -> pl.Series | list[Any]:
        """The current result of each slot."""

    @abstractmethod
    def value(self, slot: int) -> Any:
        """The current result of one slot, as a Python value."""

    @abstractmethod
    def snapshot(self, slots: np.ndarray) -> dict[str, Any]:
        """The state of ``slots``, in that order, as plain values (a copy)."""

    @abstractmethod
    def restore(self, state: dict[str, Any], slots: np.ndarray) -> None:
        """Load a ``snapshot`` into ``slots`` (already grown to)."""


class _ArrayAccumulator(Accumulator):
    """An accumulator whose whole state is a few arrays; grow/reset/snapshot are generic."""

    #: name -> (dtype, empty value) of each state array.
    FIELDS: dict[str, tuple[Any, Any]] = {}

    def __init__(self) -> None:
        for name, (dtype, _) in self.FIELDS.items():
            setattr(self, name, np.zeros(0, dtype=dtype))

    def grow(self, capacity: int) -> None:
        for name, (_, empty) in self.FIELDS.items():
            setattr(self, name, _grown(getattr(self, name), capacity, empty))

    def reset(self, slots: np.ndarray) -> None:
        for name, (_, empty) in self.FIELDS.items():
            getattr(self, name)[slots] = empty

    def snapshot(self, slots: np.ndarray) -> dict[str, Any]:
        return {name: getattr(self, name)[slots].copy() for name in self.FIELDS}

    def restore(self, state: dict[str, Any], slots: np.ndarray) -> None:
        for name in self.FIELDS:
            getattr(self, name)[slots] = state[name]


# -- count, sum, avg, vwap --------------------------------------------------------------------
class CountAcc(_ArrayAccumulator):
    """``count()`` counts rows; ``count(col)`` counts the rows where ``col`` is not null."""

    FIELDS = {"n": (np.int64, 0)}
    dtype = pl.Int64

    def __init__(self, column: str | None = None) -> None:
        super().__init__()
        self.column = column

    def _valid(self, inp: BatchInput) -> np.ndarray | None:
        if self.column is None:
            return None
        column = inp.column(self.column)
        return column.is_not_null().to_numpy() if column.null_count() else None

    def add(self, pairs: Pairs, inp: BatchInput) -> None:
        pairs = _valid_pairs(pairs, self._valid(inp))
        # integer counts are exact in any order, so a bincount over the batch's groups is fine
        self.n[pairs.gslots] += np.bincount(pairs.gid, minlength=len(pairs.gslots))

    def add_one(self, slot: int, row: int, inp: BatchInput) -> None:
        valid = self._valid(inp)
        if valid is None or valid[row]:
            self.n[slot] += 1

    def merge(self, dst: int, src: int) -> None:
        self.n[dst] += self.n[src]

    def results(self, slots: np.ndarray) -> pl.Series:
        return pl.Series(values=self.n[slots], dtype=pl.Int64)

    def value(self, slot: int) -> Any:
        return int(self.n[slot])


class AvgAcc(_ArrayAccumulator):
    """``avg(col)``: a sequential float64 fold of the values, divided by their count."""

    FIELDS = {"total": (np.float64, 0.0), "n": (np.int64, 0)}

    def __init__(self, column: str) -> None:
        super().__init__()
        self.column = column

    def add(self, pairs: Pairs, inp: BatchInput) -> None:
        if inp.kind(self.column) == "null":
            return
        values, valid = inp.numeric(self.column)
        pairs = _valid_pairs(pairs, valid)
        np.add.at(self.total, pairs.slots, values[pairs.rows])
        self.n[pairs.gslots] += np.bincount(pairs.gid, minlength=len(pairs.gslots))

    def add_one(self, slot: int, row: int, inp: BatchInput) -> None:
        if inp.kind(self.column) == "null":
            return
        values, valid = inp.numeric(self.column)
        if valid is None or valid[row]:
            self.total[slot] += values[row]
            self.n[slot] += 1

    def merge(self, dst: int, src: int) -> None:
        self.total[dst] += self.total[src]
        self.n[dst] += self.n[src]

    def results(self, slots: np.ndarray) -> pl.Series:
        n = self.n[slots]
        with np.errstate(divide="ignore", invalid="ignore"):
            return _float_series(self.total[slots] / np.maximum(n, 1), n > 0)

    def value(self, slot: int) -> Any:
        n = int(self.n[slot])
        return None if n == 0 else float(self.total[slot] / n)


class SumOverflowError(OverflowError):
    """An integer sum whose exact value no 64-bit integer column can hold."""


def _cast_advice(column: str) -> str:
    return (f"To sum {column!r} as floats (rounded), cast it before the window (with_columns: "
            f"{{{column}: 'CAST({column} AS DOUBLE)'}}) and give the window another name "
            "(its saved sums are integers)")


class SumAcc(Accumulator):
    """``sum(col)``: over an integer (or boolean) column an exact integer, over any other
    number a sequential float64 fold in arrival order.

    The kind is fixed by the first batch that brings a value (a source's columns keep
    their type from batch to batch). Integer sums are exact whatever the order, so they
    add per batch in int64 whenever the batch cannot leave the int64 range (a bound
    checked first: the common case, one ``np.add.at``); otherwise that batch is added
    with Python integers. A slot keeps its exact sum as ``high * 2**62 + low``, with
    ``high == 0`` exactly when the sum fits an int64, so a sum may pass beyond int64 on
    the way and come back; only a *result* beyond int64 is refused (``SumOverflowError``):
    never a wrapped number.
    """

    def __init__(self, column: str) -> None:
        self.column = column
        self.mode: str | None = None  # "int" | "float", fixed by the first value
        self.n = np.zeros(0, dtype=np.int64)  # values added (0: the result is null)
        self.total = np.zeros(0, dtype=np.float64)  # "float": the fold
        self.low = np.zeros(0, dtype=np.int64)  # "int": the exact sum, see above
        self.high = np.zeros(0, dtype=np.int64)

    @property
    def dtype(self) -> pl.DataType:  # type: ignore[override]
        return pl.Int64 if self.mode == "int" else pl.Float64

    # -- the kind of a batch's values ----------------------------------------------------
    def _mode_for(self, inp: BatchInput, rows: np.ndarray) -> str | None:
        """The batch's kind for the records at ``rows``, fixing the accumulator's on the
        first value; None when those records bring no value to add."""
        if inp.kind(self.column) == "null":
            return None
        kind = "int" if _is_integer(inp.dtype(self.column)) else "float"
        valid = (inp.integers(self.column) if kind == "int" else inp.numeric(self.column))[1]
        if valid is not None and not valid[rows].any():
            return None  # nulls only: nothing to add, and no type learnt from them
        if self.mode is None:
            self.mode = kind
        elif kind == "float" and self.mode == "int":
            raise TypeError(
                f"sum({self.column}): column {self.column!r} held integers, and now holds "
                f"{inp.dtype(self.column)} values; an integer sum stays exact and cannot "
                f"turn into a float one halfway: give the column one type before the "
                f"window (with_columns: {{{self.column}: 'CAST({self.column} AS DOUBLE)'}})")
        return self.mode

    # -- protocol --------------------------------------------------------------------------
    def grow(self, capacity: int) -> None:
        self.n = _grown(self.n, capacity, 0)
        self.total = _grown(self.total, capacity, 0.0)
        self.low = _grown(self.low, capacity, 0)
        self.high = _grown(self.high, capacity, 0)

    def reset(self, slots: np.ndarray) -> None:
        self.n[slots] = 0
        self.total[slots] = 0.0
        self.low[slots] = 0
        self.high[slots] = 0

    def add(self, pairs: Pairs, inp: BatchInput) -> None:
        mode = self._mode_for(inp, pairs.rows)
        if mode is None:
            return
        if mode == "float":
            values, valid = inp.numeric(self.column)
            pairs = _valid_pairs(pairs, valid)
            np.add.at(self.total, pairs.slots, values[pairs.rows])
        else:
            values, valid = inp.integers(self.column)
            pairs = _valid_pairs(pairs, valid)
            self._add_integers(pairs, values[pairs.rows])
        self.n[pairs.gslots] += np.bincount(pairs.gid, minlength=len(pairs.gslots))

    def _add_integers(self, pairs: Pairs, values: np.ndarray) -> None:
        if not len(values):
            return
        if values.dtype == np.int64 and not self.high[pairs.gslots].any():
            low = self.low[pairs.gslots]
            bound = _max_abs(low) + _max_abs(values) * len(values)
            if bound <= _I64_MAX:  # no partial sum of this batch can leave int64
                np.add.at(self.low, pairs.slots, values)
                return
        sums = np.zeros(len(pairs.gslots), dtype=object)  # Python integers: exact
        np.add.at(sums, pairs.gid, values.astype(object))
        for slot, extra in zip(pairs.gslots.tolist(), sums.tolist(), strict=True):
            self._set_exact(slot, self._exact(slot) + int(extra))

    def _exact(self, slot: int) -> int:
        return int(self.high[slot]) * _HIGH_UNIT + int(self.low[slot])

    def _set_exact(self, slot: int, value: int) -> None:
        if _I64_MIN <= value <= _I64_MAX:
            self.high[slot], self.low[slot] = 0, value
            return
        high, low = divmod(value, _HIGH_UNIT)
        if not _I64_MIN <= high <= _I64_MAX:  # beyond 2**125: only 128-bit inputs get here
            raise SumOverflowError(f"sum({self.column}) of a window passed {value}, beyond "
                                   "what surestream sums exactly; " + _cast_advice(self.column))
        self.high[slot], self.low[slot] = high, low

    def add_one(self, slot: int, row: int, inp: BatchInput) -> None:
        mode = self._mode_for(inp, np.array([row]))
        if mode is None:
            return
        if mode == "float":
            values, _ = inp.numeric(self.column)
            self.total[slot] += values[row]
        else:
            values, _ = inp.integers(self.column)
            self._set_exact(slot, self._exact(slot) + int(values[row]))
        self.n[slot] += 1

    def merge(self, dst: int, src: int) -> None:
        if self.mode == "int":
            self._set_exact(dst, self._exact(dst) + self._exact(src))
        else:
            self.total[dst] += self.total[src]
        self.n[dst] += self.n[src]

    def _check_fits(self, slots: np.ndarray) -> None:
        big = slots[self.high[slots] != 0]
        if len(big):
            value = self._exact(int(big[0]))
            raise SumOverflowError(
                f"sum({self.column}) of a window is {value}, beyond the 64-bit integers "
                f"({_I64_MIN}..{_I64_MAX}) an output column holds; surestream does not wrap "
                "it around or round it. " + _cast_advice(self.column))

    def results(self, slots: np.ndarray) -> pl.Series:
        ok = self.n[slots] > 0
        if self.mode != "int":
            return _float_series(self.total[slots], ok)
        self._check_fits(slots)
        values = self.low[slots]
        if ok.all():
            return pl.Series(values=values, dtype=pl.Int64)
        return pl.Series(values=pa.array(values, mask=~ok), dtype=pl.Int64)

    def value(self, slot: int) -> Any:
        if self.n[slot] == 0:
            return None
        if self.mode != "int":
            return float(self.total[slot])
        self._check_fits(np.array([slot]))
        return int(self.low[slot])

    def snapshot(self, slots: np.ndarray) -> dict[str, Any]:
        state: dict[str, Any] = {"mode": self.mode, "n": self.n[slots].copy()}
        if self.mode == "int":
            state.update(low=self.low[slots].copy(), high=self.high[slots].copy())
        else:
            state["total"] = self.total[slots].copy()
        return state

    def restore(self, state: dict[str, Any], slots: np.ndarray) -> None:
        if state["mode"] is not None and self.mode is None:
            self.mode = state["mode"]
        self.n[slots] = state["n"]
        if state["mode"] == "int":
            self.low[slots], self.high[slots] = state["low"], state["high"]
        else:
            self.total[slots] = state["total"]


class VwapAcc(_ArrayAccumulator):
    """``vwap(value, weight)`` = sum(value * weight) / sum(weight); null when sum(weight)
    is 0. Each product is computed per record, then folded sequentially like a sum."""

    FIELDS = {"vw": (np.float64, 0.0), "w": (np.float64, 0.0)}

    def __init__(self, value: str, weight: str) -> None:
        super().__init__()
        self.value_col = value
        self.weight_col = weight

    def _columns(self, inp: BatchInput) -> tuple[np.ndarray, np.ndarray, np.ndarray | None] | None:
        if inp.kind(self.value_col) == "null" or inp.kind(self.weight_col) == "null":
            return None
        v, v_ok = inp.numeric(self.value_col)
        w, w_ok = inp.numeric(self.weight_col)
        valid = v_ok if w_ok is None else (w_ok if v_ok is None else v_ok & w_ok)
        return v, w, valid

    def add(self, pairs: Pairs, inp: BatchInput) -> None:
        cols = self._columns(inp)
        if cols is None:
            return
        v, w, valid = cols
        pairs = _valid_pairs(pairs, valid)
        wr = w[pairs.rows]
        np.add.at(self.vw, pairs.slots, v[pairs.rows] * wr)
        np.add.at(self.w, pairs.slots, wr)

    def add_one(self, slot: int, row: int, inp: BatchInput) -> None:
        cols = self._columns(inp)
        if cols is None:
            return
        v, w, valid = cols
        if valid is None or valid[row]:
            self.vw[slot] += v[row] * w[row]
            self.w[slot] += w[row]

    def merge(self, dst: int, src: int) -> None:
        self.vw[dst] += self.vw[src]
        self.w[dst] += self.w[src]

    def results(self, slots: np.ndarray) -> pl.Series:
        w = self.w[slots]
        ok = w != 0
        with np.errstate(divide="ignore", invalid="ignore"):
            return _float_series(np.where(ok, self.vw[slots] / np.where(ok, w, 1.0), 0.0), ok)

    def value(self, slot: int) -> Any:
        w = self.w[slot]
        return None if w == 0 else float(self.vw[slot] / w)


# -- min, max, first, last ----------------------------------------------------------------------
def _typed_mode(inp: BatchInput, column: str) -> str:
    """How min/max/first/last keep a column's values exactly: ``integer`` (int64 arrays:
    integers that fit, booleans), ``numeric`` (float64 arrays: floats), ``object`` (Python
    values: text, dates, decimals, unsigned 64-bit integers) or ``null`` (nothing to add)."""
    kind = inp.kind(column)
    if kind != "numeric":
        return kind
    dtype = inp.dtype(column)
    if dtype == pl.Boolean or dtype in _INT64_SAFE:
        return "integer"
    return "numeric" if dtype.is_float() else "object"


class _TypedAccumulator(Accumulator):
    """Shared by min/max/first/last, which give a value of the column as it is (its type
    too): integers and booleans are kept in int64 arrays and floats in float64 arrays
    (vectorized), any other type (text, dates, decimals) as Python objects (record by
    record). The mode is fixed by the first batch whose column has a type; until then every
    result is null."""

    def __init__(self, column: str) -> None:
        self.column = column
        self.mode: str | None = None  # "integer" | "numeric" | "object"
        self.dtype = pl.Float64
        self.has = np.zeros(0, dtype=bool)
        self.vals: np.ndarray = np.zeros(0, dtype=np.float64)

    def _mode_for(self, inp: BatchInput) -> str | None:
        """The batch's mode, fixing this accumulator's on first sight; None = nothing to add."""
        kind = _typed_mode(inp, self.column)
        if kind == "null":
            return None
        if self.mode is None:
            self.mode = kind
            self.dtype = pl.Float64 if kind == "numeric" else inp.dtype(self.column)
            self.vals = self._empty_array(len(self.has))
        elif kind != self.mode:
            raise TypeError(
                f"column {self.column!r} changed type to {inp.dtype(self.column)} after "
                f"{'numbers' if self.mode == 'numeric' else self.dtype}; cast it to one type "
                "before the window"
            )
        return kind

    def _empty_value(self) -> Any:
        return None if self.mode == "object" else 0 if self.mode == "integer" else 0.0

    def _empty_array(self, n: int) -> np.ndarray:
        dtype = object if self.mode == "object" else np.int64 if self.mode == "integer" \
            else np.float64
        return np.full(n, self._empty_value(), dtype=dtype)

    def _values(self, inp: BatchInput, mode: str) -> tuple[Any, np.ndarray | None]:
        """The batch's values of the column in this mode's representation, and validity."""
        if mode == "integer":
            return inp.integers(self.column)
        return inp.numeric(self.column) if mode == "numeric" else inp.objects(self.column)

    def grow(self, capacity: int) -> None:
        self.has = _grown(self.has, capacity, False)
        self.vals = _grown(self.vals, capacity, self._empty_value())

    def reset(self, slots: np.ndarray) -> None:
        self.has[slots] = False
        self.vals[slots] = self._empty_value()

    def results(self, slots: np.ndarray) -> pl.Series:
        if self.mode == "object":
            return pl.Series(values=[self.value(int(s)) for s in slots], dtype=self.dtype)
        if self.mode == "integer":
            has = self.has[slots]
            ints = pl.Series(values=self.vals[slots], dtype=pl.Int64)
            if not has.all():
                ints = pl.select(pl.when(pl.Series(has)).then(ints)).to_series()
            return ints.cast(self.dtype)
        return _float_series(self.vals[slots].astype(np.float64), self.has[slots])

    def value(self, slot: int) -> Any:
        if not self.has[slot]:
            return None
        v = self.vals[slot]
        if self.mode == "integer":
            return bool(v) if self.dtype == pl.Boolean else int(v)
        return float(v) if self.mode == "numeric" else v

    def snapshot(self, slots: np.ndarray) -> dict[str, Any]:
        return {"mode": self.mode, "dtype": self.dtype, "has": self.has[slots].copy(),
                "vals": copy.deepcopy(self.vals[slots])}

    def restore(self, state: dict[str, Any], slots: np.ndarray) -> None:
        if state["mode"] is not None and self.mode is None:
            self.mode, self.dtype = state["mode"], state["dtype"]
            self.vals = self._empty_array(len(self.has))
        self.has[slots] = state["has"]
        self.vals[slots] = copy.deepcopy(state["vals"])


class MinMaxAcc(_TypedAccumulator):
    """``min(col)`` / ``max(col)``: ``np.minimum.at``/``np.maximum.at`` on numbers (NaN wins,
    as in Java's Math.min), Python comparison on other types."""

    def __init__(self, column: str, largest: bool) -> None:
        super().__init__(column)
        self.largest = largest
        self._ufunc = np.maximum if largest else np.minimum

    def _better(self, new: Any, cur: Any) -> bool:
        return new > cur if self.largest else new < cur

    def add(self, pairs: Pairs, inp: BatchInput) -> None:
        mode = self._mode_for(inp)
        if mode is None:
            return
        if mode == "object":
            for slot, row in zip(pairs.slots.tolist(), pairs.rows.tolist(), strict=True):
                self.add_one(slot, row, inp)
            return
        values, valid = self._values(inp, mode)
        pairs = _valid_pairs(pairs, valid)
        if not len(pairs):
            return
        # a slot's first value seeds it, so the fold is the same as record by record
        fresh_group = np.zeros(len(pairs.gslots), dtype=bool)
        fresh_group[pairs.gid] = True
        fresh_group &= ~self.has[pairs.gslots]
        if fresh_group.any():
            first_pair = np.full(len(pairs.gslots), len(pairs), dtype=np.int64)
            np.minimum.at(first_pair, pairs.gid, np.arange(len(pairs), dtype=np.int64))
            seeds = first_pair[fresh_group]
            self.vals[pairs.slots[seeds]] = values[pairs.rows[seeds]]
            self.has[pairs.slots[seeds]] = True
        self._ufunc.at(self.vals, pairs.slots, values[pairs.rows])

    def add_one(self, slot: int, row: int, inp: BatchInput) -> None:
        mode = self._mode_for(inp)
        if mode is None:
            return
        if mode == "object":
            values, valid = inp.objects(self.column)
            v = values[row]
            if valid is not None and not valid[row]:
                return
            if not self.has[slot] or self._better(v, self.vals[slot]):
                self.vals[slot] = v
                self.has[slot] = True
            return
        values, valid = self._values(inp, mode)
        if valid is not None and not valid[row]:
            return
        v = values[row]
        self.vals[slot] = self._ufunc(self.vals[slot], v) if self.has[slot] else v
        self.has[slot] = True

    def merge(self, dst: int, src: int) -> None:
        if not self.has[src]:
            return
        if not self.has[dst]:
            self.vals[dst], self.has[dst] = self.vals[src], True
        elif self.mode == "object":
            if self._better(self.vals[src], self.vals[dst]):
                self.vals[dst] = self.vals[src]
        else:
            self.vals[dst] = self._ufunc(self.vals[dst], self.vals[src])


class FirstLastAcc(_TypedAccumulator):
    """``first(col)`` / ``last(col)``: the value of the record with the smallest / largest
    event time, ties by arrival (first = earliest arrival, last = latest). Null values are
    skipped. The record's (ts, seq) is kept so that session merges can compare."""

    def __init__(self, column: str, last: bool) -> None:
        super().__init__(column)
        self.last = last
        self.best_ts = np.zeros(0, dtype=np.int64)
        self.best_seq = np.zeros(0, dtype=np.int64)

    def grow(self, capacity: int) -> None:
        super().grow(capacity)
        self.best_ts = _grown(self.best_ts, capacity, 0)
        self.best_seq = _grown(self.best_seq, capacity, 0)

    def _wins(self, ts: int, cur_ts: int) -> bool:
        """Does a record arriving *after* the current one replace it?"""
        return ts >= cur_ts if self.last else ts < cur_ts

    def add(self, pairs: Pairs, inp: BatchInput) -> None:
        mode = self._mode_for(inp)
        if mode is None:
            return
        if mode == "object":
            for slot, row in zip(pairs.slots.tolist(), pairs.rows.tolist(), strict=True):
                self.add_one(slot, row, inp)
            return
        values, valid = self._values(inp, mode)
        pairs = _valid_pairs(pairs, valid)
        if not len(pairs):
            return
        g = len(pairs.gslots)
        ts = inp.ts[pairs.rows]
        pos = np.arange(len(pairs), dtype=np.int64)
        # the batch's best record per group: extreme ts, then earliest/latest arrival
        if self.last:
            bts = np.full(g, _I64_MIN, dtype=np.int64)
            np.maximum.at(bts, pairs.gid, ts)
            tie = ts == bts[pairs.gid]
            bpos = np.full(g, -1, dtype=np.int64)
            np.maximum.at(bpos, pairs.gid[tie], pos[tie])
            touched = bpos >= 0
        else:
            bts = np.full(g, _I64_MAX, dtype=np.int64)
            np.minimum.at(bts, pairs.gid, ts)
            tie = ts == bts[pairs.gid]
            bpos = np.full(g, len(pairs), dtype=np.int64)
            np.minimum.at(bpos, pairs.gid[tie], pos[tie])
            touched = bpos < len(pairs)
        win = bpos[touched]
        slots = pairs.gslots[touched]
        cur_ts = self.best_ts[slots]
        new_ts = ts[win]
        replace = ~self.has[slots] | ((new_ts >= cur_ts) if self.last else (new_ts < cur_ts))
        slots, win = slots[replace], win[replace]
        self.vals[slots] = values[pairs.rows[win]]
        self.best_ts[slots] = ts[win]
        self.best_seq[slots] = inp.seq[pairs.rows[win]]
        self.has[slots] = True

    def add_one(self, slot: int, row: int, inp: BatchInput) -> None:
        mode = self._mode_for(inp)
        if mode is None:
            return
        values, valid = self._values(inp, mode)
        if valid is not None and not valid[row]:
            return
        ts = int(inp.ts[row])
        if not self.has[slot] or self._wins(ts, int(self.best_ts[slot])):
            self.vals[slot] = values[row]
            self.best_ts[slot] = ts
            self.best_seq[slot] = inp.seq[row]
            self.has[slot] = True

    def merge(self, dst: int, src: int) -> None:
        if not self.has[src]:
            return
        src_key = (int(self.best_ts[src]), int(self.best_seq[src]))
        dst_key = (int(self.best_ts[dst]), int(self.best_seq[dst]))
        if not self.has[dst] or (src_key > dst_key if self.last else src_key < dst_key):
            self.vals[dst] = self.vals[src]
            self.best_ts[dst], self.best_seq[dst] = src_key
            self.has[dst] = True

    def snapshot(self, slots: np.ndarray) -> dict[str, Any]:
        state = super().snapshot(slots)
        state["best_ts"] = self.best_ts[slots].copy()
        state["best_seq"] = self.best_seq[slots].copy()
        return state

    def restore(self, state: dict[str, Any], slots: np.ndarray) -> None:
        super().restore(state, slots)
        self.best_ts[slots] = state["best_ts"]
        self.best_seq[slots] = state["best_seq"]


# -- user aggregate functions ---------------------------------------------------------------------
class UdafCallError(Exception):
    """A call of a user aggregate function raised: which aggregation, which method, and the
    user's exception (``cause``), for the error record that reports it."""

    def __init__(self, aggregation: str, function: AggregateFunction, method: str,
                 cause: Exception) -> None:
        self.aggregation = aggregation
        self.method = method
        self.cause = cause
        super().__init__(f"aggregation {aggregation!r} ({type(function).__name__}.{method}) "
                         f"raised {type(cause).__name__}: {cause}")


@dataclass(frozen=True, slots=True)
class FailedResult:
    """Stands for a firing's value that ``result`` raised on; the window operator sends such
    a firing to errors instead of emitting it (``windows.output``)."""

    error: UdafCallError


class UdafAcc(Accumulator):
    """A user ``AggregateFunction`` (create/add/merge/result), one Python accumulator per
    slot, fed record by record in arrival order (as Flink's AggregatingState).

    A failing user call must cost its record, not the run, and must leave the accumulator as
    it was. The window operators therefore try each record's adds first
    (``windows.udaf_adds``) and refuse a record whose ``add`` (or, for a session it would
    merge, ``merge``) raises; the adds here then repeat calls that succeeded, and a failure
    now means the function is not deterministic (the run stops, saying so). ``result`` is
    called at firing time: a failure there is a ``FailedResult`` value, reported per firing.
    """

    dtype = None

    def __init__(self, function: AggregateFunction, name: str = "udf") -> None:
        self.function = function
        self.name = name
        self.codec = codec_of(function)
        self.accs: list[Any] = []

    # -- user calls, failures named --------------------------------------------------------
    def create(self) -> Any:
        """A new accumulator (``UdafCallError`` if ``create`` raises)."""
        try:
            return self.function.create()
        except Exception as exc:  # user code may raise anything
            raise UdafCallError(self.name, self.function, "create", exc) from exc

    def added(self, acc: Any, record: dict[str, Any]) -> Any:
        """``add(acc, record)`` (``UdafCallError`` if it raises; ``acc`` may be changed)."""
        try:
            return self.function.add(acc, record)
        except Exception as exc:  # user code may raise anything
            raise UdafCallError(self.name, self.function, "add", exc) from exc

    def merged(self, a: Any, b: Any) -> Any:
        """``merge(a, b)`` (``UdafCallError`` if it raises; ``a``/``b`` may be changed)."""
        try:
            return self.function.merge(a, b)
        except Exception as exc:  # user code may raise anything
            raise UdafCallError(self.name, self.function, "merge", exc) from exc

    def result_of(self, acc: Any) -> Any:
        """``result(acc)``, or a ``FailedResult`` when it raises."""
        try:
            return self.function.result(acc)
        except Exception as exc:  # user code may raise anything
            return FailedResult(UdafCallError(self.name, self.function, "result", exc))

    def _not_deterministic(self, error: UdafCallError) -> RuntimeError:
        return RuntimeError(
            f"{error} on a record it accepted when the window tried it first: a user "
            f"aggregate function must be deterministic (the same accumulator and record "
            f"give the same outcome) and keep no state outside its accumulator")

    # -- protocol ----------------------------------------------------------------------------
    def grow(self, capacity: int) -> None:
        self.accs.extend([None] * (capacity - len(self.accs)))

    def reset(self, slots: np.ndarray) -> None:
        for s in slots.tolist():
            self.accs[s] = self.create()

    def add(self, pairs: Pairs, inp: BatchInput) -> None:
        records = inp.records()
        add, accs = self.function.add, self.accs
        for slot, row in zip(pairs.slots.tolist(), pairs.rows.tolist(), strict=True):
            try:
                accs[slot] = add(accs[slot], records[row])
            except Exception as exc:  # the window tried this add before: see the class doc
                error = UdafCallError(self.name, self.function, "add", exc)
                raise self._not_deterministic(error) from exc

    def add_one(self, slot: int, row: int, inp: BatchInput) -> None:
        try:
            self.accs[slot] = self.added(self.accs[slot], inp.records()[row])
        except UdafCallError as error:
            raise self._not_deterministic(error) from error.cause

    def merge(self, dst: int, src: int) -> None:
        try:
            self.accs[dst] = self.merged(self.accs[dst], self.accs[src])
        except UdafCallError as error:
            raise self._not_deterministic(error) from error.cause

    def results(self, slots: np.ndarray) -> list[Any]:
        return [self.result_of(self.accs[s]) for s in slots.tolist()]

    def value(self, slot: int) -> Any:
        return self.result_of(self.accs[slot])

    def snapshot(self, slots: np.ndarray) -> dict[str, Any]:
        """The accumulators as plain data (through the function's ``state_codec`` if it
        has one): a copy, and a value that is not data fails at the first checkpoint."""
        accs = [self.accs[s] for s in slots.tolist()]
        if self.codec is not None:
            accs = [self.codec.encode(acc) for acc in accs]
        return {"accs": round_trip(accs, "user aggregate accumulators")}

    def restore(self, state: dict[str, Any], slots: np.ndarray) -> None:
        accs = round_trip(state["accs"], "user aggregate accumulators")
        if self.codec is not None:
            accs = [self.codec.decode(acc) for acc in accs]
        for s, acc in zip(slots.tolist(), accs, strict=True):
            self.accs[s] = acc


# -- construction -------------------------------------------------------------------------------
_BUILDERS: dict[str, Callable[[tuple[str, ...]], Accumulator]] = {
    "count": lambda cols: CountAcc(cols[0] if cols else None),
    "sum": lambda cols: SumAcc(cols[0]),
    "avg": lambda cols: AvgAcc(cols[0]),
    "min": lambda cols: MinMaxAcc(cols[0], largest=False),
    "max": lambda cols: MinMaxAcc(cols[0], largest=True),
    "first": lambda cols: FirstLastAcc(cols[0], last=False),
    "last": lambda cols: FirstLastAcc(cols[0], last=True),
    "vwap": lambda cols: VwapAcc(cols[0], cols[1]),
}


def make_accumulator(spec: AggregationSpec, name: str = "") -> Accumulator:
    """The accumulator for one aggregation spec (``name``: its output column, for
    messages)."""
    if spec.udf is not None:
        return UdafAcc(spec.udf, name or str(spec))
    try:
        return _BUILDERS[spec.function](spec.columns)
    except KeyError:
        raise ValueError(f"unknown aggregation {spec.function!r}") from None


class AggregateSet:
    """Every aggregation of one window operator, over a shared slot space."""

    def __init__(self, specs: dict[str, AggregationSpec]) -> None:
        self.names = list(specs)
        self.accs = [make_accumulator(s, n) for n, s in specs.items()]
        #: the user aggregate functions, whose adds the window operators try first
        self.udafs = [acc for acc in self.accs if isinstance(acc, UdafAcc)]
        self._builtins = [acc for acc in self.accs if not isinstance(acc, UdafAcc)]
        self.capacity = 0

    def grow(self, capacity: int) -> None:
        if capacity > self.capacity:
            for acc in self.accs:
                acc.grow(capacity)
            self.capacity = capacity

    def reset(self, slots: np.ndarray) -> None:
        for acc in self.accs:
            acc.reset(slots)

    def add(self, pairs: Pairs, inp: BatchInput, *, udaf_pairs: Pairs | None = None) -> None:
        """Fold the pairs in; ``udaf_pairs``: the user functions get these instead (the
        window operator set the others' accumulators from its trial)."""
        if len(pairs):
            for acc in self._builtins:
                acc.add(pairs, inp)
            for acc in self.udafs:
                acc.add(pairs if udaf_pairs is None else udaf_pairs, inp)

    def add_one(self, slot: int, row: int, inp: BatchInput, *, udafs: bool = True) -> None:
        """Fold one record into ``slot``; ``udafs=False``: the built-ins only (the caller
        has added the record to the user functions' accumulators already)."""
        for acc in self.accs if udafs else self._builtins:
            acc.add_one(slot, row, inp)

    def merge(self, dst: int, src: int, *, udafs: bool = True) -> None:
        """Fold ``src`` into ``dst``; ``udafs=False``: the built-ins only (the caller
        installs the user functions' merged accumulators)."""
        for acc in self.accs if udafs else self._builtins:
            acc.merge(dst, src)

    def results(self, slots: np.ndarray) -> list[pl.Series | list[Any]]:
        """Per aggregation (in spec order), the results of ``slots``."""
        return [acc.results(slots) for acc in self.accs]

    def values(self, slot: int) -> list[Any]:
        """Per aggregation, the result of one slot as a Python value."""
        return [acc.value(slot) for acc in self.accs]

    def dtypes(self) -> list[pl.DataType | None]:
        return [acc.dtype for acc in self.accs]

    def snapshot(self, slots: np.ndarray) -> list[dict[str, Any]]:
        return [acc.snapshot(slots) for acc in self.accs]

    def restore(self, state: list[dict[str, Any]], slots: np.ndarray) -> None:
        for acc, st in zip(self.accs, state, strict=True):
            acc.restore(st, slots)
