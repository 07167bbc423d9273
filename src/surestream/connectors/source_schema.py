"""The schema of one source: its columns in first-seen order, widened as new fields come.

Every partition (file) of a source reads with the same ``SourceSchema``. It starts from the
declared ``source.schema`` or from a sample of the first file, and *widens* when a record
brings a field it does not know (``extra_fields: keep``, the default) -- with a value or
with ``null``: the new column goes after the known ones, typed by the same rules from a
sample of the input that starts at the record bringing it (value_types.py). A column with
only nulls in its sample (``Null`` typed: a JSON field null throughout it, a CSV header
field empty throughout it) keeps its place and takes the type of its first non-null values
the same way. No other type change happens: a value that does not fit goes to the errors
output.

Widening happens at a fixed record of the logical sequence, so the columns -- and their
order -- never depend on the batch size; the schema is part of the source positions in a
checkpoint, so they do not depend on where a crash came either.
"""

from __future__ import annotations

import base64
import io
from typing import Any, Literal

import polars as pl

ExtraFields = Literal["keep", "error"]


class SourceSchema:
    """Column name -> type, in first-seen order; ``text_columns`` are declared strings."""

    def __init__(self, columns: dict[str, pl.DataType], *, declared: bool = False,
                 extra_fields: ExtraFields = "keep",
                 text_columns: frozenset[str] = frozenset()) -> None:
        self.columns = dict(columns)
        self.declared = declared
        self.extra_fields: ExtraFields = extra_fields
        self.text_columns = text_columns
        self._polars: pl.Schema | None = None

    def polars(self) -> pl.Schema:
        if self._polars is None:
            self._polars = pl.Schema(self.columns)
        return self._polars

    def widen(self, new: dict[str, pl.DataType]) -> None:
        """Add columns (after the known ones, in the given order) or type null columns."""
        for name, dtype in new.items():
            old = self.columns.get(name)
            if old is not None and old != pl.Null:
                raise ValueError(f"column {name!r} is {old} already; only a null column "
                                 "takes a type later")
            self.columns[name] = dtype
        self._polars = None

    def null_columns(self) -> list[str]:
        return [c for c, t in self.columns.items() if t == pl.Null]

    # -- checkpoints ------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        """JSON-able: column names (readable) and their exact types (an Arrow IPC schema)."""
        buf = io.BytesIO()
        pl.DataFrame(schema=self.polars()).write_ipc(buf)
        return {"columns": list(self.columns), "declared": self.declared,
                "arrow_schema": base64.b64encode(buf.getvalue()).decode("ascii")}

    def restore(self, state: dict[str, Any]) -> None:
        """Take the columns a checkpoint recorded. A declared schema must still be the
        checkpoint's (its columns first, same types): the spec may not change under it."""
        raw = base64.b64decode(state["arrow_schema"])
        columns = dict(pl.read_ipc(io.BytesIO(raw)).schema)
        if self.declared:
            mine = list(self.columns.items())
            if list(columns.items())[: len(mine)] != mine:
                raise ValueError(
                    f"the declared schema {_show(self.columns)} differs from the one the "
                    f"checkpoint was read with {_show(columns)}")
        self.columns = columns
        self._polars = None


def _show(columns: dict[str, pl.DataType]) -> str:
    return "{" + ", ".join(f"{c}: {t}" for c, t in columns.items()) + "}"
