"""The ETL framework's pipeline JSON, as pydantic models (names in the framework's
camelCase, through aliases).

Every model forbids unknown fields, so a field surestream does not translate is refused
at its path instead of being ignored (``refusals``). Enumerations take the framework's
spelling in any letter case (``SendToDLQ``, ``sendtodlq``). Durations are parsed here
(``durations``), so a bad one is refused at its own path. The sections whose shape
depends on a ``type`` (source, sink, transforms) are parsed by their translators, which
pick the model by the type and keep the JSON path.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from surestream.apps.etl.durations import parse_duration_ms

#: a pipeline id, query name or step name: what a surestream name may hold
EtlName = Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")]
Text = Annotated[str, Field(min_length=1)]
Duration = Annotated[int, BeforeValidator(parse_duration_ms)]
PositiveInt = Annotated[StrictInt, Field(gt=0)]
Number = StrictInt | StrictFloat


def choice(*names: str, aliases: dict[str, str] | None = None) -> Any:
    """A field taking one of ``names`` in any letter case (and ``aliases``), normalised to
    the spelling in ``names``."""
    table = {n.lower(): n for n in names} | {k.lower(): v for k, v in (aliases or {}).items()}

    def normalise(value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() in table:
            return table[value.strip().lower()]
        raise ValueError(f"{value!r} is not one of {', '.join(names)}")

    return Annotated[Literal[names], BeforeValidator(normalise)]  # type: ignore[valid-type]


class EtlModel(BaseModel):
    """Base: camelCase names, unknown fields refused."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, frozen=True,
                              populate_by_name=False)


# -- destinations (late data, quarantine) ------------------------------------------------
class Destination(EtlModel):
    """Where a side output goes: a Kafka ``topic``, a table of the main sink's system
    (PostgreSQL or Iceberg) or a JSON-lines file ``path``: exactly one."""

    topic: Text | None = None
    bootstrap_servers: Text | None = None
    table: Text | None = None
    path: Text | None = None

    def chosen(self) -> list[str]:
        return [n for n in ("topic", "table", "path") if getattr(self, n) is not None]

    @model_validator(mode="after")
    def _bootstrap_with_topic(self) -> Destination:
        if self.bootstrap_servers is not None and self.topic is None:
            raise ValueError("bootstrapServers is for a topic; give topic too")
        return self


LateStrategy = choice("Drop", "LogAndDrop", "SendToDLQ", "SeparateStream")


class LateData(Destination):
    """``lateData``: what happens to records behind the watermark."""

    strategy: LateStrategy

    @model_validator(mode="after")
    def _destination_fits_strategy(self) -> LateData:
        where = self.chosen()
        if self.strategy in ("Drop", "LogAndDrop") and where:
            raise ValueError(f"strategy {self.strategy} keeps no late record, so "
                             f"{where[0]} would receive nothing; remove it, or use "
                             "SendToDLQ or SeparateStream")
        if self.strategy in ("SendToDLQ", "SeparateStream") and len(where) != 1:
            raise ValueError(f"strategy {self.strategy} sends late records somewhere: give "
                             "exactly one of topic, table or path"
                             + (f" (given: {', '.join(where)})" if where else ""))
        return self


class Watermark(EtlModel):
    event_time_column: Text
    delay_threshold: Annotated[int, BeforeValidator(
        lambda v: parse_duration_ms(v, allow_zero=True))]


# -- data quality ------------------------------------------------------------------------
RuleType = choice("NotNull", "Range", "Regex", "InSet", "Unique", "Expression", "Function",
                  aliases={"Pattern": "Regex", "AllowedValues": "InSet", "In": "InSet",
                           "Sql": "Expression", "Custom": "Function"})
#: which fields each rule type takes (besides name, type, severity, onFailure)
RULE_FIELDS: dict[str, tuple[set[str], set[str]]] = {  # (required, optional)
    "NotNull": ({"column|columns"}, set()),
    "Range": ({"column", "min|max"}, set()),
    "Regex": ({"column", "pattern"}, set()),
    "InSet": ({"column", "values"}, set()),
    "Unique": ({"column|columns"}, {"within"}),
    "Expression": ({"expression"}, set()),
    "Function": ({"function"}, set()),
}
_RULE_VALUE_FIELDS = ("column", "columns", "min", "max", "pattern", "values", "within",
                      "expression", "function")


def _within(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() == "batch":
        return "batch"
    return parse_duration_ms(value)


class DqRule(EtlModel):
    """One ``dataQuality.rules`` entry."""

    name: EtlName | None = None
    type: RuleType
    column: Text | None = None
    columns: Annotated[list[Text], Field(min_length=1)] | None = None
    min: Number | None = None
    max: Number | None = None
    pattern: Text | None = None
    values: Annotated[list[Any], Field(min_length=1)] | None = None
    within: Annotated[Literal["batch"] | int, BeforeValidator(_within)] | None = None
    expression: Text | None = None
    function: Text | None = None
    severity: choice("Error", "Warning", "Info") = "Error"  # type: ignore[valid-type]
    on_failure: choice("Abort", "Continue", "Warn", "Quarantine",  # type: ignore[valid-type]
                       aliases={"Fail": "Abort", "Log": "Warn"}) = "Quarantine"

    @model_validator(mode="after")
    def _fields_of_the_type(self) -> DqRule:
        required, optional = RULE_FIELDS[self.type]
        for need in required:
            options = need.split("|")
            given = [o for o in options if getattr(self, o) is not None]
            if not given:
                raise ValueError(f"a {self.type} rule needs {' or '.join(options)}")
            if len(given) > 1 and need == "column|columns":
                raise ValueError(f"a {self.type} rule takes column or columns, not both")
        allowed = {o for need in required | optional for o in need.split("|")}
        extra = [f for f in _RULE_VALUE_FIELDS if getattr(self, f) is not None
                 and f not in allowed]
        if extra:
            raise ValueError(f"{', '.join(extra)} does not apply to a {self.type} rule "
                             f"(it takes {', '.join(sorted(allowed))})")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


class DataQuality(EtlModel):
    enabled: StrictBool = True
    rules: Annotated[list[DqRule], Field(min_length=1)]
    quarantine: Destination | None = None


# -- error handling ----------------------------------------------------------------------
class Retry(EtlModel):
    max_attempts: PositiveInt
    initial_backoff: Duration | None = None
    max_backoff: Duration | None = None
    backoff_multiplier: Annotated[Number, Field(ge=1)] | None = None
    jitter: StrictBool | Annotated[Number, Field(ge=0, le=1)] | None = None


class CircuitBreaker(EtlModel):
    enabled: StrictBool = True
    failure_threshold: PositiveInt
    timeout: Duration


class DeadLetterQueue(EtlModel):
    enabled: StrictBool = True
    path: Text


class ErrorHandling(EtlModel):
    retry: Retry | None = None
    circuit_breaker: CircuitBreaker | None = None
    dead_letter_queue: DeadLetterQueue | None = None
    fail_fast: StrictBool | None = None


# -- streaming ---------------------------------------------------------------------------
class StreamingConfig(EtlModel):
    """``streamingConfigJson``: the query's streaming settings."""

    watermark: Watermark | None = None
    trigger_mode: Text | None = None
    output_mode: choice("append", "update", "complete") | None = None  # type: ignore[valid-type]
    checkpoint_location: Text | None = None
    query_name: EtlName | None = None
    max_records_per_trigger: PositiveInt | None = None
    max_files_per_trigger: PositiveInt | None = None
    enable_idempotence: StrictBool | None = None
    state_timeout: Duration | None = None
    late_data: LateData | None = None
    data_quality: DataQuality | None = None
    error_handling: ErrorHandling | None = None

    @field_validator("trigger_mode")
    @classmethod
    def _trigger(cls, value: str | None) -> str | None:
        from surestream.apps.etl.durations import parse_trigger_mode

        if value is not None:
            parse_trigger_mode(value)  # refused here, at its path
        return value


def _json_object(value: Any) -> Any:
    """``streamingConfigJson`` is a JSON string in the framework's tables (or an object)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            raise ValueError(f"not valid JSON: {e}") from None
    if not isinstance(value, dict):
        raise ValueError("give a JSON object (or a string holding one)")
    return value


class EtlPipeline(EtlModel):
    """The pipeline document. ``source``, ``sink`` and ``transforms`` entries are kept as
    plain data here and parsed by their translators (their shape depends on ``type``)."""

    pipeline_id: EtlName
    pipeline_name: Text | None = None
    description: str | None = None
    mode: choice("streaming") = "streaming"  # type: ignore[valid-type]
    source: dict[str, Any]
    transforms: list[dict[str, Any]] = Field(default_factory=list)
    sink: dict[str, Any]
    streaming_config_json: Annotated[StreamingConfig, BeforeValidator(_json_object)] = \
        Field(default_factory=StreamingConfig)

    @field_validator("mode", mode="before")
    @classmethod
    def _streaming_only(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() == "batch":
            raise ValueError("mode batch is not imported: surestream runs the streaming "
                             "form; for one pass over what is there, use mode streaming "
                             "with triggerMode once or availablenow")
        return value
