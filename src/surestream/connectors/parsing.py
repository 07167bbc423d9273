"""Safe deserialization of line-oriented input (JSON lines, CSV) into columnar frames.

The fast path parses a whole block of lines with polars against a fixed schema. When the
block has a bad line (not JSON, not an object, a value of the wrong type), the block is
bisected until each bad line stands alone: good lines still parse columnar, and each bad
line becomes an error with polars' reason -- never a crash, never a silent drop.
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass
from typing import Any

import orjson
import polars as pl

#: type names a spec may use in ``source.schema``
SCHEMA_TYPES: dict[str, pl.DataType] = {
    "int": pl.Int64(), "float": pl.Float64(), "string": pl.String(), "bool": pl.Boolean(),
}


@dataclass(frozen=True, slots=True)
class BadLine:
    """A line that could not be parsed: its index in the block, text and reason."""

    index: int
    raw: str
    message: str


def _parse_block(fmt: str, block: bytes, schema: pl.Schema, header: bytes) -> pl.DataFrame:
    if fmt == "jsonl":
        return pl.read_ndjson(block, schema=schema)  # bytes are read in place
    return pl.read_csv(io.BytesIO(header + block), schema=schema, has_header=True)


def parse_lines(fmt: str, lines: list[bytes], schema: pl.Schema,
                header: bytes = b"") -> tuple[pl.DataFrame, list[int], list[BadLine]]:
    """Parse ``lines`` (each without its newline). Returns the frame of the good lines, the
    index of the line each row came from, and the bad lines. Blank lines are skipped."""
    kept = [i for i, line in enumerate(lines) if line.strip()]
    frames: list[pl.DataFrame] = []
    rows_from: list[int] = []
    bad: list[BadLine] = []

    def solve(idx: list[int]) -> None:
        if not idx:
            return
        block = b"\n".join(lines[i] for i in idx) + b"\n"
        try:
            frame = _parse_block(fmt, block, schema, header)
            if frame.height != len(idx):
                raise pl.exceptions.ComputeError(
                    f"expected {len(idx)} records, parsed {frame.height}")
            frames.append(frame)
            rows_from.extend(idx)
        except Exception as e:  # noqa: BLE001 - any parser failure is the data's fault
            if len(idx) == 1:
                text = lines[idx[0]].decode("utf-8", errors="replace")
                bad.append(BadLine(idx[0], text, f"{type(e).__name__}: {e}"))
                return
            mid = len(idx) // 2
            solve(idx[:mid])
            solve(idx[mid:])

    if fmt == "jsonl":
        # Screen syntax first (one cheap orjson call per line), so that bisection only has
        # to find values of the wrong type: a few bad lines then cost a few parses, not
        # log2(n) parses of large halves each.
        not_objects = [i for i in kept if not _is_json_object(lines[i])]
        if not_objects:
            for i in not_objects:
                solve([i])  # one polars call per bad line: its reason, as polars gives it
            bad_set = set(not_objects)
            kept = [i for i in kept if i not in bad_set]
    solve(kept)  # bisection keeps the lines in order, so rows_from ascends
    frame = pl.concat(frames, how="vertical") if frames else pl.DataFrame(schema=schema)
    bad.sort(key=lambda b: b.index)
    return frame, rows_from, bad


def _is_json_object(line: bytes) -> bool:
    try:
        return isinstance(orjson.loads(line), dict)
    except orjson.JSONDecodeError:
        return False


def parse_block(fmt: str, block: bytes, n_lines: int, schema: pl.Schema,
                header: bytes = b"") -> tuple[pl.DataFrame, list[int] | None, list[BadLine]]:
    """Fast path for a block of ``n_lines`` complete lines: one polars call. ``rows_from``
    is None when every line gave a row (row i is line i)."""
    try:
        frame = _parse_block(fmt, block, schema, header)
        if frame.height == n_lines:
            return frame, None, []
    except Exception:  # noqa: BLE001 - fall back to the line-by-line bisection
        pass
    lines = block.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return parse_lines(fmt, lines, schema, header)


def schema_of_records(records: list[Any]) -> pl.Schema:
    """A column's type is the type most of its sample values have (ints and floats together
    are float), so a few bad values in the sample do not widen a numeric column to string:
    they are reported as errors when read instead."""
    values: dict[str, list[Any]] = {}
    for r in records:
        if isinstance(r, dict):
            for k, v in r.items():
                values.setdefault(k, [])
                if v is not None:
                    values[k].append(v)
    schema: dict[str, pl.DataType] = {}
    for col, vals in values.items():
        kinds = Counter(_kind(v) for v in vals)
        if not kinds:
            schema[col] = pl.Null()
            continue
        numeric = kinds["int"] + kinds["float"]
        best, count = max(kinds.items(), key=lambda kv: (kv[1], kv[0]))
        if numeric >= count:
            schema[col] = pl.Float64() if kinds["float"] else pl.Int64()
        elif best in SCHEMA_TYPES:
            schema[col] = SCHEMA_TYPES[best]
        else:
            schema[col] = pl.Series([v for v in vals if _kind(v) == best], strict=False).dtype
    return pl.Schema(schema)


def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "string"
    return type(v).__name__


def _infer(fmt: str, block: bytes, header: bytes) -> pl.Schema:
    if fmt == "jsonl":
        return pl.read_ndjson(io.BytesIO(block), infer_schema_length=None).schema
    return pl.read_csv(io.BytesIO(header + block), infer_schema_length=None).schema


def infer_schema(fmt: str, sample: bytes, header: bytes = b"") -> pl.Schema:
    """Schema from a sample of lines. Bad lines in the sample are left out of the inference
    (they are reported as errors when their turn comes)."""
    lines = [ln for ln in sample.split(b"\n") if ln.strip()]
    if not lines:
        return pl.Schema()
    if fmt == "jsonl":
        records = []
        for line in lines:
            try:
                records.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                continue
        return schema_of_records(records)
    try:
        return _infer(fmt, b"\n".join(lines) + b"\n", header)
    except Exception:  # noqa: BLE001 - find the good lines one by one
        good = []
        for line in lines:
            try:
                _infer(fmt, line + b"\n", header)
                good.append(line)
            except Exception:  # noqa: BLE001
                continue
        return _infer(fmt, b"\n".join(good) + b"\n", header) if good else pl.Schema()
