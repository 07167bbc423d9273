"""The source table: a JSON file with its event-time column and watermark.

The watermark is ours (SEMANTICS §2) in Flink's form: ``rt - (D + 1 ms)``, emitted after
every record when the job runs with ``pipeline.auto-watermark-interval = 0 ms``. A record
whose timestamp is missing or outside the step's valid range must neither stop the job nor
move the watermark (our runner sends it to `errors` untouched): its ``rt`` is pinned to the
range's lower bound, which never raises the watermark, and the translation routes it to
the errors output.
"""

from __future__ import annotations

from dataclasses import dataclass

from surestream.model.spec import FileSource
from surestream.model.steps import WatermarkStep
from surestream.runners.flink.sql_refusals import FlinkUnsupported
from surestream.runners.flink.sql_time import MAX_INTERVAL_MS, interval

#: spec type -> Flink SQL type
SQL_TYPES = {"int": "BIGINT", "float": "DOUBLE", "string": "STRING", "bool": "BOOLEAN"}
#: the computed event-time column every stage carries (never written to a sink)
ROWTIME = "rt"


def quote(name: str) -> str:
    """A column name as a Flink SQL identifier (``count`` and ``sum`` are reserved)."""
    return "`" + name.replace("`", "``") + "`"


@dataclass(frozen=True)
class SourceTable:
    """The DDL of the source table and what later stages need to know of it."""

    ddl: str
    columns: dict[str, str]  # data column -> SQL type, in file order
    ts_ms: str  # SQL of the event time in epoch ms (valid records)
    valid: str  # SQL condition: the record has a valid timestamp


def source_table(name: str, source: FileSource, path: str, step: WatermarkStep,
                 source_path: str, step_path: str) -> SourceTable:
    """The filesystem JSON table ``name`` over ``path`` with ``step``'s watermark."""
    if source.format != "jsonl":
        raise FlinkUnsupported(f"{source_path}.format", "only `jsonl` files are translated "
                                                        "(the Flink `json` format)")
    if not source.schema_:
        raise FlinkUnsupported(f"{source_path}.schema", (
            "Flink's table needs the column types; our runner infers them from the first "
            "lines, which Flink does not: declare `schema` (column -> int/float/string/bool)"))
    if source.extra_fields != "keep":
        raise FlinkUnsupported(f"{source_path}.extra_fields", "Flink's json format ignores "
                                                              "fields the table lacks")
    columns = {c: SQL_TYPES[t] for c, t in source.schema_.items()}
    ts = step.timestamp_column
    if columns.get(ts) != "BIGINT":
        raise FlinkUnsupported(f"{step_path}.timestamp_column", (
            f"the translation reads event time from an integer column; declare {ts!r} as "
            "`int` in the source schema (ISO strings and float seconds are not translated)"))
    if step.timestamp_unit == "auto" or step.timestamp_unit == "ms":
        ts_ms = quote(ts)
    else:
        ts_ms = f"({quote(ts)} * 1000)"
    if step.max_out_of_orderness_ms + 1 > MAX_INTERVAL_MS:
        raise FlinkUnsupported(f"{step_path}.max_out_of_orderness_ms",
                               f"at most {MAX_INTERVAL_MS - 1} ms (a Flink DAY TO SECOND "
                               "interval)")
    if step.idle_source_timeout_ms is not None:
        pass  # a single file is one split: idleness never applies in a replay (SEMANTICS §2)
    lo, hi = step.valid_range_ms
    valid = f"({ts_ms} IS NOT NULL AND {ts_ms} BETWEEN {lo} AND {hi})"
    cols = ",\n  ".join(f"{quote(c)} {t}" for c, t in columns.items())
    ddl = (f"CREATE TEMPORARY TABLE {quote(name)} (\n  {cols},\n"
           f"  {ROWTIME} AS TO_TIMESTAMP_LTZ(CASE WHEN {valid} THEN {ts_ms} ELSE {lo} END, 3),"
           f"\n  WATERMARK FOR {ROWTIME} AS {ROWTIME} - "
           f"{interval(step.max_out_of_orderness_ms + 1)}\n"
           f") WITH ('connector' = 'filesystem', 'path' = {sql_string(path)}, "
           "'format' = 'json')")
    return SourceTable(ddl=ddl, columns=columns, ts_ms=ts_ms, valid=valid)


def sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
