"""Kafka sources and outputs in the Flink SQL translation (issue 15 item 1).

**Source.** A ``KafkaSource`` (JSON values, a declared ``schema``) becomes a ``kafka``
connector table that reads each value as raw text (``'value.format' = 'raw'``) and parses it
in SQL. Flink's ``json`` format cannot be used: a value that does not parse either fails the
job or, with ``json.ignore-parse-errors``, becomes a row of nulls -- a record silently lost.
Our runner sends such a record to ``errors`` with its place (``topic T partition P offset
O``) and the reason; so does the translation: the view ``source_parsed`` classifies every
value (``problem`` NULL when it is a JSON object whose schema fields fit their types), the
good ones go on as the view ``source``, the others are INSERTed into ``errors`` as our
runner's ``deserialization_error`` records.

The watermark is the file source's: ``rt - (D + 1 ms)`` with the event time pinned to the
valid range's lower bound for a record that has none (it never raises the watermark). Flink
pushes it into the Kafka source, one per partition (split), their minimum taken downstream,
as SEMANTICS §2 does; ``scan.watermark.emit.strategy = on-event`` emits it after every
record there (periodic emission, with the 0 ms interval, would emit it only at the end); a
partition at its stop offset finishes and stops holding the watermark back, as an ended
partition counts as +infinity in ours. Which partition is read when is Flink's to choose;
docs/flink.md ("Kafka on Flink") says what that means for records late across partitions.

``metadata`` (but ``headers``) becomes the ``kafka_<name>`` columns our reader adds: the key
through a raw key format, the others Flink's metadata columns. ``start`` maps to
``scan.startup.mode``, ``stop_at`` to ``scan.bounded.mode`` (a bounded
job ends at the end offsets seen at its start, or at a timestamp). Idleness is
``table.exec.source.idle-timeout`` for a live source only: in a bounded replay our runner
never judges idleness by wall time (SEMANTICS §2), and a finished partition already stops
holding the watermark.

**Output.** A ``KafkaSink`` becomes a ``kafka`` table in the ``json`` format, exactly-once
(Flink's transactional sink: one transaction per checkpoint, ``sink.transactional-id-prefix``
from the sink's ``transactional_id``, by default ``surestream-<pipeline>-<output>``), with
the message key of ``key_fields`` as our sink writes it (``connectors/kafka/messages.py``).
"""

from __future__ import annotations

from surestream.model.spec import KafkaSink, KafkaSource
from surestream.model.steps import WatermarkStep
from surestream.runners.flink.sql_refusals import FlinkUnsupported
from surestream.runners.flink.sql_source import (
    ROWTIME,
    SQL_TYPES,
    SourceTable,
    quote,
    sql_string,
)
from surestream.runners.flink.sql_time import MAX_INTERVAL_MS, epoch_ms, interval
from surestream.runners.flink.sql_values import problem_cases, problem_sql, read_value

#: the raw table, and the view of its parsed values (with ``problem``)
RAW_TABLE = "kafka_source"
PARSED_VIEW = "source_parsed"
#: the helper columns of the raw table and the parsed view (never written to a sink)
VALUE, TOPIC, PARTITION, OFFSET, PROBLEM = ("kafka_value__", "kafka_topic__",
                                            "kafka_partition__", "kafka_offset__",
                                            "problem__")
#: the message key and record timestamp, read when ``metadata`` asks for them
KEY, TIMESTAMP = "kafka_key__", "kafka_timestamp__"
#: ``metadata`` name -> (its column's SQL type, its SQL over the raw table's columns), as
#: our reader adds them (``kafka_<name>``, after the schema's columns, in the listed order)
METADATA_SQL = {
    "key": ("STRING", quote(KEY)),
    "topic": ("STRING", quote(TOPIC)),
    "partition": ("BIGINT", f"CAST({quote(PARTITION)} AS BIGINT)"),
    "offset": ("BIGINT", quote(OFFSET)),
    "timestamp": ("BIGINT", epoch_ms(quote(TIMESTAMP))),
}
#: a transaction may stay open at most this long on a broker's default settings
#: (Kafka's transaction.max.timeout.ms is 15 minutes; Flink's own default, 1 hour, is refused)
TRANSACTION_TIMEOUT_MS = 900_000

def kafka_source_table(source: KafkaSource, step: WatermarkStep, *, pipeline: str,
                       bootstrap: str, source_path: str, step_path: str
                       ) -> tuple[SourceTable, list[str], str]:
    """The raw Kafka table and the views ``source_parsed`` and ``source``.

    Returns (the ``SourceTable`` of the view ``source``, the DDL statements in order, the
    SELECT of the deserialization errors for the ``errors`` output)."""
    _refuse_source(source, source_path)
    columns = {c: SQL_TYPES[t] for c, t in source.schema_.items()}
    meta = {f"kafka_{name}": METADATA_SQL[name] for name in source.metadata}
    for column in columns:
        if column in (VALUE, TOPIC, PARTITION, OFFSET, PROBLEM, KEY, TIMESTAMP, ROWTIME,
                      *meta):
            raise FlinkUnsupported(f"{source_path}.schema.{column}",
                                   "the name is taken by the translation's own columns")
    ts = step.timestamp_column
    if columns.get(ts) != "BIGINT":
        raise FlinkUnsupported(f"{step_path}.timestamp_column", (
            f"the translation reads event time from an integer field; declare {ts!r} as "
            "`int` in the source schema (ISO strings and float seconds are not translated)"))
    if step.max_out_of_orderness_ms + 1 > MAX_INTERVAL_MS:
        raise FlinkUnsupported(f"{step_path}.max_out_of_orderness_ms",
                               f"at most {MAX_INTERVAL_MS - 1} ms (a Flink DAY TO SECOND "
                               "interval)")
    v = quote(VALUE)
    values = {c: _read(c, t) for c, t in columns.items()}
    problem = _problem_sql(columns)
    ts_read = values[ts]
    ts_ms = ts_read if step.timestamp_unit in ("auto", "ms") else f"({ts_read} * 1000)"
    lo, hi = step.valid_range_ms
    valid_raw = f"({problem}) IS NULL AND {ts_ms} IS NOT NULL AND {ts_ms} BETWEEN {lo} AND {hi}"
    key = f"  {quote(KEY)} STRING,\n" if "key" in source.metadata else ""
    stamp = (f"  {quote(TIMESTAMP)} TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL,\n"
             if "timestamp" in source.metadata else "")
    opts = source_options(source, pipeline=pipeline, bootstrap=bootstrap)
    if key:  # the key as raw text, the value the one other physical column
        opts.update({"key.format": "raw", "key.fields": KEY,
                     "value.fields-include": "EXCEPT_KEY"})
    table = (
        f"CREATE TEMPORARY TABLE {quote(RAW_TABLE)} (\n{key}  {v} STRING,\n{stamp}"
        f"  {quote(TOPIC)} STRING METADATA FROM 'topic' VIRTUAL,\n"
        f"  {quote(PARTITION)} INT METADATA FROM 'partition' VIRTUAL,\n"
        f"  {quote(OFFSET)} BIGINT METADATA FROM 'offset' VIRTUAL,\n"
        f"  {ROWTIME} AS TO_TIMESTAMP_LTZ(CASE WHEN {valid_raw} THEN {ts_ms} ELSE {lo} END, 3),"
        f"\n  WATERMARK FOR {ROWTIME} AS {ROWTIME} - "
        f"{interval(step.max_out_of_orderness_ms + 1)}\n"
        f") WITH (\n  {_options(opts)}\n)")
    values.update({c: sql for c, (_, sql) in meta.items()})
    parsed_cols = ",\n  ".join(f"{expr} AS {quote(c)}" for c, expr in values.items())
    parsed = (f"CREATE TEMPORARY VIEW {quote(PARSED_VIEW)} AS\nSELECT\n  {parsed_cols},\n"
              f"  {problem} AS {quote(PROBLEM)},\n  {v}, {quote(TOPIC)}, {quote(PARTITION)}, "
              f"{quote(OFFSET)}, {ROWTIME}\nFROM {quote(RAW_TABLE)}")
    columns.update({c: sql_type for c, (sql_type, _) in meta.items()})
    names = ", ".join(quote(c) for c in columns)
    good = (f"CREATE TEMPORARY VIEW {quote('source')} AS\nSELECT {names}, {ROWTIME}\n"
            f"FROM {quote(PARSED_VIEW)} WHERE {quote(PROBLEM)} IS NULL")
    where_ms = quote(ts) if step.timestamp_unit in ("auto", "ms") else f"({quote(ts)} * 1000)"
    valid = f"({where_ms} IS NOT NULL AND {where_ms} BETWEEN {lo} AND {hi})"
    src = SourceTable(ddl=table, columns=columns, ts_ms=where_ms, valid=valid)
    return src, [table, parsed, good], _bad_values_select(pipeline)


def _refuse_source(source: KafkaSource, path: str) -> None:
    if source.format != "json":
        raise FlinkUnsupported(f"{path}.format", "only `json` values are translated")
    if not source.schema_:
        raise FlinkUnsupported(f"{path}.schema", (
            "Flink's table needs the column types; our runner infers them from the first "
            "messages, which Flink does not: declare `schema` (column -> int/float/string/"
            "bool)"))
    if source.extra_fields != "keep":
        raise FlinkUnsupported(f"{path}.extra_fields", "the translation reads the schema's "
                                                       "fields only")
    if "headers" in source.metadata:
        raise FlinkUnsupported(f"{path}.metadata", (
            "`headers` is not translated: Flink gives them as a map, which loses their order "
            "and repeated names (our column is the JSON list of [name, value] pairs)"))
    if source.options:
        raise FlinkUnsupported(f"{path}.options", (
            "options are librdkafka settings; Flink's Kafka client is the Java one, whose "
            "settings are named and behave otherwise: not translated"))


def source_options(source: KafkaSource, *, pipeline: str, bootstrap: str) -> dict[str, str]:
    """The ``WITH`` options of the raw table: topics (every partition), start, stop."""
    opts = {"connector": "kafka", "topic": ";".join(source.topics),
            "properties.bootstrap.servers": bootstrap,
            "properties.group.id": source.group_id or f"surestream-{pipeline}",
            "value.format": "raw",
            # the watermark is pushed into the Kafka source (one per partition, their
            # minimum downstream: SEMANTICS §2); emitted after every record there, as our
            # runner's (with `on-periodic` and the 0 ms interval it would come only at the end)
            "scan.watermark.emit.strategy": "on-event"}
    start = source.start
    if start == "earliest":
        opts["scan.startup.mode"] = "earliest-offset"
    elif start == "latest":
        opts["scan.startup.mode"] = "latest-offset"
    elif start == "committed":  # the group's offsets; earliest where it has none
        opts["scan.startup.mode"] = "group-offsets"
        opts["properties.auto.offset.reset"] = "earliest"
    else:
        opts["scan.startup.mode"] = "timestamp"
        opts["scan.startup.timestamp-millis"] = str(start.timestamp_ms)
    stop = source.stop_at
    if stop == "end":  # the end offsets seen when the job starts
        opts["scan.bounded.mode"] = "latest-offset"
    elif stop is not None:  # the first record at or after the timestamp is not read
        opts["scan.bounded.mode"] = "timestamp"
        opts["scan.bounded.timestamp-millis"] = str(stop.timestamp_ms)
    return opts


def idle_timeout_config(source: KafkaSource, step: WatermarkStep) -> dict[str, str]:
    """``table.exec.source.idle-timeout`` for a live source with ``idle_source_timeout_ms``;
    nothing for a bounded one (SEMANTICS §2: a replay never judges idleness by wall time)."""
    if step.idle_source_timeout_ms is None or not source.live:
        return {}
    return {"table.exec.source.idle-timeout": f"{step.idle_source_timeout_ms} ms"}


def _read(column: str, sql_type: str) -> str:
    """The typed value of a field (NULL when missing, null or not fitting)."""
    return read_value(quote(VALUE), column, sql_type)


def _problem_sql(columns: dict[str, str]) -> str:
    """Why a value is not a record, as our runner says it (NULL: it is one)."""
    v = quote(VALUE)
    return problem_sql([
        (f"{v} IS NULL", "'the message has no value (a tombstone)'"),
        (f"POSITION(CHR(10) IN {v}) > 0 OR POSITION(CHR(13) IN {v}) > 0",
         "'the value holds a line break, so it cannot be read as one record'"),
        *problem_cases(v, columns)])


def _bad_values_select(pipeline: str) -> str:
    """The values that are not records, as our runner's ``deserialization_error``s."""
    topic, part, offset = quote(TOPIC), f"CAST({quote(PARTITION)} AS STRING)", quote(OFFSET)
    message = (f"CONCAT({topic}, '[', {part}, ']: topic ', {topic}, ' partition ', {part}, "
               f"' offset ', CAST({offset} AS STRING), ': ', {quote(PROBLEM)})")
    return (f"SELECT {sql_string(pipeline)}, 'source:source', 'deserialization_error',\n"
            f"  {message},\n  COALESCE({quote(VALUE)}, '')\n"
            f"FROM {quote(PARSED_VIEW)} WHERE {quote(PROBLEM)} IS NOT NULL")


# -- outputs -----------------------------------------------------------------------------------
def kafka_sink_ddl(table: str, columns: dict[str, str], sink: KafkaSink, *, tag: str,
                   pipeline: str, bootstrap: str) -> tuple[str, list[str]]:
    """The ``kafka`` table of an output, and the SELECT list that fills it from a query
    whose columns are ``columns`` (the key column first when the sink has ``key_fields``)."""
    path = f"outputs.{tag}"
    if sink.options:
        raise FlinkUnsupported(f"{path}.options", (
            "options are librdkafka settings; Flink's Kafka client is the Java one: not "
            "translated"))
    if sink.header_fields:
        raise FlinkUnsupported(f"{path}.header_fields", "message headers are not translated "
                                                        "yet")
    opts = {"connector": "kafka", "topic": sink.topic,
            "properties.bootstrap.servers": bootstrap, "value.format": "json"}
    if sink.delivery == "exactly_once":
        opts["sink.delivery-guarantee"] = "exactly-once"
        opts["sink.transactional-id-prefix"] = (sink.transactional_id
                                                or f"surestream-{pipeline}-{tag}")
        opts["properties.transaction.timeout.ms"] = str(TRANSACTION_TIMEOUT_MS)
    else:
        opts["sink.delivery-guarantee"] = "at-least-once"
    cols = [f"{quote(c)} {t}" for c, t in columns.items()]
    select = [quote(c) for c in columns]
    if sink.key_fields:
        key = "kafka_key__"
        cols.insert(0, f"{quote(key)} STRING")
        select.insert(0, _key_sql(sink.key_fields, columns, path))
        opts.update({"key.format": "raw", "key.fields": key,
                     "value.fields-include": "EXCEPT_KEY"})
    ddl = (f"CREATE TEMPORARY TABLE {quote(table)} (\n  " + ",\n  ".join(cols)
           + f"\n) WITH (\n  {_options(opts)}\n)")
    return ddl, select


def _key_sql(fields: list[str], columns: dict[str, str], path: str) -> str:
    """The message key as our sink writes it: one field's text (a string as it is, else its
    JSON text), several fields a JSON array of their values; a null single field: no key."""
    for f in fields:
        if columns.get(f) not in ("STRING", "BIGINT", "BOOLEAN"):
            raise FlinkUnsupported(f"{path}.key_fields", (
                f"{f!r} must be a string, int or bool column of the output: a float's text "
                "differs between Flink and our runner, so keys would differ"))
    if len(fields) == 1:
        return _json_text(fields[0], columns[fields[0]])
    return f"JSON_ARRAY({', '.join(quote(f) for f in fields)} NULL ON NULL)"


def _json_text(field: str, sql_type: str) -> str:
    col = quote(field)
    if sql_type == "BOOLEAN":
        return f"CASE WHEN {col} IS NULL THEN NULL WHEN {col} THEN 'true' ELSE 'false' END"
    return f"CAST({col} AS STRING)"


def _options(opts: dict[str, str]) -> str:
    return ",\n  ".join(f"{sql_string(k)} = {sql_string(v)}" for k, v in opts.items())
