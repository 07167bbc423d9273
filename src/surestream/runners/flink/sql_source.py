"""The file source: JSON-lines files, each read as raw lines with its own watermark.

**Several files, several partitions.** Each file is one table of its own (``file_<i>``,
Flink's ``filesystem`` connector) with the watermark -- ours (SEMANTICS §2) in Flink's form,
``rt - (D + 1 ms)``, emitted after every record when the job runs with
``pipeline.auto-watermark-interval = 0 ms`` -- and the files are joined by ``UNION ALL``.
Flink's union operator takes the minimum of its inputs' watermarks, and a finished
(bounded) file emits the maximum watermark, so the stream's watermark is the minimum over
the files with a finished file counting as +infinity: SEMANTICS §2's per-partition rule.
(One filesystem table over several files would read them one after the other under ONE
watermark.) Globs and folders are expanded at translation time by the local runner's own
``list_files`` (each entry's matches sorted, entries in list order, each file once).

**Bad values cost one record.** Each line is parsed once, in Java, by our runner's typing
rules (our ``surestream-json`` format, see ``JSON_FORMAT``; not Flink's ``json``, which
fails the job or nulls a bad record): every line is a row of the schema's typed columns,
the line and ``problem__`` (NULL when it is a JSON object whose schema fields fit their
types), blank lines are skipped as ours skips them; the view ``source_parsed`` unites the
files, the good records go on as the view ``source``, the others go to ``errors`` as our
runner's ``deserialization_error`` records (``<file>: <reason>``, ``raw`` the line). A bad
record must neither stop the job nor move the watermark: its ``rt`` -- as that of a record
whose timestamp is missing or outside the step's valid range -- is pinned to the range's
lower bound, which never raises the watermark.
"""

from __future__ import annotations

import glob
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from surestream.connectors.parsing import infer_json_types
from surestream.connectors.readers import SAMPLE_BYTES
from surestream.connectors.value_types import SCHEMA_TYPES
from surestream.model.spec import FileSource
from surestream.model.steps import WatermarkStep
from surestream.runners.flink.sql_refusals import FlinkUnsupported
from surestream.runners.flink.sql_time import MAX_INTERVAL_MS, interval
from surestream.runners.flink.sql_values import quote, sql_string

#: the files' format: each line parsed once, in Java, by our runner's typing rules
#: (``java/surestream/flink/JsonFormatFactory.java`` and ``JsonRecords.java``, in the
#: operator jar): the schema's typed columns, then the line and why it is not a record.
#: Lines are read through Flink's ``StreamFormatAdapter`` (``LineFormatFactory.java``): the
#: ``raw`` and ``json`` formats' reader
#: (``DeserializationSchemaAdapter``, Flink 2.3.0) forgets the records it skipped on a
#: restore, so a job restored a second time read them again and wrote them twice
#: (docs/flink.md, "After a crash")
JSON_FORMAT = "surestream-json"
#: spec type -> Flink SQL type
SQL_TYPES = {"int": "BIGINT", "float": "DOUBLE", "string": "STRING", "bool": "BOOLEAN"}
#: the computed event-time column every stage carries (never written to a sink)
ROWTIME = "rt"
#: the view of the parsed lines of every file, and its helper columns (never written to a
#: sink): the line, its file, why it is not a record (NULL: it is one)
PARSED_VIEW = "source_parsed"
LINE, FILE, PROBLEM = "line__", "file__", "problem__"

#: what ``explain`` says of a source of several files (docs/flink.md, "The file source")
SEVERAL_FILES_NOTE = (
    "source: {n} files, one table each with its own watermark, joined by UNION ALL (the "
    "stream's watermark is their minimum). Flink interleaves the files by timing: a record "
    "behind its own file's watermark may be late on one run and on time on another; one "
    "never behind it is judged as on our runner (docs/flink.md, \"The file source\")")

__all__ = ["ROWTIME", "SEVERAL_FILES_NOTE", "SQL_TYPES", "SourceTable", "file_source_tables",
           "quote", "source_files", "sql_string"]


@dataclass(frozen=True)
class SourceTable:
    """The DDL of the source table and what later stages need to know of it."""

    ddl: str
    columns: dict[str, str]  # data column -> SQL type, in file order
    ts_ms: str  # SQL of the event time in epoch ms (valid records)
    valid: str  # SQL condition: the record has a valid timestamp


def source_files(source: FileSource, resolve: Callable[[str], Path], path: str) -> list[str]:
    """The files of ``source`` now, listed as our runner lists them (``list_files``). A file
    that does not exist yet is kept by its name (``explain`` prints the SQL; the job fails
    to start, naming it); a glob or folder matching nothing is refused: its files are fixed
    at translation time, and none means no table to read."""
    from surestream.connectors.sources import SourceError, list_files

    try:
        return list_files("source", source, resolve)
    except SourceError as e:
        entries = [source.path] if isinstance(source.path, str) else source.path
        if any(glob.has_magic(str(resolve(e))) or resolve(e).is_dir() for e in entries):
            raise FlinkUnsupported(f"{path}.path", (
                f"{e}: the files of a glob or folder are listed when the spec is translated "
                "(a file appearing later is not read, as in a bounded run of ours)")) from e
        return list(dict.fromkeys(str(resolve(e)) for e in entries))


def schema_hint(paths: list[str]) -> str:
    """What to declare, as the local runner would type the first file's first lines
    (``, e.g. schema: {symbol: string, ts: int}``; a column of no plain type -- null
    throughout, or nested -- is shown as ``?``); empty when there is no file to read."""
    try:
        with open(paths[0], "rb") as f:
            sample = f.read(SAMPLE_BYTES)
    except (IndexError, OSError):
        return ""
    whole = sample if len(sample) < SAMPLE_BYTES else sample[:sample.rfind(b"\n") + 1]
    words = {type(t): word for word, t in SCHEMA_TYPES.items()}
    types = infer_json_types(whole.split(b"\n"))
    if not types:
        return ""
    shown = ", ".join(f"{column}: {words.get(type(t), '?')}" for column, t in types.items())
    return f"; its first lines read as: schema: {{{shown}}}"


def file_source_tables(source: FileSource, paths: list[str], step: WatermarkStep, *,
                       pipeline: str, source_path: str, step_path: str
                       ) -> tuple[SourceTable, list[str], str]:
    """The raw table of each file in ``paths``, their union ``source_parsed`` and the view
    ``source``.

    Returns (the ``SourceTable`` of the view ``source``, the DDL statements in order, the
    SELECT of the bad lines for the ``errors`` output: five of its six columns)."""
    if source.format != "jsonl":
        raise FlinkUnsupported(f"{source_path}.format", "only `jsonl` files are translated")
    if not source.schema_:
        raise FlinkUnsupported(f"{source_path}.schema", (
            "Flink's table needs the column types; our runner infers them from the first "
            "lines, which Flink does not: declare `schema` (column -> int/float/string/bool)"
            f"{schema_hint(paths)}"))
    if source.extra_fields != "keep":
        raise FlinkUnsupported(f"{source_path}.extra_fields", "the translation reads the "
                                                              "schema's fields only")
    columns = {c: SQL_TYPES[t] for c, t in source.schema_.items()}
    for column in columns:
        if column in (LINE, FILE, PROBLEM, ROWTIME):
            raise FlinkUnsupported(f"{source_path}.schema.{column}",
                                   "the name is taken by the translation's own columns")
    ts = step.timestamp_column
    if columns.get(ts) != "BIGINT":
        raise FlinkUnsupported(f"{step_path}.timestamp_column", (
            f"the translation reads event time from an integer column; declare {ts!r} as "
            "`int` in the source schema (ISO strings and float seconds are not translated)"))
    if step.max_out_of_orderness_ms + 1 > MAX_INTERVAL_MS:
        raise FlinkUnsupported(f"{step_path}.max_out_of_orderness_ms",
                               f"at most {MAX_INTERVAL_MS - 1} ms (a Flink DAY TO SECOND "
                               "interval)")
    # (idle_source_timeout_ms: a file is one split, and a replay never judges idleness by
    # wall time -- SEMANTICS §2; a finished file stops holding the watermark back)
    line, problem = quote(LINE), quote(PROBLEM)
    lo, hi = step.valid_range_ms
    unit = "" if step.timestamp_unit in ("auto", "ms") else " * 1000"
    ts_raw = f"({quote(ts)}{unit})"
    valid_raw = f"{problem} IS NULL AND {ts_raw} IS NOT NULL AND {ts_raw} BETWEEN {lo} AND {hi}"
    typed = "".join(f"  {quote(c)} {t},\n" for c, t in columns.items())
    ddl = []
    for i, path in enumerate(paths):
        ddl.append(
            f"CREATE TEMPORARY TABLE {quote(f'file_{i}')} (\n{typed}  {line} STRING,\n"
            f"  {problem} STRING,\n"
            f"  {ROWTIME} AS TO_TIMESTAMP_LTZ(CASE WHEN {valid_raw} THEN {ts_raw} ELSE {lo} "
            f"END, 3),\n  WATERMARK FOR {ROWTIME} AS {ROWTIME} - "
            f"{interval(step.max_out_of_orderness_ms + 1)}\n"
            f") WITH ('connector' = 'filesystem', 'path' = {sql_string(path)}, "
            f"'format' = '{JSON_FORMAT}')")
    cols = "".join(f"{quote(c)}, " for c in columns)
    selects = [f"SELECT {cols}{problem}, {line}, {sql_string(path)} AS {quote(FILE)}, "
               f"{ROWTIME}\nFROM {quote(f'file_{i}')}" for i, path in enumerate(paths)]
    ddl.append(f"CREATE TEMPORARY VIEW {quote(PARSED_VIEW)} AS\n"
               + "\nUNION ALL\n".join(selects))
    names = ", ".join(quote(c) for c in columns)
    ddl.append(f"CREATE TEMPORARY VIEW {quote('source')} AS\nSELECT {names}, {ROWTIME}\n"
               f"FROM {quote(PARSED_VIEW)} WHERE {quote(PROBLEM)} IS NULL")
    ts_ms = quote(ts) if not unit else f"({quote(ts)}{unit})"
    valid = f"({ts_ms} IS NOT NULL AND {ts_ms} BETWEEN {lo} AND {hi})"
    bad = (f"SELECT {sql_string(pipeline)}, 'source:source', 'deserialization_error',\n"
           f"  CONCAT({quote(FILE)}, ': ', {quote(PROBLEM)}),\n  {line}\n"
           f"FROM {quote(PARSED_VIEW)} WHERE {quote(PROBLEM)} IS NOT NULL")
    return SourceTable(ddl=ddl[0], columns=columns, ts_ms=ts_ms, valid=valid), ddl, bad
