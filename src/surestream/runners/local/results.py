"""What a run reports: ``Progress`` after each batch, ``RunResult`` at its end."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from surestream.connectors.readback import CommittedOutput
from surestream.connectors.sinks import MemoryCollector
from surestream.semantics.operator import MAIN


@dataclass
class Progress:
    """What the progress line shows, after each step."""

    records_in: int
    elapsed_s: float
    watermark: int
    #: operator counters summed (``late``, ``duplicates``, ...); ``errors`` is the records
    #: sent to the errors output so far, committed or in the open checkpoint
    counters: dict[str, int]
    #: records sent to each output so far (committed, or in the open checkpoint)
    written: dict[str, int]
    #: event time the watermark trails the newest record by (None before/after time)
    watermark_lag_ms: int | None = None

    @property
    def records_per_s(self) -> float:
        return self.records_in / self.elapsed_s if self.elapsed_s > 0 else 0.0


class UnknownOutputError(KeyError):
    """``RunResult.rows(tag)`` for a tag the run has no output for."""

    def __str__(self) -> str:  # a KeyError would show its message quoted
        return str(self.args[0])


@dataclass
class RunResult:
    pipeline: str
    records_in: int
    elapsed_s: float
    watermark: int
    counters: dict[str, int]
    written: dict[str, int]  # tag -> records written
    collected: dict[str, MemoryCollector] = field(default_factory=dict)
    operator_counters: dict[str, dict[str, int]] = field(default_factory=dict)
    restored_from: int | None = None  # the checkpoint id the run resumed from
    checkpoints: int = 0  # checkpoints taken by this run
    #: every output by tag (the default errors file included): what it held at the end
    outputs: dict[str, CommittedOutput] = field(default_factory=dict)
    #: stopped early on request (Ctrl-C) before the end of the input
    interrupted: bool = False
    #: the checkpoint a rerun resumes from (after an early stop), or None: it starts afresh
    resume_from: int | None = None
    #: why an early stop took no checkpoint (``None`` when it took one)
    stop_note: str | None = None
    #: the reason given by the first error record of the run (``errors`` output), if any
    first_error: str | None = None
    #: the outputs that hold error records: ``errors`` and those with ``error_kinds``
    error_tags: tuple[str, ...] = ("errors",)
    #: outputs with retries / a breaker / a dead letter: their counts (``sink_retry``)
    sink_health: dict[str, dict[str, Any]] = field(default_factory=dict)

    def progress(self) -> Progress:
        """The run's final figures as a progress report (the display's last line)."""
        return Progress(self.records_in, self.elapsed_s, self.watermark, dict(self.counters),
                        dict(self.written))

    def summary(self) -> dict[str, Any]:
        """Plain values for ``--summary`` and ``verify``."""
        return {"pipeline": self.pipeline, "records_in": self.records_in,
                "elapsed_s": self.elapsed_s, "watermark": self.watermark,
                "counters": self.counters, "written": self.written,
                "operator_counters": self.operator_counters,
                "restored_from": self.restored_from, "checkpoints": self.checkpoints,
                **({"sinks": self.sink_health} if self.sink_health else {})}

    def rows(self, tag: str = MAIN) -> list[dict[str, Any]]:
        """The records output ``tag`` held when the run ended, in commit order: kept in
        memory for a ``memory`` output, read back from the file, Parquet dataset or DuckDB
        table otherwise -- ``rows("errors")`` too when the errors went to the default file
        beside the checkpoints. A run resumed from a checkpoint reads the whole output,
        what was committed before the restart included (it is one output).

        Raises ``KeyError`` naming the run's outputs for a tag it has none for,
        ``OutputChangedError`` when another run has written the output since (its records
        are no longer this run's), ``OutputNotKeptError`` for standard output."""
        if tag not in self.outputs:
            raise UnknownOutputError(
                f"pipeline {self.pipeline!r} has no output {tag!r}; its outputs are "
                f"{', '.join(repr(t) for t in sorted(self.outputs))}")
        return self.outputs[tag].rows()
