"""The conservation equation of a run: in = main + late + errors + duplicates (+ filtered).

Every input record ends in exactly one place (docs/concepts.md, "conservation"). A report
shows that with the run's own numbers, each term measured on its own:

- **in**: records read from the sources (the runner's count, kept in every checkpoint);
- the **record-level path**: the steps that take each input record by itself, from each
  stream that reads a source up to the first step that does not -- a window or a
  ``process`` function (they aggregate or emit what they like), a user ``map`` or
  ``filter`` (they may drop or add records) -- or to the end of the streams, followed
  through a stream read by exactly one other stream and nothing else;
- **main**: records that reached the end of that path: those handed *into* the window or
  process step (a window turns them into fewer rows: its rows out are not the term), those
  at the path's last stream (its output's rows, plus any the output refused), and those a
  ``route`` step sent to other tags;
- **late**: records the path's late split took out (``late`` counters; a ``flag`` strategy
  keeps them in the stream, so they are in main);
- **errors**: error records of the sources and of the path's steps (the errors outputs
  also hold records of later steps and outputs: those are not input records lost here);
- **duplicates**: records the path's dedup steps dropped;
- **filtered**: records a ``where`` step removed on purpose (a term only when the path
  has one).

Counters come from the operators (restored with their state, so they cover a resumed run);
records into a step and error reasons from the run's per-process counts added up
(``history.Figures``). Where the outputs can be read back, they are compared with those
counts (``checks``). A term the history cannot give is *unknown*, and the equation is then
shown with the terms that are known, not judged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from surestream.ops.report.history import Figures, RunHistory
from surestream.ops.report.outputs import ReadBack
from surestream.ops.report.spec_view import SpecView, StepView

#: steps that take each record by itself: a record leaves them at most once, counted
RECORD_LEVEL = frozenset({"watermark", "late_data_side_output", "keyed_dedup", "route",
                          "with_columns", "where", "map_batches", "broadcast_enrich",
                          "processing_time"})
#: late strategies that take the record out of the stream (``flag`` keeps it)
LATE_REMOVES = frozenset({"quarantine", "side_output", "dlq", "log_and_drop", "drop"})
LATE_EMITS = frozenset({"quarantine", "side_output", "dlq"})
#: dedup strategies that hold a record per key until the watermark passes its window
HOLDING_DEDUP = frozenset({"last", "earliest", "latest"})


@dataclass
class Part:
    """One measured contribution to a term."""

    label: str
    value: int | None


@dataclass
class Term:
    name: str
    parts: list[Part] = field(default_factory=list)

    @property
    def value(self) -> int | None:
        if any(p.value is None for p in self.parts):
            return None
        return sum(p.value for p in self.parts if p.value is not None)


@dataclass
class Check:
    """Two independent measurements of one thing, which must agree."""

    what: str
    left_label: str
    left: int | None
    right_label: str
    right: int | None

    @property
    def ok(self) -> bool | None:
        return None if self.left is None or self.right is None else self.left == self.right


@dataclass
class PathEnd:
    """Where the record-level path of one source stream ends."""

    kind: str  # "step": handed into a step; "stream": the end of a stream
    name: str  # the step's operator name, or the stream's name (its tag)
    step_type: str | None
    last_op: str | None  # the path's last record-level operator before this end
    stream: str
    source: str  # the source the path starts from
    first_op: str | None  # the path's first operator (None: no step before this end)


@dataclass
class RecordPath:
    ops: list[StepView] = field(default_factory=list)
    ends: list[PathEnd] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass
class Equation:
    records_in: Term
    terms: list[Term]
    path: RecordPath
    checks: list[Check]
    #: "balanced" | "unbalanced" | "unknown" | "not checked"
    status: str
    reason: str | None = None

    @property
    def right_side(self) -> int | None:
        values = [t.value for t in self.terms]
        return None if any(v is None for v in values) else sum(v for v in values if v)

    @property
    def difference(self) -> int | None:
        left, right = self.records_in.value, self.right_side
        return None if left is None or right is None else left - right

    @property
    def unknown(self) -> list[str]:
        return [t.name for t in [self.records_in, *self.terms] if t.value is None]


def record_path(view: SpecView) -> RecordPath:
    """The record-level path of every stream that reads a source (module docstring)."""
    path = RecordPath()
    for source in view.sources:
        readers = view.consumers(source)
        if len(readers) > 1:
            path.problems.append(f"source {source} is read by {len(readers)} streams "
                                 f"({', '.join(r.name for r in readers)}): each of its "
                                 "records has a place in each")
    for stream in view.streams.values():
        sources = [i for i in stream.inputs if i in view.sources]
        if not sources:
            continue
        if stream.is_union:
            path.problems.append(f"stream {stream.name} reads a union with a source: its "
                                 "records are not followed")
            continue
        current, last_op, first_op, seen = stream, None, None, set()
        while current.name not in seen:
            seen.add(current.name)
            end = None
            for step in current.steps:
                if step.type in RECORD_LEVEL:
                    path.ops.append(step)
                    last_op = step.name
                    first_op = first_op or step.name
                    continue
                end = PathEnd("step", step.name, step.type, last_op, current.name,
                              sources[0], first_op)
                break
            if end is not None:
                path.ends.append(end)
                break
            readers = view.consumers(current.name)
            if len(readers) == 1 and not readers[0].is_union \
                    and current.name not in view.outputs \
                    and not view.update_readers(current.name):
                current = readers[0]
                continue
            path.ends.append(PathEnd("stream", current.name, None, last_op, current.name,
                                     sources[0], first_op))
            break
    return path


def equation(history: RunHistory, view: SpecView, read: dict[str, ReadBack]) -> Equation:
    """The run's conservation equation, its cross-checks and its verdict."""
    figures, figures_problem = history.figures()
    counters = history.operator_counters
    path = record_path(view)

    def counter(op: str, name: str) -> int | None:
        c = counters.get(op)
        return None if c is None else int(c.get(name, 0))

    records_in = Term("in", [Part("records read from the sources", history.records_in)])
    main = Term("main")
    checks: list[Check] = []
    for end in path.ends:
        main.parts.append(_end_part(end, view, figures, read, checks))
    _fill_by_difference(main, path, figures, history.records_in)
    for st in path.ops:
        if st.type == "route":
            routed = {*(st.keys.get("routes") or {}).values(), st.keys.get("default")}
            for tag in sorted(routed - {None, "main"}):  # main: the stream goes on
                n = figures.emitted(st.name, tag) if figures else None
                main.parts.append(Part(f"routed by {st.name} to {tag}", n))
                _readback_check(checks, view, read, figures, tag, n,
                                f"records {st.name} routed to {tag}")
    late = Term("late")
    for st in path.ops:
        strategy = st.keys.get("strategy", "quarantine")
        if st.type != "late_data_side_output":
            continue
        if strategy not in LATE_REMOVES:
            late.parts.append(Part(f"{st.name} ({strategy}: late records stay in the "
                                   "stream, so they are in main)", 0))
            continue
        n = counter(st.name, "late")
        tag = st.keys.get("output_tag", "late")
        late.parts.append(Part(f"{st.name} ({strategy}"
                               + (f" to {tag})" if strategy in LATE_EMITS else ")"), n))
        emitters = [s for _, s in view.steps() if s.keys.get("output_tag") == tag
                    or s.keys.get("late_output_tag") == tag]
        if strategy in LATE_EMITS and len(emitters) == 1 and tag in read \
                and read[tag].rows is not None:
            checks.append(Check(f"late output {tag}", f"{st.name}'s late counter", n,
                                f"records read back from {tag}", read[tag].rows))
    duplicates = Term("duplicates", [Part(st.name, counter(st.name, "duplicates"))
                                     for st in path.ops if st.type == "keyed_dedup"])
    errors = Term("errors")
    sources = [f"source:{s}" for s in view.sources]
    for op in sources + [st.name for st in path.ops]:
        n = figures.errors_of(op) if figures else None
        if n or op in sources or n is None:
            errors.parts.append(Part(op, n))
    errors.parts = _merge_unknown(errors.parts)
    terms = [main, late, errors, duplicates]
    if any(st.type == "where" for st in path.ops):
        terms.append(Term("filtered", [Part(st.name, counter(st.name, "filtered"))
                                       for st in path.ops if st.type == "where"]))
    _errors_check(checks, view, read, figures)
    eq = Equation(records_in, terms, path, checks, "unknown")
    eq.status, eq.reason = _verdict(eq, history, figures_problem)
    return eq


def _end_part(end: PathEnd, view: SpecView, figures: Figures | None,
              read: dict[str, ReadBack], checks: list[Check]) -> Part:
    if end.kind == "step":
        n = figures.records_in(end.name) if figures else None
        return Part(f"into {end.step_type} {end.name}", n)
    n = figures.records_out(end.last_op) if figures and end.last_op else None
    label = f"at the end of stream {end.name}"
    readers = view.update_readers(end.name)
    if readers:
        label += f" (updates for {', '.join(r.name for r in readers)})"
    elif view.consumers(end.name) and end.name not in view.outputs:
        label += f" (read by {', '.join(s.name for s in view.consumers(end.name))})"
    back = _readback_check(checks, view, read, figures, end.name, n,
                           f"records at the end of stream {end.name}")
    if n is None and back is not None:  # no per-operator count: the output says it
        n = back
    return Part(label, n)


def _fill_by_difference(main: Term, path: RecordPath, figures: Figures | None,
                        records_in: int | None) -> None:
    """A stream that reads a source and has no step (a broadcast's update stream) counts
    nothing itself. When it is the only such one, its records are the input's other
    records: ``in`` less each other source's records (its path's first step's records in,
    plus the source's errors) less its own source's errors. The equation then still checks
    every other path in full."""
    blind = [i for i, e in enumerate(path.ends)
             if e.first_op is None and main.parts[i].value is None]
    if len(blind) != 1 or figures is None or records_in is None:
        return
    end = path.ends[blind[0]]
    others = {e.source: e.first_op for e in path.ends if e.source != end.source}
    if any(op is None or figures.records_in(op) is None for op in others.values()):
        return
    read_elsewhere = sum((figures.records_in(op) or 0) + figures.errors_of(f"source:{src}")
                         for src, op in others.items())
    part = main.parts[blind[0]]
    part.value = records_in - read_elsewhere - figures.errors_of(f"source:{end.source}")
    part.label += (f": the records of source {end.source}, by difference (in less the "
                   "records of the other sources, less its own errors)")


def _readback_check(checks: list[Check], view: SpecView, read: dict[str, ReadBack],
                    figures: Figures | None, tag: str, counted: int | None,
                    what: str) -> int | None:
    """Compare what the run counted into ``tag`` with its output read back (plus any
    records the output refused, which went to errors); returns the read-back total."""
    if tag not in view.outputs or tag not in read or read[tag].rows is None:
        return None
    refused = figures.errors_of(f"output:{tag}") if figures else 0
    total = int(read[tag].rows) + refused
    label = f"rows read back from {tag}" + (f" + {refused} it refused" if refused else "")
    if counted is not None:
        checks.append(Check(f"output {tag}", what, counted, label, total))
    return total


def _errors_check(checks: list[Check], view: SpecView, read: dict[str, ReadBack],
                  figures: Figures | None) -> None:
    rows = [read[t].rows for t in view.error_tags if t in read]
    if figures is None or not rows or any(r is None for r in rows):
        return
    checks.append(Check("error outputs", "error records the run counted",
                        sum(figures.errors_by_reason.values()),
                        f"rows read back from {', '.join(view.error_tags)}",
                        sum(r for r in rows if r is not None)))


def _merge_unknown(parts: list[Part]) -> list[Part]:
    """Without per-process counts every part is unknown: say it once."""
    if parts and all(p.value is None for p in parts):
        return [Part(", ".join(p.label for p in parts), None)]
    return parts


def _verdict(eq: Equation, history: RunHistory,
             figures_problem: str | None) -> tuple[str, str | None]:
    state = history.state
    if state == "unfinished":
        return "not checked", ("the run did not finish (no end was recorded: it was killed, "
                               "or is still running); run it again to resume, then report")
    if state == "failed":
        return "not checked", ("the run failed: its outputs hold what its last checkpoint "
                               "committed, its counts go further")
    if eq.unknown:
        why = figures_problem or "; ".join(eq.path.problems) or \
            "a term has no count of its own in this run's history"
        return "unknown", why
    if eq.path.problems:
        return "unknown", "; ".join(eq.path.problems)
    holding = [st.name for st in eq.path.ops
               if st.type == "keyed_dedup" and st.keys.get("strategy") in HOLDING_DEDUP]
    if state == "stopped" and holding:
        return "unknown", (f"the run stopped early: records {', '.join(holding)} holds until "
                           "their window closes are in no term yet")
    return ("balanced" if eq.difference == 0 else "unbalanced"), None
