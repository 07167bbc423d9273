"""CSV outputs that a spec already shows cannot hold their records.

A session window's results carry ``supersedes``: the earlier firings each result replaces,
a list of ``[start, end, revision]`` lists (SEMANTICS §5). A CSV cell holds flat text, so
at run time every session result bound for a CSV file would go to the errors output as
unwritable -- the run would "succeed" with all its results in errors. Which columns reach
an output is mostly known only at run time (the input's fields, what user functions
return), but this column is known from the spec alone: it is refused at validation,
naming the output.

The column is followed from the window through the steps that keep a record's columns as
they are (``where``, ``filter``, ``watermark``, ``keyed_dedup``, ``route``, a late-data
step, ``broadcast_enrich``), into the side tags those steps emit to and into streams that
read the stream or a tag. A step that may replace it (``with_columns`` naming it, ``map``,
``map_batches``, ``process``, another window) ends the trail: what comes out of user code
is not known before it runs. Nothing else is statically known to be nested: late-record
metadata and error records are flat, and an aggregate's type follows its input's.
"""

from __future__ import annotations

from typing import Any

SUPERSEDES = "supersedes"  # (semantics/windows/output.py: the session results' column)


def _after_step(step: Any, carried: str | None, side: dict[str, str | None]) -> str | None:
    """Whether ``supersedes`` (added by the window step named ``carried``) is still there
    after ``step``; records ``step``'s side tags into ``side``."""
    from surestream.model.quality_rules import DataQualityStep
    from surestream.model.steps import (
        BroadcastEnrichStep,
        FilterStep,
        KeyedDedupStep,
        LateDataStep,
        RouteStep,
        WatermarkStep,
        WhereStep,
        WindowStep,
        WithColumnsStep,
    )
    from surestream.model.stream_graph import step_side_tags

    if isinstance(step, WindowStep):
        side[step.late_output_tag] = carried  # late records are the window's input records
        return step.name if step.kind == "session" else None
    keeps = (FilterStep, WhereStep, WatermarkStep, KeyedDedupStep, RouteStep, LateDataStep,
             DataQualityStep)
    for tag in step_side_tags(step):
        side[tag] = carried if isinstance(step, keeps) else None
    if isinstance(step, keeps):
        return carried
    if isinstance(step, WithColumnsStep):
        return None if SUPERSEDES in step.columns else carried
    if isinstance(step, BroadcastEnrichStep):
        return None if SUPERSEDES in step.fields else carried
    return None  # user code (map, map_batches, process): its output is not known


def session_column_tags(spec: Any) -> dict[str, str]:
    """Tag -> the session window step whose ``supersedes`` column its records carry."""
    streams = spec.all_streams
    results: dict[str, str | None] = {}  # stream -> carried at its end
    side: dict[str, str | None] = {}  # side tag -> carried
    producer = {tag: name for name, stream in streams.items()
                for tag in _side_tags(stream.steps)}
    visiting: set[str] = set()

    def carried_by(tag: str) -> str | None:
        if tag in streams:
            return walk(tag)
        if tag in producer:
            walk(producer[tag])
            return side.get(tag)
        return None  # a source: its records have the input's columns

    def walk(name: str) -> str | None:
        if name in results:
            return results[name]
        if name in visiting:  # a cycle: refused elsewhere; nothing to say here
            return None
        visiting.add(name)
        carried = next((c for c in map(carried_by, streams[name].inputs) if c is not None),
                       None)
        for step in streams[name].steps:
            carried = _after_step(step, carried, side)
        results[name] = carried
        return carried

    tags = {tag: carried_by(tag) for tag in [*streams, *producer]}
    return {tag: window for tag, window in tags.items() if window is not None}


def _side_tags(steps: list[Any]) -> list[str]:
    from surestream.model.stream_graph import step_side_tags

    return [tag for step in steps for tag in step_side_tags(step)]


def csv_output_problems(spec: Any) -> list[tuple[str, str]]:
    """``(field, reason)`` for each CSV output that session results reach with their
    ``supersedes`` column."""
    from surestream.model.spec import FileSink

    carrying = session_column_tags(spec)
    problems = []
    for tag, sink in spec.outputs.items():
        if isinstance(sink, FileSink) and sink.format == "csv" and tag in carrying:
            problems.append((f"outputs.{tag}", (
                f"a CSV file cannot hold the column {SUPERSEDES!r} that the session window "
                f"{carrying[tag]!r} adds to its results (the earlier firings each result "
                "replaces, a list of [start, end, revision] lists), so every result would go "
                "to errors; write this output as jsonl or parquet, or replace the column "
                f"before it (a with_columns step `{SUPERSEDES}: NULL`, or a map_batches "
                "step that drops it -- readers can then no longer tell which results "
                "replace earlier ones)")))
    return problems
