"""Compile a validated spec into executable streams: operators in order, wired by tags."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from surestream.connectors.reference_data import load_reference, reference_reloader
from surestream.model.batch import Batch
from surestream.model.quality_rules import DataQualityStep
from surestream.model.spec import PipelineSpec
from surestream.model.steps import (
    BroadcastEnrichStep,
    FilterStep,
    KeyedDedupStep,
    LateDataStep,
    MapBatchesStep,
    MapStep,
    ProcessingTimeStep,
    ProcessStep,
    RouteStep,
    WatermarkStep,
    WhereStep,
    WindowStep,
    WithColumnsStep,
)
from surestream.model.stream_graph import stream_order
from surestream.semantics.broadcast import build_broadcast_operator
from surestream.semantics.dedup import build_dedup_operator
from surestream.semantics.expressions import (
    WhereOperator,
    build_map_batches_operator,
    build_with_columns_operator,
)
from surestream.semantics.late import LateDataOperator
from surestream.semantics.process import build_process_operator
from surestream.semantics.processing_time import ProcessingTimeOperator
from surestream.semantics.quality import DataQualityOperator
from surestream.semantics.router import build_route_operator
from surestream.semantics.user_functions import build_filter_operator, build_map_operator
from surestream.semantics.watermark_step import WatermarkOperator
from surestream.semantics.watermarks import Clock
from surestream.semantics.windows import build_window_operator


class GraphError(ValueError):
    """A step the runner has no operator for."""


@dataclass
class CompiledStream:
    name: str
    from_: str | list[str]  # a list: a union of streams/tags (``union_of``)
    operators: list[Any]
    reads_source: bool
    steps: list[Any] = field(default_factory=list)  # the specs of ``operators``
    #: step index -> name of the stream/tag whose records update its broadcast state
    updates: dict[int, str] = field(default_factory=dict)


#: step type -> its operator, from (step, pipeline, clock, base_dir); every step type of
#: ``model.steps`` has exactly one entry, so a new step is added here and nowhere else
BUILDERS: dict[type, Callable[[Any, str, Clock | None, str | None], Any]] = {
    WatermarkStep: lambda s, p, clock, _: WatermarkOperator(s, p, clock),
    LateDataStep: lambda s, p, _, __: LateDataOperator(s, p),
    KeyedDedupStep: lambda s, p, _, __: build_dedup_operator(s, p),
    WindowStep: lambda s, p, _, __: build_window_operator(s, p),
    RouteStep: lambda s, p, _, __: build_route_operator(s, p),
    WithColumnsStep: lambda s, p, clock, _: build_with_columns_operator(s, p, clock),
    WhereStep: lambda s, p, clock, _: WhereOperator(s, p, clock),
    MapBatchesStep: lambda s, p, _, __: build_map_batches_operator(s, p),
    MapStep: lambda s, p, _, __: build_map_operator(s, p),
    FilterStep: lambda s, p, _, __: build_filter_operator(s, p),
    ProcessStep: lambda s, p, clock, _: build_process_operator(s, p, clock=clock),
    ProcessingTimeStep: lambda s, p, clock, _: ProcessingTimeOperator(s, p, clock),
    DataQualityStep: lambda s, p, clock, _: DataQualityOperator(s, p, clock),
    BroadcastEnrichStep: lambda s, p, _, base: build_broadcast_operator(
        s, p, reference=_reference(s, base), reload=_reloader(s, base)),
}


def _reloader(step: BroadcastEnrichStep, base_dir: str | None) -> Any:
    """For ``refresh_interval_ms``: the function re-reading the reference file (I/O)."""
    if step.refresh_interval_ms is None or step.reference is None:
        return None
    keys = list(step.key_fields)
    return reference_reloader(step.reference, keys, [f for f in step.fields if f not in keys],
                              Path(base_dir) if base_dir is not None else None)


def _reference(step: BroadcastEnrichStep, base_dir: str | None) -> Any:
    """The step's reference data, read here (I/O) for the operator (pure semantics)."""
    if step.reference is None:
        return None
    keys = list(step.key_fields)
    return load_reference(step.reference, keys, [f for f in step.fields if f not in keys],
                          Path(base_dir) if base_dir is not None else None)


def build_operator(step: Any, pipeline: str, clock: Clock | None = None,
                   base_dir: str | None = None) -> Any:
    """The executable operator for one step spec (``base_dir``: where relative paths in it
    resolve, the spec file's folder)."""
    build = BUILDERS.get(type(step))
    if build is None:
        raise GraphError(f"no operator for step type {type(step).__name__}")
    return build(step, pipeline, clock, base_dir)


def compile_streams(spec: PipelineSpec, clock: Clock | None = None) -> list[CompiledStream]:
    """Streams in an order where every stream comes after those it reads from
    (``model.stream_graph.stream_order``; validation has refused cycles)."""
    streams = spec.all_streams
    compiled = []
    for name in stream_order(streams):
        stream = streams[name]
        ops = [build_operator(step, spec.pipeline, clock, spec.base_dir)
               for step in stream.steps]
        updates = {i: s.updates for i, s in enumerate(stream.steps)
                   if isinstance(s, BroadcastEnrichStep) and s.updates}
        compiled.append(CompiledStream(name, stream.from_, ops,
                                       not stream.is_union and stream.from_ in spec.all_sources,
                                       list(stream.steps),
                                       updates))
    return compiled


def union_of(batches: list[Batch]) -> Batch:
    """One batch of the records of several streams in one step (a ``from`` list).

    Records are ordered by their emission point in the logical sequence (``seq``), ties in
    the order of ``from``: a cut of the input into other batches gives the same order. Each
    record keeps its event time and watermark; the union's watermark at the end of the step
    is the smallest of its inputs' (no step that judges lateness may follow a union)."""
    end = min(b.wm_end for b in batches)
    rows = [b for b in batches if len(b)]
    if not rows:
        return Batch.empty(end, with_ts=True)
    has_ts = all(b.ts is not None for b in rows)
    merged = Batch(
        data=pl.concat([b.data for b in rows], how="diagonal_relaxed"),
        wm=np.concatenate([b.wm for b in rows]), seq=np.concatenate([b.seq for b in rows]),
        wm_end=end, ts=np.concatenate([b.ts for b in rows]) if has_ts else None)
    return merged.take(np.argsort(merged.seq, kind="stable"))
