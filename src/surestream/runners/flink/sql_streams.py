"""Named ``streams`` as Flink SQL views (docs/flink.md, "Named streams").

The local runner runs the streams in dependency order (``model.stream_graph.stream_order``),
each over what it reads, and writes a stream's results to the output named like it. The
translation follows the same walk: the one stream reading the source starts from the source
table (its ``watermark`` step is the table's watermark), every other stream starts from the
last view of the stream it reads (a union: ``UNION ALL`` of the streams it names), its steps
become views after that one, and an output named like the stream gets an INSERT of its last
view. Each step's side outputs (late records, duplicates, routes) are INSERTed by the step
itself, as with top-level ``steps`` (which are the one stream ``main``).

Refused, with the field path inside the stream: a second stream reading the source (the
source table has one watermark), a stream reading a side output (``from: late``), a union of
streams with other columns. A step's own refusals name ``streams.<name>.steps[i]``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from surestream.model.spec import PipelineSpec
from surestream.model.stream_graph import stream_order, stream_prefix
from surestream.runners.flink.sql_refusals import FlinkUnsupported
from surestream.runners.flink.sql_source import ROWTIME, quote
from surestream.runners.flink.sql_time import epoch_ms


@dataclass
class Stage:
    """A stream's records at one point of the translation: the view holding them and what
    the next step must know of them. A stream read by several others hands each a copy
    (``branch``): steps change ``columns`` and the watermark in place."""

    view: str
    columns: dict[str, str]  # data column -> SQL type (a window's: its result columns)
    ts_ms: str  # SQL of the event time in epoch ms
    #: the watermark before each record: Flink's own until a Python UDF, which holds
    #: watermarks back to the end of its bundle; from there on the value taken before the
    #: first UDF, carried as a column (``sql_user_code.WM_BEFORE``)
    watermark: str = f"CURRENT_WATERMARK({ROWTIME})"
    carries_watermark: bool = False
    late_split_before: bool = False  # no record at or behind the watermark goes on
    windowed: bool = False  # a window's results: no step after it is translated yet
    union: str | None = None  # the union the records came through (no watermark of theirs)

    def branch(self) -> Stage:
        return replace(self, columns=dict(self.columns))


#: translates a stream's steps (stream name, steps, index of the first, stage) -> last stage
StepsFn = Callable[[str, list[Any], int, Stage], Stage]
#: makes a view (name, SELECT) -> its name
ViewFn = Callable[[str, str], str]
#: INSERTs a stream's results into the output named like it (tag, stage)
EmitFn = Callable[[str, Stage], None]


def source_stream(spec: PipelineSpec) -> str:
    """The one stream reading the source (top-level ``steps``: ``main``)."""
    streams = spec.all_streams
    readers = [n for n, s in streams.items() if not s.is_union and s.from_ in spec.all_sources]
    if len(readers) > 1:
        raise FlinkUnsupported(f"{stream_prefix(spec, readers[1])}.from", (
            f"one stream reads the source on the Flink runner ({readers[0]!r}): the source "
            "table carries the watermark of its `watermark` step; read the others from it "
            f"(`from: {readers[0]}`)"))
    if not readers:
        raise FlinkUnsupported("streams", "no stream reads the source")
    return readers[0]


def walk_streams(spec: PipelineSpec, first: str, source: Stage, run_steps: StepsFn,
                 view: ViewFn, emit: EmitFn) -> None:
    """Every stream in the local runner's order: ``first`` from ``source`` (after its
    watermark step, which the source table holds), the others from what they read; each
    stream that has an output named like it is INSERTed into it."""
    streams = spec.all_streams
    order = stream_order(streams)
    for name in order:  # (before any step INSERTs the side output to a missing output)
        for read in streams[name].inputs:
            if read not in streams and read not in spec.all_sources:
                raise FlinkUnsupported(f"{stream_prefix(spec, name)}.from", (
                    f"reading the side output {read!r} is not translated yet: its records "
                    "carry no event time in the Flink job (streams read the source or "
                    "another stream)"))
    stages: dict[str, Stage] = {}
    for name in order:
        stream = streams[name]
        if name == first:
            stage = run_steps(name, list(stream.steps[1:]), 1, source.branch())
        elif stream.is_union:
            stage = run_steps(name, list(stream.steps), 0,
                              union_stage(spec, name, stream.inputs, stages, view))
        else:
            stage = run_steps(name, list(stream.steps), 0, stages[stream.from_].branch())
        stages[name] = stage
        if name in spec.outputs:
            emit(name, stage)


def union_stage(spec: PipelineSpec, name: str, inputs: list[str], stages: dict[str, Stage],
                view: ViewFn) -> Stage:
    """``UNION ALL`` of the streams a union reads. Our union concatenates their records
    (a column one lacks as null); the translation takes streams with the same columns and
    types only. The records keep their event time (``rt``), not a watermark: validation
    refuses steps that judge lateness after a union."""
    parts = [stages[t] for t in inputs]
    first = parts[0]
    for read, part in zip(inputs, parts, strict=True):
        if part.columns != first.columns or part.windowed != first.windowed:
            raise FlinkUnsupported(f"{stream_prefix(spec, name)}.from", (
                f"a union of streams with other columns ({inputs[0]!r}: "
                f"{sorted(first.columns)}, {read!r}: {sorted(part.columns)}) is not "
                "translated: our union fills a missing column with nulls and widens types"))
    names = [quote(c) for c in first.columns] + ([] if first.windowed else [ROWTIME])
    select = "\nUNION ALL\n".join(f"SELECT {', '.join(names)} FROM {quote(p.view)}"
                                  for p in parts)
    return Stage(view(f"u_{name}", select), dict(first.columns), epoch_ms(ROWTIME),
                 windowed=first.windowed, union=name)
