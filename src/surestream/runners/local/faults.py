"""Fault-injection points for ``surestream verify``: inert unless verify enables them.

A point is a name in the code where a crash is interesting (inside a checkpoint write,
between a sink's pre-commit and commit, in the middle of a batch). ``verify`` starts a run
with ``SURESTREAM_FAULT=<point>:<n>``; the n-th time that point is reached the process
kills itself with SIGKILL -- no cleanup, no Python-level flush: a process crash.

It is not a power loss. The kernel outlives the process and keeps its page cache, so every
write the process made -- fsynced or not, file bytes and folder entries alike -- is still
there for the restart. A missing fsync is invisible here; ``tests/test_durability.py``
models what a power loss keeps (only what was fsynced) and restarts from that.
Without the variable, ``reached`` is one dictionary lookup and nothing else.
"""

from __future__ import annotations

import atexit
import json
import os
import signal

ENV = "SURESTREAM_FAULT"
#: a file to write how often each point was passed (verify's counting run)
COUNTS_ENV = "SURESTREAM_FAULT_COUNTS"

#: every point the runner passes, in the order of one checkpoint cycle
POINTS = (
    "batch.mid",                    # after the operators ran, before sinks got the batch
    "checkpoint.state_written",     # operator state files durable, manifest not yet
    "checkpoint.manifest_temp",     # manifest written to its temp file, not yet renamed
    "checkpoint.pre_committed",     # sinks staged their output, checkpoint not yet durable
    "checkpoint.durable",           # checkpoint durable, sinks not yet committed
    "checkpoint.commit_partial",    # some sinks committed, others not yet
)
#: points inside a sink's commit, reached only by pipelines with such a sink (a Kafka
#: output: connectors/kafka/sink.py calls them through its ``on_point``)
SINK_POINTS = (
    "kafka.mid_produce",            # half of a checkpoint's records sent in its transaction
    "kafka.produced",               # all sent and acknowledged, the marker not yet
    "kafka.marker_sent",            # the marker sent, the transaction not yet committed
    "kafka.committed",              # the transaction committed, the checkpoint not yet done
)
#: points inside a table sink's commit (connectors/tables/clickhouse.py)
TABLE_SINK_POINTS = (
    "clickhouse.mid_insert",        # some of a checkpoint's insert blocks sent, not all
    "clickhouse.inserted",          # all rows inserted, the commit row not yet
)
#: points inside the PostgreSQL sink (connectors/tables/postgres.py, through ``on_point``)
POSTGRES_POINTS = (
    "postgres.staged",              # a checkpoint's rows copied to staging, not yet committed
    "postgres.committed",           # rows moved and commits row in, the checkpoint not yet done
)
ALL_POINTS = POINTS + SINK_POINTS + TABLE_SINK_POINTS + POSTGRES_POINTS


def _parse(value: str | None) -> tuple[str, int] | None:
    if not value:
        return None
    point, _, n = value.partition(":")
    if point not in ALL_POINTS:
        raise ValueError(f"{ENV}: unknown fault point {point!r}; known: "
                         f"{', '.join(ALL_POINTS)}")
    return point, int(n or 1)


_armed = _parse(os.environ.get(ENV))
_counts_file = os.environ.get(COUNTS_ENV)
_hits: dict[str, int] = {}


def reached(point: str) -> None:
    """Mark that execution reached ``point``; die here if verify armed it for this hit."""
    if _counts_file is not None:
        _hits[point] = _hits.get(point, 0) + 1
        return
    if _armed is None or _armed[0] != point:
        return
    _hits[point] = _hits.get(point, 0) + 1
    if _hits[point] == _armed[1]:
        os.kill(os.getpid(), signal.SIGKILL)


def _write_counts() -> None:
    with open(_counts_file, "w") as f:
        json.dump(_hits, f)


if _counts_file is not None:
    atexit.register(_write_counts)
