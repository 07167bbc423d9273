"""Summary tables at the end of a run, built with rich: aligned by rich, not by hand.

``outputs_table`` is what ``surestream run`` prints under its final progress line: one row
per output with its record count and where it is. ``render_plain`` turns any table into
plain text (no colours, no borders beyond spaces) for a report file or a pipe.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path

from rich import box
from rich.console import Console, RenderableType
from rich.table import Table

from surestream.connectors.readback import CommittedOutput


def plain_table(*columns: str, right: tuple[str, ...] = (),
                fold: tuple[str, ...] = ()) -> Table:
    """A borderless table with the given column headers; ``right``: columns of numbers;
    ``fold``: columns that may break across lines when the screen is narrow (paths), where
    the others keep their values whole."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for name in columns:
        table.add_column(name, justify="right" if name in right else "left",
                         no_wrap=name not in fold, overflow="fold")
    return table


def where(output: CommittedOutput | None) -> str:
    """Where an output's records are, as a person would look for them."""
    if output is None:
        return ""
    if output.kind == "memory":
        return "in memory"
    if output.kind == "stdout":
        return "standard output"
    path = str(output.path) if output.path is not None else ""
    return path if output.kind != "duckdb" else f"{path} (table {output.table})"


def outputs_table(written: Mapping[str, int],
                  outputs: Mapping[str, CommittedOutput]) -> Table:
    """One row per output: its tag, the records it holds, where it is."""
    table = plain_table("output", "records", "where", right=("records",), fold=("where",))
    for tag, n in sorted(written.items()):
        table.add_row(tag, f"{n:,}", _relative(where(outputs.get(tag))))
    return table


def _relative(path: str) -> str:
    """A path under the current folder as a relative one (shorter lines); others as is."""
    try:
        return str(Path(path).relative_to(Path.cwd())) if path.startswith("/") else path
    except ValueError:
        return path


def render_plain(renderable: RenderableType, width: int = 120) -> str:
    """``renderable`` as plain text lines (trailing spaces removed)."""
    buf = io.StringIO()
    Console(file=buf, width=width, color_system=None, force_terminal=False,
            highlight=False).print(renderable)
    return "\n".join(line.rstrip() for line in buf.getvalue().splitlines())
