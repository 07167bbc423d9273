"""User code steps in Flink SQL (issue 15 item 2): ``map``, ``filter``, ``map_batches``.

Each step becomes a PyFlink UDF (``udf_adapter``, registered by the job driver) and two
statements over its calls: the records it passes on (the next view) and the inputs it
failed on, INSERTed into ``errors`` with the exception's class and text and the input as
``raw`` -- the local runner's error records for the same inputs (SEMANTICS §6).

- ``map`` / ``filter``: a Python table function per record (``LATERAL TABLE``): a map may
  give 0, 1 or many records, a filter 0 or 1; the input's event time (``rt``) stays with
  every record it produces, as on the local runner.
- ``map_batches``: a pandas UDF over Arrow batches (``python.execution-mode: process``),
  one row out per row in, the user function given a ``polars.DataFrame``.

What is refused, and why:

- ``map`` / ``map_batches`` without ``output_schema``: Flink SQL needs each column's type
  before the job starts, and the local runner infers them from the results;
- ``process``: keyed state, event-time timers and side outputs would need a DataStream
  translation whose timer order and state checkpoints match SEMANTICS §6 (not done);
- a function Flink's Python workers cannot import by name: a lambda or a function defined
  in a function, one in ``__main__``, or one of surestream's own modules (surestream is not
  installed in the Flink environment).

The user's top-level module or package is copied next to the job (``python_files``;
``submit.run_jobs``), never the folder it sits in: that may be a site-packages whose
pyarrow would shadow PyFlink's.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from surestream.model.steps import FilterStep, MapBatchesStep, MapStep
from surestream.model.user_code import resolve_object, split_reference
from surestream.runners.flink.sql_refusals import FlinkUnsupported
from surestream.runners.flink.sql_source import ROWTIME, SQL_TYPES, quote, sql_string

ERROR_TYPE = "error_type__"
ERROR_MESSAGE = "error_message__"
#: the watermark before each record in epoch ms (``CURRENT_WATERMARK(rt)`` taken in front of
#: the first UDF): a Python operator holds watermarks back until its bundle ends, so after
#: it Flink's own watermark trails the records and ``CURRENT_WATERMARK`` would call late
#: records on time (measured). The translation's late splits read this column from there on.
#: A pandas UDF gets it as an argument and hands it back (``wm__``): else the planner may
#: compute it after the Python operator, from the held watermark (measured too).
WM_BEFORE = "wm_before__"


@dataclass(frozen=True)
class UserCodeSql:
    """What a user code step adds to the translation."""

    function: dict[str, Any]  # the FlinkJob function entry
    python_file: str  # the user's top-level module file or package folder
    calls: str  # the view of the calls (inputs, rt, error columns, outputs)
    passed: str  # SELECT of the records passed on (from ``calls``)
    failed: str  # SELECT of the errors-output columns (from ``calls``)
    columns: dict[str, str]  # the columns after the step


def function_reference(function: Any, where: str) -> tuple[str, str]:
    """``(module, attribute)`` by which Flink's Python workers import the function."""
    if isinstance(function, str):
        module, attribute = split_reference(function)
    else:
        module = getattr(function, "__module__", None) or ""
        attribute = getattr(function, "__qualname__", "")
        if module == "__main__" or not attribute or "<" in attribute:
            raise FlinkUnsupported(where, (
                f"{attribute or function!r} cannot be imported by name in Flink's Python "
                "workers (a lambda, a nested function or one in __main__): define it at the "
                "top level of a module and name it as 'package.module:function'"))
    if module.split(".")[0] == "surestream":
        raise FlinkUnsupported(where, (
            f"{module!r} is part of surestream, which is not installed in the Flink "
            "environment: put the function in a module of your own"))
    return module, attribute


def module_source(module: str, where: str) -> str:
    """The file or folder of ``module``'s top-level package, to ship with the job."""
    top = module.split(".")[0]
    spec = importlib.util.find_spec(top)
    if spec is None:
        raise FlinkUnsupported(where, f"module {top!r} cannot be found")
    if spec.submodule_search_locations:
        locations = list(spec.submodule_search_locations)
        if len(locations) != 1:
            raise FlinkUnsupported(where, f"{top!r} is a namespace package spread over "
                                          f"{len(locations)} folders: ship one package")
        return str(Path(locations[0]).resolve())
    if spec.origin is None or not spec.origin.endswith(".py"):
        raise FlinkUnsupported(where, (
            f"module {top!r} is not Python source ({spec.origin}): Flink's workers need "
            "the module itself; install it in the Flink environment "
            "(scripts/flink-deps.sh) or use a .py module"))
    return str(Path(spec.origin).resolve())


def user_code_sql(step: MapStep | FilterStep | MapBatchesStep, stage: str,
                  columns: dict[str, str], i: int, where: str) -> UserCodeSql:
    """The UDF and SQL of one user code step over ``stage`` (its data ``columns``, ``rt``
    and ``WM_BEFORE``)."""
    schema = None if isinstance(step, FilterStep) else step.output_schema
    if schema is None and not isinstance(step, FilterStep):
        raise FlinkUnsupported(f"{where}.output_schema", (
            f"declare the columns a `{step.type}` function returns (output_schema: "
            "{column: int|float|string|bool}): Flink SQL needs their types before the job "
            "starts, where the local runner infers them from the results"))
    resolve_object(step.function)  # the spec's own check: importable here
    module, attribute = function_reference(step.function, f"{where}.function")
    source = module_source(module, f"{where}.function")
    name = re.sub(r"\W", "_", f"udf_{i}_{step.name}")
    entry: dict[str, Any] = {
        "name": name, "kind": step.type, "module": module, "attribute": attribute,
        "step": step.name, "path": f"{where}.function",
        "inputs": [[c, t] for c, t in columns.items()],
        "outputs": None if schema is None else [[c, t] for c, t in schema.items()]}
    out_columns = columns if schema is None else {c: SQL_TYPES[t] for c, t in schema.items()}
    inputs = ", ".join(f"s.{quote(c)}" for c in columns)
    keep = f"{inputs}, s.{ROWTIME}, s.{quote(WM_BEFORE)}"
    outs = [f"o__{c}" for c in (schema or {})]
    if isinstance(step, MapBatchesStep):
        args = ", ".join([*(f"CAST(s.{quote(c)} AS STRING)" if t == "BIGINT"
                            else f"s.{quote(c)}" for c, t in columns.items()),
                          f"CAST(s.{quote(WM_BEFORE)} AS STRING)"])
        fields = ", ".join(f"r__.{quote(f)} AS {quote(f)}" for f in
                           (ERROR_TYPE, ERROR_MESSAGE, *outs))
        calls = (f"SELECT {', '.join(quote(c) for c in columns)}, {ROWTIME}, "
                 f"CAST(r__.`wm__` AS BIGINT) AS {quote(WM_BEFORE)}, {fields}\n"
                 f"FROM (SELECT {inputs}, s.{ROWTIME}, {quote(name)}({args}) AS r__ "
                 f"FROM {quote(stage)} AS s)")
    else:
        aliases = ", ".join(quote(f) for f in (ERROR_TYPE, ERROR_MESSAGE, *outs))
        calls = (f"SELECT {keep}, {aliases}\nFROM {quote(stage)} AS s,\n"
                 f"  LATERAL TABLE({quote(name)}({inputs})) AS T({aliases})")
    passed_cols = (", ".join(quote(c) for c in columns) if schema is None else
                   ", ".join(f"{quote('o__' + c)} AS {quote(c)}" for c in schema))
    return UserCodeSql(
        function=entry, python_file=source, calls=calls,
        passed=f"SELECT {passed_cols}, {ROWTIME}, {quote(WM_BEFORE)} FROM {{calls}} WHERE "
               f"{quote(ERROR_TYPE)} IS NULL",
        failed=f"SELECT {{pipeline}}, {sql_string(step.name)}, {quote(ERROR_TYPE)}, "
               f"{quote(ERROR_MESSAGE)},\n  JSON_OBJECT("
               + ", ".join(f"KEY {sql_string(c)} VALUE {quote(c)}" for c in columns)
               + f" ABSENT ON NULL)\nFROM {{calls}} WHERE {quote(ERROR_TYPE)} IS NOT NULL",
        columns=dict(out_columns))

