"""A run's history (``run-history.jsonl``) as the processes it took, and their counts added up.

The history of a checkpoint folder starts with the line of a fresh run (a fresh start
replaces the file) and gains a ``run`` line each time the pipeline is started again and
resumes from a checkpoint. So it reads as *segments*, one per process: a run line, then
samples and checkpoint lines, and an ``end`` line unless the process was killed (or is
still running).

Operator ``counters`` (late, duplicates, errors, filtered, ...) are part of the operators'
checkpointed state: the last figures of the last process are the whole run's. The
per-process figures -- records into and out of each operator, error reasons -- start at
zero in each process. The run's figures are the sum, over the processes whose work the
outputs kept, of each one's figures at the checkpoint the next one resumed from (work
after that checkpoint was redone by the next process and is not counted twice); the last
process counts to its end (or to its last checkpoint, if it has no end line).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from surestream.runners.local.telemetry import RUN_HISTORY_FILE, read_history


class ReportError(Exception):
    """A run folder a report cannot be made of; the message says why and what to do."""


@dataclass
class Segment:
    """One process of the run: its ``run`` line and the lines it wrote after it."""

    run: dict[str, Any]
    lines: list[dict[str, Any]] = field(default_factory=list)

    @property
    def restored_from(self) -> int | None:
        return self.run.get("restored_from")

    @property
    def checkpoints(self) -> list[dict[str, Any]]:
        return [ln for ln in self.lines if ln.get("kind") == "checkpoint"]

    @property
    def samples(self) -> list[dict[str, Any]]:
        return [ln for ln in self.lines if ln.get("kind") == "sample"]

    @property
    def end(self) -> dict[str, Any] | None:
        return next((ln for ln in self.lines if ln.get("kind") == "end"), None)


@dataclass
class Figures:
    """Per-operator records in/out/emitted by tag, and error records by
    ``operator|error_type``, over the whole run (see the module docstring)."""

    operators: dict[str, dict[str, Any]]
    errors_by_reason: dict[str, int]

    def records_in(self, op: str) -> int | None:
        o = self.operators.get(op)
        return None if o is None else int(o.get("records_in", 0))

    def records_out(self, op: str) -> int | None:
        o = self.operators.get(op)
        return None if o is None else int(o.get("records_out", 0))

    def emitted(self, op: str, tag: str) -> int | None:
        o = self.operators.get(op)
        return None if o is None else int(o.get("emitted", {}).get(tag, 0))

    def errors_of(self, operator: str) -> int:
        return sum(n for key, n in self.errors_by_reason.items()
                   if key.split("|", 1)[0] == operator)


@dataclass
class RunHistory:
    """Everything the history says about one run (its processes in order)."""

    segments: list[Segment]

    @property
    def first(self) -> dict[str, Any]:
        return self.segments[0].run

    @property
    def last(self) -> Segment:
        return self.segments[-1]

    @property
    def spec(self) -> dict[str, Any]:
        return self.last.run.get("spec") or {}

    @property
    def end(self) -> dict[str, Any] | None:
        return self.last.end

    @property
    def state(self) -> str:
        """``finished``, ``stopped``, ``failed``, or ``unfinished`` (no end line: killed,
        or still running)."""
        return str(self.end["state"]) if self.end else "unfinished"

    @property
    def checkpoints(self) -> list[dict[str, Any]]:
        return [c for s in self.segments for c in s.checkpoints]

    @property
    def samples(self) -> list[dict[str, Any]]:
        return [x for s in self.segments for x in s.samples]

    @property
    def last_checkpoint(self) -> dict[str, Any] | None:
        cps = [c for c in self.checkpoints if c.get("ok", True)]
        return cps[-1] if cps else None

    @property
    def records_in(self) -> int | None:
        """Records read from the sources, the whole run (restored runs included): at the
        end, else at the last checkpoint."""
        if self.end is not None:
            return int(self.end.get("records_in", 0))
        cp = self.last_checkpoint
        return None if cp is None else int(cp.get("records_in") or 0)

    @property
    def operator_counters(self) -> dict[str, dict[str, int]]:
        """Each operator's counters at the end (cumulative: restored with its state)."""
        ops = (self.end or {}).get("operators") or {}
        return {name: dict(o.get("counters") or {}) for name, o in ops.items()}

    def figures(self) -> tuple[Figures | None, str | None]:
        """(the run's per-operator figures, None) or (None, why they cannot be added up)."""
        return _added_up(self.segments)


def read_run(run_dir: Path) -> RunHistory:
    """The history of the checkpoint folder ``run_dir``, as segments."""
    if not run_dir.is_dir():
        raise ReportError(f"{run_dir} is not a folder; give the run's checkpoint folder "
                          "(checkpoint.dir of its spec)")
    lines = read_history(run_dir)
    if not lines:
        raise ReportError(f"{run_dir} holds no run history ({RUN_HISTORY_FILE}); give the "
                          "checkpoint folder of a run made by this version of surestream")
    segments: list[Segment] = []
    for line in lines:
        if line.get("kind") == "run":
            segments.append(Segment(line))
        elif segments:
            segments[-1].lines.append(line)
    if not segments:
        raise ReportError(f"{run_dir / RUN_HISTORY_FILE} has no run line (its start was "
                          "cut off); run the pipeline again to get a report")
    return RunHistory(segments)


def _added_up(segments: list[Segment]) -> tuple[Figures | None, str | None]:
    """Sum each kept process's figures at its cut (see the module docstring)."""
    last = segments[-1]
    cut = last.end or (last.checkpoints[-1] if last.checkpoints else None)
    parts = [cut] if cut is not None else []
    restored, index = last.restored_from, len(segments) - 1
    while restored is not None:
        found = None
        for j in range(index - 1, -1, -1):
            line = next((c for c in segments[j].checkpoints if c.get("id") == restored), None)
            if line is not None:
                found = (j, line)
                break
        if found is None:
            return None, (f"the run resumed from checkpoint {restored}, which this history "
                          "does not record (a savepoint from elsewhere, or a process killed "
                          "while writing it)")
        index, line = found
        parts.append(line)
        restored = segments[index].restored_from
    if any("operators" not in p for p in parts):
        return None, "the history was written by an older surestream (no operator counts)"
    operators: dict[str, dict[str, Any]] = {}
    reasons: dict[str, int] = {}
    for part in parts:
        for name, o in part["operators"].items():
            acc = operators.setdefault(name, {"records_in": 0, "records_out": 0,
                                              "emitted": {}})
            acc["records_in"] += int(o.get("records_in", 0))
            acc["records_out"] += int(o.get("records_out", 0))
            for tag, n in (o.get("emitted") or {}).items():
                acc["emitted"][tag] = acc["emitted"].get(tag, 0) + int(n)
        for key, n in (part.get("errors_by_reason") or {}).items():
            reasons[key] = reasons.get(key, 0) + int(n)
    return Figures(operators, reasons), None
