"""Does user code keep state in memory? A probe run that watches it.

A checkpoint holds the state of every operator -- including the ctx state of a process
function -- but not what user code keeps elsewhere: a global counter, an attribute of the
function or of a process-function object, a closure variable, a seeded random generator.
After a restart such state starts again from its initial value, so the output of a run that
was restarted differs from one that was not, although recovery did everything right
(SEMANTICS §6: per-key data belongs in ctx state).

``verify`` runs this module as a child process over the crash runs' spec:

    python -m surestream.cli.verify.user_state SPEC --base-dir DIR

It builds the pipeline, takes a fingerprint of everything each user function (map, filter,
map_batches, process) can carry from one call to the next, runs the pipeline to its end,
takes the fingerprints again and prints, as one JSON line, what changed:
``{"changed": [{"step": "number", "type": "map", "function": "map 'number' (m:f)",
"what": ["global m.COUNTER"]}]}``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import sys
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from surestream.model.steps import FilterStep, MapBatchesStep, MapStep, ProcessStep

USER_STEPS = (MapStep, FilterStep, MapBatchesStep, ProcessStep)


def digest(value: Any) -> str:
    """A fingerprint of a value's data (stable while the value does not change)."""
    value = _state_holder(value)
    try:
        return hashlib.sha1(pickle.dumps(value, protocol=5)).hexdigest()
    except Exception:  # noqa: BLE001 - not picklable: its text form will do
        try:
            return "repr:" + repr(value)
        except Exception:  # noqa: BLE001
            return "type:" + type(value).__name__


def _state_holder(value: Any) -> Any:
    """What carries the state of ``value``: a random module's hidden generator, the object
    behind a bound method (``from random import randint`` is a method of one)."""
    if isinstance(value, types.ModuleType):
        if value.__name__ == "random":
            return value.getstate()
        if value.__name__ in ("numpy", "numpy.random"):
            rnd = value if value.__name__ == "numpy.random" else value.random
            return rnd.get_state()
        return value.__name__
    if isinstance(value, types.MethodType | types.BuiltinMethodType):
        owner = getattr(value, "__self__", None)
        if owner is not None and not isinstance(owner, types.ModuleType | type):
            return owner
    return value


def fingerprint(obj: Any, *, depth: int = 0) -> dict[str, str]:
    """Label -> digest of everything ``obj`` (a user function, a callable object or a
    process-function instance) can carry between calls: its attributes, its class's
    attributes, its closure variables and the globals of the module it comes from. Functions
    an object holds (a bare function wrapped as a process function) are followed once."""
    out: dict[str, str] = {}
    if isinstance(obj, types.MethodType):
        out.update(fingerprint(obj.__self__, depth=depth))
        obj = obj.__func__
    if isinstance(obj, types.FunctionType):
        for name, value in vars(obj).items():
            out[f"attribute {obj.__name__}.{name}"] = digest(value)
        for name, cell in zip(obj.__code__.co_freevars, obj.__closure__ or (), strict=True):
            try:
                out[f"closure variable {name!r} of {obj.__name__}"] = digest(cell.cell_contents)
            except ValueError:  # an empty cell
                continue
        module_name = obj.__module__
    else:  # a callable object or a process-function instance
        cls = type(obj)
        for name, value in getattr(obj, "__dict__", {}).items():
            out[f"attribute {cls.__name__}.{name}"] = digest(value)
            if depth == 0 and isinstance(value, types.FunctionType | types.MethodType):
                out.update(fingerprint(value, depth=1))
        for name, value in vars(cls).items():
            if not name.startswith("__"):
                out[f"class attribute {cls.__name__}.{name}"] = digest(value)
        module_name = cls.__module__
    module = sys.modules.get(module_name or "")
    if module is not None and not module_name.startswith("surestream."):
        for name, value in vars(module).items():
            if not name.startswith("__"):
                out[f"global {module_name}.{name}"] = digest(value)
    return out


def changed(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return [label for label in after if before.get(label) != after[label]]


def describe_function(step: Any) -> str:
    """``map 'number'`` (with ``module:function`` when the spec names one)."""
    ref = step.function if isinstance(step.function, str) else getattr(
        step.function, "__qualname__", None)
    return f"{step.type} {step.name!r}" + (f" ({ref})" if ref else "")


def user_objects(runner: Any) -> list[tuple[Any, Any]]:
    """(step, the live user object) for every user-code step of a built runner."""
    from surestream.semantics.user_functions import resolve_callable

    found = []
    for stream in runner.streams:
        for step, op in zip(stream.steps, stream.operators, strict=True):
            if isinstance(step, ProcessStep):
                found.append((step, getattr(op, "function", None)))
            elif isinstance(step, USER_STEPS):
                found.append((step, resolve_callable(step.function)))
    return [(s, o) for s, o in found if o is not None]


def probe(spec_file: str, base_dir: str | None) -> list[dict[str, Any]]:
    """Run the pipeline once; what each user function changed in memory while it ran."""
    from surestream.model.loader import load_spec
    from surestream.runners.local.runner import LocalRunner

    spec = load_spec(spec_file, ())
    if base_dir:
        spec.base_dir = str(Path(base_dir).resolve())
    runner = LocalRunner(spec)
    objects = user_objects(runner)
    before = [fingerprint(obj) for _, obj in objects]
    runner.run()
    report = []
    for (step, obj), prints in zip(objects, before, strict=True):
        what = changed(prints, fingerprint(obj))
        if what:
            report.append({"step": step.name, "type": step.type,
                           "function": describe_function(step), "what": what})
    return report


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m surestream.cli.verify.user_state")
    ap.add_argument("spec")
    ap.add_argument("--base-dir")
    args = ap.parse_args(argv)
    print(json.dumps({"changed": probe(args.spec, args.base_dir)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
