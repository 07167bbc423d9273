"""Keyed process functions (Flink's ``KeyedProcessFunction``), SEMANTICS §6.

User code is a class (subclassing ``KeyedProcessFunction`` is optional)::

    class Alert(KeyedProcessFunction):
        def open(self, params): self.limit = params["limit"]
        def process_element(self, record, ctx):
            total = (ctx.value_state("total").value() or 0) + record["qty"]
            ctx.value_state("total").update(total)
            ctx.timers.register_event_time_timer(ctx.timestamp + 60_000)
            if total > self.limit:
                yield {"symbol": ctx.key[0], "total": total}
        def on_timer(self, timestamp, ctx):
            ctx.value_state("total").clear()

``process_element`` / ``on_timer`` return ``None``, a dict, or an iterable of dicts (a
generator is fine): these are the main output. ``ctx.output(tag, record)`` sends to a side
output declared in the step's ``side_outputs``.

Semantics (the order of events is a function of the input alone, so results do not depend
on batch size and survive snapshot/restore at any batch boundary):

- Records are processed in input order. Before record ``i`` the operator's watermark
  advances to ``wm[i]`` if larger; at the end of the batch to ``wm_end``.
- Event-time timers fire when the watermark *advances* to ``W >= ts``: in timestamp order,
  ties in registration order, before any record that arrives after that watermark. A timer
  registered from ``process_element`` for ``ts <= W`` fires at the next advance (Flink);
  one registered from ``on_timer`` for ``ts <= W`` fires in the same advance (Flink's loop).
  At end of input (``W = +inf``) every event-time timer fires.
- Emitted records carry ``ts`` = the triggering record's event time (or the timer's
  timestamp), ``seq`` = the triggering record's ``seq`` (for timers: the last record this
  operator saw), and ``wm`` = the watermark downstream has seen at emission. Timer output
  is emitted *before* the watermark that fired it is passed on (as Flink emits onTimer
  output before forwarding the watermark), so its ``wm`` is the watermark before the
  advance and a downstream window does not see it as late. ``wm`` is non-decreasing.
- A timer's timestamp must lie in ``ctx.timers.MIN_TIMESTAMP .. MAX_TIMESTAMP`` (+-10^15
  ms): one outside fails the call that registers it (``timers.checked_timestamp``). A
  timer at ``MAX_TIMESTAMP`` fires at the end of input, and at no other time.
- Processing-time timers use an injected clock (milliseconds; default the wall clock) and
  fire at the start of each batch for which ``clock() >= ts``. They are *not*
  deterministic, and at the end of a bounded input they fire only if they are due then.
  Their output has ``ts`` = the timer's (processing-time) timestamp.
- An exception in user code sends the input record (for a timer: key, timestamp and time
  domain) with the error to ``errors`` and processing goes on. The failing call has no
  other effect: its outputs are discarded and its state and timer changes rolled back
  (see ``state.Journal``); a fired timer stays consumed.
- State, timers, the watermark and the registration counter are in ``snapshot()``.
  Attributes of the user object are not: keep per-key data in ``ctx`` state.

A function that only judges each key's records in event-time order may define
``process_run`` instead, and get each key's released records as arrays (``key_runs``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from operator import index as as_int
from typing import Any, Literal

from surestream.io.state_codec import round_trip
from surestream.model.batch import NEG_INF, Batch
from surestream.model.steps import ProcessStep
from surestream.semantics.errors import UNDECLARED_SIDE_OUTPUT, ErrorCollector
from surestream.semantics.key_runs import KeyRunOperator, freeze_key, is_run_function
from surestream.semantics.operator import ERRORS, MAIN, Outputs
from surestream.semantics.records import RecordBuffer, iter_records
from surestream.semantics.state import (
    Journal,
    Key,
    KeyedStateStore,
    ListState,
    MapState,
    StateKind,
    ValueState,
)
from surestream.semantics.state_size import (
    DICT_ENTRY_BYTES,
    HEAP_ENTRY_BYTES,
    KEY_BYTES,
    USER_VALUE_BYTES,
)
from surestream.semantics.timers import (
    TIMER_MAX_MS,
    TIMER_MIN_MS,
    TimerQueue,
    checked_timestamp,
)
from surestream.semantics.user_functions import resolve_object
from surestream.semantics.user_state import codec_of

TimeDomain = Literal["event_time", "processing_time"]
Clock = Callable[[], int]

#: Marks a pending output whose tag is not declared: ``(_UNDECLARED, tag)``.
_UNDECLARED = "<undeclared>"


def wall_clock_ms() -> int:
    """The default processing-time clock: milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


class KeyedProcessFunction:
    """Optional base class for user process functions (defaults for the optional hooks)."""

    def open(self, params: dict[str, Any]) -> None:
        """Called once when the operator is built, with the step's ``params``."""

    def process_element(self, record: dict[str, Any], ctx: ProcessContext) -> Any:
        raise NotImplementedError

    def on_timer(self, timestamp: int, ctx: ProcessContext) -> Any:
        """Called when a timer of ``ctx.key`` fires; ``ctx.time_domain`` says which kind."""
        return None


class _FunctionAdapter(KeyedProcessFunction):
    """A bare function ``f(record, ctx)`` used as ``process_element``."""

    def __init__(self, function: Callable[[dict[str, Any], Any], Any]) -> None:
        self._function = function

    def process_element(self, record: dict[str, Any], ctx: ProcessContext) -> Any:
        return self._function(record, ctx)


def instantiate_function(spec: Any) -> Any:
    """The user object from a step's ``function``: a class (instantiated without
    arguments -- configuration goes to ``open(params)``), an instance, a bare function,
    or ``"package.module:Class"``."""
    obj = resolve_object(spec)
    if isinstance(obj, type):
        obj = obj()
    if hasattr(obj, "process_element"):
        return obj
    if callable(obj):
        return _FunctionAdapter(obj)
    raise TypeError(f"process function {spec!r} has no process_element method")


class TimerService:
    """``ctx.timers``: timers of the current key.

    A timer's timestamp must lie in ``MIN_TIMESTAMP .. MAX_TIMESTAMP`` (+-10^15 ms, every
    valid event time is inside): registering one outside raises ``TimerOutOfRangeError``,
    so the call fails and its input goes to errors (``timers.checked_timestamp``). A timer
    at ``MAX_TIMESTAMP`` fires at the end of input (Flink code registers ``Long.MAX_VALUE``
    for that).
    """

    __slots__ = ("_op",)

    MIN_TIMESTAMP = TIMER_MIN_MS
    MAX_TIMESTAMP = TIMER_MAX_MS

    def __init__(self, op: KeyedProcessOperator) -> None:
        self._op = op

    def register_event_time_timer(self, timestamp: int) -> None:
        ctx = self._op.ctx
        self._op.event_timers.register(ctx.key, checked_timestamp(timestamp, "event-time"),
                                       ctx.journal)

    def delete_event_time_timer(self, timestamp: int) -> None:
        ctx = self._op.ctx
        self._op.event_timers.delete(ctx.key, as_int(timestamp), ctx.journal)

    def register_processing_time_timer(self, timestamp: int) -> None:
        ctx = self._op.ctx
        self._op.processing_timers.register(
            ctx.key, checked_timestamp(timestamp, "processing-time"), ctx.journal)

    def delete_processing_time_timer(self, timestamp: int) -> None:
        ctx = self._op.ctx
        self._op.processing_timers.delete(ctx.key, as_int(timestamp), ctx.journal)

    def current_watermark(self) -> int:
        return self._op.watermark

    def current_processing_time(self) -> int:
        return self._op.clock()


class ProcessContext:
    """The ``ctx`` of ``process_element`` and ``on_timer``.

    One object is reused for every call: read it during the call, do not keep it.
    """

    def __init__(self, op: KeyedProcessOperator) -> None:
        self._op = op
        #: The key of the current record or timer (a tuple, one value per key field).
        self.key: Key = ()
        #: The current record's event time, or the firing timer's timestamp.
        self.timestamp: int | None = None
        #: ``None`` in ``process_element``; the firing timer's domain in ``on_timer``.
        self.time_domain: TimeDomain | None = None
        self.timers = TimerService(op)
        self.journal = Journal()
        self._pending: list[tuple[Any, dict[str, Any]]] = []
        self._handles: dict[tuple[str, StateKind], Any] = {}

    @property
    def watermark(self) -> int:
        """The operator's current event-time watermark."""
        return self._op.watermark

    def value_state(self, name: str) -> ValueState:
        return self._handle(name, "value")

    def map_state(self, name: str) -> MapState:
        return self._handle(name, "map")

    def list_state(self, name: str) -> ListState:
        return self._handle(name, "list")

    def output(self, tag: str, record: dict[str, Any]) -> None:
        """Emit ``record`` to side output ``tag`` (``main`` is the main output).

        A tag not declared in the step's ``side_outputs`` does not fail the call: the
        record goes to ``errors`` saying so, and the call goes on.
        """
        if not isinstance(record, Mapping):
            raise TypeError(f"ctx.output takes a dict, not {type(record).__name__}")
        declared = tag == MAIN or tag in self._op.side_outputs
        self._pending.append((tag if declared else (_UNDECLARED, tag), dict(record)))

    def _handle(self, name: str, kind: StateKind) -> Any:
        handle = self._handles.get((name, kind))
        if handle is None:
            handle = self._handles[(name, kind)] = self._op.state.handle(name, kind, self)
        return handle

    def _forget_handles(self) -> None:
        """Handles hold the state tables; a restore replaces the tables."""
        self._handles.clear()


class _BatchOutput:
    """What one ``process`` call emits, by tag, in emission order."""

    def __init__(self, op: KeyedProcessOperator, with_ts: bool) -> None:
        self.with_ts = with_ts
        self.buffers = {tag: RecordBuffer() for tag in (MAIN, *op.side_outputs)}
        self.errors = ErrorCollector(op.pipeline, op.name)
        self._op = op

    def emit(self, tag: Any, record: dict[str, Any], ts: int, wm: int, seq: int) -> None:
        if isinstance(tag, tuple):  # (_UNDECLARED, tag): reported, not emitted
            self.errors.add(
                record, error_type=UNDECLARED_SIDE_OUTPUT, wm=wm, seq=seq, ts=ts,
                message=f"side output {tag[1]!r} is not declared in the side_outputs of step "
                        f"{self._op.name!r} (declared: {list(self._op.side_outputs)})",
            )
        else:
            self.buffers[tag].append(record, ts, wm, seq)

    def outputs(self, wm_end: int) -> Outputs:
        """Main and every declared side output (they may feed streams that need the
        watermark), plus ``errors`` when something failed (counted on the operator)."""
        outputs: Outputs = {
            tag: buf.to_batch(wm_end, operator=self._op.name, with_ts=self.with_ts)
            for tag, buf in self.buffers.items()
        }
        self._op.counters["errors"] += self.errors.emit_into(outputs, wm_end,
                                                             with_ts=self.with_ts)
        return outputs


class KeyedProcessOperator:
    """Runs a keyed process function over batches; see the module docstring."""

    def __init__(self, step: ProcessStep, pipeline: str, *, clock: Clock | None = None) -> None:
        self.name = step.name
        self.pipeline = pipeline
        self.key_fields = list(step.key_fields)
        self.side_outputs = tuple(dict.fromkeys(t for t in step.side_outputs if t != MAIN))
        self.clock: Clock = clock or wall_clock_ms
        self.function = instantiate_function(step.function)
        self.codec = codec_of(self.function)  # its state values as plain data, if not already
        if hasattr(self.function, "open"):
            self.function.open(dict(step.params))
        self.state = KeyedStateStore()
        self.event_timers = TimerQueue()
        self.processing_timers = TimerQueue()
        #: The event-time watermark this operator has reached.
        self.watermark = NEG_INF
        #: ``seq`` of the last record processed: the position of timer output.
        self._last_seq = -1
        #: Metrics for the runner (checkpointed): error records emitted.
        self.counters = {"errors": 0}
        self.ctx = ProcessContext(self)

    def output_tags(self) -> set[str]:
        return {*self.side_outputs, ERRORS}

    # -- processing ---------------------------------------------------------------------
    def process(self, batch: Batch) -> Outputs:
        out = _BatchOutput(self, with_ts=batch.ts is not None)
        self._fire_processing_timers(out)
        ts = batch.ts
        for i, (key, record) in enumerate(zip(self._keys(batch), batch.rows(), strict=True)):
            if batch.wm[i] > self.watermark:
                self._advance_watermark(int(batch.wm[i]), out)
            seq = int(batch.seq[i])
            t = None if ts is None else int(ts[i])
            self._invoke(
                lambda record=record: self.function.process_element(record, self.ctx),
                key=key, timestamp=t, domain=None, out=out, wm=self.watermark, seq=seq,
                failed_input=lambda i=i: batch.data.row(i, named=True),
            )
            self._last_seq = seq
        if batch.wm_end > self.watermark:
            self._advance_watermark(batch.wm_end, out)
        return out.outputs(batch.wm_end)

    def _keys(self, batch: Batch) -> list[Key]:
        """Key tuples per row. A missing key column means nulls (it would be a null column
        in a batch cut that also held a record with the field)."""
        n = len(batch)
        columns = [batch.data[f].to_list() if f in batch.data.columns else [None] * n
                   for f in self.key_fields]
        keys = list(zip(*columns, strict=True)) if columns else [()] * n
        try:
            hash(tuple(keys))
        except TypeError:
            keys = [freeze_key(k) for k in keys]
        return keys

    def _advance_watermark(self, watermark: int, out: _BatchOutput) -> None:
        """Move to ``watermark`` and fire every event-time timer it passes, including timers
        registered for ``<= watermark`` by ``on_timer`` during this advance."""
        emitted_under = self.watermark  # downstream has not seen the new watermark yet
        self.watermark = watermark
        while (due := self.event_timers.pop_due(watermark)) is not None:
            self._fire(due, "event_time", out, emitted_under)

    def _fire_processing_timers(self, out: _BatchOutput) -> None:
        if not len(self.processing_timers):
            return
        now = self.clock()
        while (due := self.processing_timers.pop_due(now)) is not None:
            self._fire(due, "processing_time", out, self.watermark)

    def _fire(self, due: tuple[int, Key], domain: TimeDomain, out: _BatchOutput, wm: int) -> None:
        timestamp, key = due
        self._invoke(
            lambda: self._on_timer(timestamp),
            key=key, timestamp=timestamp, domain=domain, out=out, wm=wm, seq=self._last_seq,
            failed_input=lambda: {"key": list(key), "timer_timestamp": timestamp,
                                  "time_domain": domain},
        )

    def _on_timer(self, timestamp: int) -> Any:
        on_timer = getattr(self.function, "on_timer", None)
        return None if on_timer is None else on_timer(timestamp, self.ctx)

    def _invoke(
        self,
        call: Callable[[], Any],
        *,
        key: Key,
        timestamp: int | None,
        domain: TimeDomain | None,
        out: _BatchOutput,
        wm: int,
        seq: int,
        failed_input: Callable[[], Any],
    ) -> None:
        """One user call as a unit: its outputs and state writes land only if it succeeds."""
        ctx = self.ctx
        ctx.key, ctx.timestamp, ctx.time_domain = key, timestamp, domain
        pending = ctx._pending
        try:
            pending.extend((MAIN, r) for r in iter_records(call(), "a process function"))
        except Exception as exc:  # user code may raise anything
            ctx.journal.rollback()
            pending.clear()
            out.errors.add_exception(failed_input(), exc, wm=wm, seq=seq, ts=timestamp)
            return
        ctx.journal.commit()
        for tag, record in pending:
            out.emit(tag, record, timestamp, wm, seq)
        pending.clear()

    # -- gauges and checkpoints ---------------------------------------------------------
    def state_gauges(self) -> dict[str, int]:
        """Key-state entries (a key counted once per named state it holds), timers of
        both domains, and bytes: a fixed cost per entry and timer (``state_size``: user
        values are not walked)."""
        entries = self.state.key_count()
        timers = len(self.event_timers) + len(self.processing_timers)
        return {"keys": entries, "timers": timers,
                "bytes": entries * (DICT_ENTRY_BYTES + KEY_BYTES + USER_VALUE_BYTES)
                + timers * (DICT_ENTRY_BYTES + HEAP_ENTRY_BYTES + KEY_BYTES)}

    def snapshot(self) -> dict[str, Any]:
        """Every key's state, both timer queues, the watermark and the last ``seq``, as plain
        data (``surestream.io.state_codec``): a copy later processing cannot change, and a
        value that is not data fails here, at the first checkpoint, naming where it sits.
        A function's ``state_codec`` translates its state values (``user_state``)."""
        store = self.state.snapshot()
        tables = store["tables"]
        if self.codec is not None:
            tables = {name: {k: self.codec.encode(v) for k, v in table.items()}
                      for name, table in tables.items()}
        state = {
            "watermark": self.watermark,
            "last_seq": self._last_seq,
            "state": {"kinds": store["kinds"], "tables": tables},
            "event_timers": self.event_timers.snapshot(),
            "processing_timers": self.processing_timers.snapshot(),
            "counters": self.counters,
        }
        return round_trip(state, f"state of {self.name!r}")

    def restore(self, state: dict[str, Any]) -> None:
        state = round_trip(state, f"state of {self.name!r}")
        self.watermark = state["watermark"]
        self._last_seq = state["last_seq"]
        store = state["state"]
        if self.codec is not None:
            store = {"kinds": store["kinds"],
                     "tables": {name: {k: self.codec.decode(v) for k, v in table.items()}
                                for name, table in store["tables"].items()}}
        self.state.restore(store)
        self.event_timers.restore(state["event_timers"])
        self.processing_timers.restore(state["processing_timers"])
        self.counters = state["counters"]
        self.ctx._forget_handles()


def build_process_operator(
    step: ProcessStep, pipeline: str, *, clock: Clock | None = None
) -> KeyedProcessOperator | KeyRunOperator:
    """The executable operator for a ``process`` step; ``clock`` drives processing time.
    A function with ``process_run`` runs over each key's runs of records (``key_runs``)."""
    if is_run_function(step.function):
        return KeyRunOperator(step, pipeline)
    return KeyedProcessOperator(step, pipeline, clock=clock)
