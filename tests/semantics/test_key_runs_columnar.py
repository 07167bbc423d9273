"""The columnar form of a process step over runs (``process_runs``, ``semantics/key_runs.py``):
the same output, stamps and states as ``process_run`` run by run, for any cut of the input
into batches and any watermark; and an exception falls back to run by run."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from surestream.apps.payments.fraud import FraudIndicators
from surestream.model.batch import POS_INF, Batch
from surestream.model.steps import ProcessStep
from surestream.semantics.key_runs import KeyRun, KeyRunOperator, KeyRuns, RunResult, RunsResult
from surestream.semantics.process import build_process_operator


class Odd:
    """Per key: a running sum of ``v``; emits (only) each odd ``v`` with the sum so far;
    forgets the key 50 ms after its last record, or while the sum is 0."""

    def process_run(self, run: KeyRun, state: Any) -> RunResult:
        if (run.rows["v"] == 13).any():
            raise ValueError("unlucky v")
        total = state or 0
        out = []
        for j, v in enumerate(run.rows["v"].to_list()):
            total += v
            if v % 2:
                out.append((j, {"k": run.key[0], "v": v, "sum": total}))
        return RunResult(total or None, out, expires_at=int(run.ts.max()) + 50)  # 0: forget


class OddColumnar(Odd):
    def process_runs(self, runs: KeyRuns) -> RunsResult:
        if (runs.rows["v"] == 13).any():
            raise ValueError("unlucky v")
        v = runs.rows["v"].to_numpy()
        starts = runs.starts
        before = np.repeat(np.array([s or 0 for s in runs.states], dtype=np.int64),
                           np.diff(starts))
        cum = np.cumsum(v)
        run_base = np.repeat(np.concatenate([[0], cum])[starts[:-1]], np.diff(starts))
        sums = before + cum - run_base
        odd = np.flatnonzero(v % 2)
        ends = starts[1:] - 1
        emitted = pl.DataFrame({"k": runs.rows["k"].to_numpy()[odd], "v": v[odd],
                                "sum": sums[odd]})
        newest = [int(runs.ts[a:b].max()) + 50 for a, b in zip(starts[:-1], starts[1:],
                                                                 strict=True)]
        return RunsResult([int(s) or None for s in sums[ends]], newest, emitted, index=odd)


class FraudRunByRun:
    """The fraud function without its columnar form."""

    def __init__(self) -> None:
        self.inner = FraudIndicators()

    def open(self, params: dict[str, Any]) -> None:
        self.inner.open({**params, "window_ms": 30, "velocity_threshold": 2})

    def process_run(self, run: KeyRun, state: Any) -> RunResult:
        return self.inner.process_run(run, state)


class FraudColumnar(FraudRunByRun):
    def process_runs(self, runs: KeyRuns) -> RunsResult:
        return self.inner.process_runs(runs)


def run(function: type, key: str, records: list[tuple[str, int, int]], cuts: list[int],
        lateness: int) -> tuple[list[Any], dict[Any, Any]]:
    op = build_process_operator(ProcessStep(name="p", key_fields=[key], function=function),
                                "test")
    assert isinstance(op, KeyRunOperator)
    outs: list[Any] = []
    bounds = sorted({0, len(records), *[c % (len(records) + 1) for c in cuts]})
    high = -1
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        part = records[a:b]
        wm = []
        for _, t, _ in part:
            wm.append(max(high - lateness, -1))
            high = max(high, t)
        batch = Batch.from_rows(
            [{key: k, "v": v, "amount_cents": v * 40_000} for k, _, v in part],
            ts=[t for _, t, _ in part], wm=wm, seq=range(a, b),
            wm_end=max(high - lateness, -1))
        outs.append(op.process(batch))
    outs.append(op.process(Batch.empty(POS_INF, schema={key: str, "v": int,
                                                        "amount_cents": int})))
    flat = []
    for out in outs:
        main = out["main"]
        flat += list(zip(main.data.to_dicts(), main.ts.tolist(), main.wm.tolist(),
                         main.seq.tolist(), strict=True))
        if "errors" in out:
            varying = ("error_time", "traceback")
            flat += [tuple(sorted((k, str(v)) for k, v in e.items() if k not in varying))
                     for e in out["errors"].data.to_dicts()]
    return flat, dict(op.states)


records = st.lists(st.tuples(st.sampled_from("abcd"), st.integers(0, 120),
                             st.integers(0, 15)), max_size=40)


@settings(max_examples=150, deadline=None)
@given(records, st.lists(st.integers(0, 40), max_size=6), st.integers(0, 40))
def test_process_runs_equals_process_run_for_any_cut(recs, cuts, lateness) -> None:
    expected = run(Odd, "k", recs, [], lateness)
    assert run(OddColumnar, "k", recs, cuts, lateness) == run(Odd, "k", recs, cuts, lateness)
    # the output does not depend on the cut either (no late records: lateness covers all)
    if lateness >= 120:
        assert run(OddColumnar, "k", recs, cuts, lateness)[0] == expected[0]


@settings(max_examples=150, deadline=None)
@given(records, st.lists(st.integers(0, 40), max_size=6), st.integers(0, 40))
def test_fraud_columnar_equals_run_by_run_for_any_cut(recs, cuts, lateness) -> None:
    recs = [(k, t, v % 3) for k, t, v in recs]
    key = "sender_account"
    columnar = run(FraudColumnar, key, recs, cuts, lateness)
    assert columnar == run(FraudRunByRun, key, recs, cuts, lateness)
    if lateness >= 120:  # nothing late: independent of the cut as well
        assert columnar == run(FraudColumnar, key, recs, [], lateness)


def test_an_exception_falls_back_to_run_by_run() -> None:
    recs = [("a", 1, 1), ("b", 2, 13), ("a", 3, 3), ("c", 4, 5)]
    flat, _ = run(OddColumnar, "k", recs, [], 0)
    assert flat == run(Odd, "k", recs, [], 0)[0]
    assert [r[0] for r in flat if isinstance(r[0], dict)] == [
        {"k": "a", "v": 1, "sum": 1}, {"k": "a", "v": 3, "sum": 4}, {"k": "c", "v": 5, "sum": 5}]
    assert sum("unlucky v" in str(r) for r in flat) == 1  # b's run alone


@pytest.mark.parametrize("function", [Odd, OddColumnar])
def test_no_release_emits_an_empty_batch(function: type) -> None:
    op = build_process_operator(ProcessStep(name="p", key_fields=["k"], function=function),
                                "test")
    out = op.process(Batch.from_rows([{"k": "a", "v": 1}], ts=[10], wm=[0], seq=[0],
                                     wm_end=0))
    assert out["main"].data.height == 0


@pytest.mark.parametrize("function", [Odd, OddColumnar])
def test_a_later_expiry_keeps_the_state_and_a_restore_keeps_expiries(function: type) -> None:
    def op_() -> KeyRunOperator:
        op = build_process_operator(ProcessStep(name="p", key_fields=["k"],
                                                function=function), "test")
        assert isinstance(op, KeyRunOperator)
        return op

    def at(t: int, wm_end: int, seq: int) -> Batch:
        return Batch.from_rows([{"k": "a", "v": 1}], ts=[t], wm=[wm_end - 1], seq=[seq],
                               wm_end=wm_end)

    op = op_()
    op.process(at(1, 2, 0))  # a expires at 51
    op.process(at(40, 41, 1))  # now at 90
    op.process(Batch.empty(60, schema={"k": str, "v": int}))
    assert op.states[("a",)] == (2, 90)  # the entry for 51 is stale
    restored = op_()
    restored.restore(op.snapshot())
    for o in (op, restored):
        o.process(Batch.empty(89, schema={"k": str, "v": int}))
        assert ("a",) in o.states
        o.process(Batch.empty(90, schema={"k": str, "v": int}))
        assert o.states == {}
