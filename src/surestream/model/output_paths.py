"""Every output owns its place on disk: path conflicts a spec is refused for.

A run truncates its line-file outputs, empties its Parquet dataset folders and clears its
checkpoint folder when it starts afresh, and appends to them at every commit. So each of
those places must belong to one output alone, and never hold an input:

- two outputs on one path (a file, a dataset folder, or the same table of one DuckDB file)
  would overwrite each other -- what was left was an empty file, with exit 0;
- an output that is an input, or a dataset folder that holds one, would destroy the input
  (a Parquet output at ``.`` deleted the spec's whole folder);
- an output inside another's dataset folder, or inside the checkpoint folder (or the
  reverse), is deleted or rewritten with it;
- an output an input glob matches would be read back as input by the next run.

Paths are compared resolved (symlinks followed, relative ones against the spec's folder),
including the default errors output. What is already *inside* a dataset folder is checked
when the run starts, by the sink (``ParquetDatasetSink.check_owned``).
"""

from __future__ import annotations

import fnmatch
import glob
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Claim:
    """A place on disk one part of the pipeline writes."""

    field: str  # where the user set it, e.g. ``outputs.main.path``
    path: Path  # resolved
    what: str  # "file", "dataset folder", "DuckDB file", "checkpoint folder"
    table: str | None = None  # DuckDB: the table (several may share a database file)

    @property
    def folder(self) -> bool:
        return self.what in ("dataset folder", "checkpoint folder")

    def describe(self) -> str:
        table = f" (table {self.table})" if self.table else ""
        return f"the {self.what} {self.path}{table} of {self.field}"


@dataclass(frozen=True)
class Input:
    field: str  # e.g. ``source.path`` or ``sources.trades.path[1]``
    pattern: Path  # resolved; may hold glob characters


def _resolved(path: Path) -> Path:
    return path.resolve()


def _resolved_pattern(path: Path) -> Path:
    """A glob with its literal leading folders resolved (symlinks there followed)."""
    parts = path.parts
    literal = 0
    while literal < len(parts) and not glob.has_magic(parts[literal]):
        literal += 1
    if literal == len(parts):
        return path.resolve()
    return Path(*Path(*parts[:literal]).resolve().parts, *parts[literal:])


def claims(spec: Any) -> list[Claim]:
    """The places the spec's outputs and checkpoints write, resolved."""
    from surestream.model.spec import ERRORS_TAG, DuckDBSink, FileSink

    out: list[Claim] = []
    for tag, sink in spec.outputs.items():
        field = f"outputs.{tag}.path"
        if isinstance(sink, FileSink):
            what = "dataset folder" if sink.format == "parquet" else "file"
            out.append(Claim(field, _resolved(spec.resolve(sink.path)), what))
        elif isinstance(sink, DuckDBSink):
            out.append(Claim(field, _resolved(spec.resolve(sink.path)), "DuckDB file",
                             sink.table))
        dead = getattr(sink, "dead_letter", None)  # on_sink_failure: dlq (sink_resilience)
        if dead is not None:
            out.append(Claim(f"outputs.{tag}.dead_letter.path",
                             _resolved(spec.resolve(dead.path)), "file"))
    if ERRORS_TAG not in spec.outputs:
        out.append(Claim("the default errors output (outputs.errors is not set)",
                         _resolved(spec.errors_default_path()), "file"))
    out.append(Claim("checkpoint.dir", _resolved(spec.checkpoint_dir()), "checkpoint folder"))
    return out


def inputs(spec: Any) -> list[Input]:
    from surestream.model.spec import FileSource

    found: list[Input] = []
    named = {"source": spec.source} if spec.source is not None else {
        f"sources.{name}": src for name, src in spec.sources.items()}
    for prefix, src in named.items():
        if not isinstance(src, FileSource):
            continue
        entries = [src.path] if isinstance(src.path, str) else list(src.path)
        for i, entry in enumerate(entries):
            field = f"{prefix}.path" if isinstance(src.path, str) else f"{prefix}.path[{i}]"
            found.append(Input(field, _resolved_pattern(spec.resolve(entry))))
    return found


def _inside(inner: Path, outer: Path) -> bool:
    """``inner`` is ``outer`` or below it."""
    return inner == outer or outer in inner.parents


def _glob_matches(pattern: Path, path: Path, *, below: bool = False) -> bool:
    """Whether ``glob.glob(pattern)`` would return ``path`` (``below``: or a path inside
    the folder ``path``). Part by part, like glob: ``*`` does not cross ``/`` and does
    not match a leading dot."""
    pat, parts = pattern.parts, path.parts
    if len(parts) > len(pat) or (len(parts) < len(pat) and not below):
        return False
    for p, name in zip(pat, parts, strict=False):
        if name.startswith(".") and not p.startswith(".") and glob.has_magic(p):
            return False
        if not fnmatch.fnmatchcase(name, p):
            return False
    return True


def _between_outputs(a: Claim, b: Claim) -> str | None:
    """Why ``b`` cannot be where it is, given ``a`` (None: no conflict)."""
    if a.path == b.path:
        if a.table is not None and b.table is not None:
            if a.table != b.table:
                return None  # two tables of one database file
            return (f"table {b.table} of {b.path} is also written by {a.field}; give each "
                    "output its own table or database file")
        return (f"{b.path} is also {a.describe()}; two outputs on one path overwrite each "
                "other -- give each its own path")
    for outer, inner in ((a, b), (b, a)):
        if _inside(inner.path, outer.path):
            owner = "its checkpoints" if outer.what == "checkpoint folder" else "that output"
            return (f"{inner.describe()} is inside {outer.describe()}, which belongs to "
                    f"{owner} alone (it is emptied on a fresh start); move one of them out")
    return None


def _against_input(c: Claim, inp: Input) -> str | None:
    """Why output ``c`` cannot be where it is, given input ``inp`` (None: no conflict)."""
    pattern = inp.pattern
    if glob.has_magic(str(pattern)):
        if _glob_matches(pattern, c.path, below=c.folder):
            return (f"{c.describe()} is matched by the input pattern {pattern} "
                    f"({inp.field}): the next run would read this output back as input; "
                    "write it elsewhere or narrow the pattern")
        sources = [Path(p).resolve() for p in glob.glob(str(pattern))]
    else:
        sources = [pattern]
    for src in sources:
        if src == c.path:
            return (f"{c.path} is the input of {inp.field}: the output would overwrite it; "
                    "write the output elsewhere")
        if _inside(src, c.path):
            return (f"{c.describe()} holds the input {src} ({inp.field}); an output's or "
                    "the checkpoints' folder belongs to them alone -- point it at a folder "
                    "of its own")
    return None


def output_path_problems(spec: Any) -> list[tuple[str, str]]:
    """``(field, reason)`` for every output or checkpoint path that is not its own."""
    problems: list[tuple[str, str]] = []
    cs = claims(spec)
    for i, b in enumerate(cs):
        for a in cs[:i]:
            reason = _between_outputs(a, b)
            if reason is not None:
                problems.append((b.field, reason))
                break
    for c in cs:
        for inp in inputs(spec):
            reason = _against_input(c, inp)
            if reason is not None:
                problems.append((c.field, reason))
                break
    if spec.base_dir is not None:
        home = _resolved(Path(spec.base_dir))
        for c in cs:
            if c.what == "dataset folder" and _inside(home, c.path):
                problems.append((c.field, f"{c.describe()} holds the spec's own folder "
                                          f"{home}, which the output would delete; point it "
                                          "at a folder of its own, e.g. out/<name>"))
    return problems
