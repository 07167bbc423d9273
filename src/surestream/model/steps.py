"""Operator specifications: the steps of a stream, as validated configuration.

These are the keys of PIPELINE_SPEC.md (a stable contract: extend, never rename). Each model
forbids unknown keys and checks impossible values, so a bad spec fails at ``validate`` with
the field's path, not halfway through a run. The Python API builds the very same models.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from surestream.model.aggregations import AggregationSpec, parse_aggregations

# strict: a YAML ``true`` (or "5") is a mistake, not a number of milliseconds
PositiveMs = Annotated[int, Field(gt=0, strict=True,
                                  description="a duration in milliseconds, > 0")]
NonNegativeMs = Annotated[int, Field(ge=0, strict=True,
                                     description="a duration in milliseconds, >= 0")]
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
    offset_ms: Annotated[int, Field(strict=True)] = 0
    allowed_lateness_ms: NonNegativeMs = 0
    late_output_tag: Tag = "late_window"
    aggregations: dict[str, AggregationSpec]

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
