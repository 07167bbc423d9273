"""Session windows as Flink SQL's SESSION window TVF (Flink 2.x), with their late split.

Measured on Flink 2.3.0 (``pipeline.auto-watermark-interval = 0 ms``): the SESSION TVF
aggregation (``SESSION(TABLE t PARTITION BY k, DESCRIPTOR(rt), gap)`` grouped by
``window_start, window_end, k``) merges and fires exactly as Flink's DataStream merging
WindowOperator and our runner (SEMANTICS §5) with ``allowed_lateness_ms = 0`` -- including a
record more than ``gap`` behind the watermark that touches a session still open, which both
add to it (extending it to the left).

The late split is where sessions differ from tumbling/sliding windows. On our runner (and
Flink's) a record is late for a session when its own window ``[ts, ts + gap)`` is already
due (``ts + gap - 1 <= W``, W the watermark before it) **and** it touches no session of its
key that is still open; with zero lateness the open sessions are exactly those not fired
yet, i.e. state: which sessions are open depends on every earlier record of the key and on
which of them were late. A record-level SQL filter (``ts + gap - 1 <= W``) would call late a
record that in fact extends an open session, and Flink SQL drops late records silently.
No SQL statement without that state reproduces the split exactly, so a session window is
translated only when no record can be late for it: when a record-level late step
(``late_data_side_output``, ``ts <= W`` to its output) runs before it. A record that passes
that step has ``ts > W``, so ``ts + gap - 1 > W`` for any gap >= 1: its window is not due,
and it is added to a session on both runners. The window's late tag is still written
(``ts + gap - 1 <= W``, never true there), so the outputs are the same files on both.

Without that step the window is refused, naming ``steps[i].kind`` and the reason.
"""

from __future__ import annotations

from surestream.model.steps import WindowStep
from surestream.runners.flink.sql_refusals import FlinkUnsupported
from surestream.runners.flink.sql_source import ROWTIME, quote
from surestream.runners.flink.sql_time import MAX_INTERVAL_MS, epoch_ms, interval
from surestream.runners.flink.sql_window import WindowSql, aggregation_sql, check_window

#: our runner's session results list the fired windows a merge absorbed; with zero
#: lateness a fired session is gone, so the list is always empty (an empty ARRAY literal
#: is not valid Flink SQL: an empty slice of a one-element array is)
EMPTY_SUPERSEDES = "ARRAY_SLICE(ARRAY[ARRAY[CAST(0 AS BIGINT)]], 2, 1)"

SESSION_LATE_REASON = (
    "a record more than gap_ms behind the watermark is late for a session unless it "
    "touches a session of its key that is still open (it then extends it, on our runner "
    "as in Flink); which sessions are open is state that no SQL filter sees, and Flink SQL "
    "drops late records without a trace, so the late output would differ. Put a "
    "`late_data_side_output` step before the window (records at or behind the watermark "
    "go to its output, so none can be late for a session), or use the local runner")


SESSION_KEYS_REASON = (
    "one key field for a session window: Flink 2.3.0 does not run the SESSION TVF with "
    "several (measured: `PARTITION BY k, g` fails validation, \"Column 'g' not found in any "
    "table\"; `PARTITION BY (k, g)` validates, but a view over it is expanded without the "
    "parentheses and fails the same way). Derive one key column with `with_columns`, or use "
    "the local runner")


def check_session(step: WindowStep, path: str, *, late_split_before: bool) -> None:
    """Refuse a session window whose late records could not be split off exactly."""
    check_window(step, path)
    if len(step.key_fields) > 1:
        raise FlinkUnsupported(f"{path}.key_fields", SESSION_KEYS_REASON)
    if not late_split_before:
        raise FlinkUnsupported(f"{path}.kind", SESSION_LATE_REASON)
    if step.gap_ms > MAX_INTERVAL_MS:
        raise FlinkUnsupported(f"{path}.gap_ms", f"at most {MAX_INTERVAL_MS} ms (a Flink "
                                                 "DAY TO SECOND interval)")


def session_sql(step: WindowStep, stage: str, columns: dict[str, str], ts_ms: str,
                path: str, *, late_split_before: bool) -> WindowSql:
    """The SESSION TVF aggregation of ``stage`` and the late condition of its records."""
    check_session(step, path, late_split_before=late_split_before)
    keys = [quote(k) for k in step.key_fields]
    partition = f" PARTITION BY {', '.join(keys)}" if keys else ""
    tvf = (f"SESSION(TABLE {quote(stage)}{partition}, DESCRIPTOR({ROWTIME}), "
           f"{interval(step.gap_ms)})")
    out_cols = {k: columns[k] for k in step.key_fields}
    out_cols |= {"window_start": "BIGINT", "window_end": "BIGINT", "revision": "BIGINT"}
    aggs = aggregation_sql(step, columns, out_cols, path)
    out_cols["supersedes"] = "ARRAY<ARRAY<BIGINT>>"
    select = ",\n  ".join([
        *keys,
        f"{epoch_ms('window_start', ltz=False)} AS window_start",
        f"{epoch_ms('window_end', ltz=False)} AS window_end",
        "CAST(0 AS BIGINT) AS revision", *aggs,
        f"{EMPTY_SUPERSEDES} AS supersedes"])
    group = ", ".join(["window_start", "window_end", *keys])
    sql = f"SELECT\n  {select}\nFROM TABLE({tvf})\nGROUP BY {group}"
    # the record's own window is due: late unless it touches an open session, which the
    # late step before the window rules out (check_session)
    return WindowSql(select=sql, columns=out_cols,
                     late_condition=f"{ts_ms} + {step.gap_ms} - 1")
