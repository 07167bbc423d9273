"""The error budget of a run: when records going to ``errors`` make the run a failure.

A run in which every record went to the errors output did nothing useful -- a wrong
``timestamp_column``, a CSV read as JSON -- yet every record is accounted for, so the run
itself succeeds. ``surestream run`` checks the budget once the input has ended and exits 1
with one line saying so, the first error's reason and where the errors are.

The rule (``runtime.max_error_ratio``, docs/spec.md): with ``r`` unset, the run fails when
every input record went to ``errors`` (at least as many error records as input records);
with ``r`` set, when more than ``r`` of them did (``errors > r * records``; 1 never
fails, 0 fails on the first error). A run that read no records never fails it. Counts are
of the whole run, the part before a restart included.
"""

from __future__ import annotations

from surestream.runners.local.results import RunResult


def over_budget(records: int, errors: int, max_error_ratio: float | None) -> bool:
    """Do ``errors`` error records out of ``records`` input records fail the run?"""
    if records <= 0 or errors <= 0:
        return False
    if max_error_ratio is None:
        return errors >= records
    return errors > max_error_ratio * records


def budget_problem(result: RunResult, max_error_ratio: float | None) -> str | None:
    """The one-line reason the run fails its error budget, or None when it does not."""
    records = result.records_in
    errors = sum(result.written.get(tag, 0) for tag in result.error_tags)
    if not over_budget(records, errors, max_error_ratio):
        return None
    if errors >= records:
        what = f"every one of the {records:,} input records went to errors"
    else:
        what = (f"{errors:,} of the {records:,} input records ({errors / records:.1%}) went "
                f"to errors, more than runtime.max_error_ratio {max_error_ratio:g} allows")
    first = f" (first reason: {_short(result.first_error)})" if result.first_error else ""
    paths = [str(o.path) for o in (result.outputs.get(t) for t in result.error_tags)
             if o is not None and o.path is not None]
    where = f"; see {', '.join(paths)}" if paths else ""
    fix = ("set runtime.max_error_ratio to allow this" if max_error_ratio is None
           else "raise runtime.max_error_ratio to allow this")
    return f"{what}{first}{where}; fix the input or the spec, or {fix}"


def _short(text: str, limit: int = 200) -> str:
    """A reason on one line, cut to ``limit`` characters."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[:limit] + "..."
