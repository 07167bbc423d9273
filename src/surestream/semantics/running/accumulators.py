"""The built-in aggregations as columns that accumulate: each record contributes a *delta*
(1 for a count, its value for a sum, ...), and the result after every record is a
cumulative operation over its group (``cum_sum``, ``cum_min``, ...) started from the
group's state row. One polars expression per column for the whole batch: no per-record
Python.

Why the state is a row *in front of* the group's records rather than an offset added
afterwards: float addition is not associative, so ``state + cum_sum(batch)`` would differ
in the last bits from the sequential fold ``((state + a) + b)`` that a batch of another
size computes. With the state row first, every running sum is that very fold, and the
rows are bit-identical whatever the batch cut (the window accumulators keep the same rule,
``semantics/aggregates.py``).

The results follow the window aggregations exactly (SEMANTICS §5): ``count()`` counts
records, ``count(x)`` non-null values; ``sum`` is an exact int64 over integers and booleans,
float64 otherwise (text parsed as numbers); ``avg`` and ``vwap`` are float64; ``min``,
``max``, ``first``, ``last`` keep the column's type; ``first``/``last`` go by event time,
ties by arrival; nulls are ignored; an aggregation that saw no value is null.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from surestream.model.aggregations import AggregationSpec
from surestream.semantics.aggregate_inputs import float_values

#: working columns (the window operator's prefix: key fields and aggregations may not use it)
N = "__ss_n"  # records aggregated so far: the rows' ``version``
LAST = "__ss_last"  # the largest event time among the group's records
TS = "__ss_ts"  # a record's event time (its arrival number without a watermark)
_I64_LIMIT = float(2**62)  # a sum bound above this could leave int64: refused, not wrapped


class IntegerSumOverflow(OverflowError):
    """An integer running sum would leave int64 (it is never wrapped)."""


@dataclass(frozen=True)
class RunningAggregation:
    """One output column: its function, input columns and the state columns it keeps."""

    index: int
    name: str
    spec: AggregationSpec

    def col(self, part: str) -> str:
        return f"__ss_a{self.index}_{part}"

    @property
    def function(self) -> str:
        return self.spec.function

    @property
    def state_columns(self) -> list[str]:
        parts = {"count": ["n"], "sum": ["s", "n"], "avg": ["s", "n"], "min": ["m"],
                 "max": ["m"], "first": ["v", "t"], "last": ["v", "t"],
                 "vwap": ["pv", "w"]}[self.function]
        return [self.col(p) for p in parts]


class Accumulators:
    """Every aggregation of one step: deltas, running values, results and state columns."""

    def __init__(self, aggregations: dict[str, AggregationSpec], owner: str) -> None:
        self.owner = owner
        self.aggs = [RunningAggregation(i, name, spec)
                     for i, (name, spec) in enumerate(aggregations.items())]
        #: sum -> "int" | "float" once its first values are seen (as SumAcc fixes it)
        self.sum_modes: dict[int, str | None] = {a.index: None for a in self.aggs
                                                 if a.function == "sum"}

    @property
    def state_columns(self) -> list[str]:
        return [N, LAST, *(c for a in self.aggs for c in a.state_columns)]

    # -- deltas: one row per record -------------------------------------------------------
    def deltas(self, data: pl.DataFrame, ts: np.ndarray) -> list[pl.Series]:
        """The state columns' contribution of each record of ``data`` (event times
        ``ts``)."""
        n = data.height
        out = [pl.Series(N, np.ones(n, dtype=np.int64)), pl.Series(LAST, ts, dtype=pl.Int64)]
        for a in self.aggs:
            out += self._delta(a, data, ts)
        return out

    def _column(self, data: pl.DataFrame, name: str) -> pl.Series:
        """A column of the batch; one no record has is all null (a field is optional)."""
        if name in data.columns:
            return data.get_column(name)
        return pl.Series(name, [None] * data.height, dtype=pl.Null)

    def _delta(self, a: RunningAggregation, data: pl.DataFrame, ts: np.ndarray
               ) -> list[pl.Series]:
        fn, cols = a.function, a.spec.columns
        if fn == "count":
            if not cols:
                return [pl.Series(a.col("n"), np.ones(data.height, dtype=np.int64))]
            valid = self._column(data, cols[0]).is_not_null().cast(pl.Int64)
            return [valid.alias(a.col("n"))]
        if fn in ("min", "max"):
            return [self._column(data, cols[0]).alias(a.col("m"))]
        if fn in ("first", "last"):
            values = self._column(data, cols[0])
            t = pl.Series(a.col("t"), ts, dtype=pl.Int64)
            return [values.alias(a.col("v")),
                    pl.select(pl.when(values.is_not_null()).then(t)).to_series()
                    .alias(a.col("t"))]
        if fn == "vwap":
            v, v_ok = float_values(self._column(data, cols[0]))
            w, w_ok = float_values(self._column(data, cols[1]))
            ok = _and(v_ok, w_ok, data.height)
            return [pl.Series(a.col("pv"), np.where(ok, v * w, 0.0)),
                    pl.Series(a.col("w"), np.where(ok, w, 0.0))]
        if fn == "sum" and self._sum_mode(a, data) == "int":
            values = self._column(data, cols[0])
            return [values.cast(pl.Int64).fill_null(0).alias(a.col("s")),
                    values.is_not_null().cast(pl.Int64).alias(a.col("n"))]
        # sum over floats or text, avg
        series = self._column(data, cols[0])
        values, valid = float_values(series) if series.dtype != pl.Null else \
            (np.zeros(data.height), np.zeros(data.height, dtype=bool))
        ok = np.ones(data.height, dtype=bool) if valid is None else valid
        return [pl.Series(a.col("s"), np.where(ok, values, 0.0)),
                pl.Series(a.col("n"), ok.astype(np.int64))]

    def _sum_mode(self, a: RunningAggregation, data: pl.DataFrame) -> str | None:
        """``int`` over integers and booleans (exact), ``float`` otherwise, fixed by the
        first values the sum sees (a column of nulls only tells nothing)."""
        series = self._column(data, a.spec.columns[0])
        if series.dtype == pl.Null or series.null_count() == len(series):
            # nothing to add, and no type learnt: zeros in the sum's type (int64 zeros
            # while it is unknown, which become 0.0 exactly if it turns out float)
            return self.sum_modes[a.index] or "int"
        kind = "int" if series.dtype.is_integer() or series.dtype == pl.Boolean else "float"
        known = self.sum_modes[a.index]
        if known is None:
            self.sum_modes[a.index] = kind
        elif known != kind:
            if known == "float":
                return "float"
            raise ValueError(
                f"step {self.owner!r}: {a.spec} has summed integers exactly so far and now "
                f"gets {series.dtype} values; give column {a.spec.columns[0]!r} one type "
                "(e.g. a cast in a with_columns step)")
        return kind

    def check_integer_sums(self, frame: pl.DataFrame) -> None:
        """Refuse an integer sum that could leave int64 (a bound on the running sums: the
        state's magnitude plus every delta's), naming the step: never wrap silently."""
        for a in self.aggs:
            if a.function == "sum" and self.sum_modes[a.index] == "int":
                col = frame.get_column(a.col("s"))
                if col.dtype.is_integer() and float(col.cast(pl.Float64).abs().sum()) \
                        > _I64_LIMIT:
                    raise IntegerSumOverflow(
                        f"step {self.owner!r}: {a.spec} could leave the 64-bit integer range "
                        "in output_mode update/complete; cast the column to float first "
                        "(with_columns), or use a window with output_mode append")

    # -- running values -------------------------------------------------------------------
    def cumulate(self, frame: pl.DataFrame, over: list[str]) -> pl.DataFrame:
        """Each state column's running value over the rows of its group, in row order (the
        group's state row first)."""
        def run(expr: pl.Expr) -> pl.Expr:
            return expr.over(over) if over else expr

        exprs = [run(pl.col(N).cum_sum()), run(pl.col(LAST).cum_max().forward_fill())]
        firsts: list[pl.Expr] = []
        for a in self.aggs:
            fn = a.function
            if fn in ("count", "sum", "avg", "vwap"):
                exprs += [run(pl.col(c).cum_sum()) for c in a.state_columns]
            elif fn in ("min", "max"):
                m = pl.col(a.col("m"))
                exprs.append(run((m.cum_min() if fn == "min" else m.cum_max())
                                 .forward_fill()).alias(a.col("m")))
            else:
                t = pl.col(a.col("t"))
                held = (t.cum_min() if fn == "first" else t.cum_max()).forward_fill()
                before = held.shift(1)
                newer = (t < before) if fn == "first" else (t >= before)
                sets = t.is_not_null() & (before.is_null() | newer)
                firsts.append(run(sets).alias(a.col("set")))
                exprs.append(run(held).alias(a.col("t")))
        if firsts:
            frame = frame.with_columns(firsts)
            exprs += [run(pl.when(pl.col(a.col("set"))).then(pl.col(a.col("v")))
                          .forward_fill()).alias(a.col("v"))
                      for a in self.aggs if a.function in ("first", "last")]
        frame = frame.with_columns(exprs)
        return frame.drop([a.col("set") for a in self.aggs
                           if a.function in ("first", "last")])

    def results(self) -> list[pl.Expr]:
        """The output columns, from the running (or state) columns."""
        out = []
        for a in self.aggs:
            fn = a.function
            if fn == "count":
                expr = pl.col(a.col("n"))
            elif fn == "sum":
                expr = pl.when(pl.col(a.col("n")) > 0).then(pl.col(a.col("s")))
                if self.sum_modes[a.index] != "int":
                    expr = expr.cast(pl.Float64)
            elif fn == "avg":
                expr = pl.when(pl.col(a.col("n")) > 0).then(
                    pl.col(a.col("s")) / pl.col(a.col("n")))
            elif fn in ("min", "max"):
                expr = pl.col(a.col("m"))
            elif fn in ("first", "last"):
                expr = pl.col(a.col("v"))
            else:
                expr = pl.when(pl.col(a.col("w")) != 0).then(
                    pl.col(a.col("pv")) / pl.col(a.col("w")))
            out.append(expr.alias(a.name))
        return out


def _and(a: np.ndarray | None, b: np.ndarray | None, n: int) -> np.ndarray:
    """Both validity masks (None: every value counts)."""
    out = np.ones(n, dtype=bool)
    if a is not None:
        out &= a
    if b is not None:
        out &= b
    return out
