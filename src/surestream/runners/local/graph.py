"""Compile a validated spec into executable streams: operators in order, wired by tags."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from surestream.model.spec import PipelineSpec, step_side_tags
from surestream.model.steps import (
    BroadcastEnrichStep,
    FilterStep,
    KeyedDedupStep,
    LateDataStep,
    MapBatchesStep,
    MapStep,
    ProcessStep,
    RouteStep,
    WatermarkStep,
    WhereStep,
    WindowStep,
    WithColumnsStep,
)
from surestream.semantics.dedup import build_dedup_operator
from surestream.semantics.late import LateDataOperator
from surestream.semantics.watermark_step import WatermarkOperator
from surestream.semantics.watermarks import Clock


class GraphError(ValueError):
    """The streams cannot be ordered (a cycle) or wired."""


@dataclass
class CompiledStream:
    name: str
    from_: str
    operators: list[Any]
    reads_source: bool
    steps: list[Any] = field(default_factory=list)  # the specs of ``operators``
    #: step index -> name of the stream/tag whose records update its broadcast state
    updates: dict[int, str] = field(default_factory=dict)


def build_operator(step: Any, pipeline: str, clock: Clock | None = None,
                   base_dir: str | None = None) -> Any:
    """The executable operator for one step spec (``base_dir``: where relative paths in it
    resolve, the spec file's folder)."""
    if isinstance(step, WatermarkStep):
        return WatermarkOperator(step, pipeline, clock)
    if isinstance(step, LateDataStep):
        return LateDataOperator(step, pipeline)
    if isinstance(step, KeyedDedupStep):
        return build_dedup_operator(step, pipeline)
    if isinstance(step, WindowStep):
        from surestream.semantics.windows import build_window_operator

        return build_window_operator(step, pipeline)
    if isinstance(step, RouteStep):
        from surestream.semantics.router import build_route_operator

        return build_route_operator(step, pipeline)
    if isinstance(step, WithColumnsStep):
        from surestream.semantics.expressions import build_with_columns_operator

        return build_with_columns_operator(step, pipeline)
    if isinstance(step, WhereStep):
        from surestream.semantics.expressions import WhereOperator

        return WhereOperator(step, pipeline)
    if isinstance(step, MapBatchesStep):
        from surestream.semantics.expressions import build_map_batches_operator

        return build_map_batches_operator(step, pipeline)
    if isinstance(step, MapStep | FilterStep):
        from surestream.semantics import user_functions

        build = (user_functions.build_map_operator if isinstance(step, MapStep)
                 else user_functions.build_filter_operator)
        return build(step, pipeline)
    if isinstance(step, ProcessStep):
        from surestream.semantics.process import build_process_operator

        return build_process_operator(step, pipeline, clock=clock)
    if isinstance(step, BroadcastEnrichStep):
        from surestream.semantics.broadcast import build_broadcast_operator

        return build_broadcast_operator(step, pipeline, base_dir=base_dir)
    raise GraphError(f"no operator for step type {type(step).__name__}")


def compile_streams(spec: PipelineSpec, clock: Clock | None = None) -> list[CompiledStream]:
    """Streams in an order where every stream comes after those it reads from."""
    streams = spec.all_streams
    producer: dict[str, str] = {}
    for name, stream in streams.items():
        producer[name] = name
        for step in stream.steps:
            for tag in step_side_tags(step):
                producer[tag] = name
    deps: dict[str, set[str]] = {}
    for name, stream in streams.items():
        needs = {stream.from_} | {s.updates for s in stream.steps
                                  if isinstance(s, BroadcastEnrichStep) and s.updates}
        deps[name] = {producer[t] for t in needs if t in producer} - {name}
    order: list[str] = []
    pending = dict(deps)
    while pending:
        ready = [n for n in streams if n in pending and not (pending[n] - set(order))]
        if not ready:
            raise GraphError(f"streams read from each other in a cycle: {sorted(pending)}")
        for n in ready:
            order.append(n)
            del pending[n]
    compiled = []
    for name in order:
        stream = streams[name]
        ops = [build_operator(step, spec.pipeline, clock, spec.base_dir)
               for step in stream.steps]
        updates = {i: s.updates for i, s in enumerate(stream.steps)
                   if isinstance(s, BroadcastEnrichStep) and s.updates}
        compiled.append(CompiledStream(name, stream.from_, ops,
                                       stream.from_ in spec.all_sources, list(stream.steps),
                                       updates))
    return compiled
