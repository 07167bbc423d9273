"""The reference data a ``broadcast_enrich`` step starts from: a file, or inline rows.

Reading files is I/O, so it happens here and not in the operator (``semantics.broadcast``
is pure): the runner loads the table when it builds the step and hands the operator a
frame. A spec's ``reference`` is ``{path, format: parquet|csv|jsonl}`` (the format from the
suffix when omitted; a relative path against the spec's folder) or ``{rows: [...]}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
