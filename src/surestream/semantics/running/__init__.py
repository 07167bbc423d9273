"""Running aggregations: the ``aggregate`` step and windows in ``update`` / ``complete``
output mode (docs/etl.md, "Output modes"; docs/concepts.md, "Output modes").

Every record's effect on its group's result is computed with cumulative column operations
over the batch (``accumulators``), continued from the group's state, so the rows are the
same whatever the batch size; the state is a polars table, checkpointed whole.
"""

from surestream.semantics.running.operator import (
    RunningAggregateOperator,
    build_aggregate_operator,
)

__all__ = ["RunningAggregateOperator", "build_aggregate_operator"]
