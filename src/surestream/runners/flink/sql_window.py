"""Windows as Flink SQL window TVFs, with the records too late for them split off.

Flink's window TVFs drop a record whose window has fired; SEMANTICS §5 sends it to the
window's late output instead. With ``allowed_lateness_ms = 0`` a record is late exactly when
the *last* window it belongs to has ``end - 1 <= W`` (W the watermark before it): for a
tumbling window its only window, for a sliding one the newest (Flink's slicing operator adds
a record to the windows still open, as we do). That condition needs only the record and
``CURRENT_WATERMARK``, so the late split is a filter beside the TVF over the same stage.
Sessions are refused: whether a record is late depends on the sessions it merges with.
"""

from __future__ import annotations

from dataclasses import dataclass

from surestream.model.steps import WindowStep
from surestream.runners.flink.sql_refusals import (
    AGGREGATION_REASONS,
    EXACT_AGGREGATIONS,
    FlinkUnsupported,
)
from surestream.runners.flink.sql_source import ROWTIME, quote
from surestream.runners.flink.sql_time import epoch_ms, floor_mod, interval


@dataclass(frozen=True)
class WindowSql:
    select: str  # the TVF aggregation over the stage
    columns: dict[str, str]  # result column -> SQL type
    late_condition: str  # SQL: the record is too late for every window it belongs to


def check_window(step: WindowStep, path: str) -> None:
    """Refuse what the TVF translation would compute differently."""
    if step.allowed_lateness_ms:
        raise FlinkUnsupported(f"{path}.allowed_lateness_ms", (
            "allowed lateness re-fires windows with revisions; Flink SQL window TVFs fire "
            "once and drop later records, so the revisions would be lost; use "
            "allowed_lateness_ms: 0 or the local runner"))
    if step.kind == "session":
        raise FlinkUnsupported(f"{path}.kind", (
            "a session record is late only if the session it merges into has fired, which "
            "a record-level filter cannot tell, so the late output would differ; not "
            "translated yet"))
    period = step.size_ms if step.kind == "tumbling" else step.slide_ms
    if step.offset_ms and not 0 < step.offset_ms < period:
        raise FlinkUnsupported(f"{path}.offset_ms", (
            f"offsets are translated between 0 and the window's period ({period} ms) only "
            "(the same windows as any other offset modulo the period)"))
    if step.output_mode != "append":
        raise FlinkUnsupported(f"{path}.output_mode", "only `append` is translated")
    for out, agg in step.aggregations.items():
        where = f"{path}.aggregations.{out}"
        if agg.udf is not None:
            raise FlinkUnsupported(where, "user aggregate functions run Python code, which "
                                          "the Flink runner does not run yet")
        if agg.function not in EXACT_AGGREGATIONS:
            raise FlinkUnsupported(where, AGGREGATION_REASONS.get(
                agg.function, f"{agg.function} is not translated"))


def window_sql(step: WindowStep, stage: str, columns: dict[str, str], ts_ms: str,
               path: str) -> WindowSql:
    """The window TVF aggregation of ``stage`` and the late condition of its records."""
    check_window(step, path)
    size, offset = step.size_ms, step.offset_ms
    shift = f", {interval(offset)}" if offset else ""
    if step.kind == "tumbling":
        tvf = f"TUMBLE(TABLE {quote(stage)}, DESCRIPTOR({ROWTIME}), {interval(size)}{shift})"
        period = size
    else:
        period = step.slide_ms
        tvf = (f"HOP(TABLE {quote(stage)}, DESCRIPTOR({ROWTIME}), {interval(period)}, "
               f"{interval(size)}{shift})")
    # the newest window's start: ts - floor_mod(ts - offset, period) (SEMANTICS §5)
    last_start = f"({ts_ms} - {floor_mod(f'({ts_ms} - {offset})', period)})"
    late = f"{last_start} + {size} - 1"
    keys = [quote(k) for k in step.key_fields]
    out_cols = {k: columns[k] for k in step.key_fields}
    out_cols |= {"window_start": "BIGINT", "window_end": "BIGINT", "revision": "BIGINT"}
    aggs = []
    for out, agg in step.aggregations.items():
        arg = quote(agg.columns[0]) if agg.columns else None
        if agg.function == "count":
            aggs.append(f"COUNT(*) AS {quote(out)}")
            out_cols[out] = "BIGINT"
        elif agg.function == "vwap":
            aggs.append(f"{vwap_sql(agg.columns, columns, f'{path}.aggregations.{out}')} "
                        f"AS {quote(out)}")
            out_cols[out] = "DOUBLE"
        elif agg.function == "avg":
            aggs.append(f"AVG(CAST({arg} AS DOUBLE)) AS {quote(out)}")
            out_cols[out] = "DOUBLE"
        else:
            aggs.append(f"{agg.function.upper()}({arg}) AS {quote(out)}")
            out_cols[out] = columns[agg.columns[0]]
    select = ",\n  ".join([
        *keys,
        f"{epoch_ms('window_start', ltz=False)} AS window_start",
        f"{epoch_ms('window_end', ltz=False)} AS window_end",
        "CAST(0 AS BIGINT) AS revision", *aggs])
    group = ", ".join(["window_start", "window_end", *keys])
    sql = f"SELECT\n  {select}\nFROM TABLE({tvf})\nGROUP BY {group}"
    return WindowSql(select=sql, columns=out_cols, late_condition=late)


def vwap_sql(args: list[str], columns: dict[str, str], path: str) -> str:
    """``vwap(value, weight)`` as our ``VwapAcc`` computes it: per record the float64
    product, then two sequential float64 sums in arrival order (Flink's SUM over DOUBLE, one
    phase: ``FLINK_CONFIG``), over the records where both are not null; null when the
    weights sum to 0 or there were none. The same IEEE operations in the same order, so the
    value is bit-identical."""
    for column in args:
        if columns.get(column) not in ("BIGINT", "DOUBLE"):
            raise FlinkUnsupported(path, (
                f"vwap's {column!r} must be an `int` or `float` column of the source schema "
                "(our runner parses text as numbers, Flink SQL does not)"))
    v, w = (f"CAST({quote(c)} AS DOUBLE)" for c in args)
    weight = f"SUM(CASE WHEN {quote(args[0])} IS NOT NULL THEN {w} END)"
    return f"CASE WHEN {weight} = 0 THEN NULL ELSE SUM({v} * {w}) / {weight} END"
