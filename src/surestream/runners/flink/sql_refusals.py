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


#: steps of user code (issue 15 item 2 will run them as PyFlink UDFs)
USER_CODE_STEPS = {"map", "map_batches", "filter", "process"}

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
    return FlinkUnsupported(path, f"a `{step_type}` step runs user Python code, which the "
                                  "Flink runner does not run yet (issue 15 item 2: PyFlink "
                                  "UDFs)")
