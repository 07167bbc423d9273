"""The one sink protocol every connector follows (Flink's SinkWriter + Committer split).

    write(data)            buffer inside the open transaction (nothing visible yet)
    pre_commit(n)          stage everything since the last checkpoint; return a committable
                           (plain JSON values) that is enough to finish the commit later
    -- checkpoint n is made durable, the committables inside it --
    commit(committable)    make checkpoint n's output visible; idempotent: the sink can tell
                           whether checkpoint n already landed and then does nothing
    recover(committable, n)  on restart from checkpoint n: commit n's pending output if it
                           has not landed, and discard anything staged (or, where the sink
                           can, committed) after n
    open(fresh=True)       a run with no checkpoint: discard all previous output

Each sink declares its ``guarantee``: ``exactly_once`` (two-phase commit as above),
``idempotent`` (replays overwrite by key) or ``at_least_once``.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, runtime_checkable

import polars as pl

Guarantee = Literal["exactly_once", "idempotent", "at_least_once"]


@runtime_checkable
class Sink(Protocol):
    guarantee: Guarantee
    records: int  # records made visible (committed) so far

    def open(self, fresh: bool) -> None: ...
    def write(self, data: pl.DataFrame) -> None: ...
    def pre_commit(self, checkpoint_id: int) -> Any: ...
    def commit(self, committable: Any) -> None: ...
    def recover(self, committable: Any, checkpoint_id: int) -> None: ...
    def close(self) -> None: ...


class SinkRecoveryError(Exception):
    """A sink cannot be brought back to the restored checkpoint without losing or
    duplicating output; the run stops instead of guessing."""
