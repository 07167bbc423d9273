"""Partition readers: one file (or one generator) read as an exact count of records.

A reader hands out *exactly* the number of records it is asked for (fewer only at its end),
so the runner can cut the logical sequence at any batch size and still see the same
sequence. ``position`` is where the next record starts (a byte offset, a row number, a
sequence number) -- what a checkpoint stores to resume exactly there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import polars as pl

from surestream.connectors.parsing import BadLine, parse_block, schema_of_records
from surestream.semantics.errors import to_raw

READ_BYTES = 8 << 20


@dataclass(slots=True)
class Chunk:
    """Records read from one partition: good rows, and the lines that failed to parse."""

    data: pl.DataFrame
    n: int  # lines consumed: good, bad and blank (a blank line gives no row)
    rows_from: list[int] | None = None  # line (0..n-1) of each row; None: row i is line i
    bad: list[BadLine] = field(default_factory=list)
    exhausted: bool = False


class PartitionReader(Protocol):
    position: Any

    def read(self, n: int) -> Chunk: ...
    def seek(self, position: Any) -> None: ...
    def close(self) -> None: ...


class LineFileReader:
    """JSON lines or CSV, read in blocks of whole lines; position = byte offset."""

    def __init__(self, path: Path, fmt: str, schema: pl.Schema, header: bytes = b"") -> None:
        self.path, self.fmt, self.schema, self.header = path, fmt, schema, header
        self._file = open(path, "rb")  # noqa: SIM115 - lives as long as the reader
        self.position = len(header)
        self._file.seek(self.position)
        self._buf = b""
        self._off = 0  # where the unread part of _buf starts
        self._ends = np.empty(0, dtype=np.int64)  # positions of "\n" in _buf
        self._eof = False

    def seek(self, position: int) -> None:
        self.position = int(position)
        self._file.seek(self.position)
        self._buf, self._off, self._eof = b"", 0, False
        self._ends = np.empty(0, dtype=np.int64)

    def _lines(self, n: int) -> tuple[bytes, int]:
        """The next block of up to n whole lines, and how many lines it holds.

        Newline positions are found once per read (numpy) and kept, and the buffer is only
        re-based when more is read, so taking a block copies the block and nothing else."""
        while len(self._ends) < n and not self._eof:
            more = self._file.read(READ_BYTES)
            if not more:
                self._eof = True
                if len(self._buf) > self._off and not self._buf.endswith(b"\n"):
                    more = b"\n"  # the last line has no newline: give it one
                else:
                    break
            self._buf = self._buf[self._off:] + more
            self._ends -= self._off
            self._off = 0
            base = len(self._buf) - len(more)
            new_ends = np.flatnonzero(np.frombuffer(more, dtype=np.uint8) == 10) + base
            self._ends = np.concatenate((self._ends, new_ends))
        take = min(n, len(self._ends))
        if take == 0:
            return b"", 0
        cut = int(self._ends[take - 1]) + 1
        block = self._buf[self._off:cut]
        self._off = cut
        self._ends = self._ends[take:]
        return block, take

    def read(self, n: int) -> Chunk:
        """The next n lines. A blank line counts as a line of the sequence but gives no row,
        so positions and ``seq`` are line numbers and never depend on the batch size."""
        block, k = self._lines(n)
        self.position += len(block)
        if k == 0:
            return Chunk(pl.DataFrame(schema=self.schema), 0, exhausted=True)
        frame, rows_from, bad = parse_block(self.fmt, block, k, self.schema, self.header)
        return Chunk(frame, k, rows_from, bad, exhausted=k < n)

    def close(self) -> None:
        self._file.close()


class ParquetFileReader:
    """A Parquet file read by row ranges; position = row number."""

    def __init__(self, path: Path, schema: pl.Schema | None = None) -> None:
        self.path = path
        self.position = 0
        self._frame = pl.scan_parquet(path)
        self._rows = self._frame.select(pl.len()).collect().item()

    def seek(self, position: int) -> None:
        self.position = int(position)

    def read(self, n: int) -> Chunk:
        take = max(0, min(n, self._rows - self.position))
        data = self._frame.slice(self.position, take).collect() if take else \
            self._frame.head(0).collect()
        self.position += take
        return Chunk(data, take, exhausted=take < n)

    def close(self) -> None:
        return None


class IterableReader:
    """Records from a Python iterable or callable; position = records consumed.

    The schema is fixed from the first ``sample`` records (or declared), so column types do
    not depend on the batch size. A record that is not a dict, or whose values do not fit
    the schema, is reported as a bad record with the reason.
    """

    def __init__(self, source: Iterable[Any] | Callable[..., Iterable[Any]],
                 params: dict[str, Any] | None = None, schema: pl.Schema | None = None,
                 sample: int = 1000) -> None:
        self._make = source if callable(source) else (lambda **_: source)
        self._params = params or {}
        self._it: Iterator[Any] = iter(self._make(**self._params))
        self._ahead: list[Any] = list(islice(self._it, sample))
        self.schema = schema if schema is not None else schema_of_records(self._ahead)
        self.position = 0

    def seek(self, position: int) -> None:
        """Restart the iterable and skip ``position`` records (generators are replayable)."""
        self._it = iter(self._make(**self._params))
        self._ahead = []
        for _ in islice(self._it, int(position)):
            pass
        self.position = int(position)

    def read(self, n: int) -> Chunk:
        items = self._ahead[:n]
        self._ahead = self._ahead[n:]
        if len(items) < n:
            items.extend(islice(self._it, n - len(items)))
        self.position += len(items)
        good = [i for i, r in enumerate(items) if isinstance(r, dict)]
        bad = [BadLine(i, to_raw(r), f"TypeError: a record must be a dict, got {type(r).__name__}")
               for i, r in enumerate(items) if not isinstance(r, dict)]
        frame, rows_from, more_bad = _rows_to_frame([items[i] for i in good], self.schema)
        bad.extend(BadLine(good[b.index], b.raw, b.message) for b in more_bad)
        rf = [good[i] for i in rows_from]
        identity = not bad and len(rf) == len(items)
        return Chunk(frame, len(items), None if identity else rf,
                     sorted(bad, key=lambda b: b.index), exhausted=len(items) < n)

    def close(self) -> None:
        return None


def _rows_to_frame(rows: list[dict], schema: pl.Schema) -> tuple[pl.DataFrame, list[int],
                                                                   list[BadLine]]:
    """Dicts -> frame with the fixed schema, bisecting to isolate records that do not fit."""
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
                bad.append(BadLine(lo, to_raw(rows[lo]), f"{type(e).__name__}: {e}"))
                return
            mid = (lo + hi) // 2
            solve(lo, mid)
            solve(mid, hi)

    solve(0, len(rows))
    frame = pl.concat(frames) if len(frames) > 1 else (frames[0] if frames
                                                       else pl.DataFrame(schema=schema))
    return frame, rows_from, bad
