"""Did polars read a block of JSON lines faithfully? A byte-level check, cheap and exact.

``pl.read_ndjson(block, schema=...)`` is the fast path, and polars is strict about integer
and boolean columns, but it is silently lenient elsewhere: it drops fields the schema does
not have (with a value or with ``null``), and it turns a number, a boolean or a nested value
in a string column into text.
Checking every line in Python would cost several times the parse. Instead, the block's bytes
are compared with the frame polars made from them:

- ``cells``: the non-null cells of the frame; each comes from a field with a non-null value;
- ``string_cells``: the non-null cells of string columns; each should come from a JSON string.

Level 1 (two byte counts; holds for most machine-written data): the block has no ``\\`` and
no ``[``, and ``count(':') == cells`` and ``count('"') == 2 * (cells + string_cells)``.
Every ``:`` is a key's or lies inside a string, and every key with a non-null value is a
cell or a field the schema lacks, so the first equality leaves no room for a field the
schema lacks, a key holding ``null``, a nested object with keys or a ``:`` inside a string.
Without escapes every ``"`` delimits a string, so the second leaves none for a string cell
that was not a JSON string (nested values that could hide one need ``[``).

Level 2 (for blocks with null values, ``:`` in strings or escapes): the structure is read
from the bytes. A quote is a delimiter unless an odd run of backslashes precedes it;
delimiters alternate opening/closing; a colon is a key's colon iff the byte before it (over
whitespace) is a closing delimiter; the byte after it (over whitespace) starts the value.
With no nested value anywhere, the keys with non-null values must be exactly ``cells`` and
the keys with string values exactly ``string_cells``; and every key holding ``null`` must be
a column (its bytes those of a column's name: a field the schema lacks is a new column even
while it holds only nulls, so the reader has to see it).

Anything else -- nested values, odd whitespace -- answers ``False``: the caller then checks
the block line by line.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import numpy as np
import polars as pl
from numpy.lib.stride_tricks import sliding_window_view

_QUOTE, _COLON, _BACKSLASH = 34, 58, 92
_WHITESPACE = (32, 9, 13)
_MAX_WHITESPACE = 8  # more blanks around a colon than this: let the line-by-line check decide


def frame_counts(frame: pl.DataFrame, string_columns: list[str]) -> tuple[int, int]:
    """(non-null cells, non-null cells of string columns)."""
    nulls = frame.null_count().row(0, named=True) if frame.width else {}
    cells = frame.height * frame.width - sum(nulls.values())
    strings = sum(frame.height - nulls[c] for c in string_columns)
    return cells, strings


def faithful(block: bytes, frame: pl.DataFrame, string_columns: list[str]) -> bool:
    """True when ``frame`` (read with the schema: its columns are the schema's) holds every
    non-null field of ``block``, every string cell from a JSON string, and ``block`` has
    no key holding ``null`` that is not a column. False: it may not (check line by line)."""
    cells, string_cells = frame_counts(frame, string_columns)
    arr = np.frombuffer(block, dtype=np.uint8)
    has_escape = block.find(b"\\") >= 0
    if not has_escape and block.find(b"[") < 0:
        colons = int(np.count_nonzero(arr == _COLON))
        if colons == cells and \
                int(np.count_nonzero(arr == _QUOTE)) == 2 * (cells + string_cells):
            return True
    return _structure_matches(arr, has_escape, cells, string_cells, frame.columns)


def _structure_matches(arr: np.ndarray, has_escape: bool, cells: int,
                       string_cells: int, columns: list[str]) -> bool:
    quotes = np.flatnonzero(arr == _QUOTE)
    if has_escape and len(quotes):
        quotes = quotes[~_escaped(arr, quotes)]
    if len(quotes) % 2 or (len(quotes) and quotes[-1] + 1 >= len(arr)):
        return False
    opening, closing = quotes[0::2], quotes[1::2]
    next_byte = _over_whitespace(arr, closing + 1, +1)
    if next_byte is None:
        return False
    is_key = arr[next_byte] == _COLON  # the string before it is a key
    after = _over_whitespace(arr, next_byte[is_key] + 1, +1)
    if after is None:
        return False
    first = arr[after]
    if np.any((first == ord("[")) | (first == ord("{"))):
        return False  # a nested value: its keys and strings are not cells
    is_null = first == ord("n")
    nonnull = len(first) - int(np.count_nonzero(is_null))
    strings = int(np.count_nonzero(first == _QUOTE))
    if nonnull != cells or strings != string_cells:
        return False
    if not is_null.any():
        return True
    return _names_among(arr, opening[is_key][is_null] + 1, closing[is_key][is_null], columns)


def _names_among(arr: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                 columns: Iterable[str]) -> bool:
    """Are the byte strings ``arr[starts[i]:ends[i]]`` all names of ``columns`` as JSON
    writes them? (Vectorized per name length: the keys of one length, each one numpy item,
    are compared with the few names of that length. A name written another way -- other
    escapes -- answers False: the block is then checked line by line.)"""
    spelled: dict[int, set[bytes]] = {}
    for name in columns:
        for ascii_only in (True, False):
            text = json.dumps(name, ensure_ascii=ascii_only)[1:-1].encode()
            spelled.setdefault(len(text), set()).add(text)
    lengths = ends - starts
    for length in np.flatnonzero(np.bincount(lengths)).tolist():
        names = spelled.get(length)
        if names is None:
            return False
        if not length:
            continue  # a column named ""
        keys = sliding_window_view(arr, length)[starts[lengths == length]]
        keys = keys.view(np.dtype((np.void, length))).ravel()  # one item per key
        matched = np.zeros(len(keys), dtype=bool)
        for name in names:
            matched |= keys == np.void(name)
        if not matched.all():
            return False
    return True


def _escaped(arr: np.ndarray, quotes: np.ndarray) -> np.ndarray:
    """Which quotes follow an odd run of backslashes (``\\"`` inside a string)."""
    escaped = np.zeros(len(quotes), dtype=bool)
    idx = np.flatnonzero(arr[np.maximum(quotes - 1, 0)] == _BACKSLASH)
    if not len(idx):
        return escaped
    run = np.ones(len(idx), dtype=np.int64)
    pos = quotes[idx] - 2
    active = np.ones(len(idx), dtype=bool)
    while active.any():
        active &= (pos >= 0) & (arr[np.maximum(pos, 0)] == _BACKSLASH)
        run += active
        pos -= 1
    escaped[idx] = run % 2 == 1
    return escaped


def _over_whitespace(arr: np.ndarray, pos: np.ndarray, step: int) -> np.ndarray | None:
    """``pos`` moved by ``step`` past JSON whitespace; None if there is too much of it.
    (A colon is inside a line, whose ``{`` and line end bound every move.)"""
    for _ in range(_MAX_WHITESPACE):
        byte = arr[pos]
        blank = (byte == _WHITESPACE[0]) | (byte == _WHITESPACE[1]) | (byte == _WHITESPACE[2])
        if not blank.any():
            return pos
        pos = pos + step * blank
    return None
