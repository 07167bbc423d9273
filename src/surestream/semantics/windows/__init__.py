"""Event-time window operators (SEMANTICS §5): tumbling, sliding and session windows with
Flink's trigger, allowed lateness and late output, deterministic across batch cuts.

Use ``build_window_operator(step, pipeline)``; the classes are exported for tests and for
runners that need to tell them apart.
"""

from surestream.semantics.windows.aligned import AlignedWindowOperator
from surestream.semantics.windows.assigners import (
    sliding_assignment,
    tumbling_assignment,
    tumbling_starts,
)
from surestream.semantics.windows.factory import build_window_operator
from surestream.semantics.windows.output import LATE_COLUMNS, SUPERSEDES, WINDOW_COLUMNS
from surestream.semantics.windows.session import SessionWindowOperator

__all__ = [
    "LATE_COLUMNS",
    "SUPERSEDES",
    "WINDOW_COLUMNS",
    "AlignedWindowOperator",
    "SessionWindowOperator",
    "build_window_operator",
    "sliding_assignment",
    "tumbling_assignment",
    "tumbling_starts",
]
