"""Operator specifications: the steps of a stream, as validated configuration.

These are the keys of PIPELINE_SPEC.md (a stable contract: extend, never rename). Each model
forbids unknown keys and checks impossible values, so a bad spec fails at ``validate`` with
the field's path, not halfway through a run. The Python API builds the very same models.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from surestream.model.aggregations import AggregationSpec, parse_aggregations
from surestream.model.time_range import (
    DEFAULT_MAX_TIMESTAMP,
    DEFAULT_MIN_TIMESTAMP,
    MAX_DURATION_MS,
    format_epoch_ms,
    to_epoch_ms,
)

# Durations are capped (time_range.MAX_DURATION_MS, ~31,700 years) so that no sum of event
# time and durations can overflow an int64.
PositiveMs = Annotated[int, Field(gt=0, le=MAX_DURATION_MS,
                                  description="a duration in milliseconds, > 0")]
NonNegativeMs = Annotated[int, Field(ge=0, le=MAX_DURATION_MS,
                                     description="a duration in milliseconds, >= 0")]
OffsetMs = Annotated[int, Field(ge=-MAX_DURATION_MS, le=MAX_DURATION_MS,
                                description="an offset in milliseconds")]
#: An event time given in a spec: epoch milliseconds, or ISO-8601 with a zone.
TimestampBound = int | str
#: Default of ``WindowStep.max_windows_per_record`` (a sliding window's size / slide).
MAX_WINDOWS_PER_RECORD = 1_000
Name = Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")]
Tag = Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")]


def check_sql(expr: str, problem: str) -> None:
    """Parse a SQL expression now (at validation), so a typo fails with the field's path
    instead of at the first batch; ``problem`` starts the message."""
    import polars as pl

    try:
        pl.sql_expr(expr)
    except Exception as e:  # noqa: BLE001 - report the parser's reason
        raise ValueError(f"{problem}: {str(e).splitlines()[0]}") from None


class StepModel(BaseModel):
    """Base of every step: unknown keys are errors; ``name`` is the stable operator uid."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, frozen=True)
    name: Name


class WatermarkStep(StepModel):
    """Assign event time and a bounded-out-of-orderness watermark (SEMANTICS §1-2)."""

    type: Literal["watermark"] = "watermark"
    name: Name = "watermark"
    timestamp_column: str
    #: ``auto``: ints are ms, floats below 1e11 are seconds; ``ms``/``s`` force the unit.
    timestamp_unit: Literal["auto", "ms", "s"] = "auto"
    max_out_of_orderness_ms: NonNegativeMs = 0
    idle_source_timeout_ms: PositiveMs | None = None
    strategy: Literal["bounded_out_of_orderness"] = "bounded_out_of_orderness"
    #: The valid range of event times, both ends included (epoch ms or ISO-8601 with a
    #: zone). A record outside it goes to the errors output: a timestamp of int64 max or
    #: a year-9999 placeholder would otherwise end event time for every later record.
    min_timestamp: TimestampBound = DEFAULT_MIN_TIMESTAMP
    max_timestamp: TimestampBound = DEFAULT_MAX_TIMESTAMP

    @field_validator("min_timestamp", "max_timestamp", mode="before")
    @classmethod
    def _datetime_as_text(cls, value: Any) -> Any:
        """YAML reads an unquoted ``2500-12-31T23:59:59Z`` as a datetime: keep it as text."""
        return value.isoformat() if isinstance(value, dt.datetime) else value

    @field_validator("min_timestamp", "max_timestamp")
    @classmethod
    def _readable_bound(cls, value: TimestampBound) -> TimestampBound:
        ms = to_epoch_ms(value)
        if abs(ms) > MAX_DURATION_MS:
            raise ValueError(f"{value!r} is beyond +-{MAX_DURATION_MS} ms (about 31,700 years "
                             "from 1970), the limit that keeps time arithmetic exact")
        return value

    @model_validator(mode="after")
    def _check_range(self) -> WatermarkStep:
        lo, hi = self.valid_range_ms
        if lo > hi:
            raise ValueError(f"min_timestamp {format_epoch_ms(lo)} is after max_timestamp "
                             f"{format_epoch_ms(hi)}")
        return self

    @property
    def valid_range_ms(self) -> tuple[int, int]:
        """``(min_timestamp, max_timestamp)`` in epoch milliseconds, both included."""
        return to_epoch_ms(self.min_timestamp), to_epoch_ms(self.max_timestamp)


class LateMetadata(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    include_watermark: bool = True
    include_lateness_ms: bool = True
    include_original_timestamp: bool = True


class LateDataStep(StepModel):
    """Split off records with ``event_ts <= W`` (SEMANTICS §3)."""

    type: Literal["late_data_side_output"] = "late_data_side_output"
    name: Name = "late_data"
    output_tag: Tag = "late"
    strategy: Literal["quarantine", "side_output", "dlq", "log_and_drop", "drop"] = "quarantine"
    metadata: LateMetadata = LateMetadata()

    @property
    def emits_records(self) -> bool:
        """Whether late records reach an output (the two drop strategies only count)."""
        return self.strategy in ("quarantine", "side_output", "dlq")


class KeyedDedupStep(StepModel):
    """Keyed deduplication with event-time state TTL (SEMANTICS §4)."""

    type: Literal["keyed_dedup"] = "keyed_dedup"
    name: Name = "dedup"
    key_fields: list[str] = Field(min_length=1)
    time_window_ms: PositiveMs
    strategy: Literal["first", "last"] = "first"
    state_ttl_ms: PositiveMs | None = None
    #: Optional tag that receives every dropped duplicate (an audit trail).
    duplicates_output_tag: Tag | None = None
    #: A record whose key has a null or missing field: ``error`` sends it to the errors
    #: output (no two such records are duplicates of each other), ``keep`` passes it
    #: through without deduplication, ``group`` treats null as one more key value.
    on_null_key: Literal["error", "keep", "group"] = "error"

    @model_validator(mode="after")
    def _ttl_covers_window(self) -> KeyedDedupStep:
        if self.state_ttl_ms is not None and self.state_ttl_ms < self.time_window_ms:
            raise ValueError(
                f"state_ttl_ms ({self.state_ttl_ms}) is shorter than time_window_ms "
                f"({self.time_window_ms}): a key's state would expire while it can still "
                "see duplicates; make state_ttl_ms >= time_window_ms"
            )
        return self

    @property
    def ttl_ms(self) -> int:
        return self.state_ttl_ms if self.state_ttl_ms is not None else self.time_window_ms


class WindowStep(StepModel):
    """Keyed event-time windows with Flink's trigger and lateness rules (SEMANTICS §5)."""

    type: Literal["window"] = "window"
    name: Name = "window"
    key_fields: list[str] = Field(default_factory=list)
    kind: Literal["tumbling", "sliding", "session"]
    size_ms: PositiveMs | None = None
    slide_ms: PositiveMs | None = None
    gap_ms: PositiveMs | None = None
    offset_ms: OffsetMs = 0
    allowed_lateness_ms: NonNegativeMs = 0
    late_output_tag: Tag = "late_window"
    aggregations: dict[str, AggregationSpec]
    #: A sliding record is in ceil(size_ms / slide_ms) windows, each with its own state:
    #: larger ratios are refused at validation instead of running out of memory.
    max_windows_per_record: Annotated[int, Field(gt=0)] = MAX_WINDOWS_PER_RECORD

    @field_validator("aggregations", mode="before")
    @classmethod
    def _parse_aggregations(cls, value: Any) -> Any:
        return parse_aggregations(value)

    @model_validator(mode="after")
    def _check_kind(self) -> WindowStep:
        if self.kind in ("tumbling", "sliding") and self.size_ms is None:
            raise ValueError(f"size_ms is required for a {self.kind} window")
        if self.kind == "sliding":
            if self.slide_ms is None:
                raise ValueError("slide_ms is required for a sliding window")
            if self.slide_ms > self.size_ms:
                raise ValueError(
                    f"slide_ms ({self.slide_ms}) is larger than size_ms ({self.size_ms}): "
                    "records between windows would be lost"
                )
            per_record = -(-self.size_ms // self.slide_ms)
            if per_record > self.max_windows_per_record:
                raise ValueError(
                    f"size_ms {self.size_ms} / slide_ms {self.slide_ms} = {per_record:,} "
                    f"windows per record, above the limit of {self.max_windows_per_record:,} "
                    "(max_windows_per_record): every window holds its own state, so this "
                    "would run out of memory; use a larger slide_ms, or raise "
                    "max_windows_per_record if you have the memory"
                )
        if self.kind == "tumbling" and self.slide_ms is not None:
            raise ValueError("slide_ms applies to sliding windows only")
        if self.kind == "session":
            if self.gap_ms is None:
                raise ValueError("gap_ms is required for a session window")
            if self.size_ms is not None or self.slide_ms is not None or self.offset_ms:
                raise ValueError("a session window takes gap_ms only (no size/slide/offset)")
        elif self.gap_ms is not None:
            raise ValueError("gap_ms applies to session windows only")
        if not self.aggregations:
            raise ValueError("a window needs at least one aggregation")
        clash = set(self.aggregations) & ({"window_start", "window_end", "revision"}
                                          | set(self.key_fields))
        if clash:
            raise ValueError(f"aggregation names clash with result columns: {sorted(clash)}")
        return self


class RouteStep(StepModel):
    """Send each record to the tag named by a field's value (``main`` continues)."""

    type: Literal["route"] = "route"
    name: Name = "route"
    field: str
    routes: dict[str, Tag] = Field(min_length=1)
    #: Tag for values not in ``routes``; without it such records go to ``errors``.
    default: Tag | None = None


class WithColumnsStep(StepModel):
    """Add or replace columns with SQL expressions, vectorized over the batch
    (``value: price * quantity``, ``is_buy: "CASE WHEN side = 'BUY' THEN 1 ELSE 0 END"``).
    Columns are computed in order, so a later expression may use an earlier one."""

    type: Literal["with_columns"] = "with_columns"
    name: Name = "with_columns"
    columns: dict[str, str] = Field(min_length=1)

    @field_validator("columns")
    @classmethod
    def _parse(cls, columns: dict[str, str]) -> dict[str, str]:
        for name, expr in columns.items():
            check_sql(expr, f"columns.{name}: {expr!r} is not a SQL expression")
        return columns


class WhereStep(StepModel):
    """Keep the records for which a SQL condition is true (vectorized). The others are
    filtered out on purpose and counted (``counters["filtered"]``); a record whose
    condition is null (a missing value) is filtered out too."""

    type: Literal["where"] = "where"
    name: Name = "where"
    condition: str

    @field_validator("condition")
    @classmethod
    def _parse(cls, condition: str) -> str:
        check_sql(condition, f"{condition!r} is not a SQL condition")
        return condition


class MapBatchesStep(StepModel):
    """A vectorized user function: a polars DataFrame in, one with the same rows in the same
    order out (columns added, changed or dropped). ``"module:function"`` in a file spec."""

    type: Literal["map_batches"] = "map_batches"
    name: Name = "map_batches"
    function: Any


class MapStep(StepModel):
    """A user function record -> record (or None to drop, or a list to fan out)."""

    type: Literal["map"] = "map"
    name: Name = "map"
    function: Any  # a callable, or "package.module:function" in a file spec


class FilterStep(StepModel):
    """Keep the records for which a user predicate is true."""

    type: Literal["filter"] = "filter"
    name: Name = "filter"
    function: Any


class ProcessStep(StepModel):
    """A keyed process function with state, timers and side outputs (SEMANTICS §6)."""

    type: Literal["process"] = "process"
    name: Name = "process"
    key_fields: list[str] = Field(min_length=1)
    function: Any  # a KeyedProcessFunction class/instance or "module:Class"
    side_outputs: list[Tag] = Field(default_factory=list)
    params: dict[str, Any] = Field(default_factory=dict)


class BroadcastEnrichStep(StepModel):
    """Join records with reference data held as broadcast state (SEMANTICS §6).

    The reference map is loaded from ``reference`` (a file: parquet/csv/jsonl) at start and
    updated by the records of the stream named ``updates`` while the pipeline runs.
    """

    type: Literal["broadcast_enrich"] = "broadcast_enrich"
    name: Name = "enrich"
    key_fields: list[str] = Field(min_length=1)
    reference: dict[str, Any] | None = None
    updates: str | None = None
    fields: list[str] = Field(min_length=1)
    #: Value given to each enrichment field for a key not in the reference data.
    unknown_value: Any = "UNKNOWN"


Step = Annotated[
    WatermarkStep | LateDataStep | KeyedDedupStep | WindowStep | RouteStep | WithColumnsStep
    | WhereStep | MapBatchesStep | MapStep | FilterStep | ProcessStep | BroadcastEnrichStep,
    Field(discriminator="type"),
]
