"""Keyed deduplication on Flink: the Java process table function and the SQL around it.

Flink SQL's ``ROW_NUMBER()`` keep-first holds a key until a processing-time TTL; ours
(SEMANTICS §4) restarts a key's window ``time_window_ms`` of event time after the record it
kept and forgets the key ``state_ttl_ms`` of event time later. That is the Java operator
``surestream.flink.KeyedDedup`` (``java/``, built by ``operator_jar``), called from SQL with
the stage partitioned by the key fields and the event time as ``on_time``. It returns every
record with a status column; the views and INSERTs here route each kind:

- ``keep``: the next stage (its ``rowtime`` renamed ``rt``, still the event-time attribute,
  so windows and ``CURRENT_WATERMARK`` work after it as before);
- ``duplicate``: counted by the operator (Flink metric ``duplicates_dropped``) and INSERTed
  into the step's ``duplicates_output_tag`` when it has one, else into a folder of the job
  (``duplicates_folder``) that the runner counts (``count_duplicates``);
- ``null_key`` (``on_null_key: error``): the errors output, with our runner's reason.

Only ``strategy: first`` is translated: ``last`` / ``earliest`` / ``latest`` hold records
back until the watermark passes their window, and a process table function emits from a
timer with the timer's time as ``rowtime``, not the record's event time: the windows after
it would assign the records elsewhere. They are refused with that reason.
"""

from __future__ import annotations

from pathlib import Path

from surestream.model.error_kinds import NULL_KEY
from surestream.model.spec import PipelineSpec
from surestream.model.steps import KeyedDedupStep
from surestream.runners.flink.sql_refusals import FlinkUnsupported
from surestream.runners.flink.sql_source import ROWTIME, quote, sql_string

FUNCTION = "surestream_keyed_dedup"
JAVA_CLASS = "surestream.flink.KeyedDedup"
STATUS = "dedup__status"
KEY = "dedup__key"
#: columns the operator's output adds (a data column of the same name would clash)
RESERVED = {STATUS, KEY, "rowtime"}
#: at most this many key fields: the null-key reason is a CASE over their null patterns
MAX_KEY_FIELDS = 4


def function_ddl() -> str:
    """Registers the Java operator (its jar is in the job's ``pipeline.jars``)."""
    return (f"CREATE TEMPORARY SYSTEM FUNCTION {FUNCTION} AS {sql_string(JAVA_CLASS)} "
            "LANGUAGE JAVA")


def check_dedup(step: KeyedDedupStep, columns: dict[str, str], path: str) -> None:
    """Refuse what the operator does not reproduce."""
    if step.strategy != "first":
        raise FlinkUnsupported(f"{path}.strategy", (
            f"`{step.strategy}` holds each key's record back until the watermark passes its "
            "window and then releases it with its own event time; a Flink process table "
            "function emits from a timer with the timer's time as the event time, so the "
            "steps after it would see other times (the Java operator runs strategy: first "
            "only); run it on the local runner"))
    for field in step.key_fields:
        if field not in columns:
            raise FlinkUnsupported(f"{path}.key_fields", (
                f"{field!r} is not a column of the stage (declare it in the source schema): "
                "Flink partitions by declared columns only"))
    if len(set(step.key_fields)) != len(step.key_fields):
        raise FlinkUnsupported(f"{path}.key_fields", "a key field is repeated")
    if len(step.key_fields) > MAX_KEY_FIELDS:
        raise FlinkUnsupported(f"{path}.key_fields", f"at most {MAX_KEY_FIELDS} key fields "
                                                     "are translated")
    clash = RESERVED & set(columns)
    if clash:
        raise FlinkUnsupported(path, f"the column(s) {sorted(clash)} clash with the columns "
                                     "the Flink dedup operator adds; rename them")


def key_select(step: KeyedDedupStep, stage: str) -> str | None:
    """For a key of several fields, the stage with one key column to partition by (None for
    one field: the field itself).

    ``PARTITION BY (a, b)`` parses, but Flink 2.3.0 stores a view over it without the
    parentheses and then cannot read the view back (a ClassCastException in Calcite), so
    several fields become one: ``JSON_ARRAY`` of their values, which is injective for the
    declared column types (a string and a number never print alike, and each column has one
    type). Under ``on_null_key: error|keep`` the key column is NULL when any field is, so the
    operator's null test sees it; under ``group`` nulls are values like any other."""
    if len(step.key_fields) == 1:
        return None
    fields = ", ".join(quote(k) for k in step.key_fields)
    key = f"JSON_ARRAY({fields} NULL ON NULL)"
    if step.on_null_key != "group":
        nulls = " OR ".join(f"{quote(k)} IS NULL" for k in step.key_fields)
        key = f"CASE WHEN {nulls} THEN NULL ELSE {key} END"
    return f"SELECT *, {key} AS {KEY} FROM {quote(stage)}"


def dedup_call(step: KeyedDedupStep, stage: str, columns: dict[str, str], *,
               keyed: bool) -> str:
    """Every record of ``stage`` with its status, in the stage's column order plus ``rt``
    (``keyed``: ``stage`` is the ``key_select`` view, partitioned by its key column)."""
    keys = quote(KEY) if keyed else quote(step.key_fields[0])
    names = ", ".join(quote(c) for c in columns)
    return (f"SELECT {STATUS}, {names}, rowtime AS {ROWTIME}\n"
            f"FROM {FUNCTION}(input => TABLE {quote(stage)} PARTITION BY {keys},\n"
            f"  window_ms => CAST({step.time_window_ms} AS BIGINT), "
            f"ttl_ms => CAST({step.ttl_ms} AS BIGINT),\n"
            f"  on_null_key => {sql_string(step.on_null_key)}, "
            f"on_time => DESCRIPTOR({ROWTIME}), uid => {sql_string('dedup-' + step.name)})")


def status_select(view: str, columns: dict[str, str], status: str, *,
                  with_rowtime: bool) -> str:
    names = ", ".join(quote(c) for c in columns)
    rt = f", {ROWTIME}" if with_rowtime else ""
    return f"SELECT {names}{rt} FROM {quote(view)} WHERE {STATUS} = {sql_string(status)}"


def null_key_errors_select(spec: PipelineSpec, step: KeyedDedupStep, view: str,
                           columns: dict[str, str]) -> str:
    """The ``null_key`` records as our runner's error records: the reason names the step
    and exactly the key fields that are null (``DedupBase._null_key_message``)."""
    from surestream.semantics.dedup_common import DedupBase

    base = DedupBase(step, spec.pipeline)
    fields = step.key_fields
    cases = []
    for code in range(1, 1 << len(fields)):
        test = " AND ".join(f"{quote(f)} IS {'' if code >> j & 1 else 'NOT '}NULL"
                            for j, f in enumerate(fields))
        cases.append(f"WHEN {test} THEN {sql_string(base._null_key_message(code))}")
    raw = ", ".join(f"KEY {sql_string(c)} VALUE {quote(c)}" for c in columns)
    return (f"SELECT {sql_string(spec.pipeline)}, {sql_string(step.name)}, "
            f"{sql_string(NULL_KEY)},\n  CASE {' '.join(cases)} END,\n"
            f"  JSON_OBJECT({raw} ABSENT ON NULL)\n"
            f"FROM {quote(view)} WHERE {STATUS} = 'null_key'")


def duplicates_folder(spec: PipelineSpec, step: KeyedDedupStep) -> Path:
    """Where a job writes a dedup step's duplicates when the spec gives them no output:
    beside Flink's checkpoints, so that they can be counted (``count_duplicates``)."""
    return Path(spec.checkpoint_dir()).resolve() / "flink" / "duplicates" / step.name


def count_duplicates(folder: Path) -> int:
    """The duplicates a finished job wrote to ``folder`` (committed part files: Flink's
    in-progress files start with a dot)."""
    if not folder.is_dir():
        return 0
    return sum(sum(1 for line in path.read_text().splitlines() if line.strip())
               for path in folder.rglob("*") if path.is_file()
               and not path.name.startswith("."))


def duplicates_dropped(spec: PipelineSpec) -> dict[str, int]:
    """Per keyed_dedup step of ``spec`` whose duplicates go to the job's folder (no
    ``duplicates_output_tag``): how many its finished Flink runs dropped -- our runner's
    ``duplicates`` counter of that step (in any stream)."""
    return {step.name: count_duplicates(duplicates_folder(spec, step))
            for stream in spec.all_streams.values() for step in stream.steps
            if isinstance(step, KeyedDedupStep) and not step.duplicates_output_tag}
