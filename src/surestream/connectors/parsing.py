"""Safe deserialization of input records (JSON lines, CSV, Python dicts) into frames.

The fast path parses a whole block of lines with polars against the source schema and
proves, from the block's bytes, that polars kept every value as it was (json_screen.py).
When it cannot prove it -- a line that is not JSON, a value that does not fit its column, a
field the schema does not know yet -- the block is cut into parts that get the same
treatment, down to small parts checked line by line: each bad line becomes an error with
its reason, alone; good lines still parse columnar. Never a crash, never a silent drop,
never a silent conversion (value_types.py has the rules).

A field the schema does not know -- whatever its value, ``null`` included -- stops the block at
the line that brings it (``ParsedBlock.used``), and so does the first value of a column that
has held only nulls: the reader widens the schema there and reads on (source_schema.py).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import polars as pl

from surestream.connectors.json_screen import faithful
from surestream.connectors.source_schema import SourceSchema
from surestream.connectors.value_types import (
    EXACT_FLOAT_INT,
    INT64_MAX,
    INT64_MIN,
    UINT64_MAX,
    fit_problem,
    infer_type,
    kind_of,
    quick_fit,
    type_word,
)
from surestream.semantics.errors import to_raw

#: a run of digits as long as 2**63's: the only way to write an integer beyond int64
_LONG_DIGITS = re.compile(rb"\d{19}")


@dataclass(frozen=True, slots=True)
class BadLine:
    """A line that could not be parsed: its index in the block, text and reason, and the
    class of the exception that stands for the reason (``JSONDecodeError`` for a line that
    is not JSON; a value that does not fit its column is a ``ValueError``)."""

    index: int
    raw: str
    message: str
    exception: str = "ValueError"


@dataclass(slots=True)
class ParsedBlock:
    """The records of a block's first ``used`` lines; the rest wait for a wider schema."""

    frame: pl.DataFrame
    rows_from: list[int] | None  # line of each row; None: row i is line i
    bad: list[BadLine]
    used: int
    #: fields line ``used`` brings that the schema lacks (or null columns it gives a value),
    #: in the record's key order
    new_fields: list[str] = field(default_factory=list)


# -- JSON lines ------------------------------------------------------------------------------
#: lines checked one by one (in Python) once a part of a block is this small
LEAF_LINES = 64
#: parts a block that is not read faithfully is cut into, to find its odd lines
FAN_OUT = 8


def parse_json_block(block: bytes, n_lines: int, schema: SourceSchema) -> ParsedBlock:
    """``block``: ``n_lines`` complete lines, each ending with ``"\\n"``. The whole block
    on the fast path if it can be; else ``FAN_OUT`` parts, recursively (a few bad lines
    cost about two parses of the block), down to small parts checked line by line."""
    frame = _fast(block, n_lines, schema)
    if frame is not None:
        return ParsedBlock(frame, None, [], n_lines)
    lines = block.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    screened = _without_undecodable(lines, schema)
    if screened is not None:
        return screened
    pieces: list[tuple[pl.DataFrame, list[int]]] = []
    bad: list[BadLine] = []
    stop: list[tuple[int, list[str]]] = []  # (line, new fields) where a new field comes

    def solve(lo: int, hi: int, dense: bool = False) -> tuple[bool, float]:
        """Parse lines[lo:hi]: (go on -- no new field stopped it, the share of the part
        the fast path missed). When the first two parts of a level were missed all but
        entirely, odd lines are everywhere (nested values, say): the rest of the level goes
        line by line without more polars attempts."""
        if hi - lo > LEAF_LINES and not dense:
            part = _fast(b"\n".join(lines[lo:hi]) + b"\n", hi - lo, schema)
            if part is not None:
                pieces.append((part, list(range(lo, hi))))
                return True, 0.0
            cuts = np.linspace(lo, hi, FAN_OUT + 1).astype(int).tolist()
            missed: list[float] = []
            for a, b in zip(cuts, cuts[1:], strict=False):
                everywhere = len(missed) >= 2 and min(missed) >= 0.9
                go_on, share = solve(a, b, dense=everywhere)
                missed.append(share)
                if not go_on:
                    return False, 1.0
            return True, sum(missed) / len(missed)
        done = parse_json_lines(lines[lo:hi], schema)
        rows = list(range(done.frame.height)) if done.rows_from is None else done.rows_from
        pieces.append((done.frame, [lo + r for r in rows]))
        bad.extend(dataclasses.replace(b, index=lo + b.index) for b in done.bad)
        if done.new_fields:
            stop.append((lo + done.used, done.new_fields))
            return False, 1.0
        return True, 1.0

    solve(0, len(lines))
    used, new_fields = stop[0] if stop else (len(lines), [])
    frames = [f for f, _ in pieces if f.height]
    frame = pl.concat(frames, how="vertical") if frames else pl.DataFrame(
        schema=schema.polars())
    rows_from = [r for _, rows in pieces for r in rows]
    identity = not bad and rows_from == list(range(used))
    return ParsedBlock(frame, None if identity else rows_from, bad, used, new_fields)


def _without_undecodable(lines: list[bytes], schema: SourceSchema) -> ParsedBlock | None:
    """The usual reason a block misses the fast path: a few lines that are not JSON objects
    (truncated, garbage). orjson finds them line by line in C (about a microsecond a line);
    the rest of the block is then tried on the fast path in one piece -- one more parse,
    instead of cutting the block into parts around each bad line. ``None`` when that does
    not settle the block (no such line, or the rest still misses the fast path)."""
    odd = []
    for i, line in enumerate(lines):
        try:
            if type(orjson.loads(line)) is dict:
                continue
        except orjson.JSONDecodeError:
            pass
        odd.append(i)  # (a blank line too: parse_json_lines skips it)
    if not odd or len(odd) == len(lines):
        return None
    skip = set(odd)
    rows = [i for i in range(len(lines)) if i not in skip]
    frame = _fast(b"\n".join(lines[i] for i in rows) + b"\n", len(rows), schema)
    if frame is None:
        return None
    done = parse_json_lines([lines[i] for i in odd], schema)
    if done.frame.height or done.new_fields:
        return None  # (cannot be: none of them is a JSON object)
    bad = [dataclasses.replace(b, index=odd[b.index]) for b in done.bad]
    return ParsedBlock(frame, rows, bad, len(lines))


def _fast(block: bytes, n_lines: int, schema: SourceSchema) -> pl.DataFrame | None:
    """polars' frame of the block, if it provably holds every value unchanged."""
    pschema = schema.polars()
    try:
        frame = pl.read_ndjson(block, schema=pschema)  # the bytes are read in place
    except Exception:  # noqa: BLE001 - a bad line: the caller finds it
        return None
    if frame.height == n_lines and _exact_numbers(frame, pschema) \
            and faithful(block, frame, _string_columns(pschema)):
        return frame
    return None


def _string_columns(schema: pl.Schema) -> list[str]:
    return [c for c, t in schema.items() if t == pl.String]


def _exact_numbers(frame: pl.DataFrame, schema: pl.Schema) -> bool:
    """No float cell so large that it may have been an integer without an exact float."""
    big = [c for c, t in schema.items() if t == pl.Float64]
    if not big:
        return True
    row = frame.select((pl.col(big).abs() >= float(EXACT_FLOAT_INT)).any()).row(0)
    return not any(row)


def parse_json_lines(lines: list[bytes], schema: SourceSchema) -> ParsedBlock:
    """Line by line: decode, stop at a new field, then check values column by column."""
    exact = _lines_with_long_numbers(lines)
    decoded: list[tuple[int, dict[str, Any]]] = []
    bad: list[BadLine] = []
    used, new_fields = len(lines), []
    widening = _Widening(schema)
    for i, line in enumerate(lines):
        if not line.strip():
            continue  # a blank line is not a record
        record, problem, exception = decode_object(line, i in exact)
        if record is not None:
            new = widening.fields_of(record)
            if new and schema.extra_fields == "keep":
                used, new_fields = i, new
                break
            if new:
                problem, exception = _extra_problem(new), "ValueError"
        if problem:
            bad.append(BadLine(i, line.decode("utf-8", errors="replace"), problem,
                               exception))
        else:
            decoded.append((i, record))
    problems = _column_problems([r for _, r in decoded], schema)
    good = [i for j, (i, _) in enumerate(decoded) if j not in problems]
    bad.extend(BadLine(decoded[j][0], lines[decoded[j][0]].decode("utf-8", errors="replace"),
                       msg) for j, msg in problems.items())
    return _json_rows(lines, good, bad, used=used, new_fields=new_fields, schema=schema)


class _Widening:
    """Which fields of a record widen the schema: the keys it lacks (a key holding ``null``
    is a field too: it becomes a column, ``Null`` typed until its first value), and the
    columns typed ``Null`` so far that the record gives a value. In the record's key order,
    which is the order new columns take."""

    __slots__ = ("known", "nulls")

    def __init__(self, schema: SourceSchema) -> None:
        self.known = schema.columns.keys()
        self.nulls = frozenset(schema.null_columns())

    def fields_of(self, record: dict[str, Any]) -> list[str]:
        nulls = self.nulls
        if record.keys() <= self.known and not (
                nulls and any(record.get(c) is not None for c in nulls)):
            return []  # (the usual case, without a loop in Python)
        return [k for k, v in record.items()
                if k not in self.known or (v is not None and k in nulls)]


def _extra_problem(fields: list[str]) -> str:
    names = ", ".join(repr(f) for f in fields)
    return (f"field {names} is not in the declared schema (extra_fields: error); add it to "
            "source.schema or set extra_fields: keep")


def _json_rows(lines: list[bytes], good: list[int], bad: list[BadLine], *, used: int,
               new_fields: list[str], schema: SourceSchema) -> ParsedBlock:
    """The frame of the checked good lines (polars, as on the fast path: same values)."""
    pschema = schema.polars()
    frames: list[pl.DataFrame] = []
    rows_from: list[int] = []

    def solve(idx: list[int]) -> None:
        if not idx:
            return
        try:
            frame = pl.read_ndjson(b"\n".join(lines[i] for i in idx) + b"\n", schema=pschema)
            if frame.height != len(idx):
                raise pl.exceptions.ComputeError(f"expected {len(idx)} records, "
                                                 f"parsed {frame.height}")
            frames.append(frame)
            rows_from.extend(idx)
        except Exception as e:  # noqa: BLE001 - polars refuses a line the checks passed
            if len(idx) == 1:
                bad.append(BadLine(idx[0], lines[idx[0]].decode("utf-8", errors="replace"),
                                   f"{type(e).__name__}: {e}", type(e).__name__))
                return
            mid = len(idx) // 2
            solve(idx[:mid])
            solve(idx[mid:])

    solve(good)
    bad.sort(key=lambda b: b.index)
    frame = pl.concat(frames, how="vertical") if frames else pl.DataFrame(schema=pschema)
    identity = not bad and rows_from == list(range(used))
    return ParsedBlock(frame, None if identity else rows_from, bad, used, new_fields)


def decode_object(line: bytes, long_numbers: bool = True
                  ) -> tuple[dict[str, Any] | None, str | None, str | None]:
    """The JSON object on ``line`` with its integers exact, or the reason it is not one and
    the exception class of that reason (``JSONDecodeError``, ``TypeError``).
    ``long_numbers``: the line may hold an integer beyond 64 bits (orjson would read it as
    a float; Python's json keeps it exact)."""
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as e:
        return None, f"not valid JSON: {e}", type(e).__name__
    if type(record) is not dict:
        return (None, f"a record must be a JSON object, not {_kind_phrase(record)}",
                "TypeError")
    colons = line.count(b":")
    if colons > len(record) and (b"\\" in line
                                 or colons != orjson.dumps(record).count(b":")):
        # a key twice (orjson keeps the last) -- or escapes, which could hide one: polars'
        # way, first wins. (Without escapes, the strings orjson writes back are the line's,
        # so the same count of ":" means no key was lost.)
        return json.loads(line, object_pairs_hook=_first_wins), None, None
    if long_numbers and _LONG_DIGITS.search(line):
        record = json.loads(line)
    return record, None, None


def _first_wins(items: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose key comes twice keeps the first value, as polars reads it (the
    fast path), so both paths see the same record."""
    out: dict[str, Any] = {}
    for k, v in items:
        out.setdefault(k, v)
    return out


def _lines_with_long_numbers(lines: list[bytes]) -> set[int]:
    """Lines holding a run of 19 or more digits (numpy over all of them at once)."""
    if not lines:
        return set()
    block = b"\n".join(lines)
    arr = np.frombuffer(block, dtype=np.uint8)
    digit = ((arr >= 48) & (arr <= 57)).view(np.int8)
    edges = np.diff(digit, prepend=np.int8(0), append=np.int8(0))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    long_runs = starts[stops - starts >= 19]
    if not len(long_runs):
        return set()
    line_starts = np.cumsum([0] + [len(x) + 1 for x in lines[:-1]])
    return set((np.searchsorted(line_starts, long_runs, side="right") - 1).tolist())


def _kind_phrase(value: Any) -> str:
    return {"list": "an array", "string": "a string", "int": "a number", "float": "a number",
            "bool": "a boolean", "null": "null"}.get(kind_of(value), kind_of(value))


def column_reason(name: str, dtype: pl.DataType, problem: str, declared: bool) -> str:
    origin = "declared" if declared else "inferred from its first values"
    return f"field {name!r}: {problem}; the column is {type_word(dtype)} ({origin})"


# -- Python records (generators) --------------------------------------------------------------
def parse_records(rows: list[Any], schema: SourceSchema) -> ParsedBlock:
    """Records from a generator: dicts checked value by value (column-wise where all values
    have the column's own type), stopping at the first record with a new field."""
    good: list[int] = []
    bad: list[BadLine] = []
    used = len(rows)
    new_fields: list[str] = []
    widening = _Widening(schema)
    for i, r in enumerate(rows):
        if not isinstance(r, dict):
            bad.append(BadLine(i, to_raw(r), "TypeError: a record must be a dict, got "
                                             f"{type(r).__name__}", "TypeError"))
            continue
        new = widening.fields_of(r)
        if new and schema.extra_fields == "keep":
            used, new_fields = i, new
            break
        if new:
            bad.append(BadLine(i, to_raw(r), _extra_problem(new)))
            continue
        good.append(i)
    problems = _column_problems([rows[i] for i in good], schema)
    if problems:
        bad.extend(BadLine(good[j], to_raw(rows[good[j]]), msg) for j, msg in problems.items())
        good = [i for j, i in enumerate(good) if j not in problems]
    frame, rows_from, more_bad = _rows_to_frame([rows[i] for i in good], schema.polars())
    bad.extend(dataclasses.replace(b, index=good[b.index]) for b in more_bad)
    bad.sort(key=lambda b: b.index)
    rows_from = [good[j] for j in rows_from]
    identity = not bad and rows_from == list(range(used))
    return ParsedBlock(frame, None if identity else rows_from, bad, used, new_fields)


#: Python types a column of each type takes without a per-value check
_OWN_TYPES: dict[type, tuple[type, ...]] = {
    pl.Float64: (float,), pl.String: (str,), pl.Boolean: (bool,), pl.Date: (dt.date,),
    pl.Time: (dt.time,), pl.Duration: (dt.timedelta,),
}


def _all_own(values: list[Any], types: set[type], dtype: pl.DataType) -> bool:
    """Every non-null value has the column's own Python type (no per-value check)."""
    if isinstance(dtype, pl.Datetime):  # aware values for a zoned column, naive otherwise
        zoned = dtype.time_zone is not None
        return types == {dt.datetime} and all(
            (v.tzinfo is not None) == zoned for v in values if v is not None)
    if type(dtype) in (pl.Int64, pl.UInt64):
        if types != {int}:
            return False
        ints = [v for v in values if v is not None]
        low, high = (INT64_MIN, INT64_MAX) if dtype == pl.Int64 else (0, UINT64_MAX)
        return min(ints) >= low and max(ints) <= high
    own = _OWN_TYPES.get(type(dtype))
    return own is not None and types <= set(own)


def _column_problems(rows: list[dict[str, Any]], schema: SourceSchema) -> dict[int, str]:
    """Row index -> the reason its first unfit value does not fit."""
    problems: dict[int, str] = {}
    for name, dtype in schema.columns.items():
        values = [r.get(name) for r in rows]
        types = set(map(type, values)) - {type(None)}
        if not types:
            continue
        if _all_own(values, types, dtype):
            continue
        text = name in schema.text_columns
        fits = quick_fit(dtype)
        for j, v in enumerate(values):
            if v is None or j in problems or fits(v):
                continue
            problem = fit_problem(v, dtype, text)
            if problem:
                problems[j] = column_reason(name, dtype, problem, schema.declared)
    return problems


def _rows_to_frame(rows: list[dict], schema: pl.Schema) -> tuple[pl.DataFrame, list[int],
                                                                   list[BadLine]]:
    """Checked dicts -> frame, bisecting to isolate records polars still refuses."""
    frames: list[pl.DataFrame] = []
    rows_from: list[int] = []
    bad: list[BadLine] = []

    def solve(lo: int, hi: int) -> None:
        if lo >= hi:
            return
        try:
            frames.append(pl.DataFrame(rows[lo:hi], schema=schema, strict=True))
            rows_from.extend(range(lo, hi))
        except Exception as e:  # noqa: BLE001 - the data's fault
            if hi - lo == 1:
                bad.append(BadLine(lo, to_raw(rows[lo]), f"{type(e).__name__}: {e}",
                                   type(e).__name__))
                return
            mid = (lo + hi) // 2
            solve(lo, mid)
            solve(mid, hi)

    solve(0, len(rows))
    frame = pl.concat(frames) if len(frames) > 1 else (frames[0] if frames
                                                       else pl.DataFrame(schema=schema))
    return frame, rows_from, bad


# -- CSV -----------------------------------------------------------------------------------------
_INT_TEXT = re.compile(r"[+-]?\d+")
_FLOAT_TEXT = re.compile(r"[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|inf|nan"
                         r"|infinity)", re.IGNORECASE)


def csv_value(text: str) -> Any:
    """A CSV field as the typed value it reads as: int, float, bool or the text itself."""
    if _INT_TEXT.fullmatch(text):
        return int(text)
    if _FLOAT_TEXT.fullmatch(text):
        return float(text)
    if text in ("true", "false"):
        return text == "true"
    return text


def csv_column_type(texts: Iterable[str]) -> pl.DataType | None:
    """CSV values are text: a column is numeric (or boolean) only when every non-empty
    sample value is; numbers follow the JSON rules (integers never become floats)."""
    values = [csv_value(t) for t in texts]
    if not values:
        return None
    if any(isinstance(v, str) for v in values) or \
            len({kind_of(v) == "bool" for v in values}) > 1:
        return pl.String()
    return infer_type(values)


def parse_csv_block(block: bytes, n_lines: int, schema: SourceSchema,
                    header: bytes) -> ParsedBlock:
    """``block``: ``n_lines`` complete records (``"\\n"`` ends), read with the file's header
    line. Columns of the header the schema lacks, and values in null columns, widen it."""
    header_cols = header_columns(header)
    new = [c for c in header_cols if c not in schema.columns]
    if new and schema.extra_fields == "keep":
        return ParsedBlock(pl.DataFrame(schema=schema.polars()), None, [], 0, new)
    types = {c: _csv_parse_type(schema.columns.get(c)) for c in header_cols}

    def parse(data: bytes) -> pl.DataFrame:
        return pl.read_csv(io.BytesIO(header + data), schema_overrides=types,
                           has_header=True, infer_schema=False)

    lines: list[bytes] | None = None
    frame: pl.DataFrame | None = None
    if b"\n\n" not in block and not block.startswith(b"\n") and b"\n\r\n" not in block:
        try:
            frame = parse(block)
        except Exception:  # noqa: BLE001 - find the bad lines below
            frame = None
        if frame is not None and frame.height != n_lines:
            frame = None
    if frame is not None:
        rows_from: list[int] | None = None
        bad: list[BadLine] = []
    else:
        lines = _split_records(block)
        frame, rows_from, bad = _bisect(
            lines, parse, lambda line, e: _csv_line_problem(line, header, schema, e))
    return _csv_checked(frame, rows_from, bad, block, lines, schema, header, new, n_lines)


def _csv_line_problem(line: bytes, header: bytes, schema: SourceSchema,
                      error: Exception) -> str:
    """Why polars refused one CSV record, in the words of the other input errors."""
    try:
        texts = pl.read_csv(io.BytesIO(header + line + b"\n"), has_header=True,
                            infer_schema=False)
    except Exception as e:  # noqa: BLE001 - not even text fields
        return f"not a valid CSV record: {str(e).splitlines()[0]}"
    if texts.height == 1:
        for name, text in texts.row(0, named=True).items():
            dtype = schema.columns.get(name)
            if text is None or dtype is None or dtype in (pl.String, pl.Null):
                continue
            problem = fit_problem(csv_value(text.strip()), dtype)
            if problem:
                return column_reason(name, dtype, problem, schema.declared)
    return f"{type(error).__name__}: {str(error).splitlines()[0]}"


def header_columns(header: bytes) -> list[str]:
    return pl.read_csv(io.BytesIO(header), has_header=True, infer_schema=False).columns


def _csv_parse_type(dtype: pl.DataType | None) -> pl.DataType:
    """How a column is parsed: null columns (and extra ones) as text, to see their values."""
    return pl.String() if dtype is None or dtype == pl.Null else dtype


def _split_records(block: bytes) -> list[bytes]:
    lines = block.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return _rejoin_quoted(lines)


def _rejoin_quoted(lines: list[bytes]) -> list[bytes]:
    """Rejoin the pieces of records whose quoted fields hold a ``"\\n"``."""
    out: list[bytes] = []
    pending: list[bytes] = []
    for line in lines:
        pending.append(line)
        if b"\n".join(pending).count(b'"') % 2 == 0:
            out.append(b"\n".join(pending))
            pending = []
    if pending:
        out.append(b"\n".join(pending))
    return out


def _bisect(lines: list[bytes], parse: Callable[[bytes], pl.DataFrame],
            reason: Callable[[bytes, Exception], str] | None = None
            ) -> tuple[pl.DataFrame, list[int], list[BadLine]]:
    frames: list[pl.DataFrame] = []
    rows_from: list[int] = []
    bad: list[BadLine] = []

    def solve(idx: list[int]) -> None:
        if not idx:
            return
        try:
            frame = parse(b"\n".join(lines[i] for i in idx) + b"\n")
            if frame.height != len(idx):
                raise pl.exceptions.ComputeError(f"expected {len(idx)} records, "
                                                 f"parsed {frame.height}")
            frames.append(frame)
            rows_from.extend(idx)
        except Exception as e:  # noqa: BLE001 - any parser failure is the data's fault
            if len(idx) == 1:
                line = lines[idx[0]]
                bad.append(BadLine(idx[0], line.decode("utf-8", errors="replace"),
                                   reason(line, e) if reason else f"{type(e).__name__}: {e}",
                                   type(e).__name__))
                return
            mid = len(idx) // 2
            solve(idx[:mid])
            solve(idx[mid:])

    solve([i for i, line in enumerate(lines) if line.strip()])
    frame = pl.concat(frames, how="vertical") if frames else pl.DataFrame()
    return frame, rows_from, bad


def _csv_checked(frame: pl.DataFrame, rows_from: list[int] | None, bad: list[BadLine],
                 block: bytes, lines: list[bytes] | None, schema: SourceSchema,
                 header: bytes, extra: list[str], n_lines: int) -> ParsedBlock:
    """The checks polars does not make: integers in float columns, values of columns the
    schema lacks (extra_fields: error) or has as null; then the schema's column order."""
    header_cols = header_columns(header)
    line_of = list(range(frame.height)) if rows_from is None else list(rows_from)
    drop: dict[int, str] = {}  # frame row -> reason

    def record(row: int) -> bytes:
        nonlocal lines
        if lines is None:
            lines = _split_records(block)
        return lines[line_of[row]]

    floats = [c for c in header_cols if schema.columns.get(c) == pl.Float64]
    if floats and frame.height:
        mask = frame.select(pl.any_horizontal(pl.col(floats).abs() >= float(EXACT_FLOAT_INT)))
        for row in mask.to_series().arg_true().to_list():
            problem = _float_text_problem(record(row), header, floats, schema)
            if problem:
                drop[row] = problem
    for c in (c for c in extra if c in frame.columns):  # extra_fields: error
        for row in frame.get_column(c).is_not_null().arg_true().to_list():
            drop.setdefault(row, _extra_problem([c]))
    used, new_fields = n_lines, []
    nulls = [c for c in header_cols if schema.columns.get(c) == pl.Null]
    if nulls and frame.height:
        valued = frame.select(pl.any_horizontal(pl.col(nulls).is_not_null())).to_series()
        hits = [r for r in valued.arg_true().to_list() if r not in drop]
        if hits:
            first = hits[0]
            used = line_of[first]
            new_fields = [c for c in nulls if frame.get_column(c)[first] is not None]
    keep = [r for r in range(frame.height) if r not in drop and line_of[r] < used]
    for row, reason in drop.items():
        if line_of[row] < used:
            bad.append(BadLine(line_of[row], record(row).decode("utf-8", errors="replace"),
                               reason))
    bad = sorted((b for b in bad if b.index < used), key=lambda b: b.index)
    if len(keep) != frame.height:
        frame = frame[keep]
    out_rows = [line_of[r] for r in keep]
    pschema = schema.polars()
    if not frame.height:  # (a select of literals alone would make one row)
        frame = pl.DataFrame(schema=pschema)
    frame = frame.select([pl.col(c).cast(t) if c in frame.columns else pl.lit(None, t).alias(c)
                          for c, t in pschema.items()])
    identity = not bad and out_rows == list(range(used))
    return ParsedBlock(frame, None if identity else out_rows, bad, used, new_fields)


def _float_text_problem(line: bytes, header: bytes, floats: list[str],
                        schema: SourceSchema) -> str | None:
    """An integer written in a float column that has no exact float value."""
    texts = pl.read_csv(io.BytesIO(header + line + b"\n"), has_header=True,
                        infer_schema=False).row(0, named=True)
    for c in floats:
        text = texts.get(c)
        if text is None:
            continue
        value = csv_value(text.strip())
        problem = fit_problem(value, pl.Float64()) if isinstance(value, int) else None
        if problem:
            return column_reason(c, schema.columns[c], problem, schema.declared)
    return None


# -- type inference from a sample ----------------------------------------------------------
def infer_json_types(lines: Iterable[bytes], fields: Iterable[str] | None = None
                     ) -> dict[str, pl.DataType]:
    """Column types from sample lines: every key, in first-seen order (a key holding
    ``null`` is seen too), typed by its non-null values -- ``Null`` if it has none. Lines
    that are not JSON objects say nothing. ``fields``: only these (the rest are known)."""
    records = (decode_object(line)[0] for line in lines if line.strip())
    return _sample_types((r for r in records if r is not None), fields)


def infer_record_types(records: Iterable[Any], fields: Iterable[str] | None = None
                       ) -> dict[str, pl.DataType]:
    """The same for Python records (a generator's first records)."""
    return _sample_types((r for r in records if isinstance(r, dict)), fields)


def _sample_types(records: Iterable[dict[str, Any]], fields: Iterable[str] | None
                  ) -> dict[str, pl.DataType]:
    wanted = None if fields is None else set(fields)
    values: dict[str, list[Any]] = {}
    for record in records:
        for k, v in record.items():
            if wanted is None or k in wanted:
                seen = values.get(k)
                if seen is None:
                    seen = values[k] = []
                if v is not None:
                    seen.append(v)
    out: dict[str, pl.DataType] = {}
    for k, vals in values.items():
        dtype = infer_type(vals)
        out[k] = pl.Null() if dtype is None else dtype
    return out


def infer_csv_types(header: bytes, sample: bytes, fields: Iterable[str] | None = None
                    ) -> dict[str, pl.DataType]:
    """Column types of a CSV sample (whole records after ``header``), in header order; a
    column empty throughout the sample is ``Null`` until its first value."""
    cols = header_columns(header)
    wanted = cols if fields is None else [c for c in cols if c in set(fields)]

    def parse(data: bytes) -> pl.DataFrame:
        return pl.read_csv(io.BytesIO(header + data), has_header=True, infer_schema=False)

    try:
        frame = parse(sample) if sample.strip() else pl.DataFrame()
    except Exception:  # noqa: BLE001 - leave the bad records out of the sample
        frame, _, _ = _bisect(_split_records(sample), parse)
    out: dict[str, pl.DataType] = {}
    for c in wanted:
        texts = frame.get_column(c).drop_nulls().to_list() if c in frame.columns else []
        out[c] = csv_column_type(t.strip() for t in texts) or pl.Null()
    return out
