"""A ``PipelineSpec`` as Flink SQL statements (issue 15 item 1): the source table with its
watermark, one view per step, and one INSERT per output, run as one statement set.

What is translated, and how (docs/flink.md, "Translation"):

- the source: one JSON-lines file with a declared ``schema`` (``sql_source``);
- ``watermark``: ``rt - (D + 1 ms)`` on the source table; records without a valid timestamp
  go to ``errors`` (``missing_timestamp`` / ``timestamp_out_of_range``) as on our runner;
- ``late_data_side_output``: ``rt <= CURRENT_WATERMARK(rt)`` is late (SEMANTICS §3), with
  the metadata columns ``watermark_ms``, ``lateness_ms``, ``original_timestamp``,
  ``pipeline``, ``operator``;
- ``route``: one INSERT per tag (``CAST(field AS STRING) IN (...)``), unroutable records to
  ``errors`` (or ``default``), ``main`` going on;
- ``where`` and ``with_columns``: the SQL expressions as written;
- ``window`` (tumbling, sliding; ``allowed_lateness_ms = 0``; count, sum, min, max, avg):
  a window TVF, with the records too late for it sent to its late tag (``sql_window``);
- outputs: JSON-lines file outputs become filesystem ``json`` tables (a folder of part
  files at the output's path).

Everything else raises ``FlinkUnsupported`` naming the field and the reason
(``sql_refusals``): a spec is refused rather than run with other semantics. The job must
run with ``FLINK_CONFIG`` (per-record watermarks, UTC).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from surestream.model.spec import ERRORS_TAG, FileSink, FileSource, PipelineSpec
from surestream.model.steps import (
    KeyedDedupStep,
    LateDataStep,
    RouteStep,
    WatermarkStep,
    WhereStep,
    WindowStep,
    WithColumnsStep,
)
from surestream.runners.flink.operator_jar import operator_jar_path
from surestream.runners.flink.sql_dedup import (
    check_dedup,
    dedup_call,
    duplicates_folder,
    function_ddl,
    key_select,
    null_key_errors_select,
    status_select,
)
from surestream.runners.flink.sql_refusals import (
    STEP_REASONS,
    USER_CODE_STEPS,
    FlinkUnsupported,
    user_code,
)
from surestream.runners.flink.sql_source import (
    ROWTIME,
    SourceTable,
    quote,
    source_table,
    sql_string,
)
from surestream.runners.flink.sql_time import epoch_ms
from surestream.runners.flink.sql_window import window_sql

#: the table configuration the translation's semantics rest on: a watermark after every
#: record (measured: without it the window TVFs do not reproduce Flink's DataStream cases)
#: and UTC for the window TVFs' TIMESTAMP columns
#: and one-phase aggregation: a float sum is then one left fold in arrival order, as ours
#: (a local/global split would add partial sums, another rounding)
FLINK_CONFIG = {"pipeline.auto-watermark-interval": "0 ms", "table.local-time-zone": "UTC",
                "table.optimizer.agg-phase-strategy": "ONE_PHASE"}

_CAST = re.compile(r"^\s*CAST\s*\(.*\bAS\s+([A-Za-z]+)\s*\)\s*$", re.IGNORECASE | re.DOTALL)
_CAST_TYPES = {"BIGINT": "BIGINT", "INT": "BIGINT", "INTEGER": "BIGINT", "DOUBLE": "DOUBLE",
               "FLOAT": "DOUBLE", "STRING": "STRING", "VARCHAR": "STRING",
               "BOOLEAN": "BOOLEAN"}


@dataclass
class FlinkTranslation:
    """The statements of one job: ``ddl`` in order, then ``inserts`` as one statement set."""

    ddl: list[str] = field(default_factory=list)
    inserts: list[str] = field(default_factory=list)
    #: connector jars the job needs (the Kafka connector for Kafka sources and outputs)
    jars: list[Path] = field(default_factory=list)
    #: Python UDFs to register (``FlinkJob.functions``) and where their modules are
    functions: list[dict[str, str]] = field(default_factory=list)
    python_path: list[str] = field(default_factory=list)

    def script(self) -> str:
        """The whole job as a SQL script (what ``surestream explain --runner flink`` prints)."""
        sets = "".join(f"SET '{k}' = '{v}';\n" for k, v in FLINK_CONFIG.items())
        sets += "".join(f"ADD JAR '{jar}';\n" for jar in self.jars)  # (the job: pipeline.jars)
        body = "\n\n".join(f"{s};" for s in self.ddl)
        inserts = "\n".join(f"  {s};".replace("\n", "\n  ") for s in self.inserts)
        return f"{sets}\n{body}\n\nEXECUTE STATEMENT SET\nBEGIN\n{inserts}\nEND;\n"


class _Builder:
    """Walks the steps, keeping the current stage (a view) and its columns."""

    def __init__(self, spec: PipelineSpec) -> None:
        self.spec = spec
        self.out = FlinkTranslation()
        self.sinks: dict[str, str] = {}  # tag -> sink table

    def view(self, name: str, select: str) -> str:
        self.out.ddl.append(f"CREATE TEMPORARY VIEW {quote(name)} AS\n{select}")
        return name

    def insert(self, tag: str, columns: dict[str, str], select: str, path: str) -> None:
        """An INSERT of ``select`` into the output of ``tag`` (its table made once)."""
        table = self.sinks.get(tag)
        if table is None:
            table = self.sinks[tag] = f"sink_{len(self.sinks)}"
            self.out.ddl.append(self.sink_ddl(tag, table, columns, path))
        self.out.inserts.append(f"INSERT INTO {quote(table)}\n{select}")

    def sink_ddl(self, tag: str, table: str, columns: dict[str, str], path: str) -> str:
        sink = self.spec.outputs.get(tag)
        if sink is None and tag == ERRORS_TAG:
            target = str(self.spec.errors_default_path())
        elif isinstance(sink, FileSink) and sink.format == "jsonl":
            target = str(self.spec.resolve(sink.path))
        else:
            kind = getattr(sink, "type", None)
            raise FlinkUnsupported(f"outputs.{tag}", f"a `{kind}` output is not translated "
                                                     "yet (JSON-lines files only)")
        cols = ",\n  ".join(f"{quote(c)} {t}" for c, t in columns.items())
        return (f"CREATE TEMPORARY TABLE {quote(table)} (\n  {cols}\n) WITH ('connector' = "
                f"'filesystem', 'path' = {sql_string(target)}, 'format' = 'json')")


def translate(spec: PipelineSpec) -> FlinkTranslation:
    """The Flink SQL of ``spec``, or ``FlinkUnsupported`` for its first untranslatable
    field."""
    b = _Builder(spec)
    if spec.streams:
        raise FlinkUnsupported("streams", "named streams are not translated yet (top-level "
                                          "`steps` only)")
    if spec.trigger is not None:
        raise FlinkUnsupported("trigger", "triggers are not translated yet")
    source = spec.source
    path = "source"
    if not isinstance(source, FileSource):
        raise FlinkUnsupported(path, f"a `{getattr(source, 'type', None)}` source is not "
                                     "translated yet (one JSON-lines file)")
    if not isinstance(source.path, str) or any(c in source.path for c in "*?["):
        raise FlinkUnsupported(f"{path}.path", (
            "one file only: several files are several partitions, whose watermarks our "
            "runner interleaves in a fixed order that Flink's file splits do not follow"))
    steps = list(spec.steps)
    if not steps or not isinstance(steps[0], WatermarkStep):
        raise FlinkUnsupported("steps[0]", "the first step must be `watermark`: the Flink "
                                           "job runs on event time")
    src = source_table("source", source, str(spec.resolve(source.path)), steps[0], path,
                       "steps[0]")
    columns = dict(src.columns)
    b.insert(ERRORS_TAG, _error_columns(), _errors_select(spec, steps[0], src), "errors")
    stage = b.view("s0_valid", f"SELECT * FROM {quote('source')} WHERE {src.valid}")
    b.out.ddl.insert(0, src.ddl)
    result: dict[str, str] | None = None
    for i, step in enumerate(steps[1:], start=1):
        where = f"steps[{i}]"
        if result is not None:
            raise FlinkUnsupported(where, "steps after a window are not translated yet")
        if isinstance(step, LateDataStep):
            stage = _late_step(b, spec, step, stage, columns, src, i, where)
        elif isinstance(step, RouteStep):
            stage = _route(b, spec, step, stage, columns, i, where)
        elif isinstance(step, KeyedDedupStep):
            stage = _keyed_dedup(b, spec, step, stage, columns, i, where)
        elif isinstance(step, WhereStep):
            stage = b.view(f"s{i}_{step.name}",
                           f"SELECT * FROM {quote(stage)} WHERE ({step.condition})")
        elif isinstance(step, WithColumnsStep):
            stage = _with_columns(b, step, stage, columns, steps[0].timestamp_column, i, where)
        elif isinstance(step, WindowStep):
            win = window_sql(step, stage, columns, src.ts_ms, where)
            late = _late_select(spec, step.name, stage, columns, src.ts_ms,
                                lambda wm, w=win: f"{w.late_condition} <= {wm}")
            b.insert(step.late_output_tag, columns | _late_columns(), late,
                     f"{where}.late_output_tag")
            stage = b.view(f"s{i}_{step.name}", win.select)
            result = win.columns
        elif step.type in USER_CODE_STEPS:
            raise user_code(where, step.type)
        else:
            raise FlinkUnsupported(where, STEP_REASONS.get(
                step.type, f"a `{step.type}` step is not translated"))
    out_cols = result if result is not None else columns
    names = ", ".join(quote(c) for c in out_cols)
    b.insert("main", out_cols, f"SELECT {names} FROM {quote(stage)}", "outputs.main")
    return b.out


def _error_columns() -> dict[str, str]:
    return {c: "STRING" for c in ("pipeline", "operator", "error_type", "error_message",
                                  "raw")}


def _errors_select(spec: PipelineSpec, step: WatermarkStep, src: SourceTable) -> str:
    """Records without a valid timestamp, as our runner's error records."""
    ts = quote(step.timestamp_column)
    lo, hi = step.valid_range_ms
    raw = ", ".join(f"KEY {sql_string(c)} VALUE {quote(c)}" for c in src.columns)
    return (f"SELECT {sql_string(spec.pipeline)}, {sql_string(step.name)},\n"
            f"  CASE WHEN {ts} IS NULL THEN 'missing_timestamp' "
            "ELSE 'timestamp_out_of_range' END,\n"
            f"  CASE WHEN {ts} IS NULL THEN 'no timestamp in {step.timestamp_column}' ELSE "
            f"'timestamp outside [{lo}, {hi}]' END,\n"
            f"  JSON_OBJECT({raw} ABSENT ON NULL)\n"
            f"FROM {quote('source')} WHERE NOT {src.valid}")


def _late_columns() -> dict[str, str]:
    return {"watermark_ms": "BIGINT", "lateness_ms": "BIGINT", "original_timestamp": "BIGINT",
            "pipeline": "STRING", "operator": "STRING"}


def _late_select(spec: PipelineSpec, operator: str, stage: str, columns: dict[str, str],
                 ts_ms: str, is_late) -> str:  # noqa: ANN001 - a small callable
    """The records of ``stage`` that ``is_late(wm)`` says are late, with the metadata."""
    wm = epoch_ms(f"CURRENT_WATERMARK({ROWTIME})")
    names = ", ".join(quote(c) for c in columns)
    inner = f"SELECT *, {wm} AS wm__ FROM {quote(stage)}"
    return (f"SELECT {names}, wm__ AS watermark_ms, wm__ - {ts_ms} AS lateness_ms,\n"
            f"  {ts_ms} AS original_timestamp, {sql_string(spec.pipeline)} AS pipeline, "
            f"{sql_string(operator)} AS operator\n"
            f"FROM ({inner})\nWHERE wm__ IS NOT NULL AND {is_late('wm__')}")


def _late_step(b: _Builder, spec: PipelineSpec, step: LateDataStep, stage: str,
               columns: dict[str, str], src: SourceTable, i: int, where: str) -> str:
    """The record-level late split: late when ``ts <= W`` (W before the record)."""
    wm = f"CURRENT_WATERMARK({ROWTIME})"
    if step.strategy in ("log_and_drop", "flag"):
        raise FlinkUnsupported(f"{where}.strategy", f"`{step.strategy}` is not translated "
                                                    "yet (quarantine, side_output, dlq, drop)")
    meta = step.metadata
    if not (meta.include_watermark and meta.include_lateness_ms
            and meta.include_original_timestamp):
        raise FlinkUnsupported(f"{where}.metadata", "all metadata columns are written on "
                                                    "the Flink runner")
    if step.emits_records:
        late = _late_select(spec, step.name, stage, columns, src.ts_ms,
                            lambda w: f"{src.ts_ms} <= {w}")
        b.insert(step.output_tag, columns | _late_columns(), late, f"{where}.output_tag")
    return b.view(f"s{i}_{step.name}", f"SELECT * FROM {quote(stage)}\n"
                                        f"WHERE {wm} IS NULL OR {ROWTIME} > {wm}")


def _keyed_dedup(b: _Builder, spec: PipelineSpec, step: KeyedDedupStep, stage: str,
                 columns: dict[str, str], i: int, where: str) -> str:
    """Keep-first dedup by the Java operator (``sql_dedup``): kept records go on,
    duplicates to their output (or the job's duplicates folder), null keys to errors."""
    check_dedup(step, columns, where)
    if function_ddl() not in b.out.ddl:
        b.out.jars.append(operator_jar_path())
        b.out.ddl.append(function_ddl())
    keyed = key_select(step, stage)
    if keyed is not None:
        stage = b.view(f"s{i}_{step.name}_key", keyed)
    every = b.view(f"s{i}_{step.name}_status",
                   dedup_call(step, stage, columns, keyed=keyed is not None))
    if step.on_null_key == "error":
        b.insert(ERRORS_TAG, _error_columns(),
                 null_key_errors_select(spec, step, every, columns), "errors")
    duplicates = status_select(every, columns, "duplicate", with_rowtime=False)
    if step.duplicates_output_tag:
        b.insert(step.duplicates_output_tag, dict(columns), duplicates,
                 f"{where}.duplicates_output_tag")
    else:
        table = f"duplicates_{i}"
        cols = ",\n  ".join(f"{quote(c)} {t}" for c, t in columns.items())
        folder = sql_string(str(duplicates_folder(spec, step)))
        b.out.ddl.append(f"CREATE TEMPORARY TABLE {quote(table)} (\n  {cols}\n) WITH ("
                         f"'connector' = 'filesystem', 'path' = {folder}, 'format' = 'json')")
        b.out.inserts.append(f"INSERT INTO {quote(table)}\n{duplicates}")
    return b.view(f"s{i}_{step.name}", status_select(every, columns, "keep",
                                                     with_rowtime=True))


def _with_columns(b: _Builder, step: WithColumnsStep, stage: str, columns: dict[str, str],
                  ts_column: str, i: int, where: str) -> str:
    """New or replaced columns; each one's type must be known for the sinks' tables."""
    exprs = {}
    for name, expr in step.columns.items():
        path = f"{where}.columns.{name}"
        if name in (ts_column, ROWTIME):
            raise FlinkUnsupported(path, "the event-time column cannot be replaced on the "
                                         "Flink runner (the watermark is computed from it)")
        cast = _CAST.match(expr)
        if expr.strip() in columns:
            sql_type = columns[expr.strip()]
        elif cast and cast.group(1).upper() in _CAST_TYPES:
            sql_type = _CAST_TYPES[cast.group(1).upper()]
        else:
            raise FlinkUnsupported(path, (
                "the translation needs each new column's type for the output tables: write "
                f"the expression as CAST(... AS BIGINT|DOUBLE|STRING|BOOLEAN), e.g. "
                f"CAST({expr} AS DOUBLE)"))
        exprs[name] = expr
        columns[name] = sql_type
    parts = [f"({exprs[c]}) AS {quote(c)}" if c in exprs else quote(c) for c in columns]
    return b.view(f"s{i}_{step.name}",
                  f"SELECT {', '.join(parts)}, {ROWTIME} FROM {quote(stage)}")


def _route(b: _Builder, spec: PipelineSpec, step: RouteStep, stage: str,
           columns: dict[str, str], i: int, where: str) -> str:
    """The router: each tag's records INSERTed into its output, ``main`` going on. Values
    are compared as text, as our router does; a null or unlisted value goes to ``default``,
    or to ``errors`` (``unroutable``)."""
    sql_type = columns.get(step.field)
    if sql_type not in ("STRING", "BIGINT"):
        raise FlinkUnsupported(f"{where}.field", (
            f"{step.field!r} must be a `string` or `int` column of the source schema: other "
            "types print as other text in Flink than in our runner, so records would take "
            "other routes"))
    value = f"CAST({quote(step.field)} AS STRING)"
    listed = ", ".join(sql_string(v) for v in step.routes)
    unlisted = f"({value} IS NULL OR {value} NOT IN ({listed}))"

    def condition(tag: str) -> str:
        values = [sql_string(v) for v, t in step.routes.items() if t == tag]
        parts = [f"{value} IN ({', '.join(values)})"] if values else []
        if step.default == tag:
            parts.append(unlisted)
        return " OR ".join(parts) or "FALSE"

    names = ", ".join(quote(c) for c in columns)
    for tag in dict.fromkeys([*step.routes.values(), *([step.default] if step.default else [])]):
        if tag != "main":
            b.insert(tag, dict(columns), f"SELECT {names} FROM {quote(stage)}\n"
                                         f"WHERE {condition(tag)}", f"{where}.routes")
    if step.default is None:
        raw = ", ".join(f"KEY {sql_string(c)} VALUE {quote(c)}" for c in columns)
        message = (f"CONCAT('no route for {step.field}=', COALESCE({value}, 'null'))")
        b.insert(ERRORS_TAG, _error_columns(),
                 f"SELECT {sql_string(spec.pipeline)}, {sql_string(step.name)}, "
                 f"'unroutable',\n  {message},\n  JSON_OBJECT({raw} ABSENT ON NULL)\n"
                 f"FROM {quote(stage)} WHERE {unlisted}", f"{where}.default")
    return b.view(f"s{i}_{step.name}", f"SELECT * FROM {quote(stage)} WHERE "
                                        f"{condition('main')}")
