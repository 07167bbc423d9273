"""Everything a run's report shows, gathered from its checkpoint folder in one place.

``gather(run_dir)`` reads the run's history (its spec, samples, checkpoints, end), reads
each local output back (counts; the late outputs' event times and lateness; the error
outputs' reasons), and works out the conservation equation. The HTML is made from the
``RunData`` it returns (``sections``), so what is shown and how it is measured stay apart.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from surestream.ops.report.conservation import Equation, equation
from surestream.ops.report.history import RunHistory, read_run
from surestream.ops.report.outputs import ERROR_ROWS_READ, ReadBack, count_rows, read_columns
from surestream.ops.report.spec_view import OutputView, SpecView

#: the columns a late output holds (``semantics/late.py``), when its metadata is kept
LATE_COLUMNS = ["original_timestamp", "lateness_ms", "watermark_ms", "operator"]
#: examples kept per error reason
EXAMPLES = 2


@dataclass
class LatePoints:
    """One late output's records: their event time and how late they were (ms)."""

    tag: str
    event_ms: list[int]
    lateness_ms: list[int]


@dataclass
class ErrorReason:
    operator: str
    error_type: str
    count: int
    examples: list[str] = field(default_factory=list)


@dataclass
class RunData:
    run_dir: Path
    history: RunHistory
    view: SpecView
    read: dict[str, ReadBack]
    equation: Equation
    late: list[LatePoints]
    reasons: list[ErrorReason]
    #: how the error reasons were found: read back, or the run's own counts
    reasons_from: str
    #: example messages of error outputs that do not keep the operator, by output
    unattributed: dict[str, list[str]] = field(default_factory=dict)

    @property
    def written(self) -> dict[str, int]:
        """Records the run gave each output (committed ones, and at the end all)."""
        line = self.history.end or (self.history.samples or [{}])[-1]
        return dict(line.get("written") or {})


def gather(run_dir: Path) -> RunData:
    run_dir = Path(run_dir).resolve()
    history = read_run(run_dir)
    view = SpecView(history.spec, _base_dir(history, run_dir), run_dir)
    read = {tag: count_rows(out) for tag, out in view.outputs.items()}
    eq = equation(history, view, read)
    reasons, how, unattributed = _error_reasons(history, view)
    return RunData(run_dir, history, view, read, eq, _late_points(view), reasons, how,
                   unattributed)


def _base_dir(history: RunHistory, run_dir: Path) -> Path:
    """Where the spec's relative paths resolve: as the run recorded it; for an older
    history, the folder the relative checkpoint folder hangs from."""
    given = history.last.run.get("base_dir")
    if given:
        return Path(given)
    rel = Path(str((history.spec.get("checkpoint") or {}).get("dir")
                   or f".surestream/checkpoints/{history.spec.get('pipeline')}"))
    if not rel.is_absolute() and run_dir.parts[-len(rel.parts):] == rel.parts:
        return Path(*run_dir.parts[:-len(rel.parts)])
    return run_dir.parent


def late_tags(view: SpecView) -> list[str]:
    """Outputs that receive late records: a late split's tag, a window's late tag."""
    tags = []
    for _, st in view.steps():
        if st.type == "late_data_side_output" and st.keys.get("strategy", "quarantine") in (
                "quarantine", "side_output", "dlq"):
            tags.append(st.keys.get("output_tag", "late"))
        elif st.type == "window":
            tags.append(st.keys.get("late_output_tag", "late_window"))
    return [t for t in dict.fromkeys(tags) if t in view.outputs]


def _late_points(view: SpecView) -> list[LatePoints]:
    found = []
    for tag in late_tags(view):
        cols = read_columns(view.outputs[tag], LATE_COLUMNS)
        if not cols or "original_timestamp" not in cols:
            continue
        pairs = [(t, lt) for t, lt in zip(cols["original_timestamp"],
                                          cols.get("lateness_ms") or [None] * len(
                                              cols["original_timestamp"]), strict=True)
                 if t is not None]
        found.append(LatePoints(tag, [int(t) for t, _ in pairs],
                                [int(lt) if lt is not None else 0 for _, lt in pairs]))
    return found


def _error_reasons(history: RunHistory, view: SpecView
                   ) -> tuple[list[ErrorReason], str, dict[str, list[str]]]:
    """Error records by operator and error type, with example messages: read back from
    the error outputs that keep those fields; the run's own counts otherwise (and the
    examples of an output without the operator, by output)."""
    counts: Counter[tuple[str, str]] = Counter()
    examples: dict[tuple[str, str], list[str]] = {}
    unattributed: dict[str, list[str]] = {}
    complete = True
    for tag in view.error_tags:
        out = view.outputs[tag]
        names = _field_names(out)
        cols = read_columns(out, list(names.values()), limit=ERROR_ROWS_READ)
        if cols is None or (cols and names["operator"] not in cols):
            complete = False
            messages = (cols or {}).get(names["error_message"]) or []
            if messages:
                unattributed[tag] = [str(m) for m in messages[:EXAMPLES]]
            continue
        n = len(next(iter(cols.values()), []))
        for i in range(n):
            key = (str(cols.get(names["operator"], [None] * n)[i]),
                   str(cols.get(names["error_type"], [None] * n)[i]))
            counts[key] += 1
            message = cols.get(names["error_message"], [None] * n)[i]
            if message is not None and len(examples.setdefault(key, [])) < EXAMPLES:
                examples[key].append(str(message))
    by_run = _run_reasons(history)
    if not complete and by_run:
        for key, n in by_run.items():  # counts from the run; examples where read back
            counts[key] = n
        how = "the run's own counts (an error output does not keep the operator)"
    else:
        how = "the error outputs, read back"
    reasons = [ErrorReason(op, kind, n, examples.get((op, kind), []))
               for (op, kind), n in counts.most_common()]
    return reasons, how, unattributed


def _run_reasons(history: RunHistory) -> dict[tuple[str, str], int]:
    figures, _ = history.figures()
    if figures is None:
        return {}
    out = {}
    for key, n in figures.errors_by_reason.items():
        op, _, kind = key.partition("|")
        out[(op, kind)] = n
    return out


def _field_names(out: OutputView) -> dict[str, str]:
    """error field -> the output's column holding it."""
    wanted = {"operator": "operator", "error_type": "error_type",
              "error_message": "error_message"}
    if out.error_fields is None:
        return wanted
    inverse = {src: dst for dst, src in out.error_fields.items()}
    return {k: inverse.get(k, f"\0{k}") for k in wanted}


def output_kind(view: SpecView, tag: str) -> str:
    """What an output holds, in a word: results, late records, errors, ..."""
    out = view.outputs[tag]
    if out.holds_errors:
        return "errors"
    if tag in late_tags(view):
        return "late"
    for _, st in view.steps():
        if st.keys.get("duplicates_output_tag") == tag:
            return "duplicates"
        if st.type == "route" and tag in {*(st.keys.get("routes") or {}).values(),
                                          st.keys.get("default")}:
            return "routed"
    return "results" if tag in view.streams else "side output"

