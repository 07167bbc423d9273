"""What a sink does when writing to it fails: retries, a circuit breaker, a dead letter.

The keys every output takes (``_SinkBase`` in ``model/spec.py``; docs/etl.md)::

    retry: {max_attempts: 5, initial_backoff_ms: 200, max_backoff_ms: 10000,
            multiplier: 2.0, jitter: 0.1}
    circuit_breaker: {failure_threshold: 5, probe_interval_ms: 5000}
    on_sink_failure: fail | pause | dlq
    dead_letter: {type: file, path: failed/main.jsonl}
    fail_fast: false

Without any of them a sink behaves as it always has: one attempt, and a failure stops the
run. The runner applies them in ``runners/local/sink_retry.py``; the schedule and the
breaker's states are the pure logic of ``runners/local/backoff.py`` and
``runners/local/circuit_breaker.py``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from surestream.model.durations import parse_duration_ms


def _ms(value: Any) -> Any:
    """A duration in milliseconds: an int, or a string with a unit (``"5s"``)."""
    return parse_duration_ms(value) if isinstance(value, str) else value


Millis = Annotated[int, BeforeValidator(_ms), Field(ge=0)]
SinkFailureAction = Literal["fail", "pause", "dlq"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RetryPolicy(_Strict):
    """Exponential backoff between bounded attempts of one sink operation."""

    max_attempts: int = Field(3, ge=1, description="attempts of one write, pre-commit or "
                                                   "commit, the first included")
    initial_backoff_ms: Millis = Field(100, description="the wait before the second attempt")
    max_backoff_ms: Millis = Field(10_000, description="no wait is longer than this")
    multiplier: float = Field(2.0, ge=1.0, description="each wait is this many times the "
                                                       "one before")
    jitter: float = Field(0.1, ge=0.0, le=1.0, description="each wait is moved by up to "
                          "this fraction of itself, at random (only the wait: never a "
                          "result)")

    @model_validator(mode="after")
    def _bounds(self) -> RetryPolicy:
        if self.max_backoff_ms < self.initial_backoff_ms:
            raise ValueError(f"max_backoff_ms ({self.max_backoff_ms}) is less than "
                             f"initial_backoff_ms ({self.initial_backoff_ms})")
        return self


class CircuitBreakerPolicy(_Strict):
    """When to stop trying a failing sink, and how often to try it again."""

    failure_threshold: int = Field(5, ge=1, description="consecutive failed attempts that "
                                                        "open the breaker")
    probe_interval_ms: Millis = Field(5_000, description="while open, one attempt (a "
                                                         "half-open probe) this often")


class DeadLetterFile(_Strict):
    """Where ``on_sink_failure: dlq`` puts the records of a batch the sink refused: one
    JSON line each, exactly once (a file with a commit log, as a ``file`` output)."""

    type: Literal["file"] = "file"
    path: str = Field(description="the JSON lines file; relative to the spec's folder")


class SinkResilience(_Strict):
    """The resilience keys of one output, as one value (``resilience_of``)."""

    retry: RetryPolicy | None = None
    circuit_breaker: CircuitBreakerPolicy | None = None
    on_sink_failure: SinkFailureAction = "fail"
    dead_letter: DeadLetterFile | None = None
    fail_fast: bool = False

    @property
    def configured(self) -> bool:
        """Does the output ask for anything beyond today's one attempt?"""
        return bool(self.retry or self.circuit_breaker or self.on_sink_failure != "fail"
                    or self.dead_letter or self.fail_fast)

    @property
    def attempts(self) -> int:
        return 1 if self.fail_fast or self.retry is None else self.retry.max_attempts


RESILIENCE_KEYS = ("retry", "circuit_breaker", "on_sink_failure", "dead_letter", "fail_fast")


def resilience_problem(output: Any) -> str | None:
    """Why an output's resilience keys contradict each other, or None."""
    if output.on_sink_failure == "dlq" and output.dead_letter is None:
        return ("on_sink_failure: dlq needs a dead_letter output ({type: file, path: ...}) "
                "for the records of the batches that fail")
    if output.dead_letter is not None and output.on_sink_failure != "dlq":
        return ("dead_letter is used only with on_sink_failure: dlq; set it, or remove "
                "dead_letter")
    if getattr(output, "error_kinds", None) and output.on_sink_failure == "dlq":
        return ("an error output cannot send its own records to a dead letter; use "
                "on_sink_failure: fail or pause")
    return None


def resilience_of(output: Any) -> SinkResilience:
    """The resilience keys of an output spec (any sink model)."""
    return SinkResilience(**{k: getattr(output, k, None) for k in RESILIENCE_KEYS
                             if getattr(output, k, None) is not None})
