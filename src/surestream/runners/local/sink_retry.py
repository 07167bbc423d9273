"""Retries, a circuit breaker and a dead letter around one sink (issue 14, docs/etl.md).

``ResilientSink`` wraps a sink whose output asks for any of ``retry``, ``circuit_breaker``,
``on_sink_failure``, ``dead_letter`` or ``fail_fast`` (``model/sink_resilience.py``); a sink
without them is not wrapped and behaves as it always has.

**Never twice.** A sink that failed half-way (a COPY cut off, a transaction left open, a
staging file half written, frames buffered in memory) is in a state nobody should guess
at. So every attempt after a failure starts by *resetting* the sink to the last checkpoint
it is known to hold: it is closed and replaced by a new one (a new connection, nothing in
memory), opened and ``recover``ed to that checkpoint -- which discards whatever was staged
after it. A pre-commit attempt then writes the epoch's records
again (the wrapper keeps references to them until the checkpoint is taken) and stages them;
a commit attempt is ``recover(committable, n)`` itself, which first asks the sink whether
checkpoint n already landed (its commits record) and commits it only if not. The sinks'
own exactly-once protocol (connectors/sink_protocol.py) does the rest.

**When to give up** (``_attempts``): after ``retry.max_attempts`` attempts with exponential
backoff (``backoff.py``), at once with ``fail_fast``, or when the breaker
(``circuit_breaker.py``) opens after ``failure_threshold`` consecutive failed attempts.
Then ``on_sink_failure`` decides:

* ``fail`` -- the run stops (``RunFailure`` naming the output, exit 1); a rerun resumes from
  the last checkpoint.
* ``pause`` -- the runner stays inside the failing operation: it reads nothing, takes no
  checkpoint, keeps its state in memory, and probes the sink (half-open) every
  ``probe_interval_ms`` until an attempt succeeds; then it carries on as if nothing had
  happened, so the output is the one a run without the outage writes.
* ``dlq`` -- a pre-commit that gives up sends the checkpoint's records of this output
  (the failed *batch*; ``batch_id`` = the checkpoint id) to the dead-letter file, with the
  error, and the run goes on; the sink is reset to its last checkpoint before its next
  batch. While the breaker is open, batches go to the dead letter without trying the sink.
  A *commit* that gives up waits as ``pause`` does: the checkpoint is already durable and
  says its records are in the table (they are staged in the sink), so they cannot move to
  the dead letter any more.

The dead-letter file is exactly once too: a ``LineFileSink`` that pre-commits and commits
with every checkpoint of the output, its committable inside the output's.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from surestream.connectors.file_sinks import LineFileSink
from surestream.connectors.sink_protocol import Rejection, UnwritableError
from surestream.model.sink_resilience import CircuitBreakerPolicy, SinkResilience
from surestream.runners.local.backoff import schedule_ms
from surestream.runners.local.circuit_breaker import OPEN, CircuitBreaker
from surestream.runners.local.failures import RunFailure, concerning, reason

#: a wrapped committable (with a dead letter) is marked so recovery can tell it apart
MARK = "resilient_sink"
#: without a configured breaker: it never opens by counting (``pause`` still trips it)
_NO_BREAKER = CircuitBreakerPolicy(failure_threshold=2**62)
#: the longest the runner sleeps at once while waiting (stop requests, telemetry)
_SLICE_S = 0.2


class SinkFailed(Exception):
    """A sink operation gave up (attempts spent, ``fail_fast``, or the breaker open)."""


@dataclass
class RunnerHooks:
    """What the wrapper needs from the runner, without importing it."""

    #: the processing time stamped on this epoch's records (``failed_at_ms``)
    recorded_at_ms: Callable[[], int]
    #: has a stop been requested (Ctrl-C)? a paused sink then gives up
    stopping: Callable[[], bool] = lambda: False
    #: called while waiting, so the snapshot shows the breaker open
    waiting: Callable[[], None] = lambda: None
    sleep: Callable[[float], None] = time.sleep


@dataclass
class SinkHealth:
    """The counts the telemetry snapshot and the run summary show for a wrapped output."""

    attempts_failed: int = 0
    retries: int = 0
    probes: int = 0
    dlq_records: int = 0
    dlq_batches: int = 0
    paused_s: float = 0.0
    last_error: str | None = None
    dead_lettered: list[int] = field(default_factory=list)


class _DeadLetter:
    """Marks a pre-commit that gave up under ``dlq``."""


class ResilientSink:
    """A sink with retries, a breaker and a dead letter around its write, pre-commit and
    commit. Everything else (``reject``, ``path``, ``committed_reader``, ...) is the inner
    sink's."""

    def __init__(self, inner: Any, resilience: SinkResilience, *, tag: str, label: str,
                 hooks: RunnerHooks, factory: Callable[[], Any],
                 dead_letter: LineFileSink | None = None,
                 rng: random.Random | None = None) -> None:
        self.inner = inner
        #: a new sink like ``inner``, unopened: a reset starts from one, so nothing the
        #: failed one held in memory (buffered frames, an open transaction) survives
        self.factory = factory
        self.resilience = resilience
        self.tag, self.label, self.hooks = tag, label, hooks
        self.dead_letter = dead_letter
        self.breaker = CircuitBreaker(resilience.circuit_breaker or _NO_BREAKER)
        self.health = SinkHealth()
        self._rng = rng or random.Random()
        #: (checkpoint id, the inner committable) the sink is known to hold; None: nothing
        #: since the run started afresh
        self._base: tuple[int, Any] | None = None
        #: the records written since the last checkpoint (references), for a redo
        self._frames: list[pl.DataFrame] = []
        #: the inner sink may hold a half-done operation: reset it before the next attempt
        self._dirty = False
        #: the checkpoint being taken (between pre-commit and commit)
        self._pending_id = -1
        #: the processing time of the open epoch (``failed_at_ms``): the runner's value
        #: when the epoch began, stored in the checkpoint before it (``error_outputs``)
        self._stamp = 0
        #: why the batch being dead-lettered failed (its records' ``error``)
        self._dead_letter_reason = ""

    # -- delegation ----------------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not set yet (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)

    @property
    def guarantee(self) -> Any:
        return self.inner.guarantee

    @property
    def records(self) -> int:
        return self.inner.records

    @property
    def dead_letter_label(self) -> str:
        path = self.dead_letter.path if self.dead_letter is not None else None
        return f"dead letter of output {self.tag!r} ({path})"

    # -- the protocol --------------------------------------------------------------------
    def open(self, fresh: bool) -> None:
        self._stamp = self.hooks.recorded_at_ms()
        self.inner.open(fresh)
        if self.dead_letter is not None:
            with concerning(self.dead_letter_label):
                self.dead_letter.open(fresh)

    def reject(self, data: pl.DataFrame) -> Rejection | None:
        return self.inner.reject(data)

    def write(self, data: pl.DataFrame) -> None:
        """Write now when the sink is healthy; a failure here is retried with the
        pre-commit (which writes the epoch again into a reset sink)."""
        self._frames.append(data)
        if self._dirty or (self.breaker.state == OPEN and not self.breaker.allows()):
            self._dirty = True
            return
        try:
            self.inner.write(data)
        except Exception as e:  # noqa: BLE001 - any failure: redone at the pre-commit
            self._failed(e)
            if self.resilience.fail_fast:
                self._give_up("write of the open checkpoint's records", 1, e)

    def pre_commit(self, checkpoint_id: int) -> Any:
        self._pending_id = checkpoint_id

        def attempt() -> Any:
            if self._dirty:
                self._reset()
                for frame in self._frames:
                    self.inner.write(frame)
            return self.inner.pre_commit(checkpoint_id)

        what = f"pre-commit of checkpoint {checkpoint_id}"
        result = self._attempts(what, attempt, may_dead_letter=self.dead_letter is not None)
        if isinstance(result, _DeadLetter):
            return self._to_dead_letter(checkpoint_id)
        self._frames = []
        if self.dead_letter is None:
            return result
        with concerning(self.dead_letter_label):
            dlq = self.dead_letter.pre_commit(checkpoint_id)
        return {MARK: 1, "checkpoint": checkpoint_id, "sink": result, "dlq": dlq}

    def commit(self, committable: Any) -> None:
        inner, dlq, n = self._unwrap(committable)
        if n < 0:
            n = self._pending_id
        if not self._is_dead_lettered(committable):
            def attempt() -> None:
                if self._dirty:
                    self._reset(to=(n, inner))  # recover: commits n only if not landed
                else:
                    self.inner.commit(inner)

            self._attempts(f"commit of checkpoint {n}", attempt, may_dead_letter=False)
            self._base = (n, inner)
        if dlq is not None:
            with concerning(self.dead_letter_label):
                self.dead_letter.commit(dlq)
        self._stamp = self.hooks.recorded_at_ms()  # the next epoch's (runner set it)

    def recover(self, committable: Any, checkpoint_id: int) -> None:
        """Back to checkpoint ``checkpoint_id``. A dead-lettered checkpoint holds nothing
        of its own in the sink: the sink goes back to the checkpoint before it."""
        inner, dlq, _ = self._unwrap(committable)
        if self._is_dead_lettered(committable):
            base = committable.get("base")
            self._base = None if base is None else (int(base[0]), base[1])
            self._reset_inner()
        else:
            self.inner.recover(inner, checkpoint_id)
            self._base = (checkpoint_id, inner)
        self._stamp = self.hooks.recorded_at_ms()
        if self.dead_letter is not None:
            with concerning(self.dead_letter_label):
                self.dead_letter.recover(dlq, checkpoint_id)
        self._frames, self._dirty = [], False

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            if self.dead_letter is not None:
                self.dead_letter.close()

    # -- telemetry -----------------------------------------------------------------------
    def telemetry(self) -> dict[str, Any]:
        """The inner sink's probe (if any), with ``resilience``: the breaker's state,
        failures, retries and dead-lettered records (``surestream_sink_*`` metrics)."""
        probe = getattr(self.inner, "telemetry", None)
        row = dict(probe()) if probe is not None else {}
        row["resilience"] = self.summary()
        return row

    def summary(self) -> dict[str, Any]:
        h = self.health
        return {"circuit": self.breaker.state, "circuit_state": self.breaker.code,
                "consecutive_failures": self.breaker.failures,
                "breaker_opened": self.breaker.opened,
                "failed_attempts": h.attempts_failed, "retries": h.retries,
                "probes": h.probes, "paused_s": round(h.paused_s, 3),
                "dlq_records": h.dlq_records, "dlq_batches": h.dlq_batches,
                "dead_lettered_checkpoints": list(h.dead_lettered),
                "last_error": h.last_error, "on_sink_failure": self.resilience.on_sink_failure,
                "dead_letter": None if self.dead_letter is None else str(self.dead_letter.path)}

    # -- attempts ------------------------------------------------------------------------
    def _attempts(self, what: str, attempt: Callable[[], Any], *,
                  may_dead_letter: bool) -> Any:
        """``attempt()`` until it succeeds or the policy gives up; then fail, dead-letter
        (``may_dead_letter``) or wait for the sink (``pause``, and a commit under ``dlq``)."""
        res = self.resilience
        waits = schedule_ms(res.retry, self._rng) if res.retry and not res.fail_fast \
            else iter(())
        tried, error = 0, None
        while True:
            if self.breaker.state == OPEN and not self.breaker.allows():
                break  # open: the sink is left alone until the next probe
            if tried:
                self.health.retries += 1
            try:
                result = attempt()
            except Exception as e:  # noqa: BLE001 - every failure counts
                tried += 1
                error = e
                self._failed(e)
                if res.fail_fast or tried >= res.attempts or self.breaker.state == OPEN:
                    break
                self._sleep_ms(next(waits, 0.0))
                continue
            self.breaker.success()
            return result
        if res.fail_fast or res.on_sink_failure == "fail":
            self._give_up(what, tried, error)
        if res.on_sink_failure == "dlq" and may_dead_letter:
            self._dead_letter_reason = reason(error) if error is not None else (
                f"not tried: the circuit breaker is open (last error: "
                f"{self.health.last_error})")
            if self.resilience.circuit_breaker is not None and self.breaker.state != OPEN:
                self.breaker.trip()  # the next batches go to the dead letter until a probe
            return _DeadLetter()
        return self._pause(what, attempt)

    def _pause(self, what: str, attempt: Callable[[], Any]) -> Any:
        """The breaker open; wait, probe every interval, until the sink takes it."""
        if self.breaker.state != OPEN:
            self.breaker.trip()
        began = time.monotonic()
        try:
            while True:
                while not self.breaker.allows():
                    if self.hooks.stopping():
                        raise RunFailure(self.label, SinkFailed(
                            f"stopped while paused at the {what} (breaker open; last error: "
                            f"{self.health.last_error}); a rerun resumes from the last "
                            "checkpoint"))
                    self.hooks.waiting()
                    self._sleep_ms(min(self.breaker.wait_ms(), _SLICE_S * 1000))
                self.health.probes += 1
                self.health.retries += 1
                try:
                    result = attempt()
                except Exception as e:  # noqa: BLE001 - a failed probe opens it again
                    self._failed(e)
                    continue
                self.breaker.success()
                return result
        finally:
            self.health.paused_s += time.monotonic() - began
            self.hooks.waiting()

    def _failed(self, error: BaseException) -> None:
        self._dirty = True
        self.health.attempts_failed += 1
        self.health.last_error = reason(error)
        self.breaker.failure()

    def _give_up(self, what: str, tried: int, error: BaseException | None) -> None:
        why = "fail_fast" if self.resilience.fail_fast else \
            "breaker open" if self.breaker.state == OPEN else "on_sink_failure: fail"
        last = reason(error) if error is not None else self.health.last_error
        raise RunFailure(self.label, SinkFailed(
            f"the {what} failed after {tried} attempt(s) ({why}): {last}; "
            "a rerun resumes from the last checkpoint")) from error

    def _sleep_ms(self, ms: float) -> None:
        """Sleep in slices, publishing telemetry between them (the snapshot shows the
        retries and the breaker while the runner waits)."""
        left = ms / 1000.0
        while True:
            self.hooks.waiting()
            if left <= 0:
                return
            step = min(left, _SLICE_S)
            self.hooks.sleep(step)
            left -= step

    # -- resetting -----------------------------------------------------------------------
    def _reset(self, to: tuple[int, Any] | None = None) -> None:
        """Close the sink and bring it back to checkpoint ``to`` (default: the last one it
        holds), discarding anything half-done after it."""
        if to is not None:
            self._base = to
        self._reset_inner()
        self._dirty = False

    def _reset_inner(self) -> None:
        with contextlib.suppress(Exception):  # it may be broken: the reopen says so
            self.inner.close()
        self.inner = self.factory()
        if self._base is None:  # nothing landed since the run began afresh
            self.inner.open(True)
        else:
            self.inner.open(False)
            self.inner.recover(self._base[1], self._base[0])

    # -- the dead letter -----------------------------------------------------------------
    def _to_dead_letter(self, checkpoint_id: int) -> dict[str, Any]:
        """The epoch's records to the dead-letter file (staged for checkpoint n, visible
        at its commit); the sink is reset to its last checkpoint before its next batch."""
        assert self.dead_letter is not None
        error = self._dead_letter_reason
        failed_at = self._stamp
        records = 0
        with concerning(self.dead_letter_label):
            for frame in self._frames:
                if not frame.height:
                    continue
                rows = frame.select(
                    pl.lit(checkpoint_id, dtype=pl.Int64).alias("batch_id"),
                    pl.lit(self.tag).alias("output"),
                    pl.lit(error).alias("error"),
                    pl.lit(failed_at, dtype=pl.Int64).alias("failed_at_ms"),
                    pl.struct(pl.all()).alias("record"))
                rejection = self.dead_letter.reject(rows)
                if rejection is not None and len(rejection):
                    raise UnwritableError(
                        f"the {self.dead_letter_label} cannot hold {len(rejection)} "
                        f"record(s): {rejection.reasons[0]}")
                self.dead_letter.write(rows)
                records += frame.height
            dlq = self.dead_letter.pre_commit(checkpoint_id)
        if records:
            self.health.dlq_records += records
            self.health.dlq_batches += 1
            self.health.dead_lettered.append(checkpoint_id)
        self._frames = []
        self._dirty = True  # whatever the sink staged of this epoch goes at the next reset
        base = None if self._base is None else [self._base[0], self._base[1]]
        return {MARK: 1, "checkpoint": checkpoint_id, "sink": None,
                "dead_lettered": checkpoint_id, "base": base, "dlq": dlq}

    @staticmethod
    def _is_dead_lettered(committable: Any) -> bool:
        return isinstance(committable, dict) and committable.get(MARK) == 1 \
            and committable.get("dead_lettered") is not None

    @staticmethod
    def _unwrap(committable: Any) -> tuple[Any, Any, int]:
        """(the inner committable, the dead letter's, the checkpoint id) of a committable
        of this wrapper -- or of the bare sink, from a run without a dead letter."""
        if isinstance(committable, dict) and committable.get(MARK) == 1:
            return committable.get("sink"), committable.get("dlq"), \
                int(committable.get("checkpoint", -1))
        return committable, None, -1


def resilient(sink: Any, resilience: SinkResilience, *, tag: str, label: str,
              hooks: RunnerHooks, resolve: Callable[[str], Path],
              factory: Callable[[], Any]) -> Any:
    """``sink`` wrapped when its output asks for retries, a breaker or a dead letter;
    else ``sink`` itself (today's behaviour, unchanged)."""
    if not resilience.configured:
        return sink
    dead = None
    if resilience.dead_letter is not None:
        dead = LineFileSink(resolve(resilience.dead_letter.path), "jsonl")
    return ResilientSink(sink, resilience, tag=tag, label=label, hooks=hooks,
                         factory=factory, dead_letter=dead)


def unwrapped(sink: Any) -> Any:
    """The sink inside a ``ResilientSink`` (for type checks), else ``sink``."""
    return sink.inner if isinstance(sink, ResilientSink) else sink


def health_lines(health: dict[str, dict[str, Any]]) -> list[str]:
    """The run summary's lines for outputs that failed at some point (``RunResult.
    sink_health``): retries, the breaker, the pause and the dead letter; nothing for an
    output that never failed."""
    lines = []
    for tag, h in sorted(health.items()):
        if not h.get("failed_attempts"):
            continue
        parts = [f"{h['failed_attempts']} failed attempt(s)", f"{h['retries']} retries"]
        if h.get("breaker_opened"):
            parts.append(f"breaker opened {h['breaker_opened']} time(s), {h['circuit']} now")
        if h.get("paused_s"):
            parts.append(f"paused {h['paused_s']:.1f} s")
        if h.get("dlq_records"):
            parts.append(f"{h['dlq_records']:,} record(s) of {h['dlq_batches']} batch(es) "
                         f"dead-lettered to {h.get('dead_letter')}")
        lines.append(f"  output {tag!r}: " + ", ".join(parts)
                     + f"; last error: {h.get('last_error')}")
    return lines
