"""The ``data_quality`` step: rules a record must meet, and what a failure does.

A rule names what it checks (``rule``: not_null, range, regex, in_set, unique, expression,
function), how bad a failure is (``severity``: error, warning, info -- a label carried to the
quarantined records and the metrics) and what happens to a failing record (``on_failure``):

- ``abort``: the run fails (exit 1), naming the rule, how many records failed it in the
  batch and one of them;
- ``quarantine``: the record leaves the stream for ``quarantine_output_tag`` with
  ``dq_rule``, ``dq_severity`` and ``dq_reason`` -- once, for the first quarantine rule it
  fails in rule order;
- ``warn``: it passes; the step logs one line per batch with the rule's count;
- ``continue``: it passes, counted only.

This module is the configuration only (kept out of ``steps.py``, which imports it for the
``Step`` union); the operator is ``semantics/quality.py``. The keys are the shared contract of
issue 14 (PIPELINE_SPEC.md style: extend, never rename).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    field_validator,
    model_validator,
)

from surestream.model.time_range import MAX_DURATION_MS

#: the tag quarantined records go to unless the step names another
DEFAULT_QUARANTINE_TAG = "dq_failed"
#: the columns added to a quarantined record
QUARANTINE_COLUMNS = ("dq_rule", "dq_severity", "dq_reason")

_NAME = r"^[A-Za-z0-9_.\-]+$"
RuleKind = Literal["not_null", "range", "regex", "in_set", "unique", "expression", "function"]
#: which keys each rule kind needs (beyond ``column``/``columns``, checked on their own)
_NEEDS: dict[str, tuple[str, ...]] = {"range": (), "regex": ("pattern",),
                                      "in_set": ("values",), "expression": ("sql",),
                                      "function": ("function",)}
#: keys that mean something for one rule kind only
_ONLY_FOR: dict[str, tuple[str, ...]] = {"min": ("range",), "max": ("range",),
                                         "pattern": ("regex",), "values": ("in_set",),
                                         "within": ("unique",), "sql": ("expression",),
                                         "function": ("function",)}
Number = StrictInt | StrictFloat


class UniqueWindow(BaseModel):
    """``unique`` over event time: a value seen less than ``window_ms`` before fails."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    window_ms: Annotated[int, Field(gt=0, le=MAX_DURATION_MS, strict=True)] = Field(
        description="event time, ms: a record whose value was first seen (and passed) less "
                    "than this long before fails; the value is forgotten once the "
                    "watermark is this far past its first record (the state's bound)")


class QualityRule(BaseModel):
    """One data-quality rule of a ``data_quality`` step."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)
    name: Annotated[str, Field(min_length=1, pattern=_NAME)] = Field(
        description="the rule's name: in `dq_rule`, the metrics and the run summary; unique "
                    "in the step")
    rule: RuleKind = Field(
        description="`not_null`, `range` (`min`/`max`), `regex` (`pattern`), `in_set` "
                    "(`values`), `unique` (`within`), `expression` (`sql`) or `function` "
                    "(`function`)")
    column: str | None = Field(None, description="the column checked (or `columns`)")
    columns: list[str] | None = Field(
        None, description="several columns: not_null checks each, unique checks their "
                          "combination; range, regex and in_set check each")
    min: Number | None = Field(None, description="range: the smallest valid value, "
                                                 "included (a number)")
    max: Number | None = Field(None, description="range: the largest valid value, "
                                                 "included (a number)")
    pattern: str | None = Field(None, description="regex: a value passes when the pattern "
                                                  "is found in it (anchor with ^ and $ for a "
                                                  "whole match; Rust regex syntax)")
    values: list[Any] | None = Field(None, description="in_set: the valid values")
    within: Literal["batch"] | UniqueWindow = Field(
        "batch", description="unique: `batch` (within one micro-batch) or `{window_ms: N}` "
                             "(within N ms of event time; needs a watermark step before)")
    sql: str | None = Field(None, description="expression: a SQL condition, as the `where` "
                                              "step's; a record passes when it is true "
                                              "(false or null fails)")
    function: Any = Field(None, json_schema_extra={"type": "string"},
                          description="function: a vectorized check, function(frame) -> a "
                                      "boolean polars Series, one value per row, true = "
                                      "passes (null fails); `\"package.module:function\"`")
    severity: Literal["error", "warning", "info"] = Field(
        "error", description="how bad a failure is: a label on quarantined records "
                             "(`dq_severity`) and the metrics")
    on_failure: Literal["abort", "continue", "warn", "quarantine"] = Field(
        "quarantine", description="`abort`: the run fails (exit 1); `quarantine`: the record "
                                  "goes to the step's `quarantine_output_tag`; `warn`: it "
                                  "passes and a line per batch is logged; `continue`: it "
                                  "passes, counted")

    @property
    def checked_columns(self) -> list[str]:
        """``columns``, or ``[column]``."""
        return list(self.columns) if self.columns else [self.column] if self.column else []

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            import polars as pl

            try:
                pl.select(pl.lit("").str.contains(pattern))
            except Exception as e:  # noqa: BLE001 - report the regex engine's reason
                raise ValueError(f"pattern {pattern!r} is not a regular expression: "
                                 f"{str(e).splitlines()[0]}") from None
        return pattern

    @field_validator("sql")
    @classmethod
    def _sql_parses(cls, sql: str | None) -> str | None:
        if sql is not None:
            from surestream.model.steps import check_sql

            check_sql(sql, f"{sql!r} is not a SQL condition")
        return sql

    @model_validator(mode="after")
    def _keys_fit_the_rule(self) -> QualityRule:
        kind = self.rule
        if self.column is not None and self.columns is not None:
            raise ValueError("give `column` or `columns`, not both")
        if kind in ("expression", "function"):
            if self.checked_columns:
                raise ValueError(f"a {kind} rule reads the columns it names itself: drop "
                                 "`column`/`columns`")
        elif not self.checked_columns:
            raise ValueError(f"a {kind} rule needs `column` (or `columns`)")
        for key in _NEEDS.get(kind, ()):
            if getattr(self, key) is None:
                raise ValueError(f"a {kind} rule needs `{key}`")
        for key, kinds in _ONLY_FOR.items():
            value = getattr(self, key)
            if kind not in kinds and value is not None and not (key == "within"
                                                                 and value == "batch"):
                raise ValueError(f"`{key}` applies to {' / '.join(kinds)} rules only, not "
                                 f"to {kind}")
        if kind == "range":
            if self.min is None and self.max is None:
                raise ValueError("a range rule needs `min`, `max` or both")
            if self.min is not None and self.max is not None and self.min > self.max:
                raise ValueError(f"min {self.min} is above max {self.max}: no value could "
                                 "pass")
        if kind == "in_set" and not self.values:
            raise ValueError("an in_set rule needs at least one value in `values`")
        return self


class DataQualityStep(BaseModel):
    """Check records against rules, vectorized over the batch (docs/etl.md): a failing
    record is quarantined, passed on (warned or counted) or fails the run, rule by rule."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)
    type: Literal["data_quality"] = "data_quality"
    name: Annotated[str, Field(min_length=1, pattern=_NAME)] = Field(
        "data_quality", description="the step's stable id: it ties checkpointed state, "
                                    "counters and quarantined records to this step; unique "
                                    "in the spec")
    rules: list[QualityRule] = Field(min_length=1, description="the rules, in order (the "
                                                               "first quarantine rule a "
                                                               "record fails names it)")
    quarantine_output_tag: Annotated[str, Field(min_length=1, pattern=_NAME)] = Field(
        DEFAULT_QUARANTINE_TAG,
        description="the tag quarantined records go to (an `outputs` entry or a stream's "
                    "`from`), with `dq_rule`, `dq_severity` and `dq_reason`")

    @model_validator(mode="after")
    def _unique_rule_names(self) -> DataQualityStep:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.name in seen:
                raise ValueError(f"two rules are named {rule.name!r}: rule names tie "
                                 "metrics and quarantined records to a rule; rename one")
            seen.add(rule.name)
        return self

    @property
    def quarantines(self) -> bool:
        """Whether any rule sends records to ``quarantine_output_tag``."""
        return any(r.on_failure == "quarantine" for r in self.rules)

    @property
    def uses_event_time(self) -> bool:
        """Whether a rule judges records by event time (``unique`` within a window)."""
        return any(isinstance(r.within, UniqueWindow) for r in self.rules
                   if r.rule == "unique")


__all__ = ["DEFAULT_QUARANTINE_TAG", "QUARANTINE_COLUMNS", "DataQualityStep", "QualityRule",
           "UniqueWindow"]
