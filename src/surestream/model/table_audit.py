"""Data-quality rules a table sink runs on each checkpoint's staged data before publishing
it (write-audit-publish): the ``audit`` key of an Iceberg output."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ValueRange(BaseModel):
    """Bounds a column's values must lie within (both included; nulls are not checked)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    min: float | int | str | None = Field(None, description="the smallest value allowed")
    max: float | int | str | None = Field(None, description="the largest value allowed")

    @model_validator(mode="after")
    def _some_bound(self) -> ValueRange:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        return self


class AuditRules(BaseModel):
    """Rules every checkpoint's staged data must pass before it is published. A failing
    rule blocks publishing (``on_audit_failure``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    not_null: list[str] = Field(default_factory=list,
                                description="columns that must hold a value in every row")
    unique: list[str] = Field(
        default_factory=list,
        description="columns whose values together identify a row: no two rows of one "
                    "checkpoint's data may share them")
    ranges: dict[str, ValueRange] = Field(
        default_factory=dict, description="column -> `{min, max}` its values must lie within")
    accepted_values: dict[str, list[Any]] = Field(
        default_factory=dict, description="column -> the only values it may hold")
    expressions: list[str] = Field(
        default_factory=list,
        description="SQL conditions (polars SQL) every row must satisfy, e.g. `lmp > -1000`")
    min_rows: int | None = Field(
        None, ge=0, description="the fewest rows a checkpoint with data may stage")


AuditFailure = Literal["fail", "quarantine"]
