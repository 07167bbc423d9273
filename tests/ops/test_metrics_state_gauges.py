"""Operators' state gauges (``state_gauges()``): what the state-size metrics show.

Each operator is fed records whose keys, windows and timers the test knows, then the
watermark is moved past the state's end of life: the gauges must count exactly that state
while it lives and fall back to nothing after (bytes: more while more is held)."""

from __future__ import annotations

import numpy as np
import polars as pl

from surestream.model.batch import NEG_INF, POS_INF, Batch
from surestream.model.steps import KeyedDedupStep, ProcessStep, WindowStep
from surestream.semantics.dedup import KeepFirstDedup, KeepLastDedup
from surestream.semantics.process import KeyedProcessFunction, build_process_operator
from surestream.semantics.windows import build_window_operator


def batch(keys: list[str], ts: list[int], wm: int = NEG_INF, wm_end: int | None = None,
          seq0: int = 0) -> Batch:
    return Batch(data=pl.DataFrame({"k": keys, "v": [1.0] * len(keys)}),
                 ts=np.array(ts, dtype=np.int64), wm=np.full(len(keys), wm, dtype=np.int64),
                 seq=np.arange(seq0, seq0 + len(keys), dtype=np.int64),
                 wm_end=wm if wm_end is None else wm_end)


def keys_batch(n: int, t: int = 1_000, seq0: int = 0) -> Batch:
    return batch([f"key-{i}" for i in range(n)], [t] * n, seq0=seq0)


def dedup_step(strategy: str) -> KeyedDedupStep:
    return KeyedDedupStep(name="dedup", key_fields=["k"], time_window_ms=100,
                          state_ttl_ms=1_000, strategy=strategy)


def test_keep_first_dedup_counts_live_keys_until_their_ttl():
    op = KeepFirstDedup(dedup_step("first"), "p")
    assert op.state_gauges()["keys"] == 0
    op.process(keys_batch(300))
    op.process(keys_batch(300, t=1_010, seq0=300))  # the same keys again: duplicates
    small = op.state_gauges()
    assert small["keys"] == 300
    op.process(batch([f"other-{i}" for i in range(5_000)], [1_020] * 5_000, seq0=600))
    big = op.state_gauges()
    assert big["keys"] == 5_300
    assert big["bytes"] > small["bytes"] > 0
    op.process(batch([], [], wm=POS_INF))  # every state expires at the end of input
    assert op.state_gauges()["keys"] == 0


def test_keep_last_dedup_counts_keys_held_and_emitted_until_their_ttl():
    op = KeepLastDedup(dedup_step("last"), "p")
    op.process(keys_batch(40))
    op.process(keys_batch(40, t=1_010, seq0=40))
    held = op.state_gauges()
    assert held["keys"] == 40
    assert held["bytes"] > 0
    op.process(batch([], [], wm=1_500))  # windows emitted (t0 + 100), state kept (ttl)
    assert op.state_gauges()["keys"] == 40
    op.process(batch([], [], wm=2_500))  # t0 + ttl passed
    assert op.state_gauges() == {"keys": 0, "bytes": 0}


def window_step(kind: str) -> WindowStep:
    extra = {"gap_ms": 100} if kind == "session" else {"size_ms": 1_000}
    return WindowStep(name="w", kind=kind, key_fields=["k"], allowed_lateness_ms=500,
                      late_output_tag="late", aggregations={"n": "count()", "s": "sum(v)"},
                      **extra)


def test_tumbling_windows_count_keys_and_pending_windows_until_cleanup():
    op = build_window_operator(window_step("tumbling"), "p")
    # 3 keys in window [0, 1000), 2 of them also in [1000, 2000)
    op.process(batch(["a", "b", "c", "a", "b"], [10, 20, 30, 1_010, 1_020]))
    g = op.state_gauges()
    assert (g["keys"], g["windows"]) == (3, 5)
    assert g["bytes"] > 0
    # W = 1200: the first window fired, kept for its allowed lateness (cleanup at 1499)
    op.process(batch([], [], wm=1_200))
    assert (op.state_gauges()["keys"], op.state_gauges()["windows"]) == (3, 5)
    op.process(batch([], [], wm=1_600))  # the first window's cleanup passed
    assert (op.state_gauges()["keys"], op.state_gauges()["windows"]) == (2, 2)
    restored = build_window_operator(window_step("tumbling"), "p")
    restored.restore(op.snapshot())
    assert restored.state_gauges()["keys"] == 2
    assert restored.state_gauges()["windows"] == 2
    op.process(batch([], [], wm=POS_INF))
    g = op.state_gauges()
    assert (g["keys"], g["windows"]) == (0, 0)


def test_session_windows_count_keys_and_live_sessions():
    op = build_window_operator(window_step("session"), "p")
    # a: two sessions (gap 100), b: one
    op.process(batch(["a", "a", "b", "a"], [10, 50, 20, 500]))
    g = op.state_gauges()
    assert (g["keys"], g["windows"]) == (2, 3)
    assert g["bytes"] > 0
    op.process(batch([], [], wm=POS_INF))
    g = op.state_gauges()
    assert (g["keys"], g["windows"]) == (0, 0)


class RemembersAndWakes(KeyedProcessFunction):
    """Keeps a count per key and one event-time timer per record; forgets the key at it."""

    def process_element(self, record, ctx):
        st = ctx.value_state("n")
        st.update((st.value() or 0) + 1)
        ctx.timers.register_event_time_timer(ctx.timestamp + 100)

    def on_timer(self, timestamp, ctx):
        ctx.value_state("n").clear()


def test_process_counts_keys_with_state_and_pending_timers():
    step = ProcessStep(name="proc", key_fields=["k"], function=RemembersAndWakes)
    op = build_process_operator(step, "p")
    op.process(batch(["a", "b", "c", "a"], [10, 20, 30, 40]))
    g = op.state_gauges()
    assert (g["keys"], g["timers"]) == (3, 4)  # a's two timers are at different times
    assert g["bytes"] > 0
    # timers at 110 (a) and 120 (b) fire and clear their keys' state: c keeps its
    # state; a's second timer (140) and c's (130) wait
    op.process(batch([], [], wm=125))
    g = op.state_gauges()
    assert (g["keys"], g["timers"]) == (1, 2)
    op.process(batch([], [], wm=POS_INF))
    assert op.state_gauges() == {"keys": 0, "timers": 0, "bytes": 0}
