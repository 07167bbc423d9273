"""A table sink's checkpoint records, staged durably until the table has taken them.

Once checkpoint n is durable the runner never produces its records again (a restart
resumes after n), so whatever a sink needs to finish n's commit later -- in another
process, after a crash -- must be durable before n is: ``pre_commit`` stages the records
here, one Arrow IPC file per checkpoint with data, ``cp-<10 digits>.arrow``, written to a
temp name, fsynced, renamed and the folder fsynced. The commit (or a recovery) reads it
back and removes it once the table holds the records.

Arrow IPC keeps every type exactly as staged (no Parquet logical-type round trip), and a
file holds the frames of one checkpoint with one schema: the sink casts each frame to the
table's column types before staging, so concatenating never widens a column.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import polars as pl
import pyarrow as pa

from surestream.io import fsync_dir, makedirs_durable

_PART = re.compile(r"^cp-(\d{10})\.arrow$")


def staged_name(checkpoint_id: int) -> str:
    return f"cp-{int(checkpoint_id):010d}.arrow"


class StagedFrames:
    """The staging folder of one table output (``<checkpoint folder>-sink-staging/<tag>``)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def write(self, checkpoint_id: int, frame: pl.DataFrame) -> None:
        makedirs_durable(self.path)
        name = staged_name(checkpoint_id)
        tmp = self.path / f".{name}.tmp"
        table = frame.to_arrow()
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
            w.write_table(table)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, self.path / name)
        fsync_dir(self.path)

    def exists(self, checkpoint_id: int) -> bool:
        return (self.path / staged_name(checkpoint_id)).is_file()

    def read(self, checkpoint_id: int) -> pl.DataFrame:
        with pa.memory_map(str(self.path / staged_name(checkpoint_id))) as source:
            table = pa.ipc.open_file(source).read_all()
        return pl.from_arrow(table, rechunk=False)  # type: ignore[return-value]

    def checkpoints(self) -> list[int]:
        if not self.path.is_dir():
            return []
        return sorted(int(m[1]) for f in self.path.iterdir() if (m := _PART.match(f.name)))

    def drop(self, checkpoint_id: int) -> None:
        (self.path / staged_name(checkpoint_id)).unlink(missing_ok=True)

    def drop_newer(self, checkpoint_id: int | None) -> None:
        """Forget staged checkpoints after ``checkpoint_id`` (all, when None): they never
        became durable checkpoints, so their records will be produced again."""
        for n in self.checkpoints():
            if checkpoint_id is None or n > checkpoint_id:
                self.drop(n)
