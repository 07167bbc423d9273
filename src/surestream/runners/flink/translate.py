"""A ``PipelineSpec`` as Flink SQL statements (issue 15 item 1): the source table with its
watermark, one view per step, and one INSERT per output, run as one statement set.

What is translated, and how (docs/flink.md, "Translation"):

- the source: JSON-lines files with a declared ``schema``, one table per file joined by
  UNION ALL (``sql_source``), or Kafka topics of JSON values (``sql_kafka``); lines and
  values that are not records go to ``errors``;
- ``watermark``: ``rt - (D + 1 ms)`` on the source table; records without a valid timestamp
  go to ``errors`` (``missing_timestamp`` / ``timestamp_out_of_range``) as on our runner;
- ``late_data_side_output``: ``rt <= CURRENT_WATERMARK(rt)`` is late (SEMANTICS §3), with
  the metadata columns ``watermark_ms``, ``lateness_ms``, ``original_timestamp``,
  ``pipeline``, ``operator``;
- ``route``: one INSERT per tag (``CAST(field AS STRING) IN (...)``), unroutable records to
  ``errors`` (or ``default``), ``main`` going on;
- ``where`` and ``with_columns``: expressions on the allowlist of constructs that mean the
  same in polars SQL and Flink SQL, with exact rewrites (``sql_expressions``);
- ``window`` (tumbling, sliding; ``allowed_lateness_ms = 0``; count, sum, min, max, avg):
  a window TVF, with the records too late for it sent to its late tag (``sql_window``);
  sessions as the SESSION TVF after a record-level late step (``sql_session``);
- named ``streams``: each stream's steps are views over the last view of what it reads
  (``sql_streams``; ``translate_steps`` translates one stream's steps), an output named
  like a stream an INSERT of its last view; top-level ``steps`` are the stream ``main``;
- outputs: JSON-lines file outputs become filesystem ``json`` tables (a folder of part
  files at the output's path); Kafka outputs ``kafka`` tables (``sql_kafka``), with the
  connector jars in ``FlinkTranslation.jars``.

Everything else raises ``FlinkUnsupported`` naming the field and the reason
(``sql_refusals``): a spec is refused rather than run with other semantics. The job must
run with ``FLINK_CONFIG`` (per-record watermarks, UTC).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from surestream.model.spec import (
    ERRORS_TAG,
    FileSink,
    FileSource,
    KafkaSink,
    KafkaSource,
    PipelineSpec,
)
from surestream.model.steps import (
    FilterStep,
    KeyedDedupStep,
    LateDataStep,
    MapBatchesStep,
    MapStep,
    RouteStep,
    WatermarkStep,
    WhereStep,
    WindowStep,
    WithColumnsStep,
)
from surestream.model.stream_graph import step_path
from surestream.model.time_range import format_epoch_ms
from surestream.runners.flink.environment import DEFAULT_CHECKPOINT_INTERVAL_MS
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
from surestream.runners.flink.sql_expressions import where_condition, with_columns_select
from surestream.runners.flink.sql_kafka import (
    idle_timeout_config,
    kafka_sink_ddl,
    kafka_source_table,
)
from surestream.runners.flink.sql_refusals import (
    STEP_REASONS,
    USER_CODE_STEPS,
    FlinkUnsupported,
    user_code,
)
from surestream.runners.flink.sql_session import session_sql
from surestream.runners.flink.sql_source import (
    ROWTIME,
    SEVERAL_FILES_NOTE,
    SourceTable,
    file_source_tables,
    quote,
    source_files,
    sql_string,
)
from surestream.runners.flink.sql_streams import Stage, source_stream, walk_streams
from surestream.runners.flink.sql_time import epoch_ms
from surestream.runners.flink.sql_user_code import WM_BEFORE, user_code_sql
from surestream.runners.flink.sql_window import window_sql

#: the table configuration the translation's semantics rest on: a watermark after every
#: record (measured: without it the window TVFs do not reproduce Flink's DataStream cases)
#: and UTC for the window TVFs' TIMESTAMP columns
FLINK_CONFIG = {"pipeline.auto-watermark-interval": "0 ms", "table.local-time-zone": "UTC",
                # one aggregation operator: the default local/global split pre-adds
                # bundles of records and adds the partial sums, another order of float
                # additions than ours (measured: an avg of doubles off in the last bit)
                "table.optimizer.agg-phase-strategy": "ONE_PHASE"}



@dataclass
class FlinkTranslation:
    """The statements of one job: ``ddl`` in order, then ``inserts`` as one statement set."""

    ddl: list[str] = field(default_factory=list)
    inserts: list[str] = field(default_factory=list)
    #: connector jars the job needs (the Kafka connector for Kafka sources and outputs)
    jars: list[Path] = field(default_factory=list)
    #: Python UDFs to register (``FlinkJob.functions``) and where their modules are
    functions: list[dict[str, Any]] = field(default_factory=list)
    python_path: list[str] = field(default_factory=list)
    #: the user's top-level modules / packages, copied next to the job (sql_user_code)
    python_files: list[str] = field(default_factory=list)
    #: Flink configuration the job needs beyond ``FLINK_CONFIG`` (a live Kafka source's
    #: ``table.exec.source.idle-timeout``)
    config: dict[str, str] = field(default_factory=dict)
    #: what a reader of the SQL should know (printed as comments by ``script``)
    notes: list[str] = field(default_factory=list)

    def script(self) -> str:
        """The whole job as a SQL script (what ``surestream explain --runner flink`` prints)."""
        sets = "".join(f"SET '{k}' = '{v}';\n"
                       for k, v in {**FLINK_CONFIG, **self.config}.items())
        sets += "".join(f"ADD JAR '{jar}';\n" for jar in self.jars)  # (the job: pipeline.jars)
        sets += "".join(f"-- Python UDF {f['name']}: {f['kind']} {f['module']}:"
                        f"{f['attribute']} (udf_adapter)\n" for f in self.functions)
        sets += "".join(f"-- {note}\n" for note in self.notes)
        body = "\n\n".join(f"{s};" for s in self.ddl)
        inserts = "\n".join(f"  {s};".replace("\n", "\n  ") for s in self.inserts)
        return f"{sets}\n{body}\n\nEXECUTE STATEMENT SET\nBEGIN\n{inserts}\nEND;\n"


def rolling_options(checkpoint_interval_ms: int | None) -> str:
    """A row-format file sink commits only part files that rolled (by default after 30
    minutes): roll one every checkpoint interval, so the output grows checkpoint by
    checkpoint, as the local runner's does, and a stopped job leaves what it committed."""
    interval = checkpoint_interval_ms or DEFAULT_CHECKPOINT_INTERVAL_MS
    return (f", 'sink.rolling-policy.rollover-interval' = '{interval} ms', "
            f"'sink.rolling-policy.check-interval' = '{min(interval, 1000)} ms'")


class _Builder:
    """Walks the steps, keeping the current stage (a view) and its columns."""

    def __init__(self, spec: PipelineSpec) -> None:
        self.spec = spec
        self.out = FlinkTranslation()
        self.sinks: dict[str, tuple[str, list[str] | None]] = {}  # tag -> (table, select)
        #: Kafka output table -> its SELECTs: Flink makes one sink per INSERT, and two Kafka
        #: sinks may not share a transactional-id prefix, so they become one INSERT
        self.kafka_selects: dict[str, list[str]] = {}

    def view(self, name: str, select: str) -> str:
        self.out.ddl.append(f"CREATE TEMPORARY VIEW {quote(name)} AS\n{select}")
        return name

    def insert(self, tag: str, columns: dict[str, str], select: str, path: str) -> None:
        """An INSERT of ``select`` into the output of ``tag`` (its table made once)."""
        made = self.sinks.get(tag)
        if made is None:
            table = f"sink_{len(self.sinks)}"
            ddl, wrap = self.sink_ddl(tag, table, columns, path)
            made = self.sinks[tag] = (table, wrap)
            self.out.ddl.append(ddl)
        table, wrap = made
        if wrap is not None:  # a Kafka output with a key: the key column first
            select = f"SELECT {', '.join(wrap)} FROM (\n{select}\n)"
        if isinstance(self.spec.outputs.get(tag), KafkaSink):
            if table not in self.kafka_selects:
                self.out.inserts.append(table)  # (its place; filled in by ``finish``)
            self.kafka_selects.setdefault(table, []).append(select)
            return
        self.out.inserts.append(f"INSERT INTO {quote(table)}\n{select}")

    def finish(self) -> FlinkTranslation:
        """The translation, each Kafka output's SELECTs as one INSERT (UNION ALL)."""
        for i, insert in enumerate(self.out.inserts):
            selects = self.kafka_selects.get(insert)
            if selects is not None:
                union = "\nUNION ALL\n".join(selects)
                self.out.inserts[i] = f"INSERT INTO {quote(insert)}\n{union}"
        return self.out

    def sink_ddl(self, tag: str, table: str, columns: dict[str, str], path: str
                 ) -> tuple[str, list[str] | None]:
        """The table of ``tag``'s output, and (Kafka with a key) the SELECT list filling it."""
        sink = self.spec.outputs.get(tag)
        if isinstance(sink, KafkaSink):
            from surestream.connectors.kafka.broker import resolve_bootstrap

            self.use_kafka()
            ddl, select = kafka_sink_ddl(table, columns, sink, tag=tag,
                                         pipeline=self.spec.pipeline,
                                         bootstrap=resolve_bootstrap(sink.bootstrap,
                                                                     f"outputs.{tag}.bootstrap"))
            return ddl, select if sink.key_fields else None
        if sink is None and tag == ERRORS_TAG:
            target = str(self.spec.errors_default_path())
        elif isinstance(sink, FileSink) and sink.format == "jsonl":
            target = str(self.spec.resolve(sink.path))
        elif isinstance(sink, FileSink):
            raise FlinkUnsupported(f"outputs.{tag}.format", (
                f"`{sink.format}` files are not translated yet (JSON-lines files and Kafka "
                "topics only)"))
        else:
            kind = getattr(sink, "type", None)
            raise FlinkUnsupported(f"outputs.{tag}", (
                f"{article(kind)} `{kind}` output is not translated yet (JSON-lines files "
                "and Kafka topics only)"))
        cols = ",\n  ".join(f"{quote(c)} {t}" for c, t in columns.items())
        return (f"CREATE TEMPORARY TABLE {quote(table)} (\n  {cols}\n) WITH ('connector' = "
                f"'filesystem', 'path' = {sql_string(target)}, 'format' = 'json'"
                f"{rolling_options(self.spec.checkpoint.interval_ms)})"), None

    def use_operator_jar(self) -> None:
        """The job runs our Java side (``operator_jar``: the dedup operator, the
        ``surestream-json`` file format)."""
        if operator_jar_path() not in self.out.jars:
            self.out.jars.append(operator_jar_path())

    def use_kafka(self) -> None:
        """The job reads or writes Kafka: it needs the connector jars."""
        for jar in kafka_jars():
            if jar not in self.out.jars:
                self.out.jars.append(jar)


def article(word: object) -> str:
    """"an" before a vowel ("an `iceberg` output"), else "a"."""
    return "an" if str(word)[:1].lower() in "aeiou" else "a"


def kafka_jars() -> list[Path]:
    """The Kafka connector jars (``jars.kafka_connector_jars``); where they are expected when
    they are missing, so that ``explain`` still prints the SQL (``runner.flink_job`` checks
    that they exist before a run)."""
    from surestream.runners.flink import jars

    try:
        return jars.kafka_connector_jars()
    except FileNotFoundError:
        return [jars.connector_folder() / "pyflink" / "lib" / name for name in jars.KAFKA_JARS]


def translate(spec: PipelineSpec) -> FlinkTranslation:
    """The Flink SQL of ``spec``, or ``FlinkUnsupported`` for its first untranslatable
    field."""
    b = _Builder(spec)
    if spec.trigger is not None:
        raise FlinkUnsupported("trigger", "triggers are not translated yet")
    source = spec.source
    path = "source"
    if source is None:
        raise FlinkUnsupported("sources", (
            "named `sources` (several inputs, each read by its own streams) are not "
            "translated yet: one `source`, JSON-lines files or Kafka topics"))
    if not isinstance(source, FileSource | KafkaSource):
        kind = getattr(source, "type", None)
        raise FlinkUnsupported(path, (
            f"{article(kind)} `{kind}` source is not translated yet (JSON-lines files or "
            "Kafka topics)"))
    first = source_stream(spec)  # (top-level steps: the stream `main`)
    steps = list(spec.all_streams[first].steps)
    wm_path = step_path(spec, first, 0)
    if not steps or not isinstance(steps[0], WatermarkStep):
        raise FlinkUnsupported(wm_path, "the first step must be `watermark`: the Flink "
                                        "job runs on event time")
    if isinstance(source, KafkaSource):
        from surestream.connectors.kafka.broker import resolve_bootstrap

        b.use_kafka()
        src, source_ddl, bad_values = kafka_source_table(
            source, steps[0], pipeline=spec.pipeline,
            bootstrap=resolve_bootstrap(source.bootstrap, "source.bootstrap"),
            source_path=path, step_path=wm_path)
        b.out.config.update(idle_timeout_config(source, steps[0]))
    else:  # each file a partition, globs expanded now (sql_source)
        files = source_files(source, spec.resolve, path)
        b.use_operator_jar()  # (the files' format: sql_source.JSON_FORMAT)
        src, source_ddl, bad_values = file_source_tables(
            source, files, steps[0], pipeline=spec.pipeline, source_path=path,
            step_path=wm_path)
        if len(files) > 1:
            b.out.notes.append(SEVERAL_FILES_NOTE.format(n=len(files)))
    b.insert(ERRORS_TAG, _error_columns(), _null_traceback(bad_values), "errors")
    b.insert(ERRORS_TAG, _error_columns(), _errors_select(spec, steps[0], src), "errors")
    stage = Stage(b.view("s0_valid", f"SELECT * FROM {quote('source')} WHERE {src.valid}"),
                  dict(src.columns), src.ts_ms)
    b.out.ddl[0:0] = source_ddl
    ts_column = steps[0].timestamp_column

    def run_steps(stream: str, todo: list[Any], start: int, at: Stage) -> Stage:
        return translate_steps(b, spec, stream, todo, start, at, ts_column)

    walk_streams(spec, first, stage, run_steps, b.view, lambda tag, at: _emit(b, tag, at))
    return b.finish()


def _emit(b: _Builder, tag: str, stage: Stage) -> None:
    """A stream's results INSERTed into the output named like the stream."""
    names = ", ".join(quote(c) for c in stage.columns)
    b.insert(tag, stage.columns, f"SELECT {names} FROM {quote(stage.view)}", f"outputs.{tag}")


def translate_steps(b: _Builder, spec: PipelineSpec, stream: str, steps: list[Any],
                    start: int, stage: Stage, ts_column: str) -> Stage:
    """The views of ``steps`` of ``stream`` (the first at index ``start``) after ``stage``;
    side outputs INSERTed on the way. Returns the stage of the stream's results."""
    for i, step in enumerate(steps, start=start):
        where = step_path(spec, stream, i)
        if stage.windowed:
            raise FlinkUnsupported(where, "steps after a window are not translated yet")
        if isinstance(step, LateDataStep):
            stage.view = _late_step(b, spec, step, stage, i, where)
            stage.late_split_before = True  # no record at or behind the watermark goes on
        elif isinstance(step, RouteStep):
            stage.view = _route(b, spec, step, stage.view, stage.columns, i, where)
        elif isinstance(step, KeyedDedupStep):
            stage.view = _keyed_dedup(b, spec, step, stage.view, stage.columns, i, where)
        elif isinstance(step, WhereStep):
            condition = where_condition(step.condition, stage.columns, f"{where}.condition")
            stage.view = b.view(f"s{i}_{step.name}",
                                f"SELECT * FROM {quote(stage.view)} WHERE {condition}")
        elif isinstance(step, WithColumnsStep):
            stage.view = _with_columns(b, step, stage, ts_column, i, where)
        elif isinstance(step, WindowStep):
            _window(b, spec, step, stage, i, where)
        elif isinstance(step, MapStep | FilterStep | MapBatchesStep):
            if stage.union is not None:
                raise FlinkUnsupported(where, (
                    f"user code after a union ({stage.union!r}) is not translated: a "
                    "function sees each record's own watermark on our runner, the union's "
                    "on Flink"))
            _user_code(b, spec, step, stage, i, where)
        elif isinstance(step, WatermarkStep):
            raise FlinkUnsupported(where, (
                "the watermark is the source table's on the Flink runner: only the first "
                "step of the stream reading the source may be `watermark`"))
        elif step.type in USER_CODE_STEPS:
            raise user_code(where, step.type)
        else:
            raise FlinkUnsupported(where, STEP_REASONS.get(
                step.type, f"a `{step.type}` step is not translated"))
    return stage


def _window(b: _Builder, spec: PipelineSpec, step: WindowStep, stage: Stage, i: int,
            where: str) -> None:
    """A window TVF over ``stage``, the records too late for it to its late tag; ``stage``
    becomes the window's results."""
    columns, ts_ms = stage.columns, stage.ts_ms

    def window(view: str) -> Any:
        if step.kind == "session":
            return session_sql(step, view, columns, ts_ms, where,
                               late_split_before=stage.late_split_before)
        return window_sql(step, view, columns, ts_ms, where)

    win = window(stage.view)
    late = _late_select(spec, step.name, stage.view, columns, ts_ms,
                        lambda wm, w=win: f"{w.late_condition} <= {wm}", stage.watermark)
    view = stage.view
    if step.kind != "session" or stage.carries_watermark:
        # (a session after its record-level late split gets no late record)
        # the window reads only what its late split did not take: Flink's window
        # operator sees its own watermark -- the minimum over the source readers at
        # parallelism > 1 (measured: a late record also counted in its window, 2 and
        # 39 of 1M), held back by a Python UDF -- never later than the one the split
        # judged by, so no record is both late and counted, or neither
        wm = epoch_ms(stage.watermark)
        view = b.view(f"s{i}_{step.name}_on_time", (
            f"SELECT * FROM {quote(view)}\nWHERE {stage.watermark} IS NULL OR NOT "
            f"({win.late_condition} <= {wm})"))
        win = window(view)
    b.insert(step.late_output_tag, columns | _late_columns(), late,
             f"{where}.late_output_tag")
    stage.view = b.view(f"s{i}_{step.name}", win.select)
    stage.columns = dict(win.columns)
    stage.windowed = True


def _error_columns() -> dict[str, str]:
    """Our error record's fields (model.error_kinds); ``traceback`` is null for the errors
    SQL raises (no user code), written as ``null`` as our runner writes it."""
    return {c: "STRING" for c in ("pipeline", "operator", "error_type", "error_message",
                                  "raw", "traceback")}


def _null_traceback(select: str) -> str:
    """An errors SELECT of the first five fields, with ``traceback`` null (Flink keeps no
    Python traceback of a record's failure; ours has one only for user code)."""
    return f"SELECT *, CAST(NULL AS STRING) FROM (\n{select}\n)"


def _errors_select(spec: PipelineSpec, step: WatermarkStep, src: SourceTable) -> str:
    """Records without a valid timestamp, as our runner's error records (the record as a
    JSON object of every column, nulls included, as our runner's ``raw``)."""
    ts, missing = quote(step.timestamp_column), step.timestamp_column
    lo, hi = step.valid_range_ms
    outside = (f" is outside the valid range {format_epoch_ms(lo)} .. {format_epoch_ms(hi)} "
               "(the watermark step's min_timestamp / max_timestamp)")
    return (f"SELECT {sql_string(spec.pipeline)}, {sql_string(step.name)},\n"
            f"  CASE WHEN {ts} IS NULL THEN 'missing_timestamp' "
            "ELSE 'timestamp_out_of_range' END,\n"
            f"  CASE WHEN {ts} IS NULL THEN {sql_string(f'missing timestamp {missing!r}')} "
            f"ELSE CONCAT({sql_string(f'timestamp {missing!r} = ')}, CAST({ts} AS STRING), "
            f"{sql_string(outside)}) END,\n"
            f"  {record_json(src.columns)}, CAST(NULL AS STRING)\n"
            f"FROM {quote('source')} WHERE NOT {src.valid}")


def record_json(columns: dict[str, str]) -> str:
    """A record as our runner's ``raw`` text: a JSON object of every column in order, nulls
    included (Flink's JSON_OBJECT orders the keys its own way)."""
    import json

    parts = [f"{sql_string(json.dumps(c) + ':')}, COALESCE(JSON_STRING({quote(c)}), 'null')"
             for c in columns]
    return "CONCAT('{', " + ", ',', ".join(parts) + ", '}')"


def _late_columns() -> dict[str, str]:
    return {"watermark_ms": "BIGINT", "lateness_ms": "BIGINT", "original_timestamp": "BIGINT",
            "pipeline": "STRING", "operator": "STRING"}


def _late_select(spec: PipelineSpec, operator: str, stage: str, columns: dict[str, str],
                 ts_ms: str, is_late,  # noqa: ANN001 - a small callable
                 watermark: str = f"CURRENT_WATERMARK({ROWTIME})") -> str:
    """The records of ``stage`` that ``is_late(wm)`` says are late, with the metadata."""
    wm = epoch_ms(watermark)
    names = ", ".join(quote(c) for c in columns)
    inner = f"SELECT *, {wm} AS wm__ FROM {quote(stage)}"
    return (f"SELECT {names}, wm__ AS watermark_ms, wm__ - {ts_ms} AS lateness_ms,\n"
            f"  {ts_ms} AS original_timestamp, {sql_string(spec.pipeline)} AS pipeline, "
            f"{sql_string(operator)} AS operator\n"
            f"FROM ({inner})\nWHERE wm__ IS NOT NULL AND {is_late('wm__')}")


def _late_step(b: _Builder, spec: PipelineSpec, step: LateDataStep, stage: Stage, i: int,
               where: str) -> str:
    """The record-level late split: late when ``ts <= W`` (W before the record)."""
    wm, ts_ms = stage.watermark, stage.ts_ms
    if step.strategy in ("log_and_drop", "flag"):
        raise FlinkUnsupported(f"{where}.strategy", f"`{step.strategy}` is not translated "
                                                    "yet (quarantine, side_output, dlq, drop)")
    meta = step.metadata
    if not (meta.include_watermark and meta.include_lateness_ms
            and meta.include_original_timestamp):
        raise FlinkUnsupported(f"{where}.metadata", "all metadata columns are written on "
                                                    "the Flink runner")
    if step.emits_records:
        late = _late_select(spec, step.name, stage.view, stage.columns, ts_ms,
                            lambda w: f"{ts_ms} <= {w}", wm)
        b.insert(step.output_tag, stage.columns | _late_columns(), late,
                 f"{where}.output_tag")
    return b.view(f"s{i}_{step.name}", f"SELECT * FROM {quote(stage.view)}\n"
                                        f"WHERE {wm} IS NULL OR {ROWTIME} > {wm}")


def _keyed_dedup(b: _Builder, spec: PipelineSpec, step: KeyedDedupStep, stage: str,
                 columns: dict[str, str], i: int, where: str) -> str:
    """Keep-first dedup by the Java operator (``sql_dedup``): kept records go on,
    duplicates to their output (or the job's duplicates folder), null keys to errors."""
    check_dedup(step, columns, where)
    if function_ddl() not in b.out.ddl:
        b.use_operator_jar()
        b.out.ddl.append(function_ddl())
    keyed = key_select(step, stage)
    if keyed is not None:
        stage = b.view(f"s{i}_{step.name}_key", keyed)
    every = b.view(f"s{i}_{step.name}_status",
                   dedup_call(step, stage, columns, keyed=keyed is not None))
    if step.on_null_key == "error":
        b.insert(ERRORS_TAG, _error_columns(),
                 _null_traceback(null_key_errors_select(spec, step, every, columns)),
                 "errors")
    duplicates = status_select(every, columns, "duplicate", with_rowtime=False)
    if step.duplicates_output_tag:
        b.insert(step.duplicates_output_tag, dict(columns), duplicates,
                 f"{where}.duplicates_output_tag")
    else:
        table = f"duplicates_{step.name}"
        cols = ",\n  ".join(f"{quote(c)} {t}" for c, t in columns.items())
        folder = sql_string(str(duplicates_folder(spec, step)))
        b.out.ddl.append(f"CREATE TEMPORARY TABLE {quote(table)} (\n  {cols}\n) WITH ("
                         f"'connector' = 'filesystem', 'path' = {folder}, 'format' = 'json')")
        b.out.inserts.append(f"INSERT INTO {quote(table)}\n{duplicates}")
    return b.view(f"s{i}_{step.name}", status_select(every, columns, "keep",
                                                     with_rowtime=True))


def _with_columns(b: _Builder, step: WithColumnsStep, stage: Stage, ts_column: str, i: int,
                  where: str) -> str:
    """New or replaced columns, typed and checked by ``sql_expressions`` (each one's type is
    needed for the sinks' tables)."""
    exprs, types = with_columns_select(step.columns, stage.columns, f"{where}.columns",
                                       {ts_column, ROWTIME})
    stage.columns = dict(types)
    parts = [f"{exprs[c]} AS {quote(c)}" for c in stage.columns]
    carried = f", {quote(WM_BEFORE)}" if stage.carries_watermark else ""
    return b.view(f"s{i}_{step.name}",
                  f"SELECT {', '.join(parts)}, {ROWTIME}{carried} FROM {quote(stage.view)}")


def _user_code(b: _Builder, spec: PipelineSpec, step: MapStep | FilterStep | MapBatchesStep,
               stage: Stage, i: int, where: str) -> None:
    """A map / filter / map_batches step as a Python UDF (``sql_user_code``): the records
    it passes on become the next view, the inputs it failed on go to ``errors``. Event
    time comes from ``rt`` from here on: a function may change or drop the column."""
    if not stage.carries_watermark:
        stage.view = b.view(f"s{i}_{step.name}_wm",
                            f"SELECT *, {epoch_ms(stage.watermark)} AS "
                            f"{quote(WM_BEFORE)} FROM {quote(stage.view)}")
        stage.watermark = f"TO_TIMESTAMP_LTZ({quote(WM_BEFORE)}, 3)"
        stage.carries_watermark = True
    sql = user_code_sql(step, stage.view, stage.columns, i, where)
    b.out.functions.append(sql.function)
    if sql.python_file not in b.out.python_files:
        b.out.python_files.append(sql.python_file)
    calls = quote(b.view(f"s{i}_{step.name}_calls", sql.calls))
    b.insert(ERRORS_TAG, _error_columns(),
             _null_traceback(sql.failed.replace("{pipeline}", sql_string(spec.pipeline))
                             .replace("{calls}", calls)), f"{where}.function")
    stage.view = b.view(f"s{i}_{step.name}", sql.passed.replace("{calls}", calls))
    stage.columns = dict(sql.columns)
    stage.ts_ms = epoch_ms(ROWTIME)


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
                 f"'unroutable',\n  {message},\n  JSON_OBJECT({raw} NULL ON NULL), "
                 "CAST(NULL AS STRING)\n"
                 f"FROM {quote(stage)} WHERE {unlisted}", f"{where}.default")
    return b.view(f"s{i}_{step.name}", f"SELECT * FROM {quote(stage)} WHERE "
                                        f"{condition('main')}")
