"""The pure logic of sink retries: the backoff schedule, the breaker's states (over a fake
clock), and the spec keys (what is refused, and why)."""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError

from surestream.model.sink_resilience import CircuitBreakerPolicy, RetryPolicy, resilience_of
from surestream.model.spec import PipelineSpec
from surestream.runners.local.backoff import base_wait_ms, schedule_ms
from surestream.runners.local.circuit_breaker import CircuitBreaker


def test_backoff_grows_by_the_multiplier_up_to_the_cap_and_attempts_are_bounded():
    policy = RetryPolicy(max_attempts=6, initial_backoff_ms=100, max_backoff_ms=1000,
                         multiplier=3, jitter=0)
    assert [base_wait_ms(policy, k) for k in range(1, 6)] == [100, 300, 900, 1000, 1000]
    # five waits: between six attempts
    assert list(schedule_ms(policy)) == [100, 300, 900, 1000, 1000]


def test_jitter_moves_each_wait_within_its_fraction_and_nothing_else():
    policy = RetryPolicy(max_attempts=50, initial_backoff_ms=1000, max_backoff_ms=1000,
                         jitter=0.25)
    for seed in range(5):
        waits = list(schedule_ms(policy, random.Random(seed)))
        assert len(waits) == 49
        assert all(750 <= w <= 1250 for w in waits)
        assert len(set(waits)) > 1  # it does move them


def test_a_cap_below_the_first_wait_is_refused():
    with pytest.raises(ValidationError, match="max_backoff_ms"):
        RetryPolicy(initial_backoff_ms=500, max_backoff_ms=100)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_the_threshold_probes_half_open_and_closes_on_success():
    clock = FakeClock()
    b = CircuitBreaker(CircuitBreakerPolicy(failure_threshold=3, probe_interval_ms=1000),
                       clock)
    assert (b.state, b.code) == ("closed", 0)
    b.failure()
    b.failure()
    b.success()  # a success in between: the count starts again
    b.failure()
    b.failure()
    assert b.state == "closed" and b.allows()
    b.failure()  # the third in a row
    assert (b.state, b.code, b.opened) == ("open", 1, 1)
    clock.now = 999
    assert not b.allows() and b.wait_ms() == 1
    clock.now = 1000
    assert b.allows() and (b.state, b.code) == ("half_open", 2)
    b.failure()  # the probe failed: open for another interval
    assert b.state == "open" and b.opened == 2 and not b.allows()
    clock.now = 2000
    assert b.allows()
    b.success()
    assert (b.state, b.failures) == ("closed", 0) and b.allows()


def test_trip_opens_at_once_for_an_operation_that_gave_up_below_the_threshold():
    clock = FakeClock()
    b = CircuitBreaker(CircuitBreakerPolicy(failure_threshold=100, probe_interval_ms=50),
                       clock)
    b.failure()
    b.trip()
    assert b.state == "open" and not b.allows()
    clock.now = 50
    assert b.allows() and b.state == "half_open"


def spec(**output: object) -> PipelineSpec:
    return PipelineSpec.model_validate({
        "pipeline": "p", "source": {"type": "file", "path": "in.jsonl"},
        "outputs": {"main": {"type": "file", "path": "out.jsonl", **output}}})


def test_the_spec_keys_on_an_output():
    s = spec(retry={"max_attempts": 5, "initial_backoff_ms": "1s", "max_backoff_ms": "30s",
                    "multiplier": 2, "jitter": 0.2},
             circuit_breaker={"failure_threshold": 4, "probe_interval_ms": "10s"},
             on_sink_failure="dlq", dead_letter={"type": "file", "path": "dead.jsonl"})
    r = resilience_of(s.outputs["main"])
    assert r.configured and r.attempts == 5
    assert r.retry.initial_backoff_ms == 1000 and r.retry.max_backoff_ms == 30_000
    assert r.circuit_breaker.probe_interval_ms == 10_000
    assert r.dead_letter.path == "dead.jsonl"
    assert not resilience_of(spec().outputs["main"]).configured  # today's behaviour
    assert resilience_of(spec(fail_fast=True, retry={"max_attempts": 9}).outputs["main"]
                         ).attempts == 1


@pytest.mark.parametrize(("keys", "why"), [
    ({"on_sink_failure": "dlq"}, "needs a dead_letter output"),
    ({"dead_letter": {"path": "d.jsonl"}}, "only with on_sink_failure: dlq"),
    ({"on_sink_failure": "retry"}, "on_sink_failure"),
    ({"retry": {"max_attempts": 0}}, "max_attempts"),
    ({"retry": {"jitter": 2}}, "jitter"),
    ({"circuit_breaker": {"failure_threshold": 0}}, "failure_threshold"),
    ({"dead_letter": {"type": "kafka", "path": "d"}, "on_sink_failure": "dlq"}, "type"),
])
def test_contradictory_or_bad_keys_are_refused_naming_them(keys, why):
    with pytest.raises(ValidationError, match=why):
        spec(**keys)


def test_a_dead_letter_on_another_outputs_path_is_refused():
    s = PipelineSpec.model_validate({
        "pipeline": "p", "source": {"type": "file", "path": "in.jsonl"},
        "outputs": {"main": {"type": "file", "path": "out.jsonl", "on_sink_failure": "dlq",
                             "dead_letter": {"path": "late.jsonl"}},
                    "errors": {"type": "file", "path": "late.jsonl"}}})
    problems = dict(s.output_path_problems())
    assert any("dead_letter" in f or "dead_letter" in why for f, why in problems.items())
