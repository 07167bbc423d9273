"""Process steps over runs (``semantics/key_runs.py``): release by watermark, order, errors,
expiry and checkpoints, with small functions written here."""

from __future__ import annotations

from typing import Any

import pytest

from surestream.model.batch import POS_INF, Batch
from surestream.model.steps import ProcessStep
from surestream.model.user_code import UserCodeError, check_process_function
from surestream.semantics.key_runs import KeyRun, KeyRunOperator, RunResult
from surestream.semantics.process import build_process_operator


class Echo:
    """Emits every record it is given with the run it came in (per key, a run count)."""

    def process_run(self, run: KeyRun, state: Any) -> RunResult:
        if (run.rows["v"] < 0).any():
            raise ValueError("negative v")
        calls = (state or 0) + 1
        return RunResult(calls, [(j, {"k": run.key[0], "v": v, "call": calls})
                                 for j, v in enumerate(run.rows["v"].to_list())],
                         expires_at=int(run.ts[-1]) + 100)


def operator() -> KeyRunOperator:
    op = build_process_operator(ProcessStep(name="echo", key_fields=["k"], function=Echo),
                                "test")
    assert isinstance(op, KeyRunOperator)
    return op


def batch(rows: list[tuple[str, int, int]], wm: list[int], wm_end: int, seq0: int = 0) -> Batch:
    return Batch.from_rows([{"k": k, "v": v} for k, _, v in rows], ts=[t for _, t, _ in rows],
                           wm=wm, seq=range(seq0, seq0 + len(rows)), wm_end=wm_end)


def test_records_wait_for_the_watermark_and_leave_in_event_time_order() -> None:
    op = operator()
    out = op.process(batch([("a", 30, 1), ("b", 20, 2), ("a", 10, 3), ("a", 25, 4)],
                           wm=[0, 0, 5, 5], wm_end=26))
    # released at the end of the batch (W 26): a's 10, 25 in one run; b's 20; 30 waits
    assert out["main"].data.to_dicts() == [{"k": "a", "v": 3, "call": 1},
                                           {"k": "b", "v": 2, "call": 1},
                                           {"k": "a", "v": 4, "call": 1}]
    assert out["main"].ts.tolist() == [10, 20, 25]
    assert out["main"].wm.tolist() == [5, 5, 5]  # the watermark before the advance
    assert out["main"].seq.tolist() == [3, 3, 3]  # the last record before it
    out = op.process(Batch.empty(POS_INF, schema={"k": str, "v": int}))
    assert out["main"].data.to_dicts() == [{"k": "a", "v": 1, "call": 2}]


def test_an_exception_sends_the_run_to_errors_and_keeps_the_state() -> None:
    op = operator()
    out = op.process(batch([("a", 1, 1), ("a", 2, -1), ("b", 3, 5)], wm=[0, 0, 0],
                           wm_end=10))
    assert [r["k"] for r in out["main"].data.to_dicts()] == ["b"]
    errors = out["errors"].data.to_dicts()
    assert len(errors) == 2 and all("negative v" in e["error_message"] for e in errors)
    assert op.counters["errors"] == 2
    out = op.process(batch([("a", 20, 7)], wm=[10], wm_end=30, seq0=3))
    assert out["main"].data.to_dicts() == [{"k": "a", "v": 7, "call": 1}]  # no state kept


def test_state_is_dropped_once_the_watermark_passes_its_expiry() -> None:
    op = operator()
    op.process(batch([("a", 1, 1)], wm=[0], wm_end=50))
    assert ("a",) in op.states  # expires at 101
    op.process(batch([("b", 120, 1)], wm=[50], wm_end=101, seq0=1))
    assert ("a",) not in op.states


def test_snapshot_and_restore_keep_held_records_and_states() -> None:
    op = operator()
    op.process(batch([("a", 1, 1), ("a", 40, 2)], wm=[0, 0], wm_end=10))
    restored = operator()
    restored.restore(op.snapshot())
    out = restored.process(Batch.empty(POS_INF, schema={"k": str, "v": int}))
    assert out["main"].data.to_dicts() == [{"k": "a", "v": 2, "call": 2}]


def test_validation_checks_the_process_run_signature() -> None:
    class Wrong:
        def process_run(self, run: Any) -> RunResult: ...

    check_process_function(Echo)
    with pytest.raises(UserCodeError, match=r"process_run\(run, state\)"):
        check_process_function(Wrong)
