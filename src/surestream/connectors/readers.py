"""Partition readers: one file (or one generator) read as an exact count of records.

A reader hands out *exactly* the number of records it is asked for (fewer only at its end,
or when the source's schema widens at the next record: ``Chunk.cut``), so the runner can
cut the logical sequence at any batch size and still see the same sequence. ``position``
is where the next record starts (a byte offset, a row number, a sequence number) -- what a
checkpoint stores to resume exactly there, with a fingerprint of what was read
(``checkpoint_state``), checked on resume (``verify``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import polars as pl

from surestream.connectors import fingerprint as fp
from surestream.connectors.lines import BOM, LF, RecordEnds, as_lf_lines, line_end_of
from surestream.connectors.parsing import (
    BadLine,
    ParsedBlock,
    infer_csv_types,
    infer_json_types,
    infer_record_types,
    parse_csv_block,
    parse_json_block,
    parse_records,
)
from surestream.connectors.source_schema import SourceSchema
from surestream.model.spec import restartable

READ_BYTES = 8 << 20
#: how much input types a column: the first file's start, or where a new field first comes
SAMPLE_BYTES = 256 << 10
SAMPLE_RECORDS = 1000  # the same for a generator


class ReaderError(Exception):
    """A partition cannot be read or resumed (sources.py names the source)."""


@dataclass(slots=True)
class Chunk:
    """Records read from one partition: good rows, and the lines that failed to parse."""

    data: pl.DataFrame
    n: int  # lines consumed: good, bad and blank (a blank line gives no row)
    rows_from: list[int] | None = None  # line (0..n-1) of each row; None: row i is line i
    bad: list[BadLine] = field(default_factory=list)
    exhausted: bool = False
    #: the source's schema widens at the next record: end the slice here, so that no batch
    #: holds records from both sides (a record's columns never depend on the batch size)
    cut: bool = False


class PartitionReader(Protocol):
    position: Any
    schema: SourceSchema | None

    def read(self, n: int) -> Chunk: ...
    def seek(self, position: Any) -> None: ...
    def checkpoint_state(self) -> dict[str, Any] | None: ...
    def verify(self, state: dict[str, Any], ended: bool) -> None: ...
    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class FileLayout:
    """Where a line file's records are: after a BOM and (CSV) the header record."""

    start: int  # offset of the first record
    end_byte: int  # LF or CR
    header: bytes  # CSV header with a "\n" end, as the parser takes it; b"" for JSON lines


def file_layout(path: Path, csv: bool) -> FileLayout:
    """Read the start of ``path``: its BOM, its line end and (CSV) its header record."""
    with open(path, "rb") as f:  # (a glob may have many files: read little of each)
        head, at_eof, step = b"", False, 4 << 10
        while True:
            more = f.read(step)
            head, at_eof, step = head + more, len(more) < step, min(step * 4, 1 << 20)
            bom = len(BOM) if head.startswith(BOM) else 0
            end_byte = line_end_of(head[bom:], at_eof)
            ends = RecordEnds(end_byte or LF, csv).scan(head[bom:], bom) if csv else None
            if (end_byte is not None and (not csv or len(ends))) or at_eof:
                break
    end_byte = end_byte or LF
    if not csv:
        return FileLayout(bom, end_byte, b"")
    cut = int(ends[0]) if len(ends) else len(head)
    raw = head[bom:cut]
    if not raw.strip():
        raise ReaderError(f"{path}: a CSV file needs a header line")
    return FileLayout(min(cut + 1, len(head)), end_byte, raw.rstrip(b"\r") + b"\n")


class LineFileReader:
    """JSON lines or CSV, read in blocks of whole records; position = byte offset.

    A last line without a line end is read as the partition's last record: the chunk that
    holds it ends the partition, and the position stays the file's real size. (While a
    line has no end it may still be growing; a checkpoint never resumes inside it.)
    """

    def __init__(self, path: Path, fmt: str, schema: SourceSchema,
                 layout: FileLayout | None = None) -> None:
        self.path, self.fmt, self.schema = path, fmt, schema
        self.layout = layout or file_layout(path, fmt == "csv")
        self._ends_finder = RecordEnds(self.layout.end_byte, fmt == "csv")
        self._file = open(path, "rb")  # noqa: SIM115 - lives as long as the reader
        self._fingerprint: dict[str, Any] | None = None
        self.seek(self.layout.start)

    def seek(self, position: int) -> None:
        self.position = int(position)
        self._file.seek(self.position)
        self._buf, self._off, self._eof = b"", 0, False
        self._ends = np.empty(0, dtype=np.int64)  # offsets in _buf of the record ends
        self._ends_finder.reset()

    def _fill(self, n: int) -> None:
        """Read until ``n`` whole records are buffered or the file ends. Record ends are
        found once per read (numpy) and kept; the buffer is re-based only when more is
        read, so taking a block copies the block and nothing else."""
        while len(self._ends) < n and not self._eof:
            more = self._file.read(READ_BYTES)
            if not more:
                self._eof = True
                break
            self._buf = self._buf[self._off:] + more
            self._ends -= self._off
            self._off = 0
            base = len(self._buf) - len(more)
            self._ends = np.concatenate((self._ends, self._ends_finder.scan(more, base)))

    def read(self, n: int) -> Chunk:
        """The next n records. A blank line counts as a line of the sequence but gives no
        row, so positions and ``seq`` are line numbers and never depend on the batch size."""
        self._fill(n)
        take = min(n, len(self._ends))
        stop = int(self._ends[take - 1]) + 1 if take else self._off
        last_open = take < n and self._eof and len(self._buf) > stop
        if take == 0 and not last_open:
            return Chunk(pl.DataFrame(schema=self.schema.polars()), 0, exhausted=True)
        k = take + (1 if last_open else 0)
        raw = self._buf[self._off:len(self._buf) if last_open else stop]
        ends = self._ends[:take] - self._off
        block = as_lf_lines(raw, ends, self.layout.end_byte)
        if last_open:
            block += b"\n"  # for the parser only: the position stays the file's size
        parsed = self._parse(block, k)
        used = parsed.used
        consumed = len(raw) if used == k else (int(ends[used - 1]) + 1 if used else 0)
        self._off += consumed
        self._ends = self._ends[min(used, take):]
        self.position += consumed
        if parsed.new_fields:
            self._widen(parsed.new_fields)
        ended = used == k and (k < n or last_open)
        return Chunk(parsed.frame, used, parsed.rows_from, parsed.bad, exhausted=ended,
                     cut=bool(parsed.new_fields))

    def _parse(self, block: bytes, k: int) -> ParsedBlock:
        if self.fmt == "jsonl":
            return parse_json_block(block, k, self.schema)
        return parse_csv_block(block, k, self.schema, self.layout.header)

    def _widen(self, fields: list[str]) -> None:
        """Type new fields (or null columns given a value) from a sample of the input that
        starts at the record bringing them -- the same sample whatever the batch size. A
        field null throughout it stays a ``Null`` column until its first value."""
        sample = self._sample_at(self.position)
        if self.fmt == "jsonl":
            found = infer_json_types(sample.split(b"\n"), fields)
        else:
            found = infer_csv_types(self.layout.header, sample, fields)
        self.schema.widen({f: found.get(f, pl.Null()) for f in fields})

    def _sample_at(self, offset: int) -> bytes:
        """Whole records from ``offset`` (a record start): SAMPLE_BYTES, at least one."""
        fd = self._file.fileno()
        finder = RecordEnds(self.layout.end_byte, self.fmt == "csv")
        data, ends = b"", np.empty(0, dtype=np.int64)
        while True:
            more = os.pread(fd, SAMPLE_BYTES, offset + len(data))
            ends = np.concatenate((ends, finder.scan(more, len(data))))
            data += more
            if len(ends) or len(more) < SAMPLE_BYTES:
                break
        cut = int(ends[-1]) + 1 if len(ends) else len(data)
        return as_lf_lines(data[:cut], ends, self.layout.end_byte)

    # -- checkpoints ---------------------------------------------------------------------
    def checkpoint_state(self) -> dict[str, Any]:
        """The fingerprint of the bytes consumed so far (computed once per position)."""
        if self._fingerprint is None or self._fingerprint["bytes"] != self.position:
            self._fingerprint = fp.fingerprint(self.path, self.position)
        return self._fingerprint

    def verify(self, state: dict[str, Any], ended: bool) -> None:
        """The file must still start with what the checkpoint read (appends are new input,
        except after a partition's end: its records would come after the end)."""
        fp.verify(self.path, state, "it had been read to its end, so its new records "
                                    "would come after the end of its partition"
                  if ended else None)

    def close(self) -> None:
        self._file.close()


class ParquetFileReader:
    """A Parquet file read by row ranges; position = row number."""

    schema: SourceSchema | None = None

    def __init__(self, path: Path) -> None:
        self.path = path
        self.position = 0
        self._frame = pl.scan_parquet(path)
        self._rows = self._frame.select(pl.len()).collect().item()
        self._fingerprint: dict[str, Any] | None = None

    def seek(self, position: int) -> None:
        self.position = int(position)

    def read(self, n: int) -> Chunk:
        take = max(0, min(n, self._rows - self.position))
        data = self._frame.slice(self.position, take).collect() if take else \
            self._frame.head(0).collect()
        self.position += take
        return Chunk(data, take, exhausted=take < n)

    def checkpoint_state(self) -> dict[str, Any]:
        if self._fingerprint is None:
            self._fingerprint = fp.fingerprint(self.path, self.path.stat().st_size)
        return self._fingerprint

    def verify(self, state: dict[str, Any], ended: bool) -> None:
        fp.verify(self.path, state, "a Parquet file is read as a whole, it may not change")

    def close(self) -> None:
        return None


class IterableReader:
    """Records from a Python iterable or callable; position = records consumed.

    The schema comes from the first ``SAMPLE_RECORDS`` records (or is declared), so column
    types do not depend on the batch size. A record that is not a dict, or whose values do
    not fit the schema, is reported as a bad record with the reason.
    """

    def __init__(self, source: Iterable[Any] | Callable[..., Iterable[Any]],
                 params: dict[str, Any] | None = None, schema: SourceSchema | None = None,
                 sample: int = SAMPLE_RECORDS) -> None:
        self.restartable = restartable(source)
        self._make = source if callable(source) else (lambda **_: source)
        self._params = params or {}
        self._sample = sample
        self._it: Iterator[Any] = iter(self._make(**self._params))
        self._ahead: list[Any] = list(islice(self._it, sample))
        self.schema = schema or SourceSchema(infer_record_types(self._ahead))
        self.position = 0

    def seek(self, position: int) -> None:
        """Start the iterable again and skip ``position`` records."""
        if not self.restartable:
            raise ReaderError(
                "an iterator cannot be resumed (it would go on from where it stands, "
                "not from the checkpoint); give a function that returns a fresh iterator, "
                "or a list")
        fresh = iter(self._make(**self._params))
        if fresh is self._it:
            raise ReaderError("the generator function returned the iterator it returned "
                              "before; it must return a fresh one to resume")
        skipped = sum(1 for _ in islice(fresh, int(position)))
        if skipped < int(position):
            raise ReaderError(f"the generator now gives {skipped:,} records, fewer than "
                              f"the {int(position):,} the checkpoint had read")
        self._it, self._ahead = fresh, []
        self.position = int(position)

    def read(self, n: int) -> Chunk:
        items = self._ahead[:n]
        self._ahead = self._ahead[n:]
        if len(items) < n:
            items.extend(islice(self._it, n - len(items)))
        parsed = parse_records(items, self.schema)
        used = parsed.used
        if used < len(items):
            self._ahead = items[used:] + self._ahead
        self.position += used
        if parsed.new_fields:
            more = self._sample - len(self._ahead)
            if more > 0:
                self._ahead.extend(islice(self._it, more))
            found = infer_record_types(self._ahead[: self._sample], parsed.new_fields)
            self.schema.widen({f: found.get(f, pl.Null()) for f in parsed.new_fields})
        return Chunk(parsed.frame, used, parsed.rows_from, parsed.bad,
                     exhausted=used == len(items) < n, cut=bool(parsed.new_fields))

    def checkpoint_state(self) -> None:
        return None

    def verify(self, state: dict[str, Any], ended: bool) -> None:
        return None

    def close(self) -> None:
        return None
