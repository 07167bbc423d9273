"""SEMANTICS §4, keyed deduplication: hand-computed cases and properties against a reference.

Records are fed straight to the operators with explicit event times and watermarks (``wm``
is the watermark *before* each record), so every TTL boundary is under the test's control.
"""

from __future__ import annotations

import pickle
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from itertools import pairwise
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from surestream.io import ChunkedState
from surestream.model.batch import NEG_INF, POS_INF, Batch
from surestream.model.steps import KeyedDedupStep
from surestream.runners.local.checkpoint_store import CheckpointStore
from surestream.semantics import dedup
from surestream.semantics.dedup import KeepFirstDedup, KeepLastDedup, build_dedup_operator
from surestream.semantics.key_index import polars_hash
from surestream.semantics.operator import MAIN


def three_hashes(keys: pl.DataFrame) -> np.ndarray:
    """Every key hashes to one of 3 values: exactness must come from comparing keys."""
    return (polars_hash(keys) % np.uint64(3)).astype(np.int64)


def step(window: int = 10, ttl: int | None = None, fields: Sequence[str] = ("k",),
         strategy: str = "first", tag: str | None = None) -> KeyedDedupStep:
    return KeyedDedupStep(key_fields=list(fields), time_window_ms=window, state_ttl_ms=ttl,
                          strategy=strategy, duplicates_output_tag=tag)


def batch(rows: list[dict], ts: list[int], wm: list[int] | None = None,
          wm_end: int | None = None, seq0: int = 0) -> Batch:
    wm = wm if wm is not None else [NEG_INF] * len(rows)
    data = pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()
    return Batch(data=data, ts=np.array(ts, dtype=np.int64), wm=np.array(wm, dtype=np.int64),
                 seq=np.arange(seq0, seq0 + len(rows), dtype=np.int64),
                 wm_end=wm_end if wm_end is not None else (wm[-1] if wm else NEG_INF))


def ids(out: Batch) -> list:
    return out.data.get_column("id").to_list() if len(out) else []


# -- keep first: hand-computed -----------------------------------------------------------
def test_window_boundary_starts_a_new_window():
    op = KeepFirstDedup(step(window=10), "p")
    ts = [100, 109, 110, 115, 119, 120]
    out = op.process(batch([{"k": "a", "id": i} for i in range(6)], ts))
    # t0=100: 109 dup; 110 = t0 + window starts a window (t0=110): 115, 119 dups; 120 kept
    assert ids(out[MAIN]) == [0, 2, 5]
    assert op.counters["duplicates"] == 3


def test_a_record_earlier_than_the_first_is_a_duplicate():
    op = KeepFirstDedup(step(window=10), "p")
    out = op.process(batch([{"k": "a", "id": 0}, {"k": "a", "id": 1}, {"k": "a", "id": 2}],
                           [100, 95, 50]))
    assert ids(out[MAIN]) == [0]  # ts < t0 < t0 + window: duplicates, even far earlier


def test_state_expires_at_the_ttl_then_the_key_is_kept_again():
    op = KeepFirstDedup(step(window=10, ttl=20), "p")
    rows = [{"k": "a", "id": i} for i in range(4)]
    # t0 = 100 expires when W >= 120: at W = 119 still a duplicate, at W = 120 kept
    out = op.process(batch(rows, ts=[100, 105, 106, 107], wm=[NEG_INF, 119, 120, 120]))
    assert ids(out[MAIN]) == [0, 2]  # id 2 sets t0 = 106; id 3 (107 < 116) is a duplicate
    assert op.counters["duplicates"] == 2


def test_ttl_expiry_across_batches_frees_state():
    op = KeepFirstDedup(step(window=10, ttl=20), "p")
    op.process(batch([{"k": "a", "id": 0}, {"k": "b", "id": 1}], [100, 130], wm_end=119))
    assert len(op.index) == 2
    op.process(batch([], [], wm_end=120))  # W >= 100 + 20: a's state goes, b's stays
    assert len(op.index) == 1
    out = op.process(batch([{"k": "a", "id": 2}, {"k": "b", "id": 3}], [101, 131],
                           wm=[120, 120]))
    assert ids(out[MAIN]) == [2]
    op.process(batch([], [], wm_end=POS_INF))  # end of input: no state is left
    assert len(op.index) == 0 and op.index.n_slots == 0


def test_multi_field_keys():
    op = KeepFirstDedup(step(fields=("a", "b")), "p")
    rows = [{"a": 1, "b": "x", "id": 0}, {"a": 1, "b": "y", "id": 1},
            {"a": 2, "b": "x", "id": 2}, {"a": 1, "b": "x", "id": 3},
            {"a": 1, "b": "y", "id": 4}]
    out = op.process(batch(rows, [0, 1, 2, 3, 4]))
    assert ids(out[MAIN]) == [0, 1, 2]


def test_null_keys_are_one_key():
    op = KeepFirstDedup(step(fields=("a", "b")), "p")
    rows = [{"a": None, "b": "x", "id": 0}, {"a": None, "b": None, "id": 1},
            {"a": None, "b": "x", "id": 2}, {"a": None, "b": None, "id": 3},
            {"a": 1, "b": None, "id": 4}]
    out = op.process(batch(rows, [0, 1, 2, 3, 4]))
    assert ids(out[MAIN]) == [0, 1, 4]


def test_a_missing_key_column_is_the_null_key():
    op = KeepFirstDedup(step(fields=("k",)), "p")
    first = op.process(batch([{"id": 0}, {"id": 1}], [0, 1]))  # no "k" column at all
    assert ids(first[MAIN]) == [0]
    later = op.process(batch([{"k": None, "id": 2}, {"k": "x", "id": 3}], [2, 3]))
    assert ids(later[MAIN]) == [3]  # null key: a duplicate of id 0


def test_duplicates_go_to_the_audit_tag_and_are_counted():
    op = KeepFirstDedup(step(tag="dups"), "p")
    assert op.output_tags() == {"dups"}
    out = op.process(batch([{"k": "a", "id": 0}, {"k": "a", "id": 1}, {"k": "b", "id": 2},
                            {"k": "a", "id": 3}], [0, 1, 2, 3], wm_end=2))
    assert ids(out[MAIN]) == [0, 2] and ids(out["dups"]) == [1, 3]
    assert out[MAIN].wm_end == out["dups"].wm_end == 2
    assert out["dups"].ts.tolist() == [1, 3] and out["dups"].seq.tolist() == [1, 3]
    clean = op.process(batch([{"k": "c", "id": 4}], [4], seq0=4))
    assert "dups" not in clean and op.counters["duplicates"] == 2


def test_needs_event_time():
    op = KeepFirstDedup(step(), "p")
    with pytest.raises(ValueError, match="watermark step"):
        op.process(Batch.from_rows([{"k": "a"}]))


def test_event_times_near_the_int64_limits_stay_exact():
    op = KeepFirstDedup(step(window=100, ttl=200), "p")
    big = POS_INF - 50  # t0 + window overflows int64
    out = op.process(batch([{"k": "a", "id": 0}, {"k": "a", "id": 1}, {"k": "b", "id": 2},
                            {"k": "b", "id": 3}], [big, big + 10, NEG_INF + 5, NEG_INF + 200]))
    assert ids(out[MAIN]) == [0, 2, 3]
    out = op.process(batch([{"k": "a", "id": 4}], [big + 40], wm=[big]))
    assert ids(out[MAIN]) == []


def test_forced_collisions_keep_keys_apart():
    op = KeepFirstDedup(step(window=10), "p", hash_fn=three_hashes)
    keys = [f"k{i % 40}" for i in range(120)]
    out = op.process(batch([{"k": k, "id": i} for i, k in enumerate(keys)], list(range(120))))
    # k_j comes at ts j, j + 40, j + 80: the later ones are >= t0 + 10, so all are kept
    assert ids(out[MAIN]) == list(range(120))
    dup = op.process(batch([{"k": f"k{j}", "id": j} for j in range(40)], [85 + j // 10
                                                                         for j in range(40)]))
    # t0 of k_j is 80 + j: ts 85 + j // 10 is a duplicate for every j with 85 + j//10 < 90 + j
    assert ids(dup[MAIN]) == []
    assert len(op.index) == 40


def test_many_keys_expire_and_slots_are_compacted():
    op = KeepFirstDedup(step(window=10, ttl=10), "p")
    n = 70_000
    op.process(batch([{"k": i, "id": i} for i in range(n)], list(range(n)), wm_end=n // 2))
    assert len(op.index) == n - (n // 2 - 10 + 1)
    op.process(batch([], [], wm_end=n + 10))  # everything expires: ids are compacted
    assert len(op.index) == 0 and op.index.n_slots == 0
    out = op.process(batch([{"k": 5, "id": 0}, {"k": 5, "id": 1}], [n + 20, n + 21],
                           wm=[n + 10, n + 10]))
    assert ids(out[MAIN]) == [0] and len(op.index) == 1


def test_snapshot_is_picklable_and_restores_state_and_counters():
    op = KeepFirstDedup(step(window=10, ttl=20), "p")
    op.process(batch([{"k": "a", "id": 0}, {"k": "a", "id": 1}, {"k": "b", "id": 2}],
                     [100, 101, 105]))
    state = pickle.loads(pickle.dumps(op.snapshot()))
    fresh = KeepFirstDedup(step(window=10, ttl=20), "p")
    fresh.restore(state)
    assert fresh.counters == {"duplicates": 1}
    out = fresh.process(batch([{"k": "a", "id": 3}, {"k": "b", "id": 4}, {"k": "c", "id": 5}],
                              [109, 116, 0], wm=[119, 125, 125]))
    # a: t0 100, W 119 < 120 -> duplicate; b: t0 105 expired at W 125 -> kept; c new
    assert ids(out[MAIN]) == [4, 5]


@contextmanager
def small_chunks(chunk: int = 2, compact_min: int = 2) -> Iterator[None]:
    """Snapshot chunks of ``chunk`` slots, and compaction from ``compact_min`` dead ids, so
    that small tests complete chunks and renumber slots."""
    with mock.patch.object(dedup, "_CHUNK", chunk), \
            mock.patch.object(dedup, "_COMPACT_MIN", compact_min):
        yield


def keyed(keys: Sequence[str], ts: Sequence[int], **kw: Any) -> Batch:
    return batch([{"k": k, "id": i} for i, k in enumerate(keys)], list(ts), **kw)


def test_snapshot_chunks_hold_complete_slot_ranges_named_by_the_index_epoch():
    with small_chunks(chunk=4):
        op = KeepFirstDedup(step(window=10, ttl=100), "p")
        op.process(keyed([f"k{i}" for i in range(10)], range(10), wm_end=5))
        snap = op.snapshot()
        epoch = op.index.epoch
        assert isinstance(snap, ChunkedState)
        assert list(snap.chunks) == [f"keys-e{epoch}-0", f"keys-e{epoch}-1"]
        assert snap.value(f"keys-e{epoch}-1").rows() == [("k4",), ("k5",), ("k6",), ("k7",)]
        head = snap.head
        assert head["n_slots"] == 10 and head["epoch"] == epoch
        assert head["tail"].rows() == [("k8",), ("k9",)] and head["t0"].tolist() == list(range(10))
        assert np.unpackbits(head["live"], count=10).all()
        assert head["counters"] == {"duplicates": 0}
        # more keys, expiry: complete chunks keep their names and contents
        # (k0 opens a new window at 20; k1..k3 expire at W 103)
        op.process(keyed(["k0", "x", "y"], [20, 21, 22], wm=[6, 6, 6], wm_end=103))
        later = op.snapshot()
        assert op.index.epoch == epoch and len(op.index) == 9
        assert list(later.chunks) == [*snap.chunks, f"keys-e{epoch}-2"]
        for name in snap.chunks:
            assert later.value(name).equals(snap.value(name))
        live = np.unpackbits(later.head["live"], count=12).tolist()
        assert live == [1, 0, 0, 0] + [1] * 8
        assert later.head["t0"][:1].tolist() == [20] and later.head["tail"].height == 0
        # renumbering: a new epoch, new names (old names keep meaning the old contents)
        op.process(keyed([], [], wm_end=115))  # k4..k9 expire: 9 dead > 3 live: compacted
        assert op.index.epoch != epoch and op.index.n_slots == 3
        assert not set(op.snapshot().chunks) & set(later.chunks)


def old_format_snapshot(op: KeepFirstDedup) -> dict:
    """What ``KeepFirstDedup.snapshot`` returned before chunked snapshots."""
    index = op.index.snapshot()
    return {"index": index, "t0": op._t0[index["slots"]].copy(),
            "counters": dict(op.counters)}


def test_restore_accepts_the_snapshot_format_before_chunks():
    op = KeepFirstDedup(step(window=10, ttl=20), "p")
    op.process(keyed(["a", "a", "b", "c"], [100, 101, 105, 90], wm_end=110))  # c expires
    state = pickle.loads(pickle.dumps(old_format_snapshot(op)))
    fresh = KeepFirstDedup(step(window=10, ttl=20), "p")
    fresh.restore(state)
    assert fresh.counters == {"duplicates": 1} and len(fresh.index) == 2
    out = fresh.process(keyed(["a", "b", "c"], [109, 116, 95], wm=[119, 125, 125]))
    assert ids(out[MAIN]) == [1, 2]  # a: duplicate; b: expired at W 125; c: new


def test_a_restored_operator_never_reuses_the_chunk_names_of_another_timeline(tmp_path):
    """A checkpoint restored elsewhere (a savepoint) may go on with other input: the chunks
    it completes then must not take the names the original run gave other keys, or the
    store would reference the original's files for them."""
    with small_chunks(chunk=2):
        store = CheckpointStore(tmp_path / "chk", retain=5)
        op = KeepFirstDedup(step(window=10, ttl=1000), "p")
        op.process(keyed(["a", "b", "c"], [1, 2, 3]))
        savepoint = pickle.loads(pickle.dumps(op.snapshot()))
        op.process(keyed(["d", "e"], [4, 5]))  # slots 2..3 = c, d
        store.write(1, {"d": op.snapshot()}, positions={}, sinks={}, pipeline="p",
                    operators_info={})
        other = KeepFirstDedup(step(window=10, ttl=1000), "p")
        other.restore(savepoint)
        other.process(keyed(["x", "y"], [4, 5]))  # slots 2..3 = c, x here
        store.write(2, {"d": other.snapshot()}, positions={}, sinks={}, pipeline="p",
                    operators_info={})
        again = KeepFirstDedup(step(window=10, ttl=1000), "p")
        again.restore(store.latest().state("d"))
        out = again.process(keyed(["d", "x", "c"], [6, 6, 6]))
        assert ids(out[MAIN]) == [0]  # d is new in this timeline; x and c are known


# -- keep last: hand-computed ------------------------------------------------------------
def test_keep_last_emits_the_last_record_when_the_watermark_passes_the_window():
    op = KeepLastDedup(step(window=10, ttl=100, strategy="last"), "p")
    out = op.process(batch([{"k": "a", "id": 0}, {"k": "a", "id": 1}, {"k": "b", "id": 2},
                            {"k": "a", "id": 3}], [100, 105, 103, 108], wm_end=108))
    assert ids(out[MAIN]) == []  # a's window [100, 110) is due at W >= 100 + 10 - 1
    assert op.counters["duplicates"] == 2  # 0 replaced by 1, 1 by 3
    out = op.process(batch([], [], wm_end=109))
    assert ids(out[MAIN]) == [3] and out[MAIN].ts.tolist() == [108]
    out = op.process(batch([{"k": "a", "id": 4}], [109], wm=[111], wm_end=111))
    assert ids(out[MAIN]) == []  # b is due at 112
    assert op.counters["duplicates"] == 3  # a's window was already emitted
    out = op.process(batch([], [], wm_end=POS_INF))
    assert ids(out[MAIN]) == [2]


def test_build_picks_the_strategy():
    assert isinstance(build_dedup_operator(step(), "p"), KeepFirstDedup)
    assert isinstance(build_dedup_operator(step(strategy="last"), "p"), KeepLastDedup)


# -- keep first: properties --------------------------------------------------------------
Record = tuple[tuple, int, int]  # (key, ts, wm before it)


def reference_first(records: Sequence[Record], window: int, ttl: int) -> list[bool]:
    """SEMANTICS §4 record by record: kept iff no state, the state expired (t0 + ttl <= W)
    or ts >= t0 + window; a kept record's ts becomes t0."""
    state: dict[tuple, int] = {}
    keep = []
    for key, ts, wm in records:
        t0 = state.get(key)
        kept = t0 is None or t0 + ttl <= wm or ts >= t0 + window
        if kept:
            state[key] = ts
        keep.append(kept)
    return keep


def batch_bounds(n: int, cuts: Sequence[int], start: int = 0) -> list[tuple[int, int]]:
    """Batches ``[lo, hi)`` from ``start`` to ``n``, cut at ``cuts`` (empty ones included)."""
    return list(pairwise([start, *sorted(c for c in set(cuts) if start <= c <= n), n]))


def feed(op: KeepFirstDedup, records: Sequence[Record], lo: int, hi: int,
         kept: np.ndarray) -> None:
    """Records ``lo .. hi-1`` as one batch (keys in fields a, b); marks the kept rows."""
    part = records[lo:hi]
    wm_end = records[hi][2] if hi < len(records) else POS_INF
    rows = [{"a": k[0], "b": k[1], "i": lo + j} for j, (k, _, _) in enumerate(part)]
    # inferred types: a batch whose key column is all null has a Null column
    data = pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()
    out = op.process(Batch(data=data, ts=np.array([r[1] for r in part], dtype=np.int64),
                           wm=np.array([r[2] for r in part], dtype=np.int64),
                           seq=np.arange(lo, hi, dtype=np.int64), wm_end=wm_end))
    if len(out[MAIN]):
        kept[out[MAIN].data.get_column("i").to_numpy()] = True


def run_first(records: Sequence[Record], cuts: Sequence[int], window: int, ttl: int,
              hash_fn: Callable | None = None, restore_at: int | None = None,
              ) -> tuple[list[bool], int]:
    """The operator over the records cut at ``cuts``; optionally snapshot after batch
    ``restore_at`` and go on with a fresh operator. Returns keep flags and duplicates."""
    def make() -> KeepFirstDedup:
        return KeepFirstDedup(step(window, ttl, fields=("a", "b")), "p", hash_fn=hash_fn)

    op = make()
    kept = np.zeros(len(records), dtype=bool)
    for b, (lo, hi) in enumerate(batch_bounds(len(records), cuts)):
        feed(op, records, lo, hi, kept)
        if b == restore_at:
            state = pickle.loads(pickle.dumps(op.snapshot()))
            op = make()
            op.restore(state)
    return kept.tolist(), op.counters["duplicates"]


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[Record], list[int], int, int]:
    """Few keys (nulls included), close event times, a non-decreasing watermark that may
    jump past TTLs, and random batch cuts."""
    n = draw(st.integers(0, 60))
    keys = draw(st.lists(st.tuples(st.sampled_from([None, 1, 2]),
                                   st.sampled_from([None, "x", "y"])), min_size=n, max_size=n))
    ts = draw(st.lists(st.integers(0, 60), min_size=n, max_size=n))
    steps_ = draw(st.lists(st.sampled_from([0, 0, 0, 1, 3, 8]), min_size=n, max_size=n))
    wm = (draw(st.integers(-5, 5)) + np.cumsum(steps_, dtype=np.int64)).tolist()
    unknown = draw(st.integers(0, n))
    wm[:unknown] = [NEG_INF] * unknown  # no watermark yet
    window = draw(st.integers(1, 15))
    ttl = window + draw(st.sampled_from([0, 1, 5, 30]))
    cuts = draw(st.lists(st.integers(0, max(n, 0)), max_size=6))
    return list(zip(keys, ts, wm, strict=True)), cuts, window, ttl


PROPS = settings(max_examples=200, deadline=None)


@PROPS
@given(streams(), st.sampled_from([None, three_hashes]))
def test_vectorized_first_equals_the_record_by_record_rule(stream, hash_fn):
    records, cuts, window, ttl = stream
    kept, dups = run_first(records, cuts, window, ttl, hash_fn)
    expected = reference_first(records, window, ttl)
    assert kept == expected
    assert dups == expected.count(False)


@PROPS
@given(streams())
def test_never_two_records_of_one_key_kept_inside_one_window(stream):
    records, cuts, window, _ = stream
    ttl = 10**9  # no expiry: then windows alone decide
    kept, _ = run_first(records, cuts, window, ttl)
    last: dict[tuple, int] = {}
    for (key, ts, _), k in zip(records, kept, strict=True):
        if k:
            assert key not in last or ts >= last[key] + window
            last[key] = ts
        else:
            assert key in last and ts < last[key] + window


@PROPS
@given(streams(), st.lists(st.integers(0, 60), max_size=8))
def test_results_do_not_depend_on_batch_cuts(stream, other_cuts):
    records, cuts, window, ttl = stream
    assert run_first(records, cuts, window, ttl) == run_first(records, other_cuts, window, ttl)
    assert run_first(records, cuts, window, ttl) == run_first(records, [], window, ttl)


@PROPS
@given(streams(), st.integers(0, 6), st.sampled_from([None, three_hashes]))
def test_snapshot_and_restore_at_a_batch_boundary_changes_nothing(stream, at, hash_fn):
    records, cuts, window, ttl = stream
    whole = run_first(records, cuts, window, ttl, hash_fn)
    assert run_first(records, cuts, window, ttl, hash_fn, restore_at=at) == whole


Crash = tuple[list[int], int, int]  # (batch cuts, crash after this many batches, lost cps)


def run_first_with_crashes(records: Sequence[Record], window: int, ttl: int,
                           runs: Sequence[Crash], last_cuts: Sequence[int], directory: Path,
                           hash_fn: Callable | None = None) -> tuple[list[bool], int]:
    """The operator checkpointed after every batch through a real ``CheckpointStore``;
    each of ``runs`` crashes after some batches and loses its newest checkpoints (manifests
    that never became durable), and a new process restores the latest checkpoint left and
    reads on from its position with other cuts. Returns the flags of the kept rows as the
    sinks would have them (rows from the restored position on are produced again)."""
    def make() -> KeepFirstDedup:
        return KeepFirstDedup(step(window, ttl, fields=("a", "b")), "p", hash_fn=hash_fn)

    kept = np.zeros(len(records), dtype=bool)
    op, pos = make(), 0
    for cuts, crash_after, lost in [*runs, (list(last_cuts), -1, 0)]:
        store = CheckpointStore(directory, retain=3)
        for b, (lo, hi) in enumerate(batch_bounds(len(records), cuts, start=pos)):
            feed(op, records, lo, hi, kept)
            store.write(store.next_id(), {"dedup": op.snapshot()}, positions={"row": hi},
                        sinks={}, pipeline="p", operators_info={})
            if b == crash_after:
                break
        else:
            return kept.tolist(), op.counters["duplicates"]
        manifests = sorted(directory.glob("chk-*.json"))
        for m in manifests[len(manifests) - lost:]:
            m.unlink()
        cp = CheckpointStore(directory, retain=3).latest()
        op, pos = make(), 0
        if cp is not None:
            op.restore(cp.state("dedup"))
            pos = cp.positions["row"]
        kept[pos:] = False
    raise AssertionError("unreachable")


@st.composite
def churning_streams(draw: st.DrawFn) -> tuple[list[Record], int, int]:
    """More keys, event times that move on with the watermark, short TTLs: keys expire and
    come back under new slot ids, so chunks complete, slots die and ids get compacted."""
    n = draw(st.integers(0, 120))
    keys = draw(st.lists(st.tuples(st.one_of(st.none(), st.integers(0, 9)),
                                   st.sampled_from([None, "x"])), min_size=n, max_size=n))
    wm = np.cumsum(draw(st.lists(st.sampled_from([0, 1, 2, 5]), min_size=n, max_size=n)),
                   dtype=np.int64).tolist()
    late = draw(st.lists(st.integers(0, 10), min_size=n, max_size=n))
    window = draw(st.integers(1, 10))
    ttl = window + draw(st.sampled_from([0, 3, 10]))
    ts = [w + d for w, d in zip(wm, late, strict=True)]
    return list(zip(keys, ts, wm, strict=True)), window, ttl


@settings(max_examples=150, deadline=None)
@given(churning_streams(), st.lists(st.tuples(st.lists(st.integers(0, 120), max_size=8),
                                              st.integers(0, 8), st.integers(0, 2)),
                                    max_size=2),
       st.lists(st.integers(0, 120), max_size=8), st.sampled_from([None, three_hashes]))
def test_checkpoints_through_the_store_and_crashes_change_nothing(stream, runs, last_cuts,
                                                                   hash_fn):
    """Incremental snapshots (chunks of 1 slot, compaction as soon as most ids are dead)
    written to a real store at every batch boundary, restored after crashes into fresh
    operators, with other batch cuts after each restart: the same records kept as record
    by record."""
    records, window, ttl = stream
    expected = reference_first(records, window, ttl)
    with small_chunks(chunk=1, compact_min=0), tempfile.TemporaryDirectory() as d:
        kept, dups = run_first_with_crashes(records, window, ttl, runs, last_cuts, Path(d),
                                            hash_fn)
    assert kept == expected
    assert dups == expected.count(False)
