"""The no-duplicate-keys check: no exactly-once output holds a key twice, in any run.

The key of an output is its declared ``key``, or else the key of its stream's last keyed
step: a window's key fields with ``window_start``, ``window_end`` and ``revision``, or a
dedup's key fields with the event-time column.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from surestream.cli.verify.outputs import read_output
from surestream.model.steps import AggregateStep, KeyedDedupStep, WatermarkStep, WindowStep

if TYPE_CHECKING:
    from surestream.cli.verify.runs import RunOutcome, Verifier


@dataclass
class DuplicateCheck:
    keys: dict[str, list[str]]
    runs: int
    worst: dict[str, int] = field(default_factory=dict)  # tag -> most duplicates in a run

    @property
    def ok(self) -> bool:
        return not any(self.worst.values())

    def detail(self) -> str:
        if not self.keys:
            return "no keyed exactly-once output to check"
        return ", ".join(f"{tag} by ({', '.join(self.keys[tag])}): {n} duplicates"
                         for tag, n in sorted(self.worst.items())) + f" in {self.runs} runs"


def output_keys(v: Verifier) -> dict[str, list[str]]:
    """Tag -> the columns that identify a record exactly once."""
    keys: dict[str, list[str]] = {}
    for tag, sink in v.outputs.items():
        if sink is not None and sink.key:
            keys[tag] = list(sink.key)
    for name, stream in v.spec.all_streams.items():
        if name not in v.outputs or name in keys:
            continue
        ts_col = None
        for step in stream.steps:
            if isinstance(step, WatermarkStep):
                ts_col = step.timestamp_column
        for step in reversed(stream.steps):
            if isinstance(step, WindowStep | AggregateStep):
                key = _aggregation_key(step)
                if key:
                    keys[name] = key
                break
            if isinstance(step, KeyedDedupStep):
                # (the event-time column may be a key field already: once)
                keys[name] = list(dict.fromkeys([*step.key_fields,
                                                 *([ts_col] if ts_col else [])]))
                break
    return keys


def _aggregation_key(step: WindowStep | AggregateStep) -> list[str]:
    """What identifies a result row in the step's output mode: a window's firing by its
    revision; an update row by its version; a complete table by its group. An aggregate
    whose keys time out restarts at version 1 (no key then, except in complete mode)."""
    window = ["window_start", "window_end"] if isinstance(step, WindowStep) else []
    if step.output_mode == "complete":
        return [*step.key_fields, *window]
    if isinstance(step, AggregateStep) and step.state_timeout_ms is not None:
        return []
    last = "revision" if step.output_mode == "append" else "version"
    return [*step.key_fields, *window, last]


def check_duplicate_keys(v: Verifier, runs: list[RunOutcome]) -> DuplicateCheck:
    check = DuplicateCheck(output_keys(v), len(runs))
    for run in runs:
        for tag, cols in check.keys.items():
            frame = read_output(run.folder, tag, v.outputs[tag]).frame
            if frame.height:
                n = frame.height - frame.select(cols).unique().height
                check.worst[tag] = max(check.worst.get(tag, 0), n)
    return check
