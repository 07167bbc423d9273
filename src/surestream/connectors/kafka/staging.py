"""A checkpoint's messages, staged durably until its Kafka transaction has committed.

One Arrow IPC file per checkpoint with data, ``part-<n>.arrow`` (key, value, headers per
message, in production order), written to a temp name, fsynced and renamed, the folder
fsynced -- so once checkpoint n is durable, its messages are too, and any later process
can produce them. Beside it, ``part-<n>.attempt`` counts the produce attempts made from
it (written durably before each attempt), which the attempt header carries: attempts of
one checkpoint are sequential, so the highest one is the last.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa

from surestream.connectors.kafka.messages import Encoded
from surestream.io import fsync_dir, makedirs_durable, write_atomic

_SCHEMA = pa.schema([
    ("key", pa.binary()),
    ("value", pa.binary()),
    ("headers", pa.list_(pa.struct([("k", pa.string()), ("v", pa.binary())]))),
])
_PART = re.compile(r"^part-(\d+)\.(arrow|attempt)$")


def _headers_array(headers: list[list[tuple[str, bytes]]]) -> pa.Array:
    """The messages' headers as one list-of-struct column, built from flat lists (no
    dict per header: most outputs have none at all)."""
    lengths = np.fromiter(map(len, headers), dtype=np.int32, count=len(headers))
    offsets = np.zeros(len(headers) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    pairs = [pair for h in headers for pair in h]
    items = pa.StructArray.from_arrays(
        [pa.array([k for k, _ in pairs], pa.string()), pa.array([v for _, v in pairs],
                                                                  pa.binary())],
        fields=list(_SCHEMA.field(2).type.value_type))
    return pa.ListArray.from_arrays(pa.array(offsets), items, type=_SCHEMA.field(2).type)


def part_name(checkpoint_id: int) -> str:
    return f"part-{checkpoint_id:010d}.arrow"


class StagingFolder:
    """The staging folder of one Kafka output (``<checkpoint folder>-sink-staging/<tag>``)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def ensure(self) -> None:
        makedirs_durable(self.path)

    def write(self, checkpoint_id: int, batches: list[Encoded]) -> str:
        """Stage a checkpoint's messages; returns the file's name."""
        name = part_name(checkpoint_id)
        table = pa.table({
            "key": pa.array([k for b in batches for k in b.keys], pa.binary()),
            "value": pa.array([v for b in batches for v in b.values], pa.binary()),
            "headers": _headers_array([h for b in batches for h in b.headers]),
        }, schema=_SCHEMA)
        tmp = self.path / f".{name}.tmp"
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, _SCHEMA) as writer:
            writer.write_table(table)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, self.path / name)
        fsync_dir(self.path)
        return name

    def exists(self, name: str) -> bool:
        return (self.path / name).is_file()

    def read(self, name: str) -> Encoded:
        with pa.memory_map(str(self.path / name)) as source:
            table = pa.ipc.open_file(source).read_all()
        headers = table.column("headers").combine_chunks()
        offsets = headers.offsets.to_numpy()
        items = headers.values
        pairs = list(zip(items.field("k").to_pylist(), items.field("v").to_pylist(),
                         strict=True))
        return Encoded(table.column("key").to_pylist(), table.column("value").to_pylist(),
                       [pairs[a:b] for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist(),
                                                   strict=True)])

    def next_attempt(self, checkpoint_id: int) -> int:
        """The number of the attempt about to start (1 for the first), made durable first:
        a later attempt, even in another process after a crash, always has a higher one."""
        counter = self.path / f"part-{checkpoint_id:010d}.attempt"
        try:
            attempt = int(counter.read_text()) + 1
        except (OSError, ValueError):
            attempt = 1
        write_atomic(counter, str(attempt).encode())
        fsync_dir(self.path)
        return attempt

    def checkpoints(self) -> set[int]:
        """The checkpoint ids that have something staged."""
        if not self.path.is_dir():
            return set()
        return {int(m.group(1)) for f in self.path.iterdir()
                if (m := _PART.match(f.name))}

    def drop(self, checkpoint_id: int, attempts: bool = True) -> None:
        """Forget a checkpoint's staged messages (it landed, or never happened) and, with
        ``attempts``, its attempt count (keep it where the checkpoint may be produced again:
        a later attempt must be numbered above every earlier one)."""
        for suffix in ("arrow", "attempt") if attempts else ("arrow",):
            (self.path / f"part-{checkpoint_id:010d}.{suffix}").unlink(missing_ok=True)

    def drop_where(self, keep: Callable[[int], bool]) -> None:
        for n in self.checkpoints():
            if not keep(n):
                self.drop(n)
