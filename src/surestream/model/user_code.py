"""User code named in a spec: resolving ``"package.module:attribute"`` and checking it.

A spec is code, like a job jar: ``function: "mypkg.jobs:enrich"`` imports ``mypkg.jobs``
(running its top-level code) and calls ``enrich`` on every record. So a spec must come
from someone you trust, and ``validate`` treats every reference as part of the spec:

- each reference is resolved when the spec is validated (not at the first batch), and a
  missing module, a missing attribute, an object that is not callable or a callable that
  does not take the documented arguments is a spec error naming the field
  (``steps[3].function``), exit 2 -- never a traceback halfway through a run;
- references into Python's standard library (``os:system``, ``subprocess:run``,
  ``builtins:eval``, ``importlib:import_module``, ...) are refused outright. No pipeline
  step is a standard-library function: such a reference is a mistake or an attack. Wrap
  the call in a function of your own module if you really mean it.

The documented signatures (the table in docs/spec.md, "A spec is code"): ``map`` and
``filter`` ``function(record)``; ``map_batches`` ``function(frame)``; ``process`` a class
with ``process_element(record, ctx)`` built without arguments, or a function
``(record, ctx)``; a ``generator`` source ``function(**params)``; a user aggregation (Python)
``create()``, ``add(acc, record)``, ``merge(a, b)``, ``result(acc)``.

This module sits in the model layer because validation needs it; the operators
(``semantics``) and sources (``connectors``) resolve through it too, so the same rules hold
for a spec file and for a string given to the Python API.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable, Iterator
from typing import Any

#: top-level packages a spec may never name (the standard library, see the docstring)
REFUSED_PACKAGES: frozenset[str] = frozenset(sys.stdlib_module_names)


class UserCodeError(ValueError):
    """A reference to user code that cannot be used; the message says why and what to do."""


class UserCodeNotFoundError(UserCodeError):
    """A ``"package.module:attribute"`` reference that cannot be imported."""


def split_reference(reference: str) -> tuple[str, str]:
    """``"pkg.mod:attr.sub"`` (or ``"pkg.mod.attr"``) -> ``("pkg.mod", "attr.sub")``."""
    module_name, sep, attr_path = reference.partition(":")
    if not sep:
        module_name, _, attr_path = reference.rpartition(".")
    if not module_name or not attr_path:
        raise UserCodeNotFoundError(
            f"cannot resolve user code {reference!r}: write it as 'package.module:attribute'")
    return module_name, attr_path


def refusal(module_name: str) -> str | None:
    """Why a module may not be named in a spec, or None if it may."""
    top = module_name.split(".")[0]
    if top in REFUSED_PACKAGES:
        return (f"module {module_name!r} is Python's standard library, never a pipeline "
                "step; name a function of your own module (a spec is code: see 'A spec is "
                "code' in docs/spec.md)")
    return None


def resolve_object(spec: Any) -> Any:
    """The object named by ``"package.module:attr"`` (or ``"package.module.attr"``);
    any other value is returned as it is (a function or class given in Python)."""
    if not isinstance(spec, str):
        return spec
    module_name, attr_path = split_reference(spec)
    refused = refusal(module_name)
    if refused:
        raise UserCodeError(f"refused {spec!r}: {refused}")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise UserCodeNotFoundError(
            f"cannot resolve user code {spec!r}: module {module_name!r} cannot be imported "
            f"({exc}); check the name and that its package is installed or on PYTHONPATH"
        ) from exc
    except Exception as exc:  # noqa: BLE001 - the module's own code failed while importing
        raise UserCodeNotFoundError(
            f"cannot resolve user code {spec!r}: importing module {module_name!r} failed: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise UserCodeNotFoundError(
                f"cannot resolve user code {spec!r}: {module_name!r} has no attribute "
                f"{attr_path!r} (missing {part!r})"
            ) from exc
    return obj


def resolve_callable(spec: Any) -> Callable[..., Any]:
    """A user function given as a callable or as ``"package.module:function"``."""
    obj = resolve_object(spec)
    if not callable(obj):
        raise UserCodeNotFoundError(
            f"user code {spec!r} resolves to a {type(obj).__name__}, not a function"
        )
    return obj


# -- signature checks ---------------------------------------------------------------------
def _takes(function: Any, *args: Any, **kwargs: Any) -> str | None:
    """None if ``function`` accepts these arguments, else why not. A callable whose
    signature Python cannot tell (some C functions) is given the benefit of the doubt."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return None
    try:
        signature.bind(*args, **kwargs)
    except TypeError as e:
        return f"its signature {signature} does not fit: {e}"
    return None


def _described(spec: Any) -> str:
    return repr(spec) if isinstance(spec, str) else getattr(spec, "__qualname__", repr(spec))


def check_record_function(spec: Any, kind: str) -> None:
    """``map``/``filter``: ``function(record)``; ``map_batches``: ``function(frame)``."""
    argument = "frame" if kind in ("map_batches", "data_quality") else "record"
    obj = resolve_callable(spec)
    problem = _takes(obj, argument)
    if problem:
        raise UserCodeError(f"{kind} function {_described(spec)} must be callable as "
                            f"function({argument}); {problem}")


def check_process_function(spec: Any) -> None:
    """``process``: a class with ``process_element(record, ctx)`` (or ``process_run(run,
    state)``, ``semantics.key_runs``) built without arguments, an instance with that method,
    or a function ``(record, ctx)``."""
    obj = resolve_object(spec)
    what = _described(spec)
    signature = ("process_run(run, state)" if callable(getattr(obj, "process_run", None))
                 else "process_element(record, ctx)")
    if isinstance(obj, type):
        problem = _takes(obj)
        if problem:
            raise UserCodeError(f"process class {what} must be constructible without "
                                f"arguments (configuration goes to open(params)); {problem}")
        if callable(getattr(obj, "process_run", None)):  # a function over runs (key_runs)
            problem = _takes(obj.process_run, "self", "run", "state")
        else:
            method = getattr(obj, "process_element", None)
            if not callable(method):
                raise UserCodeError(f"process class {what} has no process_element(record, "
                                    "ctx) method (or process_run(run, state))")
            problem = _takes(method, "self", "record", "ctx")
    elif callable(getattr(obj, "process_run", None)):
        problem = _takes(obj.process_run, "run", "state")
    elif callable(getattr(obj, "process_element", None)):
        problem = _takes(obj.process_element, "record", "ctx")
    elif callable(obj):
        problem = _takes(obj, "record", "ctx")
    else:
        raise UserCodeError(f"process function {what} resolves to a {type(obj).__name__}: "
                            "name a class with process_element(record, ctx) or a function "
                            "(record, ctx)")
    if problem:
        raise UserCodeError(f"process function {what} must be callable as "
                            f"{signature}; {problem}")


def check_generator_function(spec: Any, params: dict[str, Any]) -> None:
    """A generator source: ``function(**params)`` returning an iterable (or, in Python, the
    iterable itself)."""
    obj = resolve_object(spec)
    if callable(obj):
        problem = _takes(obj, **params)
        if problem:
            raise UserCodeError(f"generator {_described(spec)} must be callable as "
                                f"function(**params) with params {sorted(params)}; {problem}")
    elif isinstance(obj, str | bytes) or not hasattr(obj, "__iter__"):
        raise UserCodeError(f"generator {_described(spec)} resolves to a "
                            f"{type(obj).__name__}: name a function returning an iterable "
                            "of records")


#: a user aggregate's methods and the arguments each is called with
AGGREGATE_METHODS: dict[str, tuple[str, ...]] = {
    "create": (), "add": ("acc", "record"), "merge": ("a", "b"), "result": ("acc",)}


def check_aggregate_function(obj: Any) -> None:
    """A user aggregation: ``create()``, ``add(acc, record)``, ``merge(a, b)``,
    ``result(acc)``."""
    for method, args in AGGREGATE_METHODS.items():
        problem = _takes(getattr(obj, method), *args)
        if problem:
            raise UserCodeError(f"aggregate {type(obj).__name__}.{method} must be callable as "
                                f"{method}({', '.join(args)}); {problem}")


# -- the whole spec -------------------------------------------------------------------------
def _step_references(prefix: str, steps: list[Any]) -> Iterator[tuple[str, Callable[[], None]]]:
    from surestream.model.steps import (
        DataQualityStep,
        FilterStep,
        MapBatchesStep,
        MapStep,
        ProcessStep,
        WindowStep,
    )

    for i, step in enumerate(steps):
        path = f"{prefix}[{i}]"
        if isinstance(step, MapStep | FilterStep | MapBatchesStep):
            yield (f"{path}.function",
                   lambda s=step: check_record_function(s.function, s.type))
        elif isinstance(step, ProcessStep):
            yield f"{path}.function", lambda s=step: check_process_function(s.function)
        elif isinstance(step, DataQualityStep):
            for j, rule in enumerate(step.rules):
                if rule.function is not None:
                    yield (f"{path}.rules[{j}].function",
                           lambda r=rule: check_record_function(r.function, "data_quality"))
        elif isinstance(step, WindowStep):
            for name, agg in step.aggregations.items():
                if agg.udf is not None:
                    yield (f"{path}.aggregations.{name}",
                           lambda u=agg.udf: check_aggregate_function(u))


def user_code_problems(spec: Any) -> list[tuple[str, str]]:
    """Resolve and check every piece of user code a ``PipelineSpec`` names; one
    ``(field path, reason)`` per problem, paths as in the spec file."""
    from surestream.model.spec import GeneratorSource

    checks: list[tuple[str, Callable[[], None]]] = []
    sources = {"source": spec.source} if spec.source is not None else {
        f"sources.{name}": src for name, src in spec.sources.items()}
    for path, src in sources.items():
        if isinstance(src, GeneratorSource) and src.function is not None:
            checks.append((f"{path}.function",
                           lambda s=src: check_generator_function(s.function, s.params)))
    if spec.streams:
        for name, stream in spec.streams.items():
            checks.extend(_step_references(f"streams.{name}.steps", stream.steps))
    else:
        checks.extend(_step_references("steps", spec.steps))
    problems = []
    for path, check in checks:
        try:
            check()
        except UserCodeError as e:
            problems.append((path, str(e)))
    return problems
