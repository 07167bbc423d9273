"""The ``data_quality`` step (model: ``model/quality_rules.py``; docs/etl.md).

One batch at a time, every rule is evaluated over the whole batch, column-wise:

1. each rule gives a failure mask (``quality_checks`` for the built-in rules; a SQL
   condition; a user's vectorized function; ``unique`` within a window through a keep-first
   dedup state). A record an ``expression`` or ``function`` rule cannot evaluate (a value
   its SQL cannot cast, an exception in user code) goes to ``errors`` -- found by bisection,
   so a bad value costs its own record only, at any batch size -- and to no other place;
2. ``abort``: if any other record fails an abort rule, the run fails naming the rule, the
   batch's count of such records and one of them (nothing of the batch is emitted);
3. ``quarantine``: a record failing quarantine rules leaves the stream once, for the
   step's quarantine tag, naming the *first* quarantine rule it failed in rule order (the
   rules' order is the user's priority), with that rule's severity and reason;
4. ``warn`` and ``continue`` rules let their failing records pass; ``warn`` logs one line
   per rule per batch with its count.

So every record ends in exactly one of: the stream, the quarantine output, errors (or the
run fails). Per rule, the step counts the records it checked (those of the batch not sent
to errors) and those that failed it (a record failing two rules counts for both): the
``surestream_dq_*`` metrics and the run summary. The counts are checkpointed with the
step, so they cover a whole job across restarts.

``unique`` within a batch depends on where the input is cut into batches (the same record
may pass at one batch size and fail at another); it is still the rule a user wants for a
batch that must not repeat a key on its own -- a micro-batch written as one upsert, a file
loaded whole -- and it keeps no state. ``unique`` within ``{window_ms}`` is batch-size
independent: event time, keep-first dedup's rule and state (``dedup_first``): a record
whose value passed less than ``window_ms`` before (event time) fails; a value's state is
dropped once the watermark is ``window_ms`` past its first record.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from surestream.io import ChunkedState
from surestream.model.batch import Batch
from surestream.model.quality_rules import (
    QUARANTINE_COLUMNS,
    DataQualityStep,
    QualityRule,
    UniqueWindow,
)
from surestream.model.steps import KeyedDedupStep
from surestream.semantics.dedup_first import KeepFirstDedup
from surestream.semantics.errors import (
    EXPRESSION_ERROR,
    USER_FUNCTION_ERROR,
    describe_exception,
    error_batch,
    to_raw,
)
from surestream.semantics.late import move_aside
from surestream.semantics.operator import ERRORS, MAIN, Outputs
from surestream.semantics.process import wall_clock_ms
from surestream.semantics.quality_checks import BUILT_IN, key_text, unique_in_batch
from surestream.semantics.row_isolation import isolate_failures
from surestream.semantics.sql_processing_time import StampedSql
from surestream.semantics.user_functions import resolve_callable
from surestream.semantics.watermarks import Clock

log = logging.getLogger("surestream.quality")

#: the layout of the step's checkpointed state
STATE_FORMAT = 1


class DataQualityAbort(RuntimeError):
    """A record failed a rule with ``on_failure: abort``: the run fails (exit 1)."""


@dataclass
class RuleOutcome:
    """One rule over one batch: which rows fail, and which it could not evaluate."""

    fail: np.ndarray
    errors: list[tuple[int, Exception]] = field(default_factory=list)
    error_type: str = EXPRESSION_ERROR


@dataclass
class RuleTally:
    """A rule's counts over the whole job (checkpointed)."""

    checked: int = 0
    failed: int = 0
    quarantined: int = 0


class DataQualityOperator:
    """Evaluates a ``data_quality`` step's rules and routes each record (module docstring)."""

    STATE_FORMAT = STATE_FORMAT

    def __init__(self, step: DataQualityStep, pipeline: str, clock: Clock | None = None
                 ) -> None:
        self.step = step
        self.name = step.name
        self.pipeline = pipeline
        self.rules = list(step.rules)
        self.counters = {"dq_quarantined": 0, "errors": 0}
        self.tallies = {r.name: RuleTally() for r in self.rules}
        exprs = [r.sql for r in self.rules if r.rule == "expression"]
        self.sql = StampedSql([str(s) for s in exprs], clock or wall_clock_ms)
        self._sql_index = {r.name: i for i, r in enumerate(
            r for r in self.rules if r.rule == "expression")}
        self._functions: dict[str, Callable[[pl.DataFrame], Any]] = {
            r.name: resolve_callable(r.function) for r in self.rules if r.rule == "function"}
        #: rule name -> the keep-first state of a ``unique`` rule within a window
        self.windows: dict[str, KeepFirstDedup] = {
            r.name: KeepFirstDedup(KeyedDedupStep(
                name=f"{step.name}.{r.name}", key_fields=r.checked_columns,
                time_window_ms=r.within.window_ms, on_null_key="keep"), pipeline)
            for r in self.rules if r.rule == "unique" and isinstance(r.within, UniqueWindow)}

    def output_tags(self) -> set[str]:
        return {self.step.quarantine_output_tag} if self.step.quarantines else set()

    # -- one batch -------------------------------------------------------------------------
    def process(self, batch: Batch) -> Outputs:
        self.sql.begin_batch()
        n = len(batch)
        if n == 0:
            for window in self.windows.values():  # the watermark moves: state expires
                window.process(_keys_only(batch, window.step.key_fields))
            return {MAIN: batch}
        masks = self._built_in_masks(batch.data)
        outcomes = [RuleOutcome(masks[i]) if i in masks else self._evaluate(rule, batch)
                    for i, rule in enumerate(self.rules)]
        errored = np.zeros(n, dtype=bool)
        error_rows: dict[int, tuple[QualityRule, RuleOutcome, Exception]] = {}
        for rule, outcome in zip(self.rules, outcomes, strict=True):
            for row, exc in outcome.errors:
                if not errored[row]:
                    errored[row] = True
                    error_rows[row] = (rule, outcome, exc)
        ok = ~errored
        checked = int(ok.sum())
        self._abort_if_any(batch, outcomes, ok)
        owner = np.full(n, -1, dtype=np.int64)  # the quarantine rule a row goes out by
        for i, (rule, outcome) in enumerate(zip(self.rules, outcomes, strict=True)):
            failed = outcome.fail & ok
            tally = self.tallies[rule.name]
            tally.checked += checked
            k = int(failed.sum())
            tally.failed += k
            if rule.on_failure == "quarantine":
                mine = failed & (owner < 0)
                owner[mine] = i
                tally.quarantined += int(mine.sum())
            elif rule.on_failure == "warn" and k:
                log.warning("data_quality step %r: rule %r (%s): %d of %d record(s) failed "
                            "(on_failure: warn; passed on); e.g. %s", self.name, rule.name,
                            rule.severity, k, checked,
                            self._reasons(batch, rule, np.flatnonzero(failed)[:1])[0])
        quarantined = owner >= 0
        if not error_rows and not quarantined.any():
            return {MAIN: batch}  # the common case: no copy
        out: Outputs = {MAIN: batch.filter(ok & ~quarantined)}
        if quarantined.any():
            self.counters["dq_quarantined"] += int(quarantined.sum())
            out[self.step.quarantine_output_tag] = self._quarantine(batch, owner)
        if error_rows:
            out[ERRORS] = self._errors(batch, error_rows)
        return out

    def _built_in_masks(self, frame: pl.DataFrame) -> dict[int, np.ndarray]:
        """Rule index -> failure mask of every rule decided by the frame alone (the
        built-in rules and ``unique`` within a batch), in one ``select``: polars runs
        the expressions together, in parallel."""
        exprs = {}
        for i, rule in enumerate(self.rules):
            if rule.rule in BUILT_IN:
                exprs[i] = BUILT_IN[rule.rule](frame, rule)[0]
            elif rule.rule == "unique" and rule.name not in self.windows:
                exprs[i] = unique_in_batch(frame, rule)[0]
        if not exprs:
            return {}
        masks = frame.select([e.fill_null(False).alias(f"r{i}") for i, e in exprs.items()])
        return {i: masks.get_column(f"r{i}").to_numpy().astype(bool) for i in exprs}

    def _evaluate(self, rule: QualityRule, batch: Batch) -> RuleOutcome:
        """A rule the frame alone does not decide: a window, a SQL condition, user code."""
        frame = batch.data
        if rule.rule == "unique":
            window = self.windows[rule.name]
            kept = window.process(_keys_only(batch, rule.checked_columns))[MAIN]
            fail = np.ones(len(batch), dtype=bool)
            fail[kept.seq] = False
            return RuleOutcome(fail)
        if rule.rule == "expression":
            expr = self.sql.exprs()[self._sql_index[rule.name]]
            return _isolated(frame, lambda f: _condition(f, expr), EXPRESSION_ERROR,
                             schema_decides=True)
        function = self._functions[rule.name]
        return _isolated(frame, lambda f: _user_check(f, function, rule), USER_FUNCTION_ERROR,
                         schema_decides=False)

    def _abort_if_any(self, batch: Batch, outcomes: list[RuleOutcome], ok: np.ndarray
                      ) -> None:
        """Fail the run at the first abort rule (in rule order) any record fails."""
        for rule, outcome in zip(self.rules, outcomes, strict=True):
            if rule.on_failure != "abort":
                continue
            rows = np.flatnonzero(outcome.fail & ok)
            if rows.size:
                self.tallies[rule.name].failed += int(rows.size)
                first = int(rows[0])
                reason = self._reasons(batch, rule, rows[:1])[0]
                raise DataQualityAbort(
                    f"data_quality step {self.name!r}: rule {rule.name!r} "
                    f"(severity {rule.severity}, on_failure: abort) failed for "
                    f"{rows.size} record(s) of a batch of {len(batch)}; e.g. {reason}: "
                    f"{to_raw(batch.data.row(first, named=True))[:500]} -- fix the input, "
                    "or set the rule's on_failure to quarantine, warn or continue")

    # -- what failing records carry -----------------------------------------------------------
    def _reasons(self, batch: Batch, rule: QualityRule, rows: np.ndarray) -> list[str]:
        """A person's reason for each of ``rows`` failing ``rule`` (failing rows only)."""
        if not rows.size:
            return []
        frame = batch.data[rows]
        if rule.rule in BUILT_IN:
            _, reason = BUILT_IN[rule.rule](frame, rule)
            return frame.select(reason.alias("r")).to_series().to_list()
        if rule.rule == "unique":
            cols = rule.checked_columns
            if isinstance(rule.within, UniqueWindow):
                text = pl.format("{} already seen within {} ms of event time",
                                 key_text(cols, frame), pl.lit(rule.within.window_ms))
            else:
                text = pl.format("{} already seen in this batch", key_text(cols, frame))
            return frame.select(text.alias("r")).to_series().to_list()
        if rule.rule == "expression":
            return [f"condition {rule.sql} is not true"] * rows.size
        return [f"check {function_name(rule.function)} returned false"] * rows.size

    def _quarantine(self, batch: Batch, owner: np.ndarray) -> Batch:
        """The quarantined records, in input order, with the rule that sent each."""
        rows = np.flatnonzero(owner >= 0)
        names = np.array([r.name for r in self.rules], dtype=object)
        severities = np.array([r.severity for r in self.rules], dtype=object)
        reasons = np.empty(len(batch), dtype=object)
        for i in np.unique(owner[rows]).tolist():
            mine = np.flatnonzero(owner == i)
            reasons[mine] = self._reasons(batch, self.rules[i], mine)
        part = batch.filter(owner >= 0)
        data = move_aside(part.data, frozenset(QUARANTINE_COLUMNS)).with_columns(
            pl.Series("dq_rule", names[owner[rows]].tolist(), dtype=pl.String),
            pl.Series("dq_severity", severities[owner[rows]].tolist(), dtype=pl.String),
            pl.Series("dq_reason", reasons[rows].tolist(), dtype=pl.String))
        return part.with_data(data)

    def _errors(self, batch: Batch, error_rows: dict[int, tuple[QualityRule, RuleOutcome,
                                                                  Exception]]) -> Batch:
        rows = np.array(sorted(error_rows), dtype=np.int64)
        types, messages, traces, kinds = [], [], [], []
        for row in rows.tolist():
            rule, outcome, exc = error_rows[row]
            kind, text, trace = describe_exception(exc)
            types.append(outcome.error_type)
            messages.append(f"data_quality rule {rule.name!r} could not check the record: "
                            f"{kind}: {text.splitlines()[0] if text else ''}")
            traces.append(trace)
            kinds.append(kind)
        self.counters["errors"] += int(rows.size)
        return error_batch(batch.data[rows], pipeline=self.pipeline, operator=self.name,
                           error_type=types, message=messages, traceback=traces,
                           exception=kinds, wm=batch.wm[rows], seq=batch.seq[rows],
                           wm_end=batch.wm_end,
                           ts=None if batch.ts is None else batch.ts[rows])

    # -- reporting ----------------------------------------------------------------------------
    def quality(self) -> list[dict[str, Any]]:
        """Per rule, for the telemetry snapshot: rule, kind, severity, action and counts."""
        return [{"rule": r.name, "kind": r.rule, "severity": r.severity,
                 "action": r.on_failure, "checked": self.tallies[r.name].checked,
                 "failed": self.tallies[r.name].failed,
                 "quarantined": self.tallies[r.name].quarantined} for r in self.rules]

    def summary_lines(self) -> list[str]:
        """The run summary's lines: one per rule with failures over the whole job."""
        lines = []
        for r in self.rules:
            t = self.tallies[r.name]
            if not t.failed:
                continue
            what = {"quarantine": f"{t.quarantined:,} quarantined",
                    "abort": "run aborted", "warn": "passed, warned",
                    "continue": "passed"}[r.on_failure]
            lines.append(f"Data quality {self.name}/{r.name} ({r.rule}, {r.severity}, "
                         f"on_failure {r.on_failure}): {t.failed:,} of {t.checked:,} "
                         f"record(s) failed ({what})")
        return lines

    # -- checkpoints ----------------------------------------------------------------------------
    def snapshot(self) -> ChunkedState:
        head: dict[str, Any] = {
            "format": STATE_FORMAT, "counters": dict(self.counters),
            "tallies": {name: [t.checked, t.failed, t.quarantined]
                        for name, t in self.tallies.items()},
            "sql": self.sql.snapshot(), "windows": {}}
        chunks: dict[str, Any] = {}
        for i, (name, window) in enumerate(self.windows.items()):
            state = window.snapshot()
            prefix = f"u{i}"
            head["windows"][name] = {"prefix": prefix, "head": state.head}
            chunks.update({f"{prefix}-{k}": v for k, v in state.chunks.items()})
        return ChunkedState(head, chunks)

    def restore(self, state: Any) -> None:
        head = state.head if isinstance(state, ChunkedState) else state
        if head.get("format") != STATE_FORMAT:
            raise ValueError(f"data_quality step {self.name!r}: unknown state format "
                             f"{head.get('format')!r}")
        self.counters = {"dq_quarantined": 0, "errors": 0, **head["counters"]}
        for name, (checked, failed, quarantined) in head["tallies"].items():
            if name in self.tallies:  # a rule removed since is forgotten
                self.tallies[name] = RuleTally(checked, failed, quarantined)
        self.sql.restore(head.get("sql") or {})
        chunks = state.chunks if isinstance(state, ChunkedState) else {}
        for name, saved in head["windows"].items():
            window = self.windows.get(name)
            if window is None:
                continue
            prefix = saved["prefix"] + "-"
            window.restore(ChunkedState(saved["head"], {
                k[len(prefix):]: v for k, v in chunks.items() if k.startswith(prefix)}))

    def state_gauges(self) -> dict[str, int]:
        """Keys held by the ``unique`` rules within a window (the step's only state)."""
        if not self.windows:
            return {}
        gauges = [w.state_gauges() for w in self.windows.values()]
        return {"keys": sum(g["keys"] for g in gauges), "bytes": sum(g["bytes"] for g in gauges)}


def function_name(function: Any) -> str:
    """``"pkg.mod:fn"`` as written, or a Python callable's ``module:qualname``."""
    if isinstance(function, str):
        return function
    return f"{getattr(function, '__module__', '?')}:{getattr(function, '__qualname__', function)}"


def _keys_only(batch: Batch, columns: list[str]) -> Batch:
    """The batch's key columns, with each row's position as its ``seq`` (to read back which
    rows a keep-first state kept) and the batch's event time and watermark."""
    if batch.ts is None:
        raise ValueError("a data_quality `unique` rule within a window needs event time; "
                         "put a watermark step before it")
    present = [c for c in columns if c in batch.data.columns]
    return Batch(data=batch.data.select(present), wm=batch.wm,
                 seq=np.arange(len(batch), dtype=np.int64), wm_end=batch.wm_end,
                 ts=batch.ts)


def _condition(frame: pl.DataFrame, expr: pl.Expr) -> np.ndarray:
    """Fails where a SQL condition is not true (false or null)."""
    holds = frame.select(expr).to_series()
    if holds.dtype != pl.Boolean:
        raise TypeError(f"the condition gives {holds.dtype}, not a boolean")
    return ~holds.fill_null(False).to_numpy().astype(bool)


def _user_check(frame: pl.DataFrame, function: Callable[[pl.DataFrame], Any],
                rule: QualityRule) -> np.ndarray:
    """Fails where a user's vectorized check is not true (false or null)."""
    result = function(frame)
    if isinstance(result, np.ndarray):
        result = pl.Series(result)
    if not isinstance(result, pl.Series) or result.dtype != pl.Boolean \
            or len(result) != frame.height:
        got = (f"a {result.dtype} Series of {len(result)}" if isinstance(result, pl.Series)
               else type(result).__name__)
        raise TypeError(f"check {function_name(rule.function)} must return a boolean polars "
                        f"Series with one value per row ({frame.height}); got {got}")
    return ~result.fill_null(False).to_numpy().astype(bool)


def _isolated(frame: pl.DataFrame, check: Callable[[pl.DataFrame], np.ndarray],
              error_type: str, *, schema_decides: bool) -> RuleOutcome:
    """``check`` over the frame; when it raises, the rows that fail alone are found by
    bisection (``row_isolation``) and reported, the others decided. ``schema_decides``: a
    failure on the columns alone (no rows) fails every row at once (a SQL condition naming
    a missing column); a user function is always bisected."""
    n = frame.height
    try:
        return RuleOutcome(check(frame), error_type=error_type)
    except Exception:  # noqa: BLE001, S110 - find which records do not fit, below
        pass
    if schema_decides:
        try:
            check(frame.clear())
        except Exception as e:  # noqa: BLE001 - a failure of the schema, not of a value
            return RuleOutcome(np.zeros(n, dtype=bool), [(row, e) for row in range(n)],
                               error_type)
    isolated = isolate_failures(n, lambda lo, hi: check(frame.slice(lo, hi - lo)),
                                whole_failed=True)
    fail = np.zeros(n, dtype=bool)
    for lo, hi, part in isolated.results:
        fail[lo:hi] = part
    return RuleOutcome(fail, list(isolated.failures), error_type)
