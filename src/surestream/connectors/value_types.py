"""Column types of input records: which type a column gets, and which values fit it.

One set of rules for JSON lines, generators and (for numbers) CSV, so that reading never
changes or drops a good value (docs/concepts.md, "Input typing"):

- A column is typed from its well-formed values only: nulls say nothing, and a value of
  another kind does not decide the type. JSON writers mark numbers and booleans; a column
  holding both numbers and strings is numeric (``"ts": "later"`` is the odd one out), one
  holding booleans and strings is boolean (typed Python values of a generator, such as
  datetimes, come next); strings win only over nested values.
- Integers never become floats silently. A column of integers is ``Int64`` (``UInt64`` when
  one is above the int64 range and none is negative). Integers and floats together make
  ``Float64`` only if every integer of the sample converts exactly (|i| <= 2**53), else the
  kind with more values wins and the other kind's values are errors -- so 64-bit trade ids
  next to a stray ``1.5`` stay integers. An integer outside the 64-bit range fits no
  inferred column.
- A value that does not fit its column goes to the errors output alone, with the reason
  (``fit_problem``), instead of being converted.

A declared ``string`` column (``source.schema``) is text: numbers and booleans are read as
their text there; nested values are not.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import polars as pl

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
UINT64_MAX = (1 << 64) - 1
#: integers up to this magnitude convert to a float exactly (and every float64 above it is
#: an integer, so a float column value this large may have been an integer literal)
EXACT_FLOAT_INT = 1 << 53

#: type names a spec may use in ``source.schema``
SCHEMA_TYPES: dict[str, pl.DataType] = {
    "int": pl.Int64(), "float": pl.Float64(), "string": pl.String(), "bool": pl.Boolean(),
}
_TYPE_WORDS = {pl.Int64: "int", pl.UInt64: "unsigned int", pl.Float64: "float",
               pl.String: "string", pl.Boolean: "bool", pl.Null: "null"}


def kind_of(value: Any) -> str:
    """The JSON kind of a decoded value (Python values of other types: their type name)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def type_word(dtype: pl.DataType) -> str:
    """How an error message names a column type."""
    return _TYPE_WORDS.get(type(dtype), str(dtype))


def describe(value: Any) -> str:
    """A value as an error message shows it: its kind and a short text."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    kind = kind_of(value)
    word = {"int": "the integer", "float": "the float", "string": "the string",
            "bool": "the boolean", "list": "the array", "object": "the object"}.get(kind)
    return f"{word} {text}" if word else f"{text} ({kind})"


def infer_type(values: Iterable[Any]) -> pl.DataType | None:
    """The type of a column from its sample values (``None`` when none is non-null)."""
    ints: list[int] = []
    floats = bools = strings = 0
    nested: list[Any] = []
    others: dict[str, list[Any]] = {}
    for v in values:
        k = kind_of(v)
        if k == "int":
            ints.append(v)
        elif k == "float":
            floats += 1
        elif k == "bool":
            bools += 1
        elif k == "string":
            strings += 1
        elif k in ("list", "object"):
            nested.append(v)
        elif k != "null":
            others.setdefault(k, []).append(v)
    if ints or floats:
        return _numeric_type(ints, floats)
    if bools:
        return pl.Boolean()
    if others:  # typed Python values (datetimes, decimals, ...): polars decides the type
        kind = max(others, key=lambda k: (len(others[k]), k))
        return _polars_type(others[kind])
    if strings:
        return pl.String()
    if nested:
        kinds = [kind_of(v) for v in nested]
        kind = max(set(kinds), key=lambda k: (kinds.count(k), k))
        return _polars_type([v for v in nested if kind_of(v) == kind])
    return None


def _polars_type(values: list[Any]) -> pl.DataType:
    """The type polars gives these values; the first one's when they do not go together
    (naive and aware datetimes): the others then do not fit, and say why."""
    try:
        return pl.Series(values, strict=False).dtype
    except Exception:  # noqa: BLE001 - polars cannot unify them
        return pl.Series(values[:1], strict=False).dtype


def _numeric_type(ints: list[int], floats: int) -> pl.DataType:
    in_range = [i for i in ints if INT64_MIN <= i <= UINT64_MAX]
    int_type: pl.DataType = pl.Int64()
    if in_range and max(in_range) > INT64_MAX and min(in_range) >= 0:
        int_type = pl.UInt64()
    if not floats:
        return int_type
    if all(-EXACT_FLOAT_INT <= i <= EXACT_FLOAT_INT for i in ints):
        return pl.Float64()  # every integer converts exactly
    return int_type if len(ints) > floats else pl.Float64()


def fit_problem(value: Any, dtype: pl.DataType, text: bool = False) -> str | None:
    """Why ``value`` (not null) does not fit a column of ``dtype``; ``None`` if it fits
    without changing. ``text``: a declared string column (numbers read as their text).
    (Types are told apart by class: comparing polars types with ``==`` is slow.)"""
    cls, k = type(dtype), kind_of(value)
    if cls is pl.Int64 or cls is pl.UInt64:
        if k != "int":
            return f"{describe(value)} is not an integer"
        lo, hi = (INT64_MIN, INT64_MAX) if cls is pl.Int64 else (0, UINT64_MAX)
        if not lo <= value <= hi:
            return f"the integer {value} is outside the range of {type_word(dtype)} ({dtype})"
        return None
    if cls is pl.Float64:
        if k == "float":
            return None
        if k != "int":
            return f"{describe(value)} is not a number"
        try:
            exact = float(value) == value
        except OverflowError:
            exact = False
        return None if exact else (f"the integer {value} has no exact float value "
                                   "(a float column keeps 53 bits of an integer)")
    if cls is pl.String:
        if k == "string" or (text and k in ("int", "float", "bool")):
            return None
        return f"{describe(value)} is not a string"
    if cls is pl.Boolean:
        return None if k == "bool" else f"{describe(value)} is not a boolean"
    if cls is pl.Null:  # (a top-level null column is widened before values reach here)
        return f"{describe(value)} is not null, and the type was fixed while all were null"
    if cls is pl.List:
        if k != "list":
            return f"{describe(value)} is not an array"
        for i, item in enumerate(value):
            if item is not None:
                problem = fit_problem(item, dtype.inner)
                if problem:
                    return f"item {i}: {problem}"
        return None
    if cls is pl.Struct:
        if k != "object":
            return f"{describe(value)} is not an object"
        fields = {f.name: f.dtype for f in dtype.fields}
        for name, item in value.items():
            if name not in fields:
                return (f"field {name!r} is not among the object's fields "
                        f"{sorted(fields)} (fixed by the first values)")
            if item is not None:
                problem = fit_problem(item, fields[name])
                if problem:
                    return f"field {name!r}: {problem}"
        return None
    return _fits_other(value, dtype)


#: column type -> the Python types whose every value fits it as it is
_PLAIN_TYPES: dict[type, tuple[type, ...]] = {pl.Float64: (float,), pl.String: (str,),
                                              pl.Boolean: (bool,)}


def quick_fit(dtype: pl.DataType) -> Callable[[Any], bool]:
    """A test that answers True only for values that fit ``dtype`` without changing (as
    ``fit_problem`` would find), built once per column type: nested columns (an order
    book's 40 price levels a line) are checked with a type test per value instead of
    ``fit_problem``'s dispatch. False means "ask ``fit_problem``" (for the reason, or for
    the rarer values it accepts, such as a large integer with an exact float)."""
    cls = type(dtype)
    if cls is pl.Float64:
        def fits(v: Any) -> bool:
            t = type(v)
            return t is float or (t is int and -EXACT_FLOAT_INT <= v <= EXACT_FLOAT_INT)
    elif cls is pl.Int64:
        def fits(v: Any) -> bool:
            return type(v) is int and INT64_MIN <= v <= INT64_MAX
    elif cls is pl.UInt64:
        def fits(v: Any) -> bool:
            return type(v) is int and 0 <= v <= UINT64_MAX
    elif cls is pl.String:
        def fits(v: Any) -> bool:
            return type(v) is str
    elif cls is pl.Boolean:
        def fits(v: Any) -> bool:
            return type(v) is bool
    elif cls is pl.List and type(dtype.inner) is pl.Struct:
        return _quick_fit_struct_list(dtype.inner)
    elif cls is pl.List:
        inner = quick_fit(dtype.inner)

        def fits(v: Any) -> bool:
            if type(v) is not list:
                return False
            for x in v:  # noqa: SIM110 - a loop: all() over a generator is slower here
                if x is not None and not inner(x):
                    return False
            return True
    elif cls is pl.Struct:
        as_list = _quick_fit_struct_list(dtype)

        def fits(v: Any) -> bool:
            return type(v) is dict and as_list([v])
    else:
        def fits(v: Any) -> bool:
            return False
    return fits


def _quick_fit_struct_list(struct: pl.Struct) -> Callable[[Any], bool]:
    """``quick_fit`` of a list of objects (an order book's price levels), in one loop:
    plain values and integers in range are accepted inline, without a call per value."""
    checks = {f.name: quick_fit(f.dtype) for f in struct.fields}
    plain = {f.name: _PLAIN_TYPES.get(type(f.dtype), ()) for f in struct.fields}
    int_range = {f.name: (INT64_MIN, INT64_MAX) if type(f.dtype) is pl.Int64 else
                 (0, UINT64_MAX) for f in struct.fields
                 if type(f.dtype) in (pl.Int64, pl.UInt64)}
    no_range = (1, 0)  # (an empty range: not an integer field)

    def fits(v: Any) -> bool:
        if type(v) is not list:
            return False
        for item in v:
            if item is None:
                continue
            if type(item) is not dict:
                return False
            for name, x in item.items():
                types = plain.get(name)
                if types is None:
                    return False  # a field the objects do not have
                if x is None or type(x) in types:
                    continue
                if type(x) is int:
                    lo, hi = int_range.get(name, no_range)
                    if lo <= x <= hi:
                        continue
                if not checks[name](x):
                    return False
        return True
    return fits


def _fits_other(value: Any, dtype: pl.DataType) -> str | None:
    """Other types (Python values of a generator): the value must come back unchanged."""
    try:
        back = pl.Series([value], dtype=dtype, strict=True).to_list()[0]
    except Exception as e:  # noqa: BLE001 - polars refuses it: that is the reason
        return f"{describe(value)} does not fit {dtype} ({type(e).__name__})"
    if back != value or type(back) is not type(value):
        return f"{describe(value)} would change to {back!r} in a {dtype} column"
    return None
