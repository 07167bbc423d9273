"""The spec's ``trigger`` in the local runner: when to read, checkpoint and stop.

The runner's own loop (``runner._loop``) reads a bounded input to its end, or a live Kafka
source until stopped. With a ``trigger`` this driver runs the loop instead, using the
runner's ``step`` (one micro-batch) and ``checkpoint`` unchanged:

- a *trigger* reads what it may -- up to each Kafka partition's end offset found when the
  trigger began (or, for ``once`` / ``available_now``, when the run began), the files
  admitted, at most ``max_records_per_trigger`` records -- in ``batch_size`` micro-batches,
  and ends with a checkpoint. A Kafka partition at its trigger's bound is *held*, not
  ended: its watermark stays where its records put it, as in a live run;
- files are admitted into the run in the order they were found (sorted by name within a
  listing), at most ``max_files_per_trigger`` open at a time; a file source that is a glob
  or a folder is listed again at each trigger (``processing_time``) or every
  ``FILE_LIST_INTERVAL_S`` (``continuous``). The files read and the positions live in the
  checkpoints; a file read before and gone or changed now is refused, naming it;
- the watermark steps are told their input is open-ended: when every file read so far has
  ended the watermark stays where it is (the next file may come tomorrow); only a run
  whose input does end (no glob, folder or live Kafka source under ``processing_time`` /
  ``continuous``) carries it to +infinity at the end, as a run without a trigger does.

``once`` / ``available_now`` end without that final step: their last checkpoint is an
ordinary one, so the next run resumes from it and reads only what came since. Which
records a trigger reads depends only on what was there when it began (and the limits),
never on the batch size or the interval, and the checkpoint after it records exactly
that: a run killed anywhere resumes at the last trigger's end and reads the same records
again -- the same committed output as a run never killed, given the same files.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Any

from surestream.connectors.sources import (
    Partition,
    SourceError,
    file_source_is_open,
    list_files,
    open_files,
)
from surestream.model.spec import FileSource, PipelineSpec
from surestream.model.trigger import TriggerSpec
from surestream.semantics.watermark_step import WatermarkOperator

if TYPE_CHECKING:
    from surestream.runners.local.runner import LocalRunner

log = logging.getLogger("surestream.triggers")

#: ``continuous``: how often a glob or folder is listed again for new files
FILE_LIST_INTERVAL_S = 1.0
#: ``continuous``: a micro-batch closes after this much wall time unless the spec sets
#: ``runtime.max_batch_delay_ms`` (the runtime's default, 100 ms, is for throughput)
CONTINUOUS_BATCH_DELAY_MS = 10
#: how long a wait sleeps between looks at the stop flag (and the Kafka feeds)
WAIT_STEP_S = 0.05


def batch_delay_ms(spec: PipelineSpec) -> int:
    """A live micro-batch's delay: the spec's, or ``continuous``'s small default."""
    if spec.trigger is not None and spec.trigger.mode == "continuous" \
            and "max_batch_delay_ms" not in spec.runtime.model_fields_set:
        return CONTINUOUS_BATCH_DELAY_MS
    return spec.runtime.max_batch_delay_ms


class TriggerDriver:
    """Runs a ``LocalRunner``'s loop by its spec's trigger (see the module docstring)."""

    def __init__(self, runner: LocalRunner, trigger: TriggerSpec) -> None:
        self.runner = runner
        self.trigger = trigger
        self.mode = trigger.mode
        spec = runner.spec
        self.file_sources: dict[str, FileSource] = {
            name: src for name, src in spec.all_sources.items() if isinstance(src, FileSource)}
        #: file sources new files can join (a glob or a folder)
        self.open_sources = [name for name, src in self.file_sources.items()
                             if file_source_is_open(src, spec.resolve)]
        lasts = self.mode in ("processing_time", "continuous")
        #: the run picks up new files while it runs
        self.live_files = lasts and bool(self.open_sources)
        #: the input ends (no live source under processing_time / continuous): the run
        #: ends as a run without a trigger does, with the final step and checkpoint
        self.ends_input = lasts and not self.live_files and not runner.live
        #: triggers run by this process (each ended with a checkpoint)
        self.triggers = 0
        self._read_left: int | None = None  # sequence positions the trigger may still read
        self._clean_at: int | None = None  # the sequence position at the last checkpoint
        self._next_listing = 0.0

    @property
    def runs_until_stopped(self) -> bool:
        """``processing_time`` / ``continuous`` over a live source: stopped by a signal."""
        return not self.trigger.stops and not self.ends_input

    # -- set-up (the runner's ``_open_inputs``) ----------------------------------------------
    def prepare(self, interleaver: Any) -> None:
        """Before the watermark steps learn their partitions: files wait in the backlog
        until a trigger admits them; the watermark steps reading sources are open-ended."""
        interleaver.open_files = True
        files = [p for p in interleaver.partitions if self._is_file(p)]
        interleaver.partitions = [p for p in interleaver.partitions if not self._is_file(p)]
        interleaver.backlog = files
        self._set_open_ended(True)

    def slice_size(self, batch_size: int) -> int:
        """The next micro-batch's size: ``batch_size``, within the trigger's record limit."""
        return batch_size if self._read_left is None else max(1, min(batch_size,
                                                                      self._read_left))

    @property
    def reads_as_they_arrive(self) -> bool:
        """Live Kafka partitions are read as records arrive (``continuous``), not up to a
        trigger's bound."""
        return self.mode == "continuous"

    # -- the loop ------------------------------------------------------------------------------
    def loop(self, started: float) -> None:
        """The run's loop for its trigger mode."""
        self._clean_at = self.runner.interleaver.seq if self.runner.restored else None
        if self.trigger.stops:
            self._stopping_loop(started)
        elif self.mode == "processing_time":
            self._processing_time_loop(started)
        else:
            self._continuous_loop(started)

    def _stopping_loop(self, started: float) -> None:
        """``once`` / ``available_now``: what is there at start -- the end offsets of the
        Kafka partitions now, the files listed when the run opened its sources -- in one
        trigger, or in as many as the limits allow; a checkpoint after each; stop."""
        self._bound_kafka()
        while True:
            if self.runner._stop_requested:
                self._stop()
                return
            self._admit_files()
            if self.triggers and self._nothing_left():
                return
            self._trigger(started)
            if self.runner._stop_requested:  # in the trigger: its checkpoint is the stop's
                self._stop()
                return
            if self.mode == "once" or self._nothing_left() or self.runner.stop_after_checkpoint:
                return

    def _processing_time_loop(self, started: float) -> None:
        """``processing_time``: a trigger every interval (the next one at once when a
        trigger took longer), each reading what has arrived; a trigger that finds nothing
        new takes no checkpoint. Runs until stopped, or to the end of an input that ends."""
        interval_s = (self.trigger.interval_ms or 0) / 1000
        next_at = time.monotonic()
        while True:
            if self.runner._stop_requested:
                self._stop()
                return
            next_at = max(next_at + interval_s, time.monotonic())
            if self.runner.live:
                self.runner._next_refresh = 0.0  # new Kafka partitions: at every trigger
                self.runner._refresh_partitions()
            self._list_files()
            self._admit_files()
            self._bound_kafka()
            if self.ends_input and self._nothing_left():
                self._finish()
                return
            self._trigger(started, skip_if_empty=True)
            if self.runner.stop_after_checkpoint and self.runner.coordinator.taken:
                return
            if self.ends_input and self._nothing_left():
                continue  # the final step, at once
            self._wait_until(next_at)

    def _continuous_loop(self, started: float) -> None:
        """``continuous``: micro-batches as records arrive (live Kafka: closed after
        ``max_batch_delay_ms``), files as they are found; checkpoints on the checkpoint
        interval (with nothing new read since the last one, none is taken)."""
        runner = self.runner
        while True:
            if runner._stop_requested:
                self._stop()
                return
            if runner.live:
                runner._refresh_partitions()
            if time.monotonic() >= self._next_listing:
                self._next_listing = time.monotonic() + FILE_LIST_INTERVAL_S
                self._list_files()
            self._admit_files()
            if self.ends_input and self._nothing_left():
                self._finish()
                return
            if runner.interleaver.exhausted:  # files only, all read: wait for more
                if self._dirty() and runner.coordinator.due(runner.records_in):
                    self._checkpoint()
                self._wait_until(min(self._next_listing, time.monotonic() + WAIT_STEP_S))
                continue
            runner.step()
            if runner.stop_after_checkpoint or (
                    (runner.live or self._dirty())
                    and runner.coordinator.due(runner.records_in)):
                self._checkpoint()
                if runner.stop_after_checkpoint:
                    return
            self._report(started)

    # -- one trigger ---------------------------------------------------------------------------
    def _trigger(self, started: float, skip_if_empty: bool = False) -> None:
        """Read what this trigger may, in micro-batches; then its checkpoint."""
        runner = self.runner
        il = runner.interleaver
        began, seq0 = time.perf_counter(), il.seq
        limit = self.trigger.max_records_per_trigger
        self._read_left = limit
        while not il.exhausted and (self._read_left is None or self._read_left > 0):
            if runner._stop_requested:
                break
            before = il.seq
            runner.step()
            if self._read_left is not None:
                self._read_left -= il.seq - before
            self._report(started)
        self._read_left = None
        if runner._stop_requested:
            return  # the stop's checkpoint ends it
        if skip_if_empty and il.seq == seq0 and not self._dirty():
            return
        self.triggers += 1
        self._checkpoint()
        log.info("trigger %d (%s): %d records in %.3f s", self.triggers, self.mode,
                 il.seq - seq0, time.perf_counter() - began,
                 extra={"event": "trigger", "trigger": self.triggers, "mode": self.mode,
                        "records": il.seq - seq0})

    def _nothing_left(self) -> bool:
        """Every admitted partition read to its end or its bound, and no file waiting."""
        il = self.runner.interleaver
        return il.exhausted and not il.backlog

    def _dirty(self) -> bool:
        """Read anything since the last checkpoint (or since the start)?"""
        return self.runner.interleaver.seq != self._clean_at

    def _checkpoint(self) -> None:
        self.runner.checkpoint()
        self._clean_at = self.runner.interleaver.seq

    def _finish(self) -> None:
        """The end of an input that ends: the final step (W -> +infinity), the finished
        checkpoint, as a run without a trigger ends."""
        runner = self.runner
        self._set_open_ended(False)
        runner.step(final=True)
        runner.checkpoint(finished=True)
        runner.store.mark_done(runner.coordinator.next_id - 1)

    def _stop(self) -> None:
        """A stop asked for (SIGTERM, Ctrl-C): a checkpoint if anything was read since the
        last one (a live Kafka run: always, as without a trigger)."""
        if self._dirty() or self.runner.live:
            self.runner._stop_early()
        else:
            self.runner.interrupted = True

    def _wait_until(self, at: float) -> None:
        """Until ``at`` (monotonic seconds) or a stop request; Kafka feeds keep fetching."""
        il = self.runner.interleaver
        feeds = il.feeds()
        while not self.runner._stop_requested:
            left = at - time.monotonic()
            if left <= 0:
                return
            if feeds:
                il.wait(min(left, WAIT_STEP_S))
            else:
                time.sleep(min(left, WAIT_STEP_S))

    def _report(self, started: float) -> None:
        runner = self.runner
        if runner.telemetry.due():
            runner.telemetry.publish(runner)
        if runner.progress:
            runner.progress(runner._progress(time.perf_counter() - started))

    # -- inputs --------------------------------------------------------------------------------
    def _is_file(self, part: Partition) -> bool:
        return part.source in self.file_sources

    def _set_open_ended(self, flag: bool) -> None:
        for stream in self.runner.streams:
            if stream.reads_source:
                for op in stream.operators:
                    if isinstance(op, WatermarkOperator):
                        op.tracker.open_ended = flag

    def _admit_files(self) -> None:
        """Files from the backlog into the run, in the order found, up to
        ``max_files_per_trigger`` files open (admitted and not read to their end)."""
        il = self.runner.interleaver
        if not il.backlog:
            return
        limit = self.trigger.max_files_per_trigger
        room = len(il.backlog)
        if limit is not None:
            open_now = sum(1 for p in il.partitions if self._is_file(p) and not p.done)
            room = max(0, limit - open_now)
        admitted, il.backlog = il.backlog[:room], il.backlog[room:]
        self.runner._add_partitions(admitted)

    def _list_files(self) -> None:
        """New files of the globs and folders join the backlog (sorted by name); a file
        read before that is gone, or that changed after it was read to its end, stops the
        run, naming it."""
        if not self.live_files:
            return
        il = self.runner.interleaver
        spec = self.runner.spec
        for name in self.open_sources:
            src = self.file_sources[name]
            paths = list_files(name, src, spec.resolve, allow_no_files=True)
            present = set(paths)
            mine = [p for p in il.partitions + il.backlog if p.source == name]
            for part in mine:
                _check_unchanged(part, present)
            known = {p.name for p in mine}
            new = [p for p in paths if p not in known]
            if new:
                schema = next((p.reader.schema for p in mine), None)
                il.backlog.extend(open_files(name, src, new, schema))
                log.info("source %r: %d new file(s)", name, len(new),
                         extra={"event": "new_files", "source": name, "files": len(new)})

    def _bound_kafka(self) -> None:
        """Each live Kafka partition's bound for this trigger (``once`` /
        ``available_now``: for the run): its end offset now. A partition at its bound is
        held (``Partition.held``), not ended."""
        il = self.runner.interleaver
        parts = [p for p in il.partitions
                 if hasattr(p.reader, "feed") and (p.holds_at_end or p.reader.end is None)]
        by_feed: dict[int, tuple[Any, list[Partition]]] = {}
        for p in parts:
            by_feed.setdefault(id(p.reader.feed), (p.reader.feed, []))[1].append(p)
        for feed, mine in by_feed.values():
            ends = feed.end_offsets([p.reader.tp for p in mine])
            for p in mine:
                p.holds_at_end = True
                p.reader.end = max(ends[p.reader.tp], p.reader.position)
                p.held = False


def _check_unchanged(part: Partition, present: set[str]) -> None:
    """A file of a live source that was read must still be there, and one read to its end
    must not have grown or shrunk (its new records would come after its end): files must be
    complete when they appear (write them elsewhere, then move them in)."""
    reader = part.reader
    if part.name not in present:
        if getattr(reader, "position", 0) and _read_started(part):
            raise SourceError(
                f"input file {part.name} was read and is gone now; restore it (the outputs "
                "hold its records), or delete the checkpoint folder to start afresh")
        return
    if part.done and hasattr(reader, "layout"):
        size = _size(part.name)
        if size != reader.position:
            raise SourceError(
                f"input file {part.name} changed after it was read to its end ({size:,} "
                f"bytes now, {reader.position:,} read): a live file source takes each file "
                "once, complete -- write new files elsewhere and move them in; restore the "
                "file, or delete the checkpoint folder to start afresh")


def _read_started(part: Partition) -> bool:
    layout = getattr(part.reader, "layout", None)
    return layout is None or part.reader.position > layout.start


def _size(path: str) -> int:
    return os.stat(path).st_size


def trigger_driver(runner: LocalRunner) -> TriggerDriver | None:
    """The driver for ``runner``'s spec, or None without a trigger."""
    trigger = runner.spec.trigger
    return None if trigger is None else TriggerDriver(runner, trigger)

