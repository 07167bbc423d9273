"""Build the window operator a ``WindowStep`` describes."""

from __future__ import annotations

from surestream.model.steps import WindowStep
from surestream.semantics.operator import MAIN, Operator
from surestream.semantics.windows.aligned import AlignedWindowOperator
from surestream.semantics.windows.output import INTERNAL_PREFIX, SUPERSEDES, WINDOW_COLUMNS
from surestream.semantics.windows.session import SessionWindowOperator


def build_window_operator(step: WindowStep, pipeline: str) -> Operator:
    """The operator for ``step``; ``pipeline`` names the pipeline in late-record metadata."""
    reserved = set(WINDOW_COLUMNS) | ({SUPERSEDES} if step.kind == "session" else set())
    clash = sorted((set(step.key_fields) | set(step.aggregations)) & reserved)
    if clash:
        raise ValueError(f"window {step.name!r}: {clash} are result columns of a window; "
                         "rename those key fields or aggregations")
    internal = sorted(n for n in set(step.key_fields) | set(step.aggregations)
                      if n.startswith(INTERNAL_PREFIX))
    if internal:
        raise ValueError(f"window {step.name!r}: {internal} start with {INTERNAL_PREFIX!r}, "
                         "which the window operator keeps for its own working columns; "
                         "rename them (with_columns) before the window")
    if step.late_output_tag == MAIN:
        raise ValueError(f"window {step.name!r}: late_output_tag cannot be {MAIN!r}")
    if step.kind == "session":
        return SessionWindowOperator(step, pipeline)
    return AlignedWindowOperator(step, pipeline)
