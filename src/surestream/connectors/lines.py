"""Where records end in a line-oriented file, as exact byte offsets.

- A file ends its lines with ``"\\n"`` (``"\\r\\n"`` is one line end: the ``"\\r"`` is
  whitespace before it) or, if its first line end is a lone ``"\\r"``, with ``"\\r"`` (old
  Mac files): that is the file's *line end*, decided once from its first line end.
- In CSV a line end inside a quoted field is part of the field: a record ends at a line end
  outside quotes (an even number of ``"`` since the record started -- ``""`` inside a
  quoted field counts twice, so it never changes that).
- A UTF-8 byte order mark at the start of a file is not part of its first line.

Offsets stay the file's own byte offsets (nothing is rewritten in place), so a checkpoint
position is where the next record starts in the file as it is on disk.
"""

from __future__ import annotations

import numpy as np

BOM = b"\xef\xbb\xbf"
LF, CR = 10, 13
QUOTE = 34


def line_end_of(head: bytes, at_eof: bool) -> int | None:
    """The line-end byte of a file from its first bytes: LF or CR; ``None`` when ``head``
    has no line end yet (and more may come)."""
    i_lf, i_cr = head.find(b"\n"), head.find(b"\r")
    if i_cr < 0 or (0 <= i_lf < i_cr):
        return LF if i_lf >= 0 else (LF if at_eof else None)
    if i_cr + 1 < len(head):
        return LF if head[i_cr + 1] == LF else CR
    return CR if at_eof else None  # a last "\r": is a "\n" next?


class RecordEnds:
    """Finds record ends in consecutive chunks of one file (from a record start on)."""

    def __init__(self, end_byte: int, csv: bool) -> None:
        self.end_byte = end_byte
        self.csv = csv
        self._odd = False  # inside a quoted CSV field at the end of what was scanned

    def reset(self) -> None:
        """Scanning restarts at a record start (after a seek)."""
        self._odd = False

    def scan(self, chunk: bytes, base: int) -> np.ndarray:
        """Offsets (``base`` + index in ``chunk``) of the record ends in ``chunk``."""
        arr = np.frombuffer(chunk, dtype=np.uint8)
        ends = np.flatnonzero(arr == self.end_byte)
        if self.csv and (self._odd or chunk.find(b'"') >= 0):
            quotes = np.flatnonzero(arr == QUOTE)
            before = np.searchsorted(quotes, ends) + (1 if self._odd else 0)
            ends = ends[before % 2 == 0]
            self._odd = (len(quotes) + (1 if self._odd else 0)) % 2 == 1
        return ends + base


def as_lf_lines(block: bytes, ends: np.ndarray, end_byte: int) -> bytes:
    """``block`` with its record ends (offsets into it) as ``"\\n"``, the separator the
    parsers take; a CR-ended file's records get LF ends, nothing else changes."""
    if end_byte == LF:
        return block
    out = np.frombuffer(bytearray(block), dtype=np.uint8)
    out[ends] = LF
    return out.tobytes()
