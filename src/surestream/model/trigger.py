"""The spec's ``trigger``: when a run reads, when it checkpoints, and when it stops.

Spark's trigger modes, with Spark's meaning (docs/etl.md):

- ``continuous``: records flow as they arrive (micro-batches close after a small
  ``max_batch_delay_ms``); checkpoints on ``checkpoint.interval_ms``. Runs until stopped.
- ``{processing_time: "30s"}``: every interval one *trigger* reads what has arrived (within
  the ``max_*`` limits) and ends with a checkpoint, then the run waits for the next
  interval. Runs until stopped.
- ``once``: one trigger of what is there at start, a checkpoint, stop.
- ``available_now``: everything there at start, in as many triggers as
  ``max_records_per_trigger`` / ``max_files_per_trigger`` allow (a checkpoint after each),
  then stop.

Written as a word (``trigger: once``) or a mapping with one mode key and the optional
limits (``{available_now: true, max_files_per_trigger: 2}``, ``{processing_time: 5s,
max_records_per_trigger: 10000}``). No trigger: the run reads its bounded input to the end
(a Kafka source without ``stop_at``: live), as before triggers existed.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from surestream.model.durations import parse_duration_ms

TriggerMode = Literal["continuous", "processing_time", "once", "available_now"]
MODES: tuple[str, ...] = ("continuous", "processing_time", "once", "available_now")
#: modes whose run stops by itself once it has read what was there at its start
STOPPING_MODES = ("once", "available_now")


class TriggerSpec(BaseModel):
    """When the run reads, checkpoints and stops (Spark's trigger modes; docs/etl.md,
    'Triggers'): a word (``trigger: once``, ``available_now``, ``continuous``) or a mapping
    with one mode and the optional limits (``{processing_time: 30s,
    max_records_per_trigger: 10000}``, ``{available_now: true, max_files_per_trigger: 2}``).
    Without a trigger, bounded input is read to its end and a Kafka source without
    ``stop_at`` runs live."""

    model_config = ConfigDict(extra="forbid")

    continuous: Literal[True] | None = Field(
        None, description="the lowest-latency loop: records flow as they arrive, "
                          "checkpoints every `checkpoint.interval_ms` (default 1 s); runs "
                          "until stopped (`trigger: continuous`)")
    processing_time: Annotated[int, Field(gt=0)] | None = Field(
        None, json_schema_extra={"type": ["integer", "string"]},
        description="a micro-batch of what has arrived every this long (`30s`, `30 "
                    "seconds`, `5 minutes` or milliseconds), each ending with a checkpoint; "
                    "runs until stopped")
    once: Literal[True] | None = Field(
        None, description="one trigger of what is there at start (Kafka: up to the end "
                          "offsets seen at start; files: the files there at start), a "
                          "checkpoint, stop; run again, it reads only what came since "
                          "(`trigger: once`)")
    available_now: Literal[True] | None = Field(
        None, description="everything there at start, in as many triggers as the `max_*` "
                          "limits allow (a checkpoint after each), then stop "
                          "(`trigger: available_now`)")
    max_records_per_trigger: Annotated[int, Field(gt=0, strict=True)] | None = Field(
        None, description="`processing_time` / `available_now`: at most this many input "
                          "records per trigger (the rest waits for the next trigger)")
    max_files_per_trigger: Annotated[int, Field(gt=0, strict=True)] | None = Field(
        None, description="`processing_time` / `available_now`: at most this many files of "
                          "a file source open per trigger (files are taken in the order "
                          "they were found: sorted by name within one listing)")

    @model_validator(mode="before")
    @classmethod
    def _word_form(cls, data: Any) -> Any:
        """``trigger: once`` is ``{once: true}``."""
        if isinstance(data, str):
            word = data.strip().lower()
            if word in ("once", "available_now", "continuous"):
                return {word: True}
            if word == "processing_time":
                raise ValueError("processing_time needs its interval: "
                                 "`trigger: {processing_time: 30s}`")
            raise ValueError(f"trigger {data!r} is not one of continuous, once, "
                             "available_now, {processing_time: <interval>}")
        return data

    @field_validator("processing_time", mode="before")
    @classmethod
    def _interval(cls, value: Any) -> Any:
        return None if value is None else parse_duration_ms(value)

    @model_validator(mode="after")
    def _one_mode(self) -> TriggerSpec:
        given = [m for m in MODES if getattr(self, m) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one trigger mode: continuous, once, "
                             "available_now or processing_time" +
                             (f" (got {', '.join(given)})" if given else ""))
        limits = [k for k in ("max_records_per_trigger", "max_files_per_trigger")
                  if getattr(self, k) is not None]
        if limits and self.mode in ("once", "continuous"):
            what = ("reads everything there in one trigger; use available_now to split it"
                    if self.mode == "once" else
                    "has no triggers to limit; use processing_time")
            raise ValueError(f"{', '.join(limits)}: trigger {self.mode} {what}")
        return self

    @property
    def mode(self) -> TriggerMode:
        return next(m for m in MODES if getattr(self, m) is not None)  # type: ignore[return-value]

    @property
    def interval_ms(self) -> int | None:
        """``processing_time``'s interval in milliseconds (None for the other modes)."""
        return self.processing_time

    @property
    def stops(self) -> bool:
        """The run stops by itself after what was there at its start (once, available_now)."""
        return self.mode in STOPPING_MODES
