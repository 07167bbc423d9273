"""The checkpoint coordinator of the local runner (SEMANTICS §7, DESIGN.md).

A checkpoint is taken between two micro-batches -- the barrier is the batch boundary, so no
record is half-processed. Its steps, in this order, are what make a crash at any point safe:

1. snapshot every operator's state and the source positions (in memory);
2. ``sink.pre_commit(n)`` for every sink: stage the output produced since checkpoint n-1;
   the returned committables go into the checkpoint;
3. write checkpoint n atomically (state files, then the manifest by rename): from here on,
   a restart resumes at n, and n's staged output will be committed;
4. ``sink.commit(committable)`` for every sink: n's output becomes visible.

On start: the latest checkpoint that verifies is restored (operator states, source
positions), and every sink ``recover``s to it -- committing n's output if a crash came
between steps 3 and 4, discarding output staged after n. With no checkpoint, or a finished
one, the run starts afresh and every sink discards previous output.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from surestream.runners.local import faults
from surestream.runners.local.checkpoint_store import Checkpoint, CheckpointError, CheckpointStore
from surestream.runners.local.failures import concerning

log = logging.getLogger("surestream.checkpoints")


class IncompatibleStateError(CheckpointError):
    """The checkpoint's state does not fit the pipeline as it is now."""


@dataclass
class OperatorSlot:
    """An operator and what identifies its state across versions of a pipeline."""

    name: str
    operator: Any
    kind: str  # the step type
    keys: list[str]  # key fields (state is partitioned by them)
    #: the configuration the layout of the state depends on (``state_shape``), or None
    shape: dict[str, Any] | None = None

    @property
    def state_format(self) -> int:
        """The version of the operator's state layout (its class's ``STATE_FORMAT``; 1 when
        it declares none): a checkpoint of another layout is refused, never misread."""
        return int(getattr(self.operator, "STATE_FORMAT", 1))

    @property
    def info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"kind": self.kind, "keys": self.keys,
                                "state_format": self.state_format}
        if self.shape is not None:
            info["shape"] = self.shape
        return info


def state_shape(step: Any) -> dict[str, Any] | None:
    """What a step's saved state is laid out by, beyond its type and keys: a window keeps
    windows of its kind and one accumulator per aggregation, in the spec's order; keep-first
    and keep-last dedup keep different things."""
    if getattr(step, "type", None) in ("window", "aggregate"):
        shape = {"window": getattr(step, "kind", None),
                 "aggregations": [f"{name}={agg}" for name, agg in step.aggregations.items()]}
        if step.output_mode != "append" or step.type == "aggregate":  # (older checkpoints)
            shape["output_mode"] = step.output_mode
        return {k: v for k, v in shape.items() if v is not None}
    if getattr(step, "type", None) == "keyed_dedup":
        return {"strategy": step.strategy}
    return None


def check_compatible(checkpoint: Checkpoint, slots: dict[str, OperatorSlot],
                     allow_non_restored_state: bool = False) -> None:
    """Refuse to restore state into a pipeline it does not fit, naming the operator.

    Operator names are the stable uids. A new operator starts empty; a dropped stateful
    operator needs ``allow_non_restored_state``; a changed kind or key is refused."""
    for name, entry in checkpoint.meta["operators"].items():
        if name.startswith("__"):
            continue
        slot = slots.get(name)
        if slot is None:
            if entry.get("stateful", True) and not allow_non_restored_state:
                raise IncompatibleStateError(
                    f"checkpoint {checkpoint.id} has state for operator {name!r}, which the "
                    "pipeline no longer has; pass --allow-non-restored-state to drop it")
            continue
        if entry.get("kind") != slot.kind:
            raise IncompatibleStateError(
                f"operator {name!r} was a {entry.get('kind')} step in checkpoint "
                f"{checkpoint.id} and is a {slot.kind} step now; its state cannot be "
                "restored (give the new step another name to start it empty)")
        if list(entry.get("keys") or []) != slot.keys:
            raise IncompatibleStateError(
                f"operator {name!r} was keyed by {entry.get('keys')} in checkpoint "
                f"{checkpoint.id} and is keyed by {slot.keys} now; its state cannot be "
                "restored (give the new step another name to start it empty)")
        saved_format = int(entry.get("state_format", 1))
        if saved_format != slot.state_format:
            raise IncompatibleStateError(
                f"operator {name!r} saved its state in layout {saved_format} in checkpoint "
                f"{checkpoint.id}; this version of surestream reads layout "
                f"{slot.state_format}: finish the run with the version that wrote it, or "
                "give the step another name to start it empty")
        old = entry.get("shape")
        if old is not None and slot.shape is not None and old != slot.shape:
            changed = [f"{k} {old.get(k)} -> {slot.shape.get(k)}"
                       for k in sorted(set(old) | set(slot.shape))
                       if old.get(k) != slot.shape.get(k)]
            raise IncompatibleStateError(
                f"operator {name!r} changed since checkpoint {checkpoint.id} in what its "
                f"state is made of ({'; '.join(changed)}); its state cannot be restored "
                "(give the new step another name to start it empty)")


def log_operators_started_empty(checkpoint: Checkpoint,
                                slots: dict[str, OperatorSlot]) -> list[str]:
    """Name, in the log, each operator the pipeline has now and ``checkpoint`` has no state
    for (a step added since, e.g. a keyed_dedup step added to a running job): it resumes
    with empty state, which is correct -- it has seen nothing yet -- but changes what the
    step can know, so the user is told. Returns their names."""
    saved = set(checkpoint.meta["operators"])
    new = [name for name in slots if name not in saved]
    for name in new:
        slot = slots[name]
        hint = (" -- a duplicate of a record written before the checkpoint passes once; "
                "see docs/energy.md, 'Migrations'") if slot.kind == "keyed_dedup" else ""
        log.warning("operator %r (%s) is new since checkpoint %s: it starts with empty "
                    "state%s", name, slot.kind, checkpoint.id, hint,
                    extra={"operator": name, "checkpoint_id": checkpoint.id,
                           "event": "operator_started_empty"})
    return new


class CheckpointCoordinator:
    """When to checkpoint, and the ordered protocol of one checkpoint."""

    def __init__(self, store: CheckpointStore, *, pipeline: str, interval_ms: int | None,
                 interval_records: int | None) -> None:
        self.store = store
        self.pipeline = pipeline
        self.interval_ms = interval_ms
        self.interval_records = interval_records
        self.next_id = store.next_id()
        self._last_time = time.monotonic()
        self._last_records = 0
        self.last: dict[str, Any] | None = None
        self.taken = 0

    def due(self, records_in: int) -> bool:
        if self.interval_records and records_in - self._last_records >= self.interval_records:
            return True
        return bool(self.interval_ms
                    and (time.monotonic() - self._last_time) * 1000 >= self.interval_ms)

    def checkpoint(self, slots: dict[str, OperatorSlot], sinks: dict[str, Any],
                   positions: dict[str, Any], runner_state: dict[str, Any],
                   records_in: int, finished: bool = False,
                   labels: dict[str, str] | None = None) -> dict[str, Any]:
        """Take checkpoint ``next_id``: snapshot, pre-commit, make durable, commit. A disk
        error names the output (``labels``: tag -> ``output 'main' (path)``) or the
        checkpoint folder it happened in (``failures.RunFailure``)."""
        n = self.next_id
        # the interval runs from one checkpoint's start to the next one's (as Flink's):
        # a checkpoint that takes long does not push every later one back by as much
        started = time.monotonic()
        labels = labels or {}
        states = {name: s.operator.snapshot() for name, s in slots.items()}
        states["__runner__"] = runner_state
        info = {name: {**s.info, "stateful": states[name] is not None}
                for name, s in slots.items()}
        committables = {}
        for tag, sink in sinks.items():
            with concerning(labels.get(tag, f"output {tag!r}")):
                committables[tag] = sink.pre_commit(n)
        faults.reached("checkpoint.pre_committed")
        with concerning(f"checkpoint folder {self.store.dir}"):
            meta = self.store.write(n, states, positions=positions, sinks=committables,
                                    pipeline=self.pipeline, operators_info=info,
                                    finished=finished, extra={"records_in": records_in})
        faults.reached("checkpoint.durable")
        for i, (tag, sink) in enumerate(sinks.items()):
            if i == 1:
                faults.reached("checkpoint.commit_partial")
            with concerning(labels.get(tag, f"output {tag!r}")):
                sink.commit(committables[tag])
        self.next_id = n + 1
        self._last_time = started
        self._last_records = records_in
        self.last = meta
        self.taken += 1
        return meta
