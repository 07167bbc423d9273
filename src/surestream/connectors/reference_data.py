"""The reference data a ``broadcast_enrich`` step starts from: a file, or inline rows.

Reading files is I/O, so it happens here and not in the operator (``semantics.broadcast``
is pure): the runner loads the table when it builds the step and hands the operator a
frame. A spec's ``reference`` is ``{path, format: parquet|csv|jsonl}`` (the format from the
suffix when omitted; a relative path against the spec's folder) or ``{rows: [...]}``.

With ``refresh_interval_ms`` the operator re-reads the Parquet file on its event-time
schedule through ``reference_reloader``: a function the runner hands over, which reads the
file with DuckDB's ``read_parquet`` (a fresh in-memory connection per read) and checks it as
the first load does, so the operator itself still does no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

_READERS = {
    "parquet": pl.read_parquet,
    "csv": pl.read_csv,
    "jsonl": pl.read_ndjson,
    "ndjson": pl.read_ndjson,
}
_SUFFIX_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv",
                   ".jsonl": "jsonl", ".ndjson": "jsonl"}


def load_reference(
    spec: dict[str, Any], key_fields: list[str], fields: list[str], base_dir: Path | None = None
) -> pl.DataFrame:
    """The initial broadcast table from a ``reference`` spec, unique by key (last row wins).

    Raises ``ValueError`` naming the file and what is wrong: unknown spec keys, an unknown
    format, missing columns, or rows with a null key (they could never match).
    """
    unknown = set(spec) - {"path", "format", "rows"}
    if unknown:
        raise ValueError(f"reference: unknown keys {sorted(unknown)} (expected path and "
                         "format, or rows)")
    if "rows" in spec:
        source = "reference.rows"
        frame = pl.DataFrame(spec["rows"], infer_schema_length=None)
    else:
        source, frame = _read_file(spec, base_dir)
    return _checked(source, frame, key_fields, fields)


def _checked(source: str, frame: pl.DataFrame, key_fields: list[str],
             fields: list[str]) -> pl.DataFrame:
    """``frame``'s key and enrichment columns, unique by key (last row wins), or a
    ``ValueError`` naming ``source`` and the problem."""
    missing = [c for c in (*key_fields, *fields) if c not in frame.columns]
    if missing:
        raise ValueError(f"reference {source}: missing columns {missing} "
                         f"(has {frame.columns})")
    null_keys = frame.select(pl.any_horizontal(pl.col(key_fields).is_null()).sum()).item()
    if null_keys:
        raise ValueError(f"reference {source}: {null_keys} rows have a null key field; "
                         "every reference row needs a key")
    return (frame.select(*key_fields, *fields)
            .unique(subset=key_fields, keep="last", maintain_order=True))


def _read_file(spec: dict[str, Any], base_dir: Path | None) -> tuple[str, pl.DataFrame]:
    """(the file's path, its contents) for a ``{path, format}`` reference."""
    if "path" not in spec:
        raise ValueError("reference: give a path (with format) or inline rows")
    path = Path(spec["path"])
    if base_dir is not None and not path.is_absolute():
        path = Path(base_dir) / path
    fmt = spec.get("format") or _SUFFIX_FORMATS.get(path.suffix.lower())
    if fmt not in _READERS:
        what = f"format {fmt!r} is not" if fmt else "the file suffix does not name"
        raise ValueError(f"reference {path}: {what} one of parquet, csv, jsonl; "
                         "set reference.format")
    return str(path), _READERS[fmt](path)


def read_parquet_reference(path: Path, key_fields: list[str],
                           fields: list[str]) -> pl.DataFrame:
    """The reference table from a Parquet file read through DuckDB's ``read_parquet``,
    checked like the first load (missing columns, null keys; unique by key)."""
    try:
        with duckdb.connect(":memory:") as con:
            table = con.read_parquet(str(path)).to_arrow_table()
    except duckdb.Error as e:
        raise ValueError(f"reference {path}: reading it failed: {e}") from None
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return _checked(str(path), frame, key_fields, fields)


def reference_reloader(spec: dict[str, Any], key_fields: list[str], fields: list[str],
                       base_dir: Path | None = None) -> Callable[[], pl.DataFrame]:
    """A function re-reading a ``{path: <file>.parquet}`` reference (for a step's
    ``refresh_interval_ms``); relative paths resolve against ``base_dir`` as for the first
    load."""
    path = Path(spec["path"])
    if base_dir is not None and not path.is_absolute():
        path = Path(base_dir) / path
    return lambda: read_parquet_reference(path, key_fields, fields)
