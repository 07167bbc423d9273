"""The run summary's per-step lines, printed by ``surestream run`` after the outputs table.

A step that has something to say about the whole job gives ``summary_lines() -> list[str]``:
a late step the ETL framework's ``Late data: N record(s), event time range: A to B``, a
data_quality step one line per rule with failures. The figures come from the steps'
checkpointed state, so a resumed run reports the whole job, not just its own part.
"""

from __future__ import annotations

from typing import Any


def step_summary_lines(runner: Any) -> list[str]:
    """Every step's summary lines, in stream and step order."""
    lines: list[str] = []
    for stream in getattr(runner, "streams", ()):
        for op in stream.operators:
            probe = getattr(op, "summary_lines", None)
            if probe is not None:
                lines += probe()
    return lines
