"""Output modes as validation: which outputs can honour what an aggregation emits, and the
ETL framework's ``enable_idempotence`` switch (docs/etl.md, "Output modes").

``complete`` emits the whole result table at every checkpoint, so only a sink that
*replaces* what it holds with each checkpoint's rows can hold it (a PostgreSQL or DuckDB
table with ``mode: replace``, a memory output, standard output for a look). Everything else
appends, and would hold every checkpoint's table one after the other: ``validate`` refuses
it, naming the output, the reason and the mode that works. The reverse holds too: a table
in ``mode: replace`` fed by anything but a complete result would keep only the last
checkpoint's records.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from surestream.model.problems import key_path
from surestream.model.steps import AggregateStep, WatermarkStep, WindowStep
from surestream.model.stream_graph import _after_union, step_path

if TYPE_CHECKING:
    from surestream.model.spec import PipelineSpec

Problem = tuple[str, str]

_UPSERT_ADVICE = ("or use output_mode update into a table that upserts by key (postgres "
                  "`mode: upsert`, key_columns = the key fields, `version_column: version`)")
#: sink type -> why it cannot hold a complete result (sinks with a replace mode are checked
#: by their mode instead)
_APPEND_ONLY = {
    "file": "a file only appends, so it would hold every checkpoint's table one after the "
            "other",
    "kafka": "a topic only appends, so readers would get every checkpoint's table one "
             "after the other",
    "iceberg": "an Iceberg output appends each checkpoint's rows (it has no replace mode)",
    "delta": "a Delta output appends each checkpoint's rows (it has no replace mode)",
    "clickhouse": "a ReplacingMergeTree replaces rows by key but never removes a key that "
                  "left the result (a timed-out key), and its merges are not a commit",
}


def idempotence_problem(sink_type: str, value: bool | None, promise: str) -> None:
    """``enable_idempotence: true`` where replays can repeat records is refused."""
    if not value or promise != "at_least_once":
        return
    if sink_type == "stdout":
        raise ValueError("enable_idempotence: true, but standard output cannot take a printed "
                         "line back: a run resumed after a crash prints the lines of the "
                         "replayed checkpoint again (at-least-once); remove "
                         "enable_idempotence, or write to a file or table sink")
    raise ValueError("enable_idempotence: true contradicts delivery: at_least_once (a run "
                     "resumed after a crash produces the replayed checkpoint's records "
                     "again); keep one of them")


def kafka_idempotence(data: Any) -> Any:
    """``enable_idempotence: false`` on a Kafka sink without ``delivery`` means ``delivery:
    at_least_once`` (as ``exactly_once: false`` does); against ``delivery: exactly_once``
    it is refused."""
    if not isinstance(data, dict) or data.get("enable_idempotence") is not False:
        return data
    if "delivery" not in data:
        return {**data, "delivery": "at_least_once"}
    if data["delivery"] == "exactly_once":
        raise ValueError("enable_idempotence: false contradicts delivery exactly_once (or "
                         "exactly_once: true): keep one of them")
    return data


def complete_tags(spec: PipelineSpec) -> dict[str, tuple[str, Any]]:
    """tag -> (stream, step) for every stream whose records are a complete result table:
    a stream with an aggregation in complete mode (its first), and the streams that read
    one."""
    tags: dict[str, tuple[str, Any]] = {}
    for sname, stream in spec.all_streams.items():
        step = next((s for s in stream.steps if isinstance(s, WindowStep | AggregateStep)
                     and s.output_mode == "complete"), None)
        if step is not None:
            tags[sname] = (sname, step)
    changed = True
    while changed:
        changed = False
        for sname, stream in spec.all_streams.items():
            if sname in tags:
                continue
            source = next((tags[t] for t in stream.inputs if t in tags), None)
            if source is not None:
                tags[sname] = source
                changed = True
    return tags


def replaces(sink: Any, complete: bool) -> bool:
    """Does this output replace what it holds with each checkpoint's rows?"""
    mode = getattr(sink, "mode", None)
    if sink.type == "memory":
        return mode == "replace" or (mode is None and complete)
    return sink.type in ("postgres", "duckdb") and mode == "replace"


def output_mode_problems(spec: PipelineSpec) -> list[Problem]:
    """Outputs that cannot honour the mode of what they take; aggregate steps whose state
    timeout has no watermark to go by."""
    problems = _timeout_problems(spec)
    complete = complete_tags(spec)
    problems += _stateful_after_complete(spec, complete)
    for tag, sink in spec.outputs.items():
        where = key_path("outputs", tag)
        if tag in complete:
            stream, step = complete[tag]
            if sink.type in ("stdout", "memory") and getattr(sink, "mode", None) != "append":
                continue
            if replaces(sink, True):
                continue
            what = (f"stream {stream!r} is the output_mode complete result of step "
                    f"{step.name!r} (the whole result table at every checkpoint)")
            problems.append((where, f"{what}, which this {sink.type} output cannot hold: "
                                    f"{_why_not(sink)}; {_advice(sink)}"))
        elif replaces(sink, False) and getattr(sink, "mode", None) == "replace":
            problems.append((f"{where}.mode", (
                f"replace keeps only each checkpoint's rows, and {tag!r} is not an "
                "output_mode complete result (its records would replace the table's at every "
                "checkpoint and earlier ones would be lost); feed it from a window or "
                "aggregate step with output_mode complete, or use mode append")))
    return problems


def _stateful_after_complete(spec: PipelineSpec, complete: dict[str, tuple[str, Any]]
                             ) -> list[Problem]:
    """A complete result is the whole table again at every checkpoint: a window, aggregate
    or dedup after it would take each result once per checkpoint (Spark refuses chained
    streaming aggregations for the same reason)."""
    problems = []
    for sname, (origin, step) in complete.items():
        steps = spec.all_streams[sname].steps
        start = steps.index(step) + 1 if sname == origin else 0
        for i in range(start, len(steps)):
            later = steps[i]
            if later.type in ("window", "aggregate", "keyed_dedup", "process"):
                problems.append((step_path(spec, sname, i), (
                    f"step {later.name!r} ({later.type}) reads the output_mode complete "
                    f"result of step {step.name!r}, which is the whole table again at every "
                    "checkpoint: it would take each result once per checkpoint; aggregate "
                    "once, or give the first step output_mode update")))
    return problems


def _why_not(sink: Any) -> str:
    if sink.type in _APPEND_ONLY:
        return _APPEND_ONLY[sink.type]
    return (f"mode {sink.mode} does not replace the table, so it would hold every "
            "checkpoint's table one after the other")


def _advice(sink: Any) -> str:
    if sink.type in ("postgres", "duckdb", "memory"):
        return f"set `mode: replace` on this output, {_UPSERT_ADVICE}"
    return ("write it to a PostgreSQL or DuckDB table with `mode: replace`, "
            f"{_UPSERT_ADVICE}")


def _timeout_problems(spec: PipelineSpec) -> list[Problem]:
    """``state_timeout_ms`` is event time: the aggregate step needs a watermark step before
    it in its stream (or in the stream it reads), and none after a union."""
    problems = []
    unions = _after_union(spec)
    for sname, stream in spec.all_streams.items():
        has_time = not any(read in spec.all_sources for read in stream.inputs)
        for i, step in enumerate(stream.steps):
            if isinstance(step, WatermarkStep):
                has_time = True
            if not isinstance(step, AggregateStep) or step.state_timeout_ms is None:
                continue
            where = f"{step_path(spec, sname, i)}.state_timeout_ms"
            if sname in unions:
                problems.append((where, f"step {step.name!r}: a state timeout goes by the "
                                        "watermark, which a union "
                                        f"({unions[sname]!r}) does not define record by "
                                        "record; aggregate before the union"))
            elif not has_time:
                problems.append((where, f"step {step.name!r}: state_timeout_ms is event "
                                        "time and needs a watermark; put a `watermark` step "
                                        "before it (or drop state_timeout_ms)"))
    return problems
