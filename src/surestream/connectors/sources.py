"""Sources: partitions of every source, interleaved into one fixed logical sequence.

The local runner reads the next ``batch_size`` records of this sequence at each step.
Partitions take turns of ``interleave_records`` records, in a fixed order (sources in spec
order, files sorted by name), so the sequence -- and with it every result -- is the same
whatever the batch size (SEMANTICS §8). A record's ``seq`` is its position in the sequence.
"""

from __future__ import annotations

import glob
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from surestream.connectors.fingerprint import FileChanged
from surestream.connectors.lines import RecordEnds, as_lf_lines
from surestream.connectors.parsing import infer_csv_types, infer_json_types
from surestream.connectors.readers import (
    SAMPLE_BYTES,
    Chunk,
    FileLayout,
    IterableReader,
    LineFileReader,
    ParquetFileReader,
    PartitionReader,
    ReaderError,
    file_layout,
)
from surestream.connectors.source_schema import SourceSchema
from surestream.connectors.value_types import SCHEMA_TYPES
from surestream.model.batch import NEG_INF, Batch
from surestream.model.spec import FileSource, GeneratorSource, restartable
from surestream.semantics.user_functions import resolve_object


class SourceError(Exception):
    """A source cannot be opened (missing files, unreadable header) or resumed."""


@dataclass
class Partition:
    source: str
    name: str  # file path or "generator"
    reader: PartitionReader
    done: bool = False


def open_source(name: str, spec: Any, resolve: Callable[[str], Path], *,
                resumable: bool = False) -> list[Partition]:
    """The partitions of one source spec, readers open at their start. ``resumable``: the
    run checkpoints periodically, so it may have to resume (a generator must restart)."""
    try:
        return _open(name, spec, resolve, resumable)
    except ReaderError as e:
        raise SourceError(f"source {name!r}: {e}") from e


def _open(name: str, spec: Any, resolve: Callable[[str], Path],
          resumable: bool) -> list[Partition]:
    if isinstance(spec, FileSource):
        paths: list[str] = []
        for entry in [spec.path] if isinstance(spec.path, str) else spec.path:
            pattern = str(resolve(entry))
            found = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
            if not found:
                raise SourceError(f"source {name!r}: no file matches {entry!r}")
            paths.extend(found)
        for p in paths:
            if not Path(p).is_file():
                raise SourceError(f"source {name!r}: {p} does not exist")
        if spec.format == "parquet":
            return [Partition(name, p, ParquetFileReader(Path(p))) for p in paths]
        layouts = [file_layout(Path(p), spec.format == "csv") for p in paths]
        schema = _declared(spec) or _inferred(Path(paths[0]), spec.format, layouts[0])
        return [Partition(name, p, LineFileReader(Path(p), spec.format, schema, layout))
                for p, layout in zip(paths, layouts, strict=True)]
    if isinstance(spec, GeneratorSource):
        if spec.records is not None:
            src = spec.records
        else:
            try:
                src = resolve_object(spec.function)
            except ValueError as e:
                raise SourceError(f"source {name!r}: {e}") from e
            if resumable and not restartable(src):  # (objects given in Python: validation)
                raise SourceError(
                    f"source {name!r}: function {spec.function!r} is a "
                    f"{type(src).__name__} object, which cannot be read again from its "
                    "start, so the run could not resume from a checkpoint; name a function "
                    "that returns a fresh iterator, or turn off checkpoint.interval_ms / "
                    "interval_records")
        return [Partition(name, spec.type, IterableReader(src, spec.params))]
    raise SourceError(f"source {name!r}: type {getattr(spec, 'type', spec)!r} is not supported")


def _declared(spec: FileSource) -> SourceSchema | None:
    if not spec.schema_:
        return None
    return SourceSchema({c: SCHEMA_TYPES[t] for c, t in spec.schema_.items()}, declared=True,
                        extra_fields=spec.extra_fields,
                        text_columns=frozenset(c for c, t in spec.schema_.items()
                                               if t == "string"))


def _inferred(path: Path, fmt: str, layout: FileLayout) -> SourceSchema:
    """Types from the first SAMPLE_BYTES of the first file (whole records)."""
    with open(path, "rb") as f:
        f.seek(layout.start)
        sample = f.read(SAMPLE_BYTES)
    ends = RecordEnds(layout.end_byte, fmt == "csv").scan(sample, 0)
    cut = int(ends[-1]) + 1 if len(ends) else len(sample)
    lines = as_lf_lines(sample[:cut], ends, layout.end_byte)
    if fmt == "jsonl":
        return SourceSchema(infer_json_types(lines.split(b"\n")))
    return SourceSchema(infer_csv_types(layout.header, lines))


@dataclass
class SourceSlice:
    """What one source contributes to one step: its records, bad lines, ended partitions."""

    batch: Batch  # partition ids set; ts None; wm NEG_INF
    #: (seq, partition, raw, message, exception class) of each line that did not parse
    bad: list[tuple[int, str, str, str, str]] = field(default_factory=list)


class Interleaver:
    """Round-robin over every partition of every source: the fixed logical sequence."""

    def __init__(self, partitions: list[Partition], interleave_records: int) -> None:
        self.partitions = partitions
        self.turn_size = interleave_records
        self.turn = 0  # index of the partition whose turn it is
        self.left = interleave_records  # records left in its turn
        self.seq = 0  # position of the next record in the sequence

    @property
    def exhausted(self) -> bool:
        return all(p.done for p in self.partitions)

    def source_partitions(self, source: str) -> list[int]:
        return [i for i, p in enumerate(self.partitions) if p.source == source]

    def next_slice(self, n: int) -> dict[str, SourceSlice]:
        """The next ``n`` records of the sequence, split by source."""
        parts: dict[str, list[tuple[int, Chunk, int]]] = {}
        ended: dict[str, list[tuple[int, int]]] = {}  # source -> (records before end, pid)
        counts: dict[str, int] = {}
        need = n
        while need > 0 and not self.exhausted:
            pid = self.turn
            part = self.partitions[pid]
            if part.done:
                self._next_turn()
                continue
            alone = sum(not q.done for q in self.partitions) == 1
            k = need if alone else min(need, self.left)  # no turns to take when alone
            chunk = part.reader.read(k)
            before_cut = bool(parts.get(part.source))
            if chunk.n:
                parts.setdefault(part.source, []).append((pid, chunk, self.seq))
                counts[part.source] = counts.get(part.source, 0) + chunk.data.height
            self.seq += chunk.n
            need -= chunk.n
            self.left -= min(chunk.n, self.left)
            if chunk.exhausted:
                part.done = True
                ended.setdefault(part.source, []).append((counts.get(part.source, 0), pid))
            if part.done or self.left == 0:
                self._next_turn()
            if chunk.cut and (chunk.n or before_cut):
                break  # the source's schema widens here: its next records start a slice
        sources = {p.source for p in self.partitions}
        return {s: self._assemble(parts.get(s, []), ended.get(s, [])) for s in sources}

    def _next_turn(self) -> None:
        self.turn = (self.turn + 1) % len(self.partitions)
        self.left = self.turn_size

    def _assemble(self, chunks: list[tuple[int, Chunk, int]],
                  ended: list[tuple[int, int]]) -> SourceSlice:
        frames, pids, seqs, bad = [], [], [], []
        for pid, chunk, start in chunks:
            rows = chunk.data.height
            frames.append(chunk.data)
            pids.append(np.full(rows, pid, dtype=np.int64))
            seqs.append(start + (np.arange(rows, dtype=np.int64) if chunk.rows_from is None
                                 else np.asarray(chunk.rows_from, dtype=np.int64)))
            name = self.partitions[pid].name
            bad.extend((start + b.index, name, b.raw, b.message, b.exception)
                       for b in chunk.bad)
        if not frames:
            data = pl.DataFrame()
        elif len(frames) == 1:
            data = frames[0]
        else:
            data = pl.concat(frames, how="diagonal_relaxed")
        seq = np.concatenate(seqs) if seqs else np.empty(0, dtype=np.int64)
        batch = Batch(
            data=data,
            wm=np.full(len(seq), NEG_INF, dtype=np.int64),
            seq=seq,
            wm_end=NEG_INF,
            partition=np.concatenate(pids) if pids else np.empty(0, dtype=np.int64),
            ended=tuple((count - 1, pid) for count, pid in ended),
        )
        return SourceSlice(batch, bad)

    # -- checkpoints ---------------------------------------------------------------------
    def positions(self) -> dict[str, Any]:
        """Where each partition stands, a fingerprint of each file's consumed bytes and each
        source's schema as widened so far (JSON, for the checkpoint manifest)."""
        return {"seq": self.seq, "turn": self.turn, "left": self.left,
                "partitions": [[p.name, p.reader.position, p.done] for p in self.partitions],
                "files": [p.reader.checkpoint_state() if p.reader.position else None
                          for p in self.partitions],
                "schemas": {name: schema.to_state() for name, schema in self._schemas().items()}}

    def _schemas(self) -> dict[str, SourceSchema]:
        return {p.source: p.reader.schema for p in self.partitions
                if p.reader.schema is not None}

    def seek(self, state: dict[str, Any]) -> None:
        """Resume at ``state``: the same partitions, each file still holding what was read
        (SourceError says which file changed and how), the schemas as they were."""
        self.seq, self.turn, self.left = state["seq"], state["turn"], state["left"]
        schemas = self._schemas()
        for name, saved in state.get("schemas", {}).items():
            if name in schemas:
                try:
                    schemas[name].restore(saved)
                except ValueError as e:
                    raise SourceError(f"source {name!r}: {e}") from e
        files = state.get("files") or [None] * len(state["partitions"])
        for part, (name, pos, done), fingerprint in zip(
                self.partitions, state["partitions"], files, strict=True):
            if part.name != name:
                raise SourceError(f"checkpoint partition {name} does not match {part.name}")
            try:
                if fingerprint is not None:
                    part.reader.verify(fingerprint, done)
                part.reader.seek(pos)
            except FileChanged as e:
                raise SourceError(
                    f"input file {name} changed since the checkpoint: {e}. Restore the "
                    "original file, or delete the checkpoint folder to start afresh (which "
                    "rewrites every output)") from e
            except ReaderError as e:
                raise SourceError(f"source {part.source!r}: {e}") from e
            part.done = done

    def close(self) -> None:
        for p in self.partitions:
            p.reader.close()
