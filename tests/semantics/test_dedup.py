"""SEMANTICS §4, keyed deduplication: hand-computed cases and properties against a reference.

Records are fed straight to the operators with explicit event times and watermarks (``wm``
is the watermark *before* each record), so every TTL boundary is under the test's control.
"""

from __future__ import annotations

import io
import json
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
from surestream.semantics import dedup_first as dedup
from surestream.semantics.dedup import KeepFirstDedup, KeepLastDedup, build_dedup_operator
from surestream.semantics.key_index import polars_hash
from surestream.semantics.operator import ERRORS, MAIN


def three_hashes(keys: pl.DataFrame) -> np.ndarray:
    """Every key hashes to one of 3 values: exactness must come from comparing keys."""
    return (polars_hash(keys) % np.uint64(3)).astype(np.int64)


def step(window: int = 10, ttl: int | None = None, fields: Sequence[str] = ("k",),
         strategy: str = "first", tag: str | None = None, on_null_key: str = "error",
         ) -> KeyedDedupStep:
    null_policy = {} if on_null_key == "error" else {"on_null_key": on_null_key}
    return KeyedDedupStep(key_fields=list(fields), time_window_ms=window, state_ttl_ms=ttl,
                          strategy=strategy, duplicates_output_tag=tag, **null_policy)


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


def test_with_on_null_key_group_null_keys_are_one_key():
    op = KeepFirstDedup(step(fields=("a", "b"), on_null_key="group"), "p")
    rows = [{"a": None, "b": "x", "id": 0}, {"a": None, "b": None, "id": 1},
            {"a": None, "b": "x", "id": 2}, {"a": None, "b": None, "id": 3},
            {"a": 1, "b": None, "id": 4}]
    out = op.process(batch(rows, [0, 1, 2, 3, 4]))
    assert ids(out[MAIN]) == [0, 1, 4]


def test_with_on_null_key_group_a_missing_key_column_is_the_null_key():
    op = KeepFirstDedup(step(fields=("k",), on_null_key="group"), "p")
    first = op.process(batch([{"id": 0}, {"id": 1}], [0, 1]))  # no "k" column at all
    assert ids(first[MAIN]) == [0]
    later = op.process(batch([{"k": None, "id": 2}, {"k": "x", "id": 3}], [2, 3]))
    assert ids(later[MAIN]) == [3]  # null key: a duplicate of id 0


NULL_KEY_ROWS = [{"trade_id": None, "id": 0}, {"trade_id": "t1", "id": 1},
                 {"trade_id": None, "id": 2}, {"id": 3}, {"trade_id": "t1", "id": 4},
                 {"trade_id": None, "id": 5}]


def run_both(fields: Sequence[str], rows: list[dict], on_null_key: str = "error"
             ) -> dict[str, dict[str, list]]:
    """Both strategies over ``rows`` (ts = position, W = -inf, then end of input):
    per strategy the ids in the main output and the errors output."""
    got = {}
    for strategy in ("first", "last"):
        op = build_dedup_operator(step(fields=fields, strategy=strategy,
                                       on_null_key=on_null_key), "p")
        # a key column present in no row of a batch is missing from the batch altogether
        data = pl.DataFrame(rows, infer_schema_length=None)
        first = op.process(Batch(data=data, ts=np.arange(len(rows), dtype=np.int64),
                                 wm=np.full(len(rows), NEG_INF, dtype=np.int64),
                                 seq=np.arange(len(rows), dtype=np.int64), wm_end=NEG_INF))
        end = op.process(batch([], [], wm_end=POS_INF))
        errors = first.get(ERRORS)
        got[strategy] = {
            "main": sorted(ids(first[MAIN]) + ids(end[MAIN])),
            "errors": [] if errors is None else [json.loads(r)["id"] for r in
                                                 errors.data.get_column("raw").to_list()],
            "messages": [] if errors is None else errors.data.get_column(
                "error_message").to_list(),
            "types": [] if errors is None else errors.data.get_column("error_type").to_list(),
            "counters": dict(op.counters),
        }
    return got


def test_null_and_missing_keys_go_to_errors_by_default_and_are_no_duplicates():
    got = run_both(["trade_id"], NULL_KEY_ROWS)
    for strategy, result in got.items():
        # before: the four records without a trade_id were one key (one kept, three dups)
        assert result["errors"] == [0, 2, 3, 5], strategy
        assert result["main"] == ([1] if strategy == "first" else [4]), strategy
        assert result["counters"] == {"duplicates": 1, "errors": 4}, strategy
        assert set(result["types"]) == {"null_key"}
        for message in result["messages"]:
            assert "keyed_dedup step 'dedup'" in message and "'trade_id'" in message
            assert "null or missing" in message and "on_null_key" in message


def test_a_key_column_missing_from_a_whole_batch_is_a_null_key():
    got = run_both(["trade_id"], [{"id": 0}, {"id": 1}])
    for result in got.values():
        assert result["errors"] == [0, 1] and result["main"] == []


def test_a_key_of_several_fields_is_unusable_when_any_field_is_null():
    rows = [{"a": 1, "b": None, "id": 0}, {"a": None, "b": "x", "id": 1},
            {"a": None, "b": None, "id": 2}, {"a": 1, "b": "x", "id": 3},
            {"a": 1, "b": None, "id": 4}]
    got = run_both(["a", "b"], rows)
    for strategy, result in got.items():
        assert result["errors"] == [0, 1, 2, 4] and result["main"] == [3], strategy
        messages = result["messages"]
        assert "key field 'b' is null" in messages[0]
        assert "key field 'a' is null" in messages[1]
        assert "key fields 'a', 'b' are null" in messages[2]


def test_on_null_key_keep_passes_such_records_through_undeduplicated():
    got = run_both(["trade_id"], NULL_KEY_ROWS, on_null_key="keep")
    assert got["first"]["main"] == [0, 1, 2, 3, 5]
    assert got["last"]["main"] == [0, 2, 3, 4, 5]
    for result in got.values():
        assert result["errors"] == [] and result["counters"] == {"duplicates": 1, "errors": 0}


def test_keep_last_passes_null_key_records_through_at_their_position():
    op = KeepLastDedup(step(window=10, strategy="last", on_null_key="keep"), "p")
    out = op.process(batch([{"k": "a", "id": 0}, {"k": None, "id": 1}, {"k": "b", "id": 2}],
                           [100, 101, 120], wm=[NEG_INF, 99, 110], wm_end=119))
    # a's window is due at 109: released before record 2 (W 110), after the null-key record
    assert ids(out[MAIN]) == [1, 0]
    assert out[MAIN].seq.tolist() == [1, 1]  # released after the input record with seq 1
    assert out[MAIN].wm.tolist() == sorted(out[MAIN].wm.tolist())


def test_on_null_key_group_keeps_the_old_behaviour_for_both_strategies():
    got = run_both(["trade_id"], NULL_KEY_ROWS, on_null_key="group")
    assert got["first"]["main"] == [0, 1] and got["last"]["main"] == [4, 5]
    for result in got.values():
        assert result["errors"] == [] and result["counters"]["duplicates"] == 4


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
    assert fresh.counters == {"duplicates": 1, "errors": 0}
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
        assert head["counters"] == {"duplicates": 0, "errors": 0}
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
    assert fresh.counters == {"duplicates": 1, "errors": 0} and len(fresh.index) == 2
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


def test_keep_last_releases_with_the_watermark_before_the_advance_not_after():
    """Released records must look on time to a following late step: their ``wm`` is below
    their event time, never the watermark that released them (nor +infinity at the end)."""
    op = KeepLastDedup(step(window=10, ttl=100, strategy="last"), "p")
    out = op.process(batch([{"k": "a", "id": 0}, {"k": "a", "id": 1}, {"k": "b", "id": 2},
                            {"k": "c", "id": 3}], [100, 105, 110, 200],
                           wm=[NEG_INF, 99, 104, 109], wm_end=199))
    # a ([100, 110), due 109) is released before record 3, b (due 119) at the batch end
    assert ids(out[MAIN]) == [1, 2]
    assert all(out[MAIN].wm < out[MAIN].ts)
    assert out[MAIN].seq.tolist() == [2, 3]  # after the input records with seq 2 and 3
    end = op.process(batch([], [], wm_end=POS_INF))
    assert ids(end[MAIN]) == [3] and end[MAIN].wm.tolist()[0] < 200
    assert end[MAIN].wm_end == POS_INF


def test_keep_last_holds_the_output_watermark_below_every_held_record():
    op = KeepLastDedup(step(window=100, strategy="last"), "p")
    # a is held (ts 10), b arrives far later: the input watermark jumps to 499
    out = op.process(batch([{"k": "a", "id": 0}, {"k": "b", "id": 1}], [10, 500],
                           wm=[NEG_INF, 5], wm_end=499))
    assert ids(out[MAIN]) == [0]  # a's window was due at 109
    assert out[MAIN].wm.tolist() == [5]  # W before the advance (after record 0)
    # b (at 500) is held: the watermark passed on is the one after the last record, 5, not
    # the 499 the batch end's advance reached, which a later release would carry
    assert out[MAIN].wm_end == 5
    out = op.process(batch([{"k": "b", "id": 2}, {"k": "c", "id": 3}], [450, 700],
                           wm=[499, 499], wm_end=599))
    # b's record is now the one at 450, below W = 499: it is late here, as it was at input
    assert ids(out[MAIN]) == [2] and out[MAIN].wm.tolist() == [499]
    assert out[MAIN].wm_end == 499  # c (at 700) is held: 599 waits for the next record


def test_keep_last_at_an_earlier_event_time_than_t0_holds_the_watermark_too():
    op = KeepLastDedup(step(window=100, strategy="last"), "p")
    out = op.process(batch([{"k": "a", "id": 0}, {"k": "a", "id": 1}, {"k": "z", "id": 2}],
                           [60, 20, 300], wm=[10, 15, 15], wm_end=299))
    # the last record of a's window [60, 160) is at 20: the output watermark stays below it
    assert ids(out[MAIN]) == [1] and out[MAIN].wm.tolist()[0] < 20


def plain_copy(value: Any, path: str = "state", seen: set[int] | None = None) -> Any:
    """A deep copy through the types a safe checkpoint format stores (dicts with str keys,
    lists, ints, floats, strings, None, numpy arrays, polars frames/series), failing on any
    other type or on an object reached twice (shared identity does not survive)."""
    seen = set() if seen is None else seen
    if isinstance(value, list | dict | np.ndarray | pl.DataFrame | pl.Series):
        assert id(value) not in seen, f"{path}: shared object"
        seen.add(id(value))
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list):
        return [plain_copy(v, f"{path}[{i}]", seen) for i, v in enumerate(value)]
    if isinstance(value, dict):
        assert all(isinstance(k, str) for k in value), f"{path}: non-string keys"
        return {k: plain_copy(v, f"{path}[{k!r}]", seen) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        assert value.dtype.kind in "biuf", f"{path}: numpy {value.dtype}"
        return np.frombuffer(value.tobytes(), dtype=value.dtype).reshape(value.shape).copy()
    if isinstance(value, pl.DataFrame | pl.Series):
        frame = value.to_frame() if isinstance(value, pl.Series) else value
        sink = io.BytesIO()
        frame.write_ipc(sink)
        back = pl.read_ipc(io.BytesIO(sink.getvalue()))
        return back.to_series() if isinstance(value, pl.Series) else back
    raise AssertionError(f"{path}: {type(value).__name__} is not plain data")


def test_keep_last_snapshot_is_plain_data_without_shared_objects():
    op = KeepLastDedup(step(window=10, ttl=50, strategy="last", fields=("k", "n")), "p")
    op.process(batch([{"k": "a", "n": 1, "v": 1.5, "id": 0}, {"k": "a", "n": 1, "v": 2.5, "id": 1},
                      {"k": "b", "n": None, "v": None, "id": 2}], [100, 101, 102],
                     wm=[NEG_INF, 90, 95], wm_end=112))  # a's window out, b an error
    op.process(batch([{"k": "a", "n": 1, "v": 3.0, "id": 3}, {"k": "c", "n": 2, "v": 0.5,
                                                            "id": 4}], [111, 113], wm=[112, 112]))
    fresh = KeepLastDedup(step(window=10, ttl=50, strategy="last", fields=("k", "n")), "p")
    fresh.restore(plain_copy(op.snapshot()))
    assert fresh.counters == op.counters == {"duplicates": 1, "errors": 1}
    tail = batch([{"k": "a", "n": 1, "v": 4.0, "id": 5}, {"k": "c", "n": 2, "v": 9.0, "id": 6}],
                 [112, 114], wm=[115, 115], wm_end=POS_INF, seq0=5)
    got, expected = fresh.process(tail), op.process(tail)
    # a's window [100, 110) was out; 111 opened [111, 121): 112 replaces 111 in it, and
    # 114 replaces 113 in c's window; both come out at the end
    assert ids(got[MAIN]) == ids(expected[MAIN]) == [5, 6]
    assert fresh.counters == op.counters == {"duplicates": 3, "errors": 1}
    assert got[MAIN].data.equals(expected[MAIN].data)
    assert got[MAIN].wm.tolist() == expected[MAIN].wm.tolist()


def test_build_picks_the_strategy():
    assert isinstance(build_dedup_operator(step(), "p"), KeepFirstDedup)
    assert isinstance(build_dedup_operator(step(strategy="last"), "p"), KeepLastDedup)


# -- keep first: properties --------------------------------------------------------------
Record = tuple[tuple, int, int]  # (key, ts, wm before it)


def reference_first(records: Sequence[Record], window: int, ttl: int,
                    on_null_key: str = "group") -> tuple[list[bool], list[bool]]:
    """SEMANTICS §4 record by record: kept iff no state, the state expired (t0 + ttl <= W)
    or ts >= t0 + window; a kept record's ts becomes t0. A key with a null field is an
    error (``error``), passes untouched (``keep``), or is a key like any other (``group``).
    Returns (kept, sent to errors) per record."""
    state: dict[tuple, int] = {}
    keep, errors = [], []
    for key, ts, wm in records:
        null = None in key and on_null_key != "group"
        errors.append(null and on_null_key == "error")
        if null:
            keep.append(on_null_key == "keep")
            continue
        t0 = state.get(key)
        kept = t0 is None or t0 + ttl <= wm or ts >= t0 + window
        if kept:
            state[key] = ts
        keep.append(kept)
    return keep, errors


def batch_bounds(n: int, cuts: Sequence[int], start: int = 0) -> list[tuple[int, int]]:
    """Batches ``[lo, hi)`` from ``start`` to ``n``, cut at ``cuts`` (empty ones included)."""
    return list(pairwise([start, *sorted(c for c in set(cuts) if start <= c <= n), n]))


def feed(op: KeepFirstDedup, records: Sequence[Record], lo: int, hi: int,
         kept: np.ndarray, errors: np.ndarray | None = None) -> None:
    """Records ``lo .. hi-1`` as one batch (keys in fields a, b); marks the kept rows, and
    the rows sent to errors."""
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
    if errors is not None and ERRORS in out:
        errors[out[ERRORS].seq] = True


def run_first(records: Sequence[Record], cuts: Sequence[int], window: int, ttl: int,
              hash_fn: Callable | None = None, restore_at: int | None = None,
              on_null_key: str = "group") -> tuple[list[bool], int, list[bool]]:
    """The operator over the records cut at ``cuts``; optionally snapshot after batch
    ``restore_at`` and go on with a fresh operator. Returns keep flags, duplicates and
    error flags."""
    def make() -> KeepFirstDedup:
        return KeepFirstDedup(step(window, ttl, fields=("a", "b"), on_null_key=on_null_key),
                              "p", hash_fn=hash_fn)

    op = make()
    kept = np.zeros(len(records), dtype=bool)
    errors = np.zeros(len(records), dtype=bool)
    for b, (lo, hi) in enumerate(batch_bounds(len(records), cuts)):
        feed(op, records, lo, hi, kept, errors)
        if b == restore_at:
            state = pickle.loads(pickle.dumps(op.snapshot()))
            op = make()
            op.restore(state)
    assert op.counters["errors"] == errors.sum()
    return kept.tolist(), op.counters["duplicates"], errors.tolist()


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
NULL_KEY_POLICIES = st.sampled_from(["error", "keep", "group"])


@PROPS
@given(streams(), st.sampled_from([None, three_hashes]), NULL_KEY_POLICIES)
def test_vectorized_first_equals_the_record_by_record_rule(stream, hash_fn, on_null_key):
    records, cuts, window, ttl = stream
    kept, dups, errors = run_first(records, cuts, window, ttl, hash_fn,
                                   on_null_key=on_null_key)
    expected, expected_errors = reference_first(records, window, ttl, on_null_key)
    assert kept == expected
    assert errors == expected_errors
    assert dups == len(records) - sum(expected) - sum(expected_errors)


@PROPS
@given(streams())
def test_never_two_records_of_one_key_kept_inside_one_window(stream):
    records, cuts, window, _ = stream
    ttl = 10**9  # no expiry: then windows alone decide
    kept, _, _ = run_first(records, cuts, window, ttl)
    last: dict[tuple, int] = {}
    for (key, ts, _), k in zip(records, kept, strict=True):
        if k:
            assert key not in last or ts >= last[key] + window
            last[key] = ts
        else:
            assert key in last and ts < last[key] + window


@PROPS
@given(streams(), st.lists(st.integers(0, 60), max_size=8), NULL_KEY_POLICIES)
def test_results_do_not_depend_on_batch_cuts(stream, other_cuts, policy):
    records, cuts, window, ttl = stream
    whole = run_first(records, [], window, ttl, on_null_key=policy)
    assert run_first(records, cuts, window, ttl, on_null_key=policy) == whole
    assert run_first(records, other_cuts, window, ttl, on_null_key=policy) == whole


@PROPS
@given(streams(), st.integers(0, 6), st.sampled_from([None, three_hashes]), NULL_KEY_POLICIES)
def test_snapshot_and_restore_at_a_batch_boundary_changes_nothing(stream, at, hash_fn, policy):
    records, cuts, window, ttl = stream
    whole = run_first(records, cuts, window, ttl, hash_fn, on_null_key=policy)
    assert run_first(records, cuts, window, ttl, hash_fn, restore_at=at,
                     on_null_key=policy) == whole


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
        return KeepFirstDedup(step(window, ttl, fields=("a", "b"), on_null_key="group"), "p",
                              hash_fn=hash_fn)

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
    expected, _ = reference_first(records, window, ttl)
    with small_chunks(chunk=1, compact_min=0), tempfile.TemporaryDirectory() as d:
        kept, dups = run_first_with_crashes(records, window, ttl, runs, last_cuts, Path(d),
                                            hash_fn)
    assert kept == expected
    assert dups == expected.count(False)


# -- keep last: properties ---------------------------------------------------------------
Released = tuple[int, int, int, int]  # (input index, ts, wm, seq) of an output record


def reference_last(records: Sequence[Record], window: int, ttl: int, on_null_key: str
                   ) -> tuple[list[tuple[int, int]], int, list[int]]:
    """SEMANTICS §4 for ``last``, record by record: returns the output records as (input
    index, seq of the input record after which they come out), the duplicates count and
    the indices sent to errors. A window is released once W >= t0 + window - 1, in order
    of that time, then of creation."""
    current: dict[tuple, dict] = {}
    pending: list[dict] = []
    out: list[tuple[int, int]] = []
    errors: list[int] = []
    dups, last = 0, -1

    def release(w: float) -> None:
        due = sorted((x for x in pending if x["t0"] + window - 1 <= w),
                     key=lambda x: (x["t0"] + window - 1, x["order"]))
        for x in due:
            pending.remove(x)
            x["emitted"] = True
            out.append((x["i"], last))

    for idx, (key, ts, wm) in enumerate(records):
        release(wm)
        if None in key and on_null_key != "group":
            if on_null_key == "keep":
                out.append((idx, idx))
            else:
                errors.append(idx)
        else:
            cur = current.get(key)
            if cur is not None and cur["t0"] + ttl <= wm:
                cur = None
            if cur is None or ts >= cur["t0"] + window:
                new = {"t0": ts, "i": idx, "order": idx, "emitted": False}
                current[key] = new
                pending.append(new)
            else:
                dups += 1
                if not cur["emitted"]:
                    cur["i"] = idx
        last = idx
    release(float("inf"))
    return out, dups, errors


def run_last(records: Sequence[Record], cuts: Sequence[int], window: int, ttl: int,
             on_null_key: str, restore_at: int | None = None
             ) -> tuple[list[Released], int, list[int]]:
    """Keep-last over the records cut at ``cuts`` (and at ``restore_at``, where it is
    snapshotted, copied as plain data and restored into a fresh operator). Returns the
    output records, the duplicates count and the error indices."""
    def make() -> KeepLastDedup:
        return KeepLastDedup(step(window, ttl, fields=("a", "b"), strategy="last",
                                  on_null_key=on_null_key), "p")

    op = make()
    out: list[Released] = []
    errors: list[int] = []
    all_cuts = [*cuts, restore_at] if restore_at is not None else list(cuts)
    for lo, hi in batch_bounds(len(records), all_cuts):
        part = records[lo:hi]
        rows = [{"a": k[0], "b": k[1], "i": lo + j} for j, (k, _, _) in enumerate(part)]
        data = pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()
        result = op.process(Batch(
            data=data, ts=np.array([r[1] for r in part], dtype=np.int64),
            wm=np.array([r[2] for r in part], dtype=np.int64),
            seq=np.arange(lo, hi, dtype=np.int64),
            wm_end=records[hi][2] if hi < len(records) else POS_INF))
        main = result[MAIN]
        marks = main.wm.tolist()
        assert marks == sorted(marks), "wm decreases inside a batch"
        assert main.wm_end <= (records[hi][2] if hi < len(records) else POS_INF)
        if len(main):
            out.extend(zip(main.data.get_column("i").to_list(), main.ts.tolist(),
                           main.wm.tolist(), main.seq.tolist(), strict=True))
        if ERRORS in result:
            errors.extend(result[ERRORS].seq.tolist())
        if hi == restore_at:
            state = plain_copy(op.snapshot())
            op = make()
            op.restore(state)
    assert op.counters["errors"] == len(errors)
    return out, op.counters["duplicates"], errors


@PROPS
@given(streams(), NULL_KEY_POLICIES)
def test_keep_last_equals_the_record_by_record_rule(stream, on_null_key):
    records, cuts, window, ttl = stream
    out, dups, errors = run_last(records, cuts, window, ttl, on_null_key)
    expected, expected_dups, expected_errors = reference_last(records, window, ttl,
                                                              on_null_key)
    assert [(i, seq) for i, _, _, seq in out] == expected
    assert (dups, errors) == (expected_dups, expected_errors)
    # conservation: every record is output, a duplicate or an error, exactly once
    assert len(out) + dups + len(errors) == len(records)


@PROPS
@given(streams(), NULL_KEY_POLICIES)
def test_keep_last_output_is_on_time_when_its_input_was(stream, on_null_key):
    """The output watermark (``wm`` of released records) stays below the event time of a
    record that was on time when it came in, and never runs ahead of the input."""
    records, cuts, window, ttl = stream
    out, _, _ = run_last(records, cuts, window, ttl, on_null_key)
    for i, ts, wm, seq in out:
        _, in_ts, in_wm = records[i]
        assert ts == in_ts
        if in_ts > in_wm:
            assert wm < ts, (i, ts, wm)
        if seq >= 0:
            assert wm <= records[seq][2]  # the input W before the record it comes after


@PROPS
@given(streams(), st.lists(st.integers(0, 60), max_size=8), NULL_KEY_POLICIES)
def test_keep_last_does_not_depend_on_batch_cuts(stream, other_cuts, on_null_key):
    records, cuts, window, ttl = stream
    whole = run_last(records, [], window, ttl, on_null_key)
    assert run_last(records, cuts, window, ttl, on_null_key) == whole
    assert run_last(records, other_cuts, window, ttl, on_null_key) == whole
    assert run_last(records, range(len(records) + 1), window, ttl, on_null_key) == whole


@settings(max_examples=60, deadline=None)
@given(streams(), NULL_KEY_POLICIES)
def test_keep_last_restored_at_any_cut_equals_the_uncut_run(stream, on_null_key):
    records, cuts, window, ttl = stream
    whole = run_last(records, [], window, ttl, on_null_key)
    for at in range(len(records) + 1):
        assert run_last(records, cuts, window, ttl, on_null_key, restore_at=at) == whole, at
