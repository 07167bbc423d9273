"""Keyed process functions over runs: the columnar form of a ``process`` step.

A record-at-a-time process function (``process.py``) costs a Python call, a state lookup
and an event-time timer per record. A function that only judges each key's records in
event-time order -- a scan with a little state per key, like the price alerts -- can do the
same work over whole arrays. It defines ``process_run`` instead of ``process_element``::

    class Alerts:
        def open(self, params): ...
        def process_run(self, run: KeyRun, state: Any) -> RunResult:
            # run.key, run.ts (int64, event-time order), run.rows (a polars frame)
            return RunResult(state=new_state, emitted=[(index_in_run, record), ...],
                             expires_at=last_seen + ttl)

Semantics (the same as a record-at-a-time function that holds each record in state until
an event-time timer at its timestamp fires, and judges it then):

- Each record waits until the operator's watermark reaches its event time. A record that
  arrives at or behind the watermark waits for the next advance (as a timer registered for
  a passed time does). The watermark advances before record ``i`` to ``wm[i]`` and at the
  end of the batch to ``wm_end``, as in ``process.py``.
- In each batch, each key's released records go to **one** ``process_run`` call, ordered
  by (the advance that released them, event time, arrival). The function must give the
  same result however a key's records are cut into runs, carrying ``state`` from one call
  to the next: that is what makes the output independent of batch size and crashes.
- A record the function emits because of run record ``j`` is stamped like timer output:
  ``ts`` = record ``j``'s event time, ``wm`` = the watermark before the advance that
  released it, ``seq`` = the last record before that advance. Output is in (advance, event
  time, arrival) order.
- ``state`` is the key's state (``None`` for a key never seen or forgotten), plain data
  (``surestream.io.state_codec``) or translated by the function's ``state_codec``.
  ``RunResult.state`` replaces it (``None`` forgets the key). ``expires_at`` lets the
  operator drop the state once a batch ends with the watermark at or past it: the function
  must then treat a state as gone for every record at or after ``expires_at`` itself, so
  that dropping it is only a saving of memory, never a change of result.
- An exception in ``process_run`` sends each record of the run to ``errors`` with the
  reason; the key's state stays as it was before the call.
- Records held back, every key's state and expiry, the watermark and the last ``seq`` are
  in ``snapshot()``.

A function whose per-key work is small (most keys one or two records) can also define
``process_runs(runs: KeyRuns) -> RunsResult``: it then gets **all** the runs of a batch at
once -- one frame grouped by key, each key's rows in the order above, with every key's
state -- and returns the emitted records as one frame, ``index`` naming the row of
``runs.rows`` that caused each, plus every key's new state and expiry. It must give
exactly what ``process_run`` gives run by run (the operator may use either: it calls
``process_run`` key by key when ``process_runs`` raises, so that only the runs that fail
go to ``errors``), and the semantics above hold unchanged.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from surestream.io.state_codec import round_trip
from surestream.model.batch import NEG_INF, Batch
from surestream.model.steps import ProcessStep
from surestream.semantics.errors import ErrorCollector
from surestream.semantics.operator import ERRORS, MAIN, Outputs
from surestream.semantics.records import RecordBuffer, frame_from_records
from surestream.semantics.state import Key
from surestream.semantics.state_size import DICT_ENTRY_BYTES, KEY_BYTES, USER_VALUE_BYTES
from surestream.semantics.user_functions import resolve_object
from surestream.semantics.user_state import codec_of

#: Columns the operator adds to records it holds back (removed before the function sees them).
_TS, _SEQ, _DUE = "__run_ts", "__run_seq", "__run_due"


@dataclass(frozen=True, slots=True)
class KeyRun:
    """One key's records released in one batch, in (advance, event time, arrival) order."""

    key: Key
    #: event time of each record (ms), int64
    ts: np.ndarray
    #: the records' columns, row ``j`` belongs to ``ts[j]``
    rows: pl.DataFrame


@dataclass(frozen=True, slots=True)
class RunResult:
    """What ``process_run`` returns: the key's new state and what it emits."""

    state: Any
    #: ``(index in the run of the record that caused it, record)``, in emission order
    emitted: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    #: event time from which the state no longer counts (None: never expires)
    expires_at: int | None = None


@dataclass(frozen=True, slots=True)
class KeyRuns:
    """Every key's released records of one batch: run ``i`` (key ``keys[i]``, its state
    ``states[i]``) is rows ``starts[i]:starts[i + 1]`` of ``ts`` / ``rows``; keys in the
    order of their first released record, each run in (advance, event time, arrival)
    order."""

    keys: list[Key]
    states: list[Any]
    #: int64, ``len(keys) + 1`` row offsets
    starts: np.ndarray
    ts: np.ndarray
    rows: pl.DataFrame

    def run(self, i: int) -> KeyRun:
        """Run ``i`` alone."""
        a, b = int(self.starts[i]), int(self.starts[i + 1])
        return KeyRun(self.keys[i], self.ts[a:b], self.rows.slice(a, b - a))


@dataclass(frozen=True, slots=True)
class RunsResult:
    """What ``process_runs`` returns: per key (as ``KeyRuns.keys``) its new state and
    expiry, and the emitted records as one frame."""

    states: list[Any]
    expires_at: list[int | None]
    emitted: pl.DataFrame
    #: row of ``KeyRuns.rows`` that caused each emitted row (int64, rows of one run in
    #: emission order); ``None``: one emitted row per input row, in the same order
    index: np.ndarray | None = None


def is_run_function(spec: Any) -> bool:
    """True for a process function written over runs: its class or object (``spec``, as in
    the step's ``function``) has ``process_run``."""
    return callable(getattr(resolve_object(spec), "process_run", None))


def freeze_key(value: Any) -> Hashable:
    """A hashable stand-in for a list/dict key value (list columns used as keys); shared
    by both forms of the process step."""
    if isinstance(value, list | tuple):
        return tuple(freeze_key(v) for v in value)
    if isinstance(value, dict):
        return tuple((k, freeze_key(v)) for k, v in value.items())
    return value


def _keys(frame: pl.DataFrame) -> list[Key]:
    """Each row of a frame of key columns as a key (``freeze_key`` for nested values)."""
    if any(dtype.is_nested() for dtype in frame.dtypes):
        return [tuple(freeze_key(v) for v in key) for key in frame.iter_rows()]
    if frame.width == 1:
        return [(v,) for v in frame.to_series().to_list()]
    return frame.rows()


class KeyRunOperator:
    """Runs a ``process_run`` function over batches; see the module docstring."""

    def __init__(self, step: ProcessStep, pipeline: str) -> None:
        function = resolve_object(step.function)
        if isinstance(function, type):
            function = function()  # configuration goes to open(params)
        if hasattr(function, "open"):
            function.open(dict(step.params))
        self.name = step.name
        self.pipeline = pipeline
        self.key_fields = list(step.key_fields)
        self.side_outputs = tuple(dict.fromkeys(t for t in step.side_outputs if t != MAIN))
        self.function = function
        self.codec = codec_of(function)
        #: key -> (state, expires_at)
        self.states: dict[Key, tuple[Any, int | None]] = {}
        #: chunks (earliest, expires_at array, keys array) over ``states`` (stale
        #: entries skipped when due)
        self._expiries: list[tuple[int, np.ndarray, np.ndarray]] = []
        #: records not yet released, with their event time, seq and due watermark
        self.held: pl.DataFrame | None = None
        self.watermark = NEG_INF
        self._last_seq = -1
        self.counters = {"errors": 0}

    def output_tags(self) -> set[str]:
        return {*self.side_outputs, ERRORS}

    # -- processing ---------------------------------------------------------------------
    def process(self, batch: Batch) -> Outputs:
        if batch.ts is None:
            raise ValueError(f"process step {self.name!r} over runs needs event time: put a "
                             "watermark step before it")
        n = len(batch)
        before = self.watermark
        # the watermark after the advance before row i (i < n) and at the end (i = n)
        advances = np.maximum.accumulate(
            np.append(np.maximum(batch.wm, before), max(batch.wm_end, before)))
        arriving = batch.data.with_columns(
            pl.Series(_TS, batch.ts, dtype=pl.Int64),
            pl.Series(_SEQ, batch.seq, dtype=pl.Int64),
            # due when the watermark reaches its time; at or behind it: the next advance
            pl.Series(_DUE, np.maximum(batch.ts, advances[:n] + 1), dtype=pl.Int64))
        pool = arriving if self.held is None else pl.concat([self.held, arriving],
                                                            how="diagonal_relaxed")
        release = np.searchsorted(advances, pool[_DUE].to_numpy(), side="left")
        released = release <= n
        self.held = pool.filter(pl.Series(~released))
        out_main, errors = RecordBuffer(), ErrorCollector(self.pipeline, self.name)
        columnar = None
        if released.any():
            columnar = self._run(pool.filter(pl.Series(released)), release[released],
                                 advances, before, batch, out_main, errors)
        if n:
            self._last_seq = int(batch.seq[-1])
        self.watermark = int(advances[-1])
        self._forget_expired()
        outputs: Outputs = {MAIN: columnar if columnar is not None else
                            out_main.to_batch(batch.wm_end, operator=self.name, with_ts=True)}
        for tag in self.side_outputs:
            outputs[tag] = RecordBuffer().to_batch(batch.wm_end, operator=self.name,
                                                   with_ts=True)
        self.counters["errors"] += errors.emit_into(outputs, batch.wm_end, with_ts=True)
        return outputs

    def _run(self, rows: pl.DataFrame, release: np.ndarray, advances: np.ndarray,
             before: int, batch: Batch, out: RecordBuffer,
             errors: ErrorCollector) -> Batch | None:
        """Hand each key's released rows to the function; emit in (advance, ts, seq) order
        (into ``out``, or as the returned batch for ``process_runs``)."""
        rows = rows.with_columns(pl.Series("__run_release", release, dtype=pl.Int64))
        rows = rows.sort(["__run_release", _TS, _SEQ])
        if callable(getattr(self.function, "process_runs", None)):
            return self._run_all(rows, advances, before, batch, errors)
        emitted: list[tuple[int, int, int, dict[str, Any]]] = []
        touched: list[Key] = []  # keys given a state (each key has one run)
        for key, run in self._runs(rows):
            ts, seq = run[_TS].to_numpy(), run[_SEQ].to_numpy()
            rel = run["__run_release"].to_numpy()
            state, _ = self.states.get(key, (None, None))
            user_rows = run.drop(_TS, _SEQ, _DUE, "__run_release")
            try:
                result = self.function.process_run(KeyRun(key, ts, user_rows), state)
                records = [(int(j), dict(r)) for j, r in result.emitted]
            except Exception as exc:  # user code may raise anything
                for j, row in enumerate(user_rows.iter_rows(named=True)):
                    wm, last = self._stamp(int(rel[j]), advances, before, batch)
                    errors.add_exception(row, exc, wm=wm, seq=last, ts=int(ts[j]))
                continue
            if result.state is None:
                self.states.pop(key, None)
            else:
                self.states[key] = (result.state, result.expires_at)
                touched.append(key)
            emitted.extend((int(rel[j]), int(ts[j]), int(seq[j]), r) for j, r in records)
        self._expire_at(touched, [self.states[k][1] for k in touched])
        emitted.sort(key=lambda e: e[:3])
        for r, t, _, record in emitted:
            wm, last = self._stamp(r, advances, before, batch)
            out.append(record, t, wm, last)
        return None

    def _run_all(self, rows: pl.DataFrame, advances: np.ndarray, before: int, batch: Batch,
                 errors: ErrorCollector) -> Batch | None:
        """``process_runs`` over every key's runs at once (see the module docstring); the
        emitted rows as a batch (None: nothing emitted)."""
        for f in self.key_fields:
            if f not in rows.columns:
                rows = rows.with_columns(pl.lit(None).alias(f))
        groups = (rows.select(self.key_fields).with_row_index("__run_row")
                  .group_by(self.key_fields, maintain_order=True).agg(pl.col("__run_row")))
        order = groups["__run_row"].explode().to_numpy()
        starts = np.zeros(groups.height + 1, dtype=np.int64)
        np.cumsum(groups["__run_row"].list.len().to_numpy(), out=starts[1:])
        keys = _keys(groups.select(self.key_fields))
        rows = rows[order]
        ts, seq = rows[_TS].to_numpy(), rows[_SEQ].to_numpy()
        rel = rows["__run_release"].to_numpy()
        user_rows = rows.drop(_TS, _SEQ, _DUE, "__run_release")
        states = [self.states.get(k, (None, None))[0] for k in keys]
        runs = KeyRuns(keys, states, starts, ts, user_rows)
        try:
            result = self.function.process_runs(runs)
            new_states, expires = list(result.states), list(result.expires_at)
            if len(new_states) != len(keys) or len(expires) != len(keys):
                raise ValueError(f"process_runs returned {len(new_states)} states and "
                                 f"{len(expires)} expiries for {len(keys)} keys")
            emitted = result.emitted
            index = (np.arange(user_rows.height, dtype=np.int64) if result.index is None
                     else np.asarray(result.index, dtype=np.int64))
            if len(index) != emitted.height:
                raise ValueError(f"process_runs emitted {emitted.height} rows with "
                                 f"{len(index)} indices")
        except Exception:  # user code may raise anything: run by run, to isolate the runs
            new_states = None
        if new_states is None:  # outside the handler: errors do not chain to this exception
            return self._run_each(runs, rel, seq, advances, before, batch, errors)
        self.states.update(zip(keys, zip(new_states, expires, strict=True), strict=True))
        self._expire_at(keys, expires)
        for k in [k for k, s in zip(keys, new_states, strict=True) if s is None]:
            del self.states[k]  # forgotten
        return self._emitted_batch(emitted, index, rel, ts, seq, advances, before, batch)

    def _run_each(self, runs: KeyRuns, rel: np.ndarray, seq: np.ndarray,
                  advances: np.ndarray, before: int, batch: Batch,
                  errors: ErrorCollector) -> Batch | None:
        """``process_run`` key by key (after ``process_runs`` raised)."""
        frames, indices, touched = [], [], []
        for i, key in enumerate(runs.keys):
            a = int(runs.starts[i])
            run = runs.run(i)
            try:
                result = self.function.process_run(run, runs.states[i])
                records = [(int(j), dict(r)) for j, r in result.emitted]
            except Exception as exc:  # user code may raise anything
                for j, row in enumerate(run.rows.iter_rows(named=True)):
                    wm, last = self._stamp(int(rel[a + j]), advances, before, batch)
                    errors.add_exception(row, exc, wm=wm, seq=last, ts=int(run.ts[j]))
                continue
            if result.state is None:
                self.states.pop(key, None)
            else:
                self.states[key] = (result.state, result.expires_at)
                touched.append(key)
            if records:
                frames.append(frame_from_records([r for _, r in records],
                                                 operator=self.name))
                indices.append(np.array([a + j for j, _ in records], dtype=np.int64))
        self._expire_at(touched, [self.states[k][1] for k in touched])
        if not frames:
            return None
        return self._emitted_batch(pl.concat(frames, how="diagonal_relaxed"),
                                   np.concatenate(indices), rel, runs.ts, seq, advances,
                                   before, batch)

    def _emitted_batch(self, emitted: pl.DataFrame, index: np.ndarray, rel: np.ndarray,
                       ts: np.ndarray, seq: np.ndarray, advances: np.ndarray, before: int,
                       batch: Batch) -> Batch | None:
        """Emitted rows in (advance, event time, arrival, emission) order, stamped as in
        ``_stamp``."""
        if not emitted.height:
            return None
        r, t, s = rel[index], ts[index], seq[index]
        perm = np.lexsort((np.arange(len(index)), s, t, r))
        r, t = r[perm], t[perm]
        wm = np.where(r == 0, before, advances[np.maximum(r - 1, 0)]).astype(np.int64)
        last = (np.where(r == 0, self._last_seq, batch.seq[np.maximum(r - 1, 0)])
                if len(batch.seq) else np.full(len(r), self._last_seq))
        return Batch(data=emitted[perm], wm=wm, seq=last.astype(np.int64),
                     wm_end=batch.wm_end, ts=t.astype(np.int64))

    def _runs(self, rows: pl.DataFrame) -> list[tuple[Key, pl.DataFrame]]:
        """(key, its rows) per key, the rows keeping their order."""
        for f in self.key_fields:
            if f not in rows.columns:
                rows = rows.with_columns(pl.lit(None).alias(f))
        parts = rows.partition_by(self.key_fields, maintain_order=True, as_dict=True)
        return [(tuple(freeze_key(v) for v in key), part) for key, part in parts.items()]

    def _stamp(self, release: int, advances: np.ndarray, before: int,
               batch: Batch) -> tuple[int, int]:
        """(wm, seq) of output released at advance ``release``: the watermark before it
        and the last record processed before it."""
        if release == 0:
            return before, self._last_seq
        return int(advances[release - 1]), int(batch.seq[release - 1])

    def _expire_at(self, keys: list[Key], expires: list[int | None]) -> None:
        """Note the keys' expiries as one chunk (an entry whose key has since a later
        expiry, or is gone, is skipped when it comes due)."""
        if None in expires:
            keys = [k for k, e in zip(keys, expires, strict=True) if e is not None]
            expires = [e for e in expires if e is not None]
        if keys:
            at = np.fromiter(expires, dtype=np.int64, count=len(expires))
            names = np.fromiter(keys, dtype=object, count=len(keys))
            self._expiries.append((int(at.min()), at, names))

    def _forget_expired(self) -> None:
        """Drop the states whose expiry the watermark reached; only the chunks of expiries
        with one due are looked at, in numpy, so a batch does not walk every key held."""
        w, states, kept = self.watermark, self.states, []
        for first, at, names in self._expiries:
            if first > w:
                kept.append((first, at, names))
                continue
            mask = at <= w
            for k in names[mask].tolist():
                held = states.get(k)
                if held is not None and held[1] is not None and held[1] <= w:
                    del states[k]
            if not mask.all():
                rest = at[~mask]
                kept.append((int(rest.min()), rest, names[~mask]))
        self._expiries = kept

    # -- gauges and checkpoints ---------------------------------------------------------
    def state_gauges(self) -> dict[str, int]:
        """Keys with state, no timers (records wait for the watermark instead: ``held``),
        and bytes: the held records' frame plus a fixed cost per key (``state_size``)."""
        keys = len(self.states)
        held = self.held.height if self.held is not None else 0
        frame = self.held.estimated_size() if self.held is not None else 0
        return {"keys": keys, "timers": 0, "held": held,
                "bytes": frame + keys * (DICT_ENTRY_BYTES + KEY_BYTES + USER_VALUE_BYTES)}

    def snapshot(self) -> dict[str, Any]:
        """Held records (a frame), key states, the watermark and the last ``seq``, as data."""
        encode = self.codec.encode if self.codec is not None else (lambda v: v)
        state = {
            "watermark": self.watermark,
            "last_seq": self._last_seq,
            "held": self.held,
            "states": [[k, encode(s), exp] for k, (s, exp) in self.states.items()],
            "counters": self.counters,
        }
        return round_trip(state, f"state of {self.name!r}")

    def restore(self, state: dict[str, Any]) -> None:
        state = round_trip(state, f"state of {self.name!r}")
        decode = self.codec.decode if self.codec is not None else (lambda v: v)
        self.watermark = state["watermark"]
        self._last_seq = state["last_seq"]
        self.held = state["held"]
        self.states = {tuple(k): (decode(s), exp) for k, s, exp in state["states"]}
        self._expiries = []
        self._expire_at(list(self.states), [exp for _, exp in self.states.values()])
        self.counters = state["counters"]
