"""Bronze's reader of landing files: every line, as received, with where it came from.

The file source parses JSON lines and sends a line that does not parse to ``errors``;
bronze must keep *every* line it received -- a malformed one too, byte for byte -- so the
bronze hop reads the landing files through this generator instead: one record per line,
``{raw, ingest_source, ingest_partition, ingest_offset}`` (the line's text without its line
end, the file's name, the file's index in ``paths``, the line's index in its file from 0).
It is restartable (a fresh iterator each call), so a resumed run reads the same lines and
skips exactly the ones its checkpoint had consumed (``IterableReader.seek``).

Lines are decoded as UTF-8 with replacement (a byte sequence that is not UTF-8 still lands,
marked) and a trailing ``\\r`` is dropped with the ``\\n``; an empty line is received too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any


def received_lines(paths: list[str]) -> Iterator[dict[str, Any]]:
    """Every line of ``paths``, file after file, as a bronze record (module docstring)."""
    for index, path in enumerate(paths):
        name = Path(path).name
        with open(path, "rb") as f:
            for offset, line in enumerate(f):
                yield {"raw": line.rstrip(b"\n").rstrip(b"\r").decode("utf-8", "replace"),
                       "ingest_source": name, "ingest_partition": index,
                       "ingest_offset": offset}
