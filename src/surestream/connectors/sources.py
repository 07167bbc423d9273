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

from surestream.connectors.parsing import SCHEMA_TYPES, infer_schema
from surestream.connectors.readers import (
    Chunk,
    IterableReader,
    LineFileReader,
    ParquetFileReader,
    PartitionReader,
)
from surestream.model.batch import NEG_INF, Batch
from surestream.model.spec import FileSource, GeneratorSource
from surestream.semantics.user_functions import resolve_object

SAMPLE_BYTES = 256 << 10  # schema inference sample of the first file


class SourceError(Exception):
    """A source cannot be opened (missing files, unreadable header)."""


@dataclass
class Partition:
    source: str
    name: str  # file path or "generator"
    reader: PartitionReader
    done: bool = False


def open_source(name: str, spec: Any, resolve: Callable[[str], Path]) -> list[Partition]:
    """The partitions of one source spec, readers open at their start."""
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
        header = _csv_header(Path(paths[0])) if spec.format == "csv" else b""
        schema = _declared(spec) or _inferred(Path(paths[0]), spec.format, header)
        return [Partition(name, p, LineFileReader(
            Path(p), spec.format, schema, _csv_header(Path(p)) if header else b""))
            for p in paths]
    if isinstance(spec, GeneratorSource):
        if spec.records is not None:
            src = spec.records
        else:
            try:
                src = resolve_object(spec.function)
            except ValueError as e:
                raise SourceError(f"source {name!r}: {e}") from e
        return [Partition(name, spec.type, IterableReader(src, spec.params))]
    raise SourceError(f"source {name!r}: type {getattr(spec, 'type', spec)!r} is not supported")


def _declared(spec: FileSource) -> pl.Schema | None:
    if not spec.schema_:
        return None
    return pl.Schema({c: SCHEMA_TYPES[t] for c, t in spec.schema_.items()})


def _csv_header(path: Path) -> bytes:
    with open(path, "rb") as f:
        line = f.readline()
    if not line.strip():
        raise SourceError(f"{path}: a CSV file needs a header line")
    return line if line.endswith(b"\n") else line + b"\n"


def _inferred(path: Path, fmt: str, header: bytes) -> pl.Schema:
    with open(path, "rb") as f:
        sample = f.read(SAMPLE_BYTES)
    sample = sample[len(header):]
    cut = sample.rfind(b"\n")
    return infer_schema(fmt, sample[: cut + 1] if cut >= 0 else sample, header)


@dataclass
class SourceSlice:
    """What one source contributes to one step: its records, bad lines, ended partitions."""

    batch: Batch  # partition ids set; ts None; wm NEG_INF
    bad: list[tuple[int, str, str, str]] = field(default_factory=list)  # (seq, part, raw, msg)


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
            bad.extend((start + b.index, name, b.raw, b.message) for b in chunk.bad)
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

    # -- checkpoints (issue 3) ----------------------------------------------------------
    def positions(self) -> dict[str, Any]:
        return {"seq": self.seq, "turn": self.turn, "left": self.left,
                "partitions": [[p.name, p.reader.position, p.done] for p in self.partitions]}

    def seek(self, state: dict[str, Any]) -> None:
        self.seq, self.turn, self.left = state["seq"], state["turn"], state["left"]
        for part, (name, pos, done) in zip(self.partitions, state["partitions"], strict=True):
            if part.name != name:
                raise SourceError(f"checkpoint partition {name} does not match {part.name}")
            part.reader.seek(pos)
            part.done = done

    def close(self) -> None:
        for p in self.partitions:
            p.reader.close()
