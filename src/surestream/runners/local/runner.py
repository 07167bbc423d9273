"""The embedded local runner: the logical sequence in micro-batches, through every stream.

One step of the loop (DESIGN.md, "data flow of one micro-batch"):

1. the interleaver reads the next ``batch_size`` records of the fixed logical sequence;
   lines that do not parse become error records at once;
2. streams run in dependency order; each operator gets the batch its predecessor emitted
   and returns outputs by tag; a tag read by another stream is handed to it in the same
   step, so fan-out needs no buffering and stays deterministic;
3. every tag's records are written to its sink, in production order; records a sink
   cannot hold go to the errors output instead (``unwritable``); error records go, in
   input order, to the error output their category is routed to (``error_outputs``).

When every partition has ended, the final step carries the watermark to +infinity, which
fires every pending window and timer. Results never depend on the batch size.

A run asked to stop early (``request_stop``, which ``surestream run`` calls on Ctrl-C)
finishes the batch in hand, takes a checkpoint when its inputs can be read again from it,
and returns a result marked ``interrupted``; a rerun resumes from that checkpoint. A disk
or network error names the input, output or checkpoint folder it concerns (``failures``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from surestream.connectors.readback import committed_output
from surestream.connectors.sinks import MemoryCollector, open_sink, sink_context
from surestream.connectors.sources import (
    Interleaver,
    Partition,
    SourceError,
    SourceSlice,
    open_source,
)
from surestream.io.lock import FolderLock
from surestream.model.batch import NEG_INF, Batch, concat
from surestream.model.spec import (
    ERRORS_TAG,
    DeltaSource,
    FileSink,
    IcebergSource,
    KafkaSource,
    PipelineSpec,
)
from surestream.runners.local import faults
from surestream.runners.local.checkpoint_store import (
    FORMAT_VERSION,
    Checkpoint,
    CheckpointError,
    CheckpointStore,
)
from surestream.runners.local.checkpointing import (
    CheckpointCoordinator,
    IncompatibleStateError,
    OperatorSlot,
    check_compatible,
    log_operators_started_empty,
    state_shape,
)
from surestream.runners.local.error_outputs import ErrorOutputs
from surestream.runners.local.failures import (
    RunFailure,
    concerning,
    input_label,
    output_label,
)
from surestream.runners.local.graph import CompiledStream, compile_streams, union_of
from surestream.runners.local.journal import JournalError, JournalWriter, ReplayPlan
from surestream.runners.local.results import Progress, RunResult
from surestream.runners.local.savepoints import finish_interrupted_install, install_savepoint
from surestream.runners.local.sink_retry import RunnerHooks, resilient, unwrapped
from surestream.runners.local.step_clock import StepClock
from surestream.runners.local.telemetry import RunTelemetry
from surestream.runners.local.triggers import batch_delay_ms, trigger_driver
from surestream.runners.local.unwritable import check_errors_writable, divert_unwritable
from surestream.semantics.errors import DESERIALIZATION_ERROR, error_batch
from surestream.semantics.operator import MAIN
from surestream.semantics.process import wall_clock_ms
from surestream.semantics.watermark_step import WatermarkOperator
from surestream.semantics.watermarks import Clock

__all__ = ["LocalRunner", "Progress", "RunResult", "lock_checkpoint_folder", "run"]

#: a live run with no checkpoint interval configured checkpoints this often (wall time):
#: its outputs become visible at checkpoints, so this is their latency (docs/kafka.md)
LIVE_CHECKPOINT_INTERVAL_MS = 1000
#: how often a live run looks for new partitions of its Kafka topics
PARTITION_REFRESH_S = 5.0


def is_live(spec: PipelineSpec) -> bool:
    """Does the spec read a source that never ends (a Kafka or table source without
    ``stop_at``)? Not under a trigger that stops (``once`` / ``available_now``: it reads
    to the end offsets found at start)."""
    if spec.trigger is not None and spec.trigger.stops:
        return False
    return any(isinstance(s, KafkaSource | IcebergSource | DeltaSource) and s.live
               for s in spec.all_sources.values())


def lock_checkpoint_folder(folder: Path, holder: str = "surestream run") -> FolderLock:
    """Take the checkpoint folder for this process alone (``io/lock.py``), first finishing
    a savepoint installation a crash interrupted (``savepoints.py``). Raises
    ``FolderInUseError`` naming the pid of the process that holds it."""
    finish_interrupted_install(folder)
    return FolderLock.acquire(folder, holder=holder)


class LocalRunner:
    """Runs a ``PipelineSpec`` to the end of its bounded input, checkpointing on the way.

    It resumes from the latest checkpoint of ``checkpoint.dir`` when one exists (and is
    not the mark of a finished run); or from ``from_checkpoint``, a checkpoint read from
    elsewhere, in place; or from ``from_savepoint``, which is first made the folder's
    latest checkpoint (the newer timeline is dropped) once it is known to fit.

    One run owns the checkpoint folder: ``run`` locks it before reading it (or uses
    ``lock``, taken by the caller) and checks the lock before every checkpoint, so a second
    run on the same folder is refused instead of interleaving with this one."""

    def __init__(self, spec: PipelineSpec, *, clock: Clock | None = None,
                 progress: Callable[[Progress], None] | None = None,
                 from_checkpoint: Checkpoint | None = None,
                 from_savepoint: Checkpoint | None = None,
                 allow_non_restored_state: bool = False,
                 stop_after_checkpoint: bool = False,
                 lock: FolderLock | None = None,
                 replay: ReplayPlan | None = None) -> None:
        problems = spec.output_path_problems()
        if problems:
            raise ValueError("; ".join(f"{field}: {reason}" for field, reason in problems))
        self.spec = spec
        self.progress = progress
        #: a live run (or the replay of one): processing time is read once per step and
        #: journaled (``step_clock``); the loop runs until stopped
        self.live = is_live(spec)
        self.replay = replay
        self.step_clock = StepClock(clock or wall_clock_ms) if self.live else None
        self.streams: list[CompiledStream] = compile_streams(spec, self.step_clock or clock)
        #: the spec's ``trigger`` runs the loop (``triggers.py``); None: the loop below
        self.trigger = trigger_driver(self)
        self.interleaver = self._open_inputs()
        outputs = dict(spec.outputs)
        outputs.setdefault(ERRORS_TAG, FileSink(path=str(spec.errors_default_path())))
        self.error_outputs = ErrorOutputs(outputs)
        self.sinks = {tag: self._open_sink(outputs, tag) for tag in outputs}
        self.sinks = self._resilient_sinks(outputs)  # retries, breaker, dead letter
        #: processing time, read once per checkpoint (``error_outputs``: recorded_at_ms)
        self.clock = self.step_clock or clock or wall_clock_ms
        self.slots = {op.name: OperatorSlot(op.name, op, step.type,
                                            list(getattr(step, "key_fields", []) or []),
                                            state_shape(step))
                      for stream in self.streams
                      for op, step in zip(stream.operators, stream.steps, strict=True)}
        #: counts, timings and state sizes for the people watching (``telemetry``)
        self.telemetry = RunTelemetry(spec.pipeline, live=self.live)
        for stream in self.streams:
            for op, step in zip(stream.operators, stream.steps, strict=True):
                self.telemetry.declare_operator(op.name, stream.name, step.type)
        self.store = CheckpointStore(spec.checkpoint_dir(), spec.checkpoint.retain)
        interval_ms = spec.checkpoint.interval_ms
        continuous = self.trigger is not None and self.trigger.mode == "continuous"
        if (self.live or continuous) and interval_ms is None \
                and spec.checkpoint.interval_records is None:
            interval_ms = LIVE_CHECKPOINT_INTERVAL_MS
        self.coordinator = CheckpointCoordinator(
            self.store, pipeline=spec.pipeline, interval_ms=interval_ms,
            interval_records=spec.checkpoint.interval_records)
        self.journal = JournalWriter(self.store.dir) if self.live and replay is None \
            else None
        self.steps = 0  # steps taken (a live run's journal numbers them)
        self._added: list[tuple[str, str]] = []  # partitions added since the last step
        self._replay_chunks: list[Any] | None = None
        self._next_refresh = time.monotonic() + PARTITION_REFRESH_S
        self.from_checkpoint = from_checkpoint
        self.from_savepoint = from_savepoint
        self.allow_non_restored_state = allow_non_restored_state
        self._lock = lock
        self.stop_after_checkpoint = stop_after_checkpoint
        #: operators new since the restored checkpoint (they resumed with empty state)
        self.started_empty: list[str] = []
        self.restored: Checkpoint | None = None
        self.records_in = 0
        self.source_errors = 0
        #: tag -> "output 'main' (path)", for errors that concern an output
        self.labels = {tag: output_label(tag, sink) for tag, sink in self.sinks.items()}
        #: records written to each sink since its last commit (live counts = committed + these)
        self._pending: dict[str, int] = {}
        self.first_error: str | None = None
        self._stop_requested = False
        self.interrupted = False
        self.stop_note: str | None = None
        #: the run is over at start: a killed run's final checkpoint was committed
        self._over = False

    def _open_sink(self, outputs: dict[str, Any], tag: str) -> Any:
        """The sink of output ``tag``, with the runner's hooks in it."""
        sink = open_sink(outputs[tag], self.spec.resolve,
                         sink_context(self.spec, tag, self.error_outputs.tags))
        if hasattr(sink, "on_point"):  # fault points inside a sink's commit (Kafka)
            sink.on_point = faults.reached
        if hasattr(sink, "epoch_of"):  # the id the records being written will commit as
            sink.epoch_of = lambda: self.coordinator.next_id
        return sink

    def _resilient_sinks(self, outputs: dict[str, Any]) -> dict[str, Any]:
        """Each sink whose output asks for retries, a breaker or a dead letter, wrapped
        (``sink_retry``); the others as they are."""
        from surestream.model.sink_resilience import resilience_of

        hooks = RunnerHooks(
            recorded_at_ms=lambda: self.error_outputs.recorded_at_ms,
            stopping=lambda: self._stop_requested,
            waiting=lambda: self.telemetry.publish(self) if self.telemetry.due() else None)
        return {tag: resilient(sink, resilience_of(outputs[tag]), tag=tag,
                               label=output_label(tag, sink), hooks=hooks,
                               resolve=self.spec.resolve,
                               factory=lambda tag=tag: self._open_sink(outputs, tag))
                for tag, sink in self.sinks.items()}

    def _open_inputs(self) -> Interleaver:
        """Every source's partitions in one fixed sequence; each watermark step that reads
        a source learns its partitions (the watermark waits for all of them)."""
        spec = self.spec
        partitions: list[Partition] = []
        for name, src in spec.all_sources.items():
            partitions.extend(open_source(name, src, spec.resolve,
                                          resumable=spec.checkpoint.periodic or self.live
                                          or self.trigger is not None,
                                          pipeline=spec.pipeline,
                                          allow_no_files=self.trigger is not None))
        interleaver = Interleaver(partitions, spec.runtime.interleave_records)
        if self.trigger is not None:  # files wait for a trigger to admit them
            self.trigger.prepare(interleaver)
        if self.replay is not None:
            self._replay_partitions(interleaver)
        for stream in self.streams:
            if stream.reads_source:
                ids = interleaver.source_partitions(stream.from_)
                for op in stream.operators:
                    if isinstance(op, WatermarkOperator):
                        op.declare_partitions(ids)
        return interleaver

    def _replay_partitions(self, interleaver: Interleaver) -> None:
        """A replay: the partitions in the journal's id order; the ones the live run added
        later wait in ``pending_new`` for the step that added them."""
        assert self.replay is not None
        names = [name for _, name in self.replay.partitions]
        missing = sorted(set(names) - {p.name for p in interleaver.partitions})
        if missing:
            raise JournalError(f"the journal reads partitions {missing}, which the "
                               "pipeline's sources do not have")
        interleaver._order_as([[n, None, False] for n in names])
        if [p.name for p in interleaver.partitions] != names:
            raise JournalError("the journal's partitions do not match the pipeline's "
                               "sources")

    def _add_partitions(self, new: list[Partition]) -> None:
        """Partitions created while live: each watermark step reading their source learns
        them (they hold its watermark at -infinity until their first record, unless
        idle); the journal notes them with the next step."""
        if not new:
            return
        ids = self.interleaver.add_partitions(new)
        for stream in self.streams:
            if not stream.reads_source:
                continue
            mine = [i for i in ids if self.interleaver.partitions[i].source == stream.from_]
            for op in stream.operators:
                if isinstance(op, WatermarkOperator):
                    op.declare_partitions(mine)
        self._added += [(p.source, p.name) for p in new]

    def _refresh_partitions(self) -> None:
        """Every few seconds of a live run: pick up new partitions of its topics."""
        if time.monotonic() < self._next_refresh:
            return
        self._next_refresh = time.monotonic() + PARTITION_REFRESH_S
        with concerning("the Kafka sources' metadata"):
            self._add_partitions(self.interleaver.new_partitions())

    # -- start: restore or begin afresh ---------------------------------------------------
    def _start(self) -> None:
        """Restore the checkpoint to resume from, or begin afresh. Nothing on disk changes
        until every output is known to be ours and the checkpoint is known to fit."""
        self._check_outputs_owned()
        with concerning(f"checkpoint folder {self.store.dir}"):
            cp, adopt = self._checkpoint_to_restore()
        if cp is not None and cp.finished and self._commit_unfinished(cp, adopt):
            self._complete_finished(cp)
            return
        if cp is None or cp.finished:
            if self.step_clock is not None:
                if self.replay is not None:
                    self.step_clock.set(self.replay.now)
                else:
                    self.step_clock.tick()
            self.error_outputs.recorded_at_ms = self.clock()
            if self.journal is not None:
                self.journal.start(self.spec.pipeline, self.clock(),
                                   [(p.source, p.name) for p in self.interleaver.partitions])
            self._still_ours()
            self._check_fresh_start()
            with concerning(f"checkpoint folder {self.store.dir}"):
                self.store.clear()
            for tag, sink in self.sinks.items():
                with concerning(self.labels[tag]):
                    sink.open(fresh=True)
            return
        self._restore_in_memory(cp)
        if adopt:
            cp = self._install(cp)
        self._still_ours()
        self._recover_sinks(cp)
        if self.journal is not None:
            assert self.step_clock is not None
            after = self.journal.resume(self.spec.pipeline, cp.id, self.step_clock.tick(),
                                        [(p.source, p.name)
                                         for p in self.interleaver.partitions])
            self.steps = after or 0
        if self.replay is not None:  # a replay resumed: ``_replay_loop`` skips what it did
            self.steps = int(cp.state("__runner__").get("steps", 0))
            return
        pending, self.interleaver.pending_new = self.interleaver.pending_new, []
        self._add_partitions(pending)

    def _recover_sinks(self, cp: Checkpoint) -> None:
        """Bring every sink to checkpoint ``cp`` (committing its pending output where it
        has not landed) and continue numbering checkpoints after it."""
        for tag, sink in self.sinks.items():
            with concerning(self.labels[tag]):
                sink.open(fresh=False)
                sink.recover(cp.committables.get(tag), cp.id)
        self.coordinator.next_id = max(self.coordinator.next_id, cp.id + 1)
        self.restored = cp

    def _commit_unfinished(self, cp: Checkpoint, adopt: bool) -> bool:
        """Whether finished checkpoint ``cp`` is this folder's own, in this version's
        format, and not marked committed by every sink (``CheckpointStore.mark_done``)."""
        return (not adopt and cp.store.dir.resolve() == self.store.dir.resolve()
                and cp.meta.get("format") == FORMAT_VERSION and not self.store.is_done(cp.id))

    def _complete_finished(self, cp: Checkpoint) -> None:
        """The input had ended and its final checkpoint is durable, but the run was killed
        before every sink committed it: commit it now (each sink's ``recover`` commits what
        it has not yet) and end, as the killed run would have. Starting afresh instead would
        lose that checkpoint's output on a sink that cannot rewrite what it holds (a Kafka
        topic refuses a fresh start, see ``check_fresh_start``)."""
        self._restore_in_memory(cp)
        self._still_ours()
        self._recover_sinks(cp)
        self.interleaver.commit_positions()  # Kafka sources: the group's offsets, at the end
        with concerning(f"checkpoint folder {self.store.dir}"):
            self.store.mark_done(cp.id)
        self._over = True

    def _check_outputs_owned(self) -> None:
        """Refuse outputs whose place holds what is not theirs (a dataset folder with other
        files in it), before any sink deletes or truncates anything."""
        for tag, sink in self.sinks.items():
            check = getattr(sink, "check_owned", None)
            if check is not None:
                with concerning(self.labels[tag]):
                    check()

    def _check_fresh_start(self) -> None:
        """Outputs that cannot start afresh (a Kafka topic holding an earlier run's
        committed output) refuse before any output or checkpoint is touched."""
        for tag, sink in self.sinks.items():
            check = getattr(sink, "check_fresh_start", None)
            if check is not None:
                with concerning(self.labels[tag]):
                    check()

    def _checkpoint_to_restore(self) -> tuple[Checkpoint | None, bool]:
        """(the checkpoint to resume from, whether it is a savepoint to install first)."""
        sp = self.from_savepoint
        if sp is not None and sp.store.dir.resolve() != self.store.dir.resolve():
            return sp, True
        cp = self.from_checkpoint or self.store.latest()
        if cp is None and self.store.list():
            # checkpoints exist but none verifies: starting afresh would discard committed
            # output, so stop and let a person decide
            raise CheckpointError(
                f"no checkpoint in {self.store.dir} verifies (all are corrupt or "
                "incomplete); restore them from a backup, or delete the folder to start "
                "afresh (which rewrites every output)")
        return cp, False

    def _restore_in_memory(self, cp: Checkpoint) -> None:
        """Operator states, counters and source positions of ``cp``; raises (naming the
        operator or the source) if it does not fit the pipeline as it is now."""
        check_compatible(cp, self.slots, self.allow_non_restored_state)
        self.started_empty = log_operators_started_empty(cp, self.slots)
        for name in cp.operator_names():
            if name in self.slots:
                state = cp.state(name)
                try:
                    self.slots[name].operator.restore(state)
                except Exception as e:  # noqa: BLE001 - any refusal: the state does not fit
                    raise IncompatibleStateError(
                        f"operator {name!r}: its state in checkpoint {cp.id} cannot be "
                        f"restored into the pipeline as it is now ({type(e).__name__}: {e}); "
                        "give the step another name to start it empty") from e
        runner = cp.state("__runner__")
        self.records_in, self.source_errors = runner["records_in"], runner["source_errors"]
        self.first_error = runner.get("first_error")
        recorded_at = runner.get("recorded_at_ms")  # (absent from older checkpoints)
        self.error_outputs.recorded_at_ms = self.clock() if recorded_at is None \
            else recorded_at
        try:
            self.interleaver.seek(cp.positions)
        except (SourceError, ValueError) as e:
            raise IncompatibleStateError(
                f"checkpoint {cp.id} in {self.store.dir} does not match the pipeline's "
                f"input as it is now: {e}") from e

    def _install(self, savepoint: Checkpoint) -> Checkpoint:
        """Make the savepoint the folder's latest checkpoint (copy, fsync, swap: the folder
        is never left empty) and return it as read back from there."""
        install_savepoint(savepoint, self.store.dir, self._lock)
        cp = self.store.latest()
        if cp is None or cp.id != savepoint.id:
            raise CheckpointError(f"savepoint {savepoint.id} from {savepoint.store.dir} "
                                  f"did not read back from {self.store.dir}")
        self.coordinator.next_id = self.store.next_id()
        return cp

    def _still_ours(self) -> None:
        """Before anything is committed or discarded: is the checkpoint folder still this
        run's? (Not if it was deleted, or taken by another process, since we locked it.)"""
        if self._lock is not None:
            self._lock.verify()

    def checkpoint(self, finished: bool = False) -> dict[str, Any]:
        self._still_ours()
        self._emit_complete_tables()
        if self.journal is not None:  # its steps durable before the checkpoint is
            assert self.step_clock is not None
            self.journal.checkpoint(self.coordinator.next_id, self.steps,
                                    self.step_clock.tick())
        # the processing time of the epoch this checkpoint opens, stored with it so a run
        # resumed from here stamps the records it processes again the same way
        self.error_outputs.recorded_at_ms = self.clock()
        began = time.perf_counter()
        try:
            meta = self.coordinator.checkpoint(
                self.slots, self.sinks, self.interleaver.positions(),
                {"records_in": self.records_in, "source_errors": self.source_errors,
                 "first_error": self.first_error, "steps": self.steps,
                 "recorded_at_ms": self.error_outputs.recorded_at_ms},
                self.records_in, finished=finished, labels=self.labels)
        except Exception as e:
            self.telemetry.checkpoint_failed(self.coordinator.next_id, e)
            raise
        self._pending.clear()  # committed: the sinks count these records now
        self.interleaver.commit_positions()  # Kafka sources: for the group's lag tools
        self.telemetry.checkpoint_done(meta, time.perf_counter() - began,
                                       {t: s.records for t, s in self.sinks.items()})
        self.telemetry.publish(self)  # first: the history's line takes its state sizes
        with concerning(f"checkpoint folder {self.store.dir}"):
            self.telemetry.flush_history(self.telemetry.checkpoints[-1])
        return meta

    @property
    def until_stopped(self) -> bool:
        """The run goes on until it is stopped (a live input, or a trigger over one)."""
        return self.live or (self.trigger is not None and self.trigger.runs_until_stopped)

    # -- stopping early (Ctrl-C) ----------------------------------------------------------
    def request_stop(self) -> None:
        """Stop after the batch in hand, with a checkpoint a rerun resumes from when the
        inputs allow it. Only sets a flag, so a signal handler may call it."""
        self._stop_requested = True

    def _stop_early(self) -> None:
        """The end of a run asked to stop: a checkpoint if a rerun could resume from it."""
        self.interrupted = True
        blocker = self._resume_blocker()
        if blocker is None:
            self.checkpoint()
        else:
            self.stop_note = blocker

    def _resume_blocker(self) -> str | None:
        """Why a checkpoint taken now could not be resumed from (None: it could): an input
        that cannot be read again from its start (an iterator object)."""
        for part in self.interleaver.partitions:
            if not getattr(part.reader, "restartable", True):
                return (f"input {part.source!r} cannot be read again from its start, so a "
                        "rerun could not resume from a checkpoint")
        return None

    # -- the loop -------------------------------------------------------------------------
    def run(self) -> RunResult:
        started = time.perf_counter()
        owns_lock = self._lock is None
        if owns_lock:
            try:
                self._lock = lock_checkpoint_folder(self.store.dir)
            except BaseException:
                # another run holds the folder: say so, touching nothing of its outputs
                # (closing them could fail on what that run is writing, masking the reason)
                with contextlib.suppress(Exception):
                    self._close(release_lock=False)
                raise
        state = "failed"
        try:
            self._start()
            self._start_history()
            self._loop(started)
            state = "stopped" if self.interrupted else "finished"
        finally:
            try:
                self._close(release_lock=owns_lock)
            finally:
                self._end_telemetry(state)
        return self._result(time.perf_counter() - started)

    def _start_history(self) -> None:
        """The run's history beside its checkpoints (``telemetry``), for ``report``."""
        with concerning(f"checkpoint folder {self.store.dir}"):
            self.telemetry.start_history(
                self.store.dir, _spec_for_history(self.spec),
                fresh=self.restored is None,
                restored_from=self.restored.id if self.restored else None,
                base_dir=self.spec.base_dir)
            self.telemetry.publish(self)

    def _end_telemetry(self, state: str) -> None:
        """The last snapshot and history line; a failure here never hides the run's own."""
        if state == "failed":
            with contextlib.suppress(Exception):  # the run's own error is the one to report
                self.telemetry.end(self, state)
        else:
            self.telemetry.end(self, state)

    def _loop(self, started: float) -> None:
        """Steps until the input ends (a finished checkpoint), a savepoint's one
        checkpoint is taken, or a stop is requested. A live input never ends: its run
        stops only when asked to."""
        if self.replay is not None:
            self._replay_loop(started)
            return
        if self._over:  # a killed run's final commit, completed by ``_start``
            return
        if self.trigger is not None:
            self.trigger.loop(started)
            return
        while True:
            if self._stop_requested:
                self._stop_early()
                return
            if self.live:
                self._refresh_partitions()
            final = not self.live and self.interleaver.exhausted
            self.step(final)
            if final:
                self.checkpoint(finished=True)
                with concerning(f"checkpoint folder {self.store.dir}"):
                    self.store.mark_done(self.coordinator.next_id - 1)
            elif self.stop_after_checkpoint or self.coordinator.due(self.records_in):
                self.checkpoint()
            if self.telemetry.due():
                self.telemetry.publish(self)
            if self.progress:
                self.progress(self._progress(time.perf_counter() - started))
            if final or self.stop_after_checkpoint:
                return

    def _replay_loop(self, started: float) -> None:
        """A live run again, from its journal: the same chunks in the same steps, the same
        processing time, checkpoints after the same steps; it ends where the journal's
        last checkpoint does (where the live run's committed outputs end)."""
        assert self.replay is not None and self.step_clock is not None
        by_name = {p.name: p for p in self.interleaver.pending_new}
        events = self.replay.events
        if self.restored is not None:
            events = self._replay_rest(events)
        for kind, entry in events:
            if self._stop_requested:
                self.interrupted = True
                return
            self.step_clock.set(entry["now"])
            if kind == "checkpoint":
                self.checkpoint()
                continue
            added = [by_name.pop(name) for _, name in entry.get("add", [])]
            self._add_partitions(added)
            self._replay_chunks = entry["c"]
            self.step()
            if self.telemetry.due():
                self.telemetry.publish(self)
            if self.progress:
                self.progress(self._progress(time.perf_counter() - started))
        self._replay_chunks = None

    def _replay_rest(self, events: list[tuple[str, dict[str, Any]]]
                     ) -> list[tuple[str, dict[str, Any]]]:
        """A replay killed and run again resumes from its checkpoint, taken after
        ``self.steps`` steps: the journal's events after that checkpoint's line."""
        done = 0
        for i, (kind, entry) in enumerate(events):
            if kind == "step":
                if entry.get("add"):
                    raise JournalError(
                        "this replay was interrupted after the live run added partitions; "
                        "it cannot resume: replay again into a new --out folder")
                done += 1
            elif done == self.steps:
                return events[i + 1:]
        raise JournalError(f"the replay's checkpoint (after step {self.steps}) is not one "
                           "of the journal's: replay again into a new --out folder")

    def _close(self, release_lock: bool) -> None:
        """Close inputs and outputs, and release the checkpoint folder whatever happens."""
        try:
            if self.journal is not None:
                self.journal.close()
            self.interleaver.close()
            for tag, sink in self.sinks.items():
                with concerning(self.labels[tag]):
                    sink.close()
        finally:
            if release_lock and self._lock is not None:
                self._lock.release()
                self._lock = None

    def _emit_complete_tables(self) -> None:
        """Each checkpoint is a trigger of ``output_mode: complete``: a step that reads no
        input, in which every such operator emits its whole result table, so the table
        reaches the outputs (through the steps after it) inside the checkpoint it
        replaces (docs/concepts.md, "Output modes"). Nothing happens without one."""
        if any(hasattr(op, "complete_table") and op.mode == "complete"
               for stream in self.streams for op in stream.operators):
            self.step(trigger=True)

    def step(self, final: bool = False, trigger: bool = False) -> None:
        """One micro-batch through every stream; ``final`` ends the input (W = +inf);
        ``trigger`` reads nothing and has complete-mode operators emit their tables."""
        self.telemetry.step_started()
        tags, emitted = ({}, []) if trigger else self._read_inputs(final)
        tag_wm: dict[str, int] = {}
        for stream in self.streams:
            self._run_stream(stream, tags, tag_wm, emitted, final, trigger)
        emitted = divert_unwritable(emitted, self.sinks, self.spec.pipeline)
        faults.reached("batch.mid")
        self._write(self._route_errors(_errors_in_input_order(emitted)))
        self.telemetry.step_done()

    def _read_inputs(self, final: bool) -> tuple[dict[str, Batch], list[tuple[str, Batch]]]:
        """The next slice of every source by name, and the error records of its lines that
        did not parse; nothing at the end of the input."""
        tags: dict[str, Batch] = {}
        emitted: list[tuple[str, Batch]] = []
        if final:
            return tags, emitted
        slices = self._next_slice()
        if self.journal is not None:
            self.journal.step(self.steps, self.clock(), self.interleaver.chunks, self._added)
        self._added = []
        self.steps += 1
        for name, sl in slices.items():
            self.records_in += len(sl.batch) + len(sl.bad)
            if sl.bad:
                self.source_errors += len(sl.bad)
                emitted.append((ERRORS_TAG, error_batch(
                    [b[2] for b in sl.bad], pipeline=self.spec.pipeline,
                    operator=f"source:{name}", error_type=DESERIALIZATION_ERROR,
                    message=[f"{b[1]}: {b[3]}" for b in sl.bad],
                    exception=[b[4] for b in sl.bad],
                    wm=[NEG_INF] * len(sl.bad), seq=[b[0] for b in sl.bad], wm_end=NEG_INF)))
            tags[name] = sl.batch
        return tags, emitted

    def _next_slice(self) -> dict[str, SourceSlice]:
        """The interleaver's next slice; a read error names the input being read (the
        partition whose turn it is: the turn moves on only after a read returns)."""
        if self.step_clock is not None and self.replay is None:
            self.step_clock.tick()  # this step's processing time (journaled)
        try:
            if self._replay_chunks is not None:
                return self.interleaver.replay_slice(self._replay_chunks)
            size = self.spec.runtime.batch_size
            if self.trigger is not None:
                size = self.trigger.slice_size(size)
            if self.live and (self.trigger is None or self.trigger.reads_as_they_arrive):
                deadline = time.monotonic() + batch_delay_ms(self.spec) / 1000
                return self.interleaver.next_slice(size, deadline)
            return self.interleaver.next_slice(size)
        except OSError as e:
            part = self.interleaver.partitions[self.interleaver.turn]
            raise RunFailure(input_label(part.source, part.name), e) from e

    def _run_stream(self, stream: CompiledStream, tags: dict[str, Batch],
                    tag_wm: dict[str, int], emitted: list[tuple[str, Batch]],
                    final: bool, trigger: bool = False) -> None:
        """``stream``'s operators in order over what it reads; every tag they produce is
        added to ``tags`` (for the streams after it) and to ``emitted`` (for the sinks)."""
        if isinstance(stream.from_, list):
            batch = union_of([tags[t] if t in tags else Batch.empty(tag_wm.get(t, NEG_INF))
                              for t in stream.from_])
        else:
            batch = tags.get(stream.from_)
        if batch is None:
            if final and stream.reads_source:
                batch = self._end_of_source(stream.from_)
            else:
                batch = Batch.empty(tag_wm.get(stream.from_, NEG_INF), with_ts=True)
        for i, op in enumerate(stream.operators):
            began = time.perf_counter()
            if i in stream.updates:
                upd = tags.get(stream.updates[i])
                outs = op.process_with_updates(
                    batch, upd if upd is not None else Batch.empty(NEG_INF))
            else:
                outs = op.process(batch)
            if trigger and getattr(op, "mode", None) == "complete" \
                    and hasattr(op, "complete_table"):
                outs[MAIN] = op.complete_table(batch.wm_end)
            self.telemetry.operator_step(op.name, len(batch), outs,
                                         time.perf_counter() - began)
            in_wm = batch.wm_end
            main = outs.pop(MAIN, None)  # (an empty batch is falsy: test for None)
            batch = main if main is not None else Batch.empty(in_wm)
            for tag, out in outs.items():
                tag_wm[tag] = in_wm
                if tag != ERRORS_TAG and tag in tags:
                    raise RuntimeError(f"tag {tag!r} produced twice in one step")
                tags[tag] = out
                emitted.append((tag, out))
        tags[stream.name] = batch
        tag_wm[stream.name] = batch.wm_end
        emitted.append((stream.name, batch))

    def _route_errors(self, emitted: list[tuple[str, Batch]]) -> list[tuple[str, Batch]]:
        """``emitted`` with the step's error records (one batch, in input order, last)
        split into their error outputs and shaped for each (``error_outputs``)."""
        if not emitted or emitted[-1][0] != ERRORS_TAG or not len(emitted[-1][1]):
            return [(t, b) for t, b in emitted if t != ERRORS_TAG]
        errors = emitted[-1][1]
        self.telemetry.errors(errors.data)
        if self.first_error is None:
            self.first_error = str(errors.data.get_column("error_message")[0])
        return [*emitted[:-1], *self.error_outputs.split(errors)]

    def _write(self, emitted: list[tuple[str, Batch]]) -> None:
        """Each tag's records to its sink, in production order (inside the open
        checkpoint: visible at its commit)."""
        error_tags = self.error_outputs.tags
        for tag, out in emitted:
            sink = self.sinks.get(tag)
            if sink is None or not len(out):
                continue
            if tag in error_tags:
                check_errors_writable(sink, out, tag)
            with concerning(self.labels[tag]):
                sink.write(out.data)
            self._pending[tag] = self._pending.get(tag, 0) + len(out)
            if tag not in error_tags:
                self.telemetry.written(len(out), out.ts, tag, out.data)

    def _end_of_source(self, source: str) -> Batch:
        """An empty batch that ends every partition of ``source`` (W -> +infinity)."""
        ids = self.interleaver.source_partitions(source)
        b = Batch.empty(NEG_INF, with_ts=False)
        return Batch(data=b.data, wm=b.wm, seq=b.seq, wm_end=NEG_INF, ts=None,
                     partition=b.seq, ended=tuple((-1, p) for p in ids))

    # -- reporting -----------------------------------------------------------------------
    def _progress(self, elapsed: float) -> Progress:
        counters: dict[str, int] = {"errors": self.source_errors}
        watermark, lag = NEG_INF, None
        for stream in self.streams:
            for op in stream.operators:
                for k, v in getattr(op, "counters", {}).items():
                    counters[k] = counters.get(k, 0) + v
                if isinstance(op, WatermarkOperator):
                    watermark = max(watermark, op.watermark)
                    op_lag = op.tracker.lag_ms()
                    if op_lag is not None:
                        lag = op_lag if lag is None else max(lag, op_lag)
        written = {t: s.records + self._pending.get(t, 0) for t, s in self.sinks.items()}
        counters["errors"] = sum(written.get(t, 0) for t in self.error_outputs.tags)
        return Progress(self.records_in, elapsed, watermark, counters, written, lag)

    def _result(self, elapsed: float) -> RunResult:
        p = self._progress(elapsed)
        resume_from = None
        if self.interrupted:
            with concerning(f"checkpoint folder {self.store.dir}"):
                latest = self.store.latest()
            resume_from = latest.id if latest is not None and not latest.finished else None
        return RunResult(
            self.spec.pipeline, self.records_in, elapsed, p.watermark, p.counters,
            {t: s.records for t, s in self.sinks.items()},
            {t: unwrapped(s) for t, s in self.sinks.items()
             if isinstance(unwrapped(s), MemoryCollector)},
            {name: dict(getattr(slot.operator, "counters", {}))
             for name, slot in self.slots.items()},
            self.restored.id if self.restored else None,
            self.coordinator.taken,
            {t: committed_output(t, unwrapped(s)) for t, s in self.sinks.items()},
            interrupted=self.interrupted, resume_from=resume_from,
            stop_note=self.stop_note, first_error=self.first_error,
            error_tags=tuple(self.error_outputs.tags),
            sink_health={t: s.summary() for t, s in self.sinks.items()
                         if unwrapped(s) is not s})


def _spec_for_history(spec: PipelineSpec) -> dict[str, Any]:
    """The spec as JSON for the run history, without a generator source's function or
    in-memory records: serializing an iterator would consume it, and records can be many."""
    inline = {"function", "records"}
    return spec.model_dump(mode="json", exclude_none=True, fallback=repr,
                           exclude={"source": inline, "sources": {"__all__": inline}})


def _errors_in_input_order(emitted: list[tuple[str, Batch]]) -> list[tuple[str, Batch]]:
    """Sources and operators report errors in stage order; the error outputs hold them in
    input order (by ``seq``): one batch, last, written after the step's other tags."""
    errors = [b for tag, b in emitted if tag == ERRORS_TAG and len(b)]
    kept = [(t, b) for t, b in emitted if t != ERRORS_TAG]
    if not errors:
        return kept
    if len(errors) == 1:  # one producer's records are in its order already
        return [*kept, (ERRORS_TAG, errors[0])]
    merged = concat(errors)
    return [*kept, (ERRORS_TAG, merged.take(np.argsort(merged.seq, kind="stable")))]


def run(spec: PipelineSpec, **kwargs: Any) -> RunResult:
    """Run a pipeline spec to its end with the local runner."""
    return LocalRunner(spec, **kwargs).run()
