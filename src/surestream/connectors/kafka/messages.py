"""Records as Kafka messages: key, value and headers, and what a message cannot hold.

- **value**: the record as one JSON object, written exactly as a JSON-lines file writes
  it (polars' columnar writer: no per-record Python), so a topic and a ``jsonl`` output
  of the same tag hold the same bytes per record;
- **key**: none without ``key_fields``; one field: its value as text (a string as it is,
  anything else as its JSON text: ``42``, ``true``); several fields: a JSON array of
  their values (``["AAPL","XNAS"]``); a field the record lacks counts as null (a null
  single key is no key);
- **headers**: ``header_fields`` as text; by default an error output's error type,
  category, exception and message, and a late output's lateness metadata -- so a DLQ or
  quarantine consumer can route on headers without parsing values. A null is no header.

What a value cannot hold is refused by ``reject`` with the JSON-lines file's own checks
(binary data, opaque objects, NaN/infinity), never changed to fit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import orjson
import polars as pl

from surestream.connectors.file_sinks import (
    JSON_FLOAT_ADVICE,
    JSON_TYPE_ADVICE,
    refused_by_json,
)
from surestream.connectors.sink_protocol import (
    Rejection,
    blank_refused_columns,
    non_finite_check,
    reject_rows,
    type_check,
)
from surestream.semantics.late import LATE_METADATA_COLUMNS

#: what an output's records are, for its default headers
OutputKind = Literal["records", "errors", "late"]

#: the default headers of an error output (those its records have)
ERROR_HEADER_FIELDS = ("error_type", "category", "exception", "error_message")
#: the default headers of a late output
LATE_HEADER_FIELDS = tuple(c for c in LATE_METADATA_COLUMNS)

#: headers surestream adds to every message it produces (docs/kafka.md, "Sinks")
RUN_HEADER = "surestream.run"            # one id per run started afresh
CHECKPOINT_HEADER = "surestream.checkpoint"  # the checkpoint the record belongs to
INDEX_HEADER = "surestream.index"        # the record's place within that checkpoint
ATTEMPT_HEADER = "surestream.attempt"    # exactly_once: which produce attempt of it


#: librdkafka's default message.max.bytes, less room for surestream's own headers
MAX_MESSAGE_BYTES = 1_000_000 - 512


#: the headers of a message that has none of its own
NO_HEADERS: list[tuple[str, bytes]] = []


@dataclass
class Encoded:
    """A batch of records as messages (parallel lists)."""

    keys: list[bytes | None]
    values: list[bytes]
    headers: list[list[tuple[str, bytes]]]

    def __len__(self) -> int:
        return len(self.values)


def default_header_fields(kind: OutputKind) -> tuple[str, ...]:
    return {"errors": ERROR_HEADER_FIELDS, "late": LATE_HEADER_FIELDS}.get(kind, ())


def _text(value: Any) -> bytes:
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bytes):
        return value
    return orjson.dumps(value, default=str)


class MessageEncoder:
    """Turns frames into messages for one output (its key and header fields)."""

    def __init__(self, output: str, key_fields: list[str] | None,
                 header_fields: list[str] | None, kind: OutputKind,
                 max_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self.output = output
        self.max_bytes = max_bytes
        self._encoded: tuple[pl.DataFrame, Encoded] | None = None
        self.key_fields = list(key_fields or [])
        self.header_fields = list(header_fields) if header_fields is not None \
            else list(default_header_fields(kind))

    def reject(self, data: pl.DataFrame) -> Rejection | None:
        """As a JSON-lines file (no binary data or objects, no NaN or infinity), and no
        message larger than ``max_bytes``: the producer would refuse it, and the replay
        after a restart would meet it again -- the run would stop on every start."""
        if not data.height:
            return None
        first = reject_rows(data, [type_check(refused_by_json, self.output, JSON_TYPE_ADVICE),
                                   non_finite_check(self.output, JSON_FLOAT_ADVICE)])
        kept = np.ones(data.height, dtype=bool)
        if first is not None:
            kept[first.rows] = False
        rest = data.filter(pl.Series(kept)) if first is not None else data
        encoded = self.encode(rest)
        big, sizes = self._too_big(encoded)
        if first is None and not len(big):
            self._encoded = (data, encoded)  # write(data) reuses it
            return None
        reasons = dict(zip(first.rows.tolist(), first.reasons, strict=True)) if first else {}
        rows_of_rest = np.flatnonzero(kept)
        for i in big.tolist():
            reasons[int(rows_of_rest[i])] = (
                f"{self.output} cannot hold a record of {int(sizes[i]):,} bytes in one "
                f"message (at most {self.max_bytes:,}: the producer's message.max.bytes "
                "less room for the headers); make the record smaller before this output, "
                "or raise message.max.bytes in the output's options and on the topic")
        rows = sorted(reasons)
        return Rejection(np.array(rows, dtype=np.int64), [reasons[r] for r in rows])

    def _too_big(self, encoded: Encoded) -> tuple[np.ndarray, np.ndarray]:
        """(the messages larger than ``max_bytes``, every message's size). The largest
        value, key and headers together bound every message: when that bound fits, no
        message is counted one by one (the usual case: a few C passes over the lists)."""
        if not len(encoded):
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        bound = max(map(len, encoded.values))
        if any(k is not None for k in encoded.keys):
            bound += max(len(k) for k in encoded.keys if k is not None)
        if any(encoded.headers):
            bound += max(sum(len(n) + len(x) for n, x in h) for h in encoded.headers)
        if bound <= self.max_bytes:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        sizes = np.array([len(v) + len(k or b"") + sum(len(n) + len(x) for n, x in h)
                          for k, v, h in zip(encoded.keys, encoded.values, encoded.headers,
                                             strict=True)], dtype=np.int64)
        return np.flatnonzero(sizes > self.max_bytes), sizes

    def encode(self, data: pl.DataFrame) -> Encoded:
        cached, self._encoded = self._encoded, None
        if cached is not None and cached[0] is data:
            return cached[1]
        data = blank_refused_columns(data, refused_by_json)  # null wherever reject() passed
        values = data.write_ndjson().encode().split(b"\n")[: data.height]
        return Encoded(self._keys(data), values, self._headers(data))

    def _column(self, data: pl.DataFrame, name: str) -> list[Any]:
        return data.get_column(name).to_list() if name in data.columns \
            else [None] * data.height

    def _keys(self, data: pl.DataFrame) -> list[bytes | None]:
        if not self.key_fields:
            return [None] * data.height
        if len(self.key_fields) == 1:
            name = self.key_fields[0]
            if name in data.columns and data.schema[name] in (pl.String, pl.Binary):
                # a string key is its UTF-8 bytes: one cast, no per-record call
                return data.get_column(name).cast(pl.Binary).to_list()
            return [None if v is None else _text(v) for v in self._column(data, name)]
        columns = [self._column(data, f) for f in self.key_fields]
        return [orjson.dumps(list(values), default=str) for values in zip(*columns, strict=True)]

    def _headers(self, data: pl.DataFrame) -> list[list[tuple[str, bytes]]]:
        present = [f for f in self.header_fields if f in data.columns]
        if not present:
            return [NO_HEADERS] * data.height  # (shared: headers are only ever read)
        columns = [(f, data.get_column(f).to_list()) for f in present]
        return [[(f, _text(values[i])) for f, values in columns if values[i] is not None]
                for i in range(data.height)]
