"""User code on Flink: the user's ``map`` / ``filter`` / ``map_batches`` function as a PyFlink
UDF that gets what the local runner gives it and reports failures as the local runner does.

Runs in PyFlink's Python workers (process mode), under the Flink environment's interpreter,
where surestream is not installed: ``submit`` ships this module with the job driver, and it
imports only the standard library, pyflink and the stdlib-only ``model.declared_schema``
and ``semantics.row_isolation`` at import; pandas, pyarrow and polars (the Flink
environment has them: scripts/flink-deps.sh) only when a batch function runs.

- ``map`` / ``filter`` (``RecordFunction``): a table function called once per record with
  the record as a dict (the values as Python int / float / str / bool / None, as
  ``polars.DataFrame.row(named=True)`` gives them on the local runner). It yields one row
  ``(error_type, error_message, *columns)`` per output record (``map``: each result record
  conformed to the declared ``output_schema``; ``filter``: one empty row when kept), or one
  row with the exception's class name and text when the function raised -- the local
  runner's error record for that input (SEMANTICS §6). Outputs of a failing call are
  discarded whole, as there.
- ``map_batches`` (``BatchFunction``): a pandas UDF over an Arrow batch, handed to the user
  function as a ``polars.DataFrame`` with the columns' own types (integer columns arrive as
  text and are parsed back: pandas would make an integer column with nulls a float column).
  Its last argument, the watermark before each row (``sql_user_code.WM_BEFORE``), comes
  back unchanged as ``wm__``. The result is conformed to ``output_schema``; when the call
  fails, the failing rows are isolated by bisection as on the local runner
  (``row_isolation``), each reported as ``user_function_error`` with ``"<Exception>: <first
  line>"``. A row fails if and only if it fails alone, so Flink's Arrow batch sizes do not
  change the results.

A function entry (``FlinkJob.functions``): ``{"name", "kind", "module", "attribute",
"step", "path", "inputs": [[column, SQL type], ...], "outputs": [[column, spec type], ...]}``.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from surestream.model.declared_schema import conform_frame, conform_record, polars_types
from surestream.semantics.row_isolation import isolate_failures

#: the ``error_type`` of a map_batches failure (model.error_kinds.USER_FUNCTION_ERROR)
USER_FUNCTION_ERROR = "user_function_error"
#: spec type -> Flink SQL type of a declared output column
SQL_TYPES = {"int": "BIGINT", "float": "DOUBLE", "string": "STRING", "bool": "BOOLEAN"}


def iter_records(result: Any, producer: str) -> Iterator[dict[str, Any]]:
    """What a map function returned, as records (``semantics.records.iter_records``: the
    same rules and messages; that module needs polars at import, this one must not)."""
    if result is None:
        return
    if isinstance(result, Mapping):
        yield dict(result)
        return
    if isinstance(result, str | bytes) or not isinstance(result, Iterable):
        raise TypeError(f"{producer} must return a dict, None or an iterable of dicts, "
                        f"not {type(result).__name__}")
    for item in result:
        if not isinstance(item, Mapping):
            raise TypeError(f"{producer} produced a {type(item).__name__}, not a dict")
        yield dict(item)


class _UserFunction:
    """The user's function, imported by name in the worker (never pickled by value)."""

    def __init__(self, entry: dict[str, Any]) -> None:
        self.kind: str = entry["kind"]
        self.module: str = entry["module"]
        self.attribute: str = entry["attribute"]
        self.step: str = entry["step"]
        self.columns: list[str] = [c for c, _ in entry["inputs"]]
        self.input_types: list[str] = [t for _, t in entry["inputs"]]
        outputs = entry.get("outputs")
        self.schema: dict[str, str] | None = None if outputs is None else dict(outputs)
        self._function: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_function"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _function=None)

    @property
    def function(self) -> Any:
        if self._function is None:
            obj: Any = importlib.import_module(self.module)
            for part in self.attribute.split("."):
                obj = getattr(obj, part)
            self._function = obj
        return self._function


class RecordFunction(_UserFunction):
    """``map`` / ``filter`` as a table function: see the module docstring."""

    def __call__(self, *values: Any) -> Iterator[tuple[Any, ...]]:
        record = dict(zip(self.columns, values, strict=True))
        width = len(self.schema or ())
        try:
            if self.kind == "filter":
                rows: list[tuple[Any, ...]] = [()] if bool(self.function(record)) else []
            else:
                produced = list(iter_records(self.function(record), "a map function"))
                schema = self.schema or {}
                rows = [tuple(conform_record(r, schema).values()) for r in produced]
        except Exception as exc:  # noqa: BLE001 - user code may raise anything
            yield (type(exc).__name__, str(exc), *([None] * width))
            return
        for row in rows:
            yield (None, None, *row)


class BatchFunction(_UserFunction):
    """``map_batches`` as a pandas UDF returning a ROW: see the module docstring."""

    def frame(self, series: tuple[Any, ...]) -> Any:
        """The Arrow batch's columns as the polars frame the local runner would pass."""
        import polars as pl
        import pyarrow as pa

        arrow = {"DOUBLE": pa.float64(), "STRING": pa.string(), "BOOLEAN": pa.bool_()}
        arrays = {}
        for name, sql_type, s in zip(self.columns, self.input_types, series, strict=True):
            if sql_type == "BIGINT":  # sent as text (CAST(... AS STRING)), exact
                arrays[name] = pa.Array.from_pandas(s, type=pa.string()).cast(pa.int64())
            else:
                arrays[name] = pa.Array.from_pandas(s, type=arrow[sql_type])
        frame = pl.from_arrow(pa.table(arrays))
        assert isinstance(frame, pl.DataFrame)
        return frame

    def __call__(self, *series: Any) -> Any:
        import pandas as pd
        import polars as pl

        *series, carried = series  # the watermark before each row, handed back (wm__)
        frame = self.frame(tuple(series))
        n = frame.height
        schema = self.schema or {}

        def attempt(lo: int, hi: int) -> Any:
            return conform_frame(self.function(frame.slice(lo, hi - lo)), hi - lo, schema,
                                 self.step)

        error_type: list[str | None] = [None] * n
        message: list[str | None] = [None] * n
        try:
            parts = [(0, n, attempt(0, n))]
        except Exception:  # noqa: BLE001 - some rows do not fit: find which, as locally
            isolated = isolate_failures(n, attempt, whole_failed=True)
            parts = list(isolated.results)
            empty = pl.DataFrame(schema=polars_types(schema))
            for row, exc in isolated.failures:
                text = str(exc)
                error_type[row] = USER_FUNCTION_ERROR
                message[row] = (f"{type(exc).__name__}: "
                                f"{text.splitlines()[0] if text else ''}")
                parts.append((row, row + 1, empty.clear(1)))
            parts.sort(key=lambda p: p[0])
        out = pl.concat([p[2] for p in parts], how="vertical") if parts else \
            pl.DataFrame(schema=polars_types(schema))
        columns = {"error_type__": pd.Series(error_type, dtype=object),
                   "error_message__": pd.Series(message, dtype=object),
                   "wm__": pd.Series(list(carried), dtype=object)}
        for name in schema:
            columns[f"o__{name}"] = _to_pandas(out[name])
        return pd.DataFrame(columns)


def _to_pandas(column: Any) -> Any:
    """A polars column as a pandas Series PyFlink turns back into the same Arrow values
    (an integer column with nulls as Python objects: a float column would round)."""
    import pandas as pd

    array = column.to_arrow()
    if array.null_count and column.dtype.is_integer():
        return pd.Series(array.to_pylist(), dtype=object)
    return array.to_pandas()


def build_udf(entry: dict[str, Any]) -> Any:
    """The PyFlink UDF of a function entry (``driver.register_functions``)."""
    from pyflink.table import DataTypes
    from pyflink.table.udf import udf, udtf

    types = {"BIGINT": DataTypes.BIGINT(), "DOUBLE": DataTypes.DOUBLE(),
             "STRING": DataTypes.STRING(), "BOOLEAN": DataTypes.BOOLEAN()}
    outputs = [(c, types[SQL_TYPES[t]]) for c, t in entry.get("outputs") or []]
    if entry["kind"] in ("map", "filter"):
        return udtf(RecordFunction(entry),
                    result_types=[DataTypes.STRING(), DataTypes.STRING(),
                                  *(t for _, t in outputs)])
    fields = [DataTypes.FIELD("error_type__", DataTypes.STRING()),
              DataTypes.FIELD("error_message__", DataTypes.STRING()),
              DataTypes.FIELD("wm__", DataTypes.STRING()),
              *(DataTypes.FIELD(f"o__{c}", t) for c, t in outputs)]
    return udf(BatchFunction(entry), result_type=DataTypes.ROW(fields), func_type="pandas")


def import_problem(entry: dict[str, Any], executable: str, prefix: str) -> str | None:
    """Why the user's module cannot be imported by the Flink environment, or None: checked
    by the driver before the job starts, so a missing package fails the job at once with
    what to install where, never halfway through."""
    try:
        importlib.import_module(entry["module"])
    except ImportError as exc:
        missing = getattr(exc, "name", None) or "?"
        return (f"{entry['path']}: the user module {entry['module']!r} cannot be imported "
                f"by the Flink environment's Python ({executable}, environment {prefix}): "
                f"{exc}. Install what it needs there ({prefix}/bin/pip install {missing}, "
                "or add it to scripts/flink-deps.sh), or run the pipeline on the local "
                "runner")
    except Exception as exc:  # noqa: BLE001 - the module's own code failed
        return (f"{entry['path']}: importing the user module {entry['module']!r} in the "
                f"Flink environment ({prefix}) failed: {type(exc).__name__}: {exc}")
    return None
