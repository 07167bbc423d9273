"""The wiring of a pipeline's streams, and the whole-graph rules ``validate`` checks.

A stream reads a source, another stream's results or a side-output tag (``from``), and a
broadcast step may read a second stream (``updates``). From that wiring come the order
streams run in (``stream_order``: every stream after those it reads) and the rules a
valid spec obeys (``graph_problems``): tags are unique, every ``from`` names something
that exists, no stream reads itself or reads in a cycle, steps that need event time come
after a watermark, every output has a producer and every tag a destination.

Each rule is a small function returning ``(field path, reason)`` pairs, so a mistake is
reported at the key to change (``streams.quarantine.from``) and all mistakes at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from surestream.model.problems import key_path
from surestream.model.quality_rules import DataQualityStep
from surestream.model.steps import (
    BroadcastEnrichStep,
    KeyedDedupStep,
    LateDataStep,
    ProcessStep,
    RouteStep,
    WatermarkStep,
    WindowStep,
)

if TYPE_CHECKING:
    from surestream.model.spec import PipelineSpec

MAIN_STREAM = "main"
ERRORS_TAG = "errors"

Problem = tuple[str, str]


def step_side_tags(step: Any) -> list[str]:
    """The side-output tags a step may emit to (besides its stream's results and errors)."""
    if isinstance(step, LateDataStep):
        return [step.output_tag] if step.emits_records else []
    if isinstance(step, WindowStep):
        return [step.late_output_tag]
    if isinstance(step, KeyedDedupStep):
        return [t for t in (step.duplicates_output_tag, step.occurrences_output_tag) if t]
    if isinstance(step, RouteStep):
        tags = {t for t in step.routes.values() if t != "main"}
        if step.default and step.default != "main":
            tags.add(step.default)
        return sorted(tags)
    if isinstance(step, ProcessStep):
        return list(step.side_outputs)
    if isinstance(step, DataQualityStep):
        return [step.quarantine_output_tag] if step.quarantines else []
    return []


def stream_inputs(stream: Any) -> list[str]:
    """What a stream reads: its ``from`` and the ``updates`` of its broadcast steps."""
    return list(stream.inputs) + [s.updates for s in stream.steps
                             if isinstance(s, BroadcastEnrichStep) and s.updates]


def producers(streams: dict[str, Any]) -> dict[str, str]:
    """tag -> the stream that produces it (a stream produces its own name as a tag)."""
    found: dict[str, str] = {}
    for name, stream in streams.items():
        found[name] = name
        for step in stream.steps:
            for tag in step_side_tags(step):
                found.setdefault(tag, name)
    return found


class StreamCycleError(ValueError):
    """Streams read from each other in a cycle, so no order can run them."""

    def __init__(self, cycle: list[str]) -> None:
        self.cycle = cycle
        super().__init__("streams read from each other in a cycle: " + " -> ".join(cycle))


def stream_order(streams: dict[str, Any]) -> list[str]:
    """The streams in an order where each comes after every stream it reads from (spec
    order among those that are ready together). Raises ``StreamCycleError`` naming one
    cycle (``a -> b -> a``)."""
    made_by = producers(streams)
    deps = {name: {made_by[t] for t in stream_inputs(s) if t in made_by} - {name}
            for name, s in streams.items()}
    order: list[str] = []
    pending = dict(deps)
    while pending:
        ready = [n for n in streams if n in pending and not (pending[n] - set(order))]
        if not ready:
            raise StreamCycleError(_one_cycle(pending))
        for n in ready:
            order.append(n)
            del pending[n]
    return order


def _one_cycle(pending: dict[str, set[str]]) -> list[str]:
    """Follow unresolved dependencies from the first pending stream until one repeats."""
    path = [next(iter(pending))]
    while True:
        nxt = sorted(d for d in pending[path[-1]] if d in pending)[0]
        if nxt in path:
            return path[path.index(nxt):] + [nxt]
        path.append(nxt)


# -- the rules ---------------------------------------------------------------------------
def stream_prefix(spec: PipelineSpec, stream: str) -> str:
    """Where a stream's keys are in the file: top-level ``steps`` are the stream ``main``."""
    return "" if not spec.streams else key_path("streams", stream)


def step_path(spec: PipelineSpec, stream: str, index: int) -> str:
    prefix = stream_prefix(spec, stream)
    return f"{prefix}.steps[{index}]" if prefix else f"steps[{index}]"


def _steps(spec: PipelineSpec) -> Iterator[tuple[str, int, Any]]:
    for sname, stream in spec.all_streams.items():
        for i, step in enumerate(stream.steps):
            yield sname, i, step


def graph_problems(spec: PipelineSpec) -> list[Problem]:
    """Every whole-graph mistake of ``spec``, each with its field path."""
    problems = (_unique_tags(spec) + _unique_step_names(spec) + _unknown_inputs(spec)
                + _time_order(spec) + _outputs(spec))
    if not problems:  # a cycle only means something once every input exists
        problems += _cycles(spec)
    return problems


def _produced(spec: PipelineSpec) -> dict[str, str]:
    """tag -> a description of what produces it (the first producer)."""
    produced: dict[str, str] = {}
    for sname, _, step in _steps(spec):
        produced.setdefault(sname, f"stream {sname!r}")
        for tag in step_side_tags(step):
            produced.setdefault(tag, f"step {step.name!r}")
    for sname in spec.all_streams:
        produced.setdefault(sname, f"stream {sname!r}")
    return produced


def _unique_tags(spec: PipelineSpec) -> list[Problem]:
    seen: dict[str, str] = {name: f"stream {name!r}" for name in spec.all_streams}
    problems = []
    for sname, i, step in _steps(spec):
        for tag in step_side_tags(step):
            if tag in seen and tag != ERRORS_TAG:
                problems.append((step_path(spec, sname, i),
                                 f"tag {tag!r} of step {step.name!r} is already produced by "
                                 f"{seen[tag]}; tags must be unique"))
            seen.setdefault(tag, f"step {step.name!r}")
    return problems


def _unique_step_names(spec: PipelineSpec) -> list[Problem]:
    first: dict[str, str] = {}
    problems = []
    for sname, i, step in _steps(spec):
        path = step_path(spec, sname, i)
        if step.name in first:
            problems.append((f"{path}.name", f"step name {step.name!r} is already used at "
                                             f"{first[step.name]}; step names must be unique "
                                             "(they identify state)"))
        first.setdefault(step.name, path)
    return problems


def _unknown_inputs(spec: PipelineSpec) -> list[Problem]:
    """Every ``from`` and ``updates`` names a source, a stream or a tag; none is itself."""
    readable = set(_produced(spec)) | set(spec.all_sources)
    problems = []
    for sname, stream in spec.all_streams.items():
        where = f"{stream_prefix(spec, sname)}.from"
        for read in stream.inputs:
            if read not in readable:
                problems.append((where, f"{read!r} is neither a source nor a stream or "
                                        f"tag (known: {sorted(readable)})"))
            elif read == sname:
                problems.append((where, "a stream cannot read itself"))
            elif stream.is_union and read in spec.all_sources:
                problems.append((where, f"a union reads streams or tags, not the source "
                                        f"{read!r}: read several files as one source (a "
                                        "list of paths) or give the source a stream first"))
        if stream.is_union and len(set(stream.inputs)) != len(stream.inputs):
            problems.append((where, "a union names each stream or tag once"))
        for i, step in enumerate(stream.steps):
            if isinstance(step, BroadcastEnrichStep) and step.updates is not None \
                    and step.updates not in readable:
                problems.append((f"{step_path(spec, sname, i)}.updates",
                                 f"step {step.name!r}: updates stream {step.updates!r} does "
                                 f"not exist (known: {sorted(readable)})"))
    return problems


def _time_order(spec: PipelineSpec) -> list[Problem]:
    """Steps that need event time come after a watermark step (a stream that reads another
    stream's output inherits its event time), and never after a union (``_after_union``)."""
    problems = []
    unions = _after_union(spec)
    for sname, stream in spec.all_streams.items():
        has_time = not any(read in spec.all_sources for read in stream.inputs)
        if sname in unions:
            problems += [(step_path(spec, sname, i),
                          f"step {step.name!r} ({step.type}) judges records against the "
                          f"watermark, which a union ({unions[sname]!r}) does not define "
                          "record by record; put it before the union, in each stream it reads")
                         for i, step in enumerate(stream.steps) if _uses_watermark(step)]
            continue
        for i, step in enumerate(stream.steps):
            if isinstance(step, WatermarkStep):
                has_time = True
            elif isinstance(step, LateDataStep | KeyedDedupStep | WindowStep) and not has_time:
                problems.append((step_path(spec, sname, i),
                                 f"step {step.name!r} ({step.type}) needs event time; put a "
                                 "`watermark` step before it"))
            elif isinstance(step, DataQualityStep) and step.uses_event_time and not has_time:
                problems.append((step_path(spec, sname, i),
                                 f"step {step.name!r} (data_quality): a `unique` rule "
                                 "`within: {window_ms}` needs event time; put a `watermark` "
                                 "step before it (or use `within: batch`)"))
    return problems


def graph_tags(spec: PipelineSpec) -> set[str]:
    """The tags the pipeline's steps and streams produce, and those its streams read."""
    return set(_produced(spec)) | {t for s in spec.all_streams.values()
                                   for t in stream_inputs(s)}


def _uses_watermark(step: Any) -> bool:
    return isinstance(step, LateDataStep | KeyedDedupStep | WindowStep | ProcessStep
                      | WatermarkStep) or (isinstance(step, DataQualityStep)
                                           and step.uses_event_time)


def _after_union(spec: PipelineSpec) -> dict[str, str]:
    """stream -> the union it reads, directly or through other streams and their tags.

    A union's records keep the event time and the watermark they had in the stream they
    come from; the union as a whole has no per-record watermark (its inputs advance theirs
    independently), so steps that judge records against one are refused after it."""
    streams = spec.all_streams
    made_by = producers(streams)
    found = {name: name for name, s in streams.items() if s.is_union}
    changed = True
    while changed:
        changed = False
        for name, s in streams.items():
            if name in found:
                continue
            up = next((found[made_by[t]] for t in s.inputs
                       if t in made_by and made_by[t] in found), None)
            if up is not None:
                found[name] = up
                changed = True
    return found


def _outputs(spec: PipelineSpec) -> list[Problem]:
    """Every output has a producer (error outputs are fed by every step: ``errors`` and
    those with ``error_kinds``); every produced tag goes to an output or a stream."""
    produced = _produced(spec)
    problems = [(key_path("outputs", tag), f"no stream or step produces tag {tag!r} "
                                           f"(produced: {sorted(produced)})")
                for tag, sink in spec.outputs.items()
                if tag not in produced and tag != ERRORS_TAG
                and not getattr(sink, "error_kinds", None)]
    consumed = {t for s in spec.all_streams.values() for t in stream_inputs(s)}
    missing = [t for t in produced
               if t not in spec.outputs and t not in consumed and t != ERRORS_TAG]
    if missing:
        problems.append(("outputs", "these tags are produced but go nowhere (add them under "
                                    "`outputs` or read them from a stream; nothing is "
                                    f"dropped silently): {sorted(missing)}"))
    return problems


def _cycles(spec: PipelineSpec) -> list[Problem]:
    streams = spec.all_streams
    try:
        stream_order(streams)
    except StreamCycleError as e:
        first = e.cycle[0]
        via_from = any(producers(streams).get(t) == e.cycle[1]
                       for t in streams[first].inputs)
        where = (f"{stream_prefix(spec, first)}.from" if via_from else
                 next(f"{step_path(spec, first, i)}.updates"
                      for i, s in enumerate(streams[first].steps)
                      if isinstance(s, BroadcastEnrichStep) and s.updates))
        return [(where, f"{e}; a stream cannot read, directly or through other streams, "
                        "what it produces")]
    return []
