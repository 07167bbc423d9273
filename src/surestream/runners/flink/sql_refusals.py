"""The refusal of what Flink SQL would run with other semantics than ours (issue 15).

Correctness comes first: a spec the translation cannot reproduce record for record is
refused, naming the spec field and the reason, never run differently. ``FlinkUnsupported``
carries the field path (``steps[2].allowed_lateness_ms``) so that the message points at
what to change.
"""

from __future__ import annotations


class FlinkUnsupported(ValueError):
    """A step or option Flink SQL does not reproduce exactly."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: not supported on the Flink runner: {reason}")


#: steps of user code the translation refuses (map, filter and map_batches run as PyFlink
#: UDFs: sql_user_code)
USER_CODE_STEPS = {"process"}

#: why each other step type is refused today
STEP_REASONS = {
    "aggregate": "running aggregates emit an updating changelog the file sink cannot take",
    "broadcast_enrich": "broadcast state is not translated yet",
    "processing_time": "processing-time columns are taken per checkpoint by our runner",
    "data_quality": "data-quality rules are not translated yet",
}

#: the aggregations Flink SQL computes as we do, and their SQL
EXACT_AGGREGATIONS = {"count", "sum", "min", "max", "avg", "vwap"}

AGGREGATION_REASONS = {
    "first": ("Flink SQL FIRST_VALUE takes the first record to arrive; ours the earliest "
              "event time (ties by arrival), which differ on out-of-order input"),
    "last": ("Flink SQL LAST_VALUE takes the last record to arrive; ours the latest event "
             "time (ties by arrival), which differ on out-of-order input"),
}


def user_code(path: str, step_type: str) -> FlinkUnsupported:
    """The refusal of a user code step that has no UDF translation (``process``)."""
    return FlinkUnsupported(path, (
        f"a `{step_type}` step keeps keyed state and event-time timers and may emit to side "
        "outputs: that needs a DataStream translation whose timer order and state "
        "checkpoints match SEMANTICS §6, which is not done; run it on the local runner"))
