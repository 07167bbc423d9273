"""The circuit breaker around one sink: closed, open, half-open.

* **closed** -- attempts go to the sink; each failed attempt counts, a success resets the
  count. ``failure_threshold`` consecutive failures open the breaker.
* **open** -- the sink is left alone (the runner pauses, or sends batches to the dead
  letter) until ``probe_interval_ms`` has passed since it opened or was last probed.
* **half-open** -- one attempt, the probe: success closes the breaker, failure opens it
  again for another interval.

A state machine over an injected monotonic clock (milliseconds), so its transitions are
tested with a fake clock; the runner reads ``state`` for telemetry (0 closed, 1 open,
2 half-open: ``surestream_sink_circuit_state``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from surestream.model.sink_resilience import CircuitBreakerPolicy

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
#: the gauge's value of each state
STATE_CODES = {CLOSED: 0, OPEN: 1, HALF_OPEN: 2}


def monotonic_ms() -> float:
    return time.monotonic() * 1000.0


class CircuitBreaker:
    def __init__(self, policy: CircuitBreakerPolicy,
                 clock: Callable[[], float] = monotonic_ms) -> None:
        self.policy = policy
        self.clock = clock
        self.state = CLOSED
        #: consecutive failed attempts (reset by a success)
        self.failures = 0
        #: times the breaker opened
        self.opened = 0
        self._opened_at = 0.0

    @property
    def code(self) -> int:
        return STATE_CODES[self.state]

    def allows(self) -> bool:
        """May an attempt go to the sink now? Closed: yes. Open: once the probe interval
        has passed, and the breaker is then half-open (this attempt is the probe)."""
        if self.state == OPEN and self.clock() - self._opened_at >= self.policy.probe_interval_ms:
            self.state = HALF_OPEN
        return self.state != OPEN

    def wait_ms(self) -> float:
        """How long until the next probe is allowed (0 when an attempt is allowed)."""
        if self.state != OPEN:
            return 0.0
        return max(0.0, self.policy.probe_interval_ms - (self.clock() - self._opened_at))

    def success(self) -> None:
        self.failures = 0
        self.state = CLOSED

    def failure(self) -> None:
        """A failed attempt: a failed probe, or the threshold reached, opens the breaker."""
        self.failures += 1
        if self.state == HALF_OPEN or self.failures >= self.policy.failure_threshold:
            self.trip()

    def trip(self) -> None:
        """Open now (also when an operation gave up before the threshold was reached)."""
        if self.state != OPEN:
            self.opened += 1
        self.state = OPEN
        self._opened_at = self.clock()
