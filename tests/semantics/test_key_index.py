"""KeyIndex: an exact map from key tuples to dense slot ids, also under forced collisions."""

from __future__ import annotations

import pickle

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from surestream.semantics.key_index import KeyIndex, polars_hash


def three_hashes(keys: pl.DataFrame) -> np.ndarray:
    """A terrible hash: every key gets one of 3 values, so almost every probe collides."""
    return (polars_hash(keys) % np.uint64(3)).astype(np.int64)


def constant_hash(keys: pl.DataFrame) -> np.ndarray:
    return np.full(keys.height, 7, dtype=np.int64)


HASHES = [None, three_hashes, constant_hash]


def frame(*cols: list, names: tuple[str, ...] = ("a", "b", "c")) -> pl.DataFrame:
    return pl.DataFrame({names[i]: c for i, c in enumerate(cols)}, strict=False)


def rows_of(index: KeyIndex, slots: np.ndarray) -> list[tuple]:
    return index.keys_of(slots).rows()


@pytest.mark.parametrize("hash_fn", HASHES)
def test_equal_keys_share_a_slot_and_new_keys_are_inserted_once(hash_fn):
    index = KeyIndex(hash_fn)
    slots, new = index.get_or_insert(frame(["x", "y", "x", "z", "y", "x"]))
    assert slots[0] == slots[2] == slots[5] and slots[1] == slots[4]
    assert len({slots[0], slots[1], slots[3]}) == 3
    assert new.all() and len(index) == 3 and index.n_slots == 3
    assert set(slots.tolist()) == {0, 1, 2}

    again, new2 = index.get_or_insert(frame(["z", "w", "x", "w"]))
    assert again[0] == slots[3] and again[2] == slots[0]
    assert again[1] == again[3] == 3
    assert new2.tolist() == [False, True, False, True]
    assert rows_of(index, np.array([slots[0], slots[1], slots[3], 3])) == [
        ("x",), ("y",), ("z",), ("w",)]


@pytest.mark.parametrize("hash_fn", HASHES)
def test_lookup_finds_present_keys_only(hash_fn):
    index = KeyIndex(hash_fn)
    assert index.lookup(frame(["a"])).tolist() == [-1]  # empty index
    slots, _ = index.get_or_insert(frame(["a", "b"]))
    assert index.lookup(frame(["b", "q", "a", "q"])).tolist() == [slots[1], -1, slots[0], -1]
    assert len(index) == 2  # lookup inserts nothing


@pytest.mark.parametrize("hash_fn", HASHES)
def test_multi_field_keys_and_nulls(hash_fn):
    index = KeyIndex(hash_fn)
    keys = frame([1, 1, None, None, 1, None, 2],
                 ["x", None, "x", None, "x", None, "x"])
    slots, _ = index.get_or_insert(keys)
    # (1,x) (1,null) (null,x) (null,null) (1,x) (null,null) (2,x)
    assert slots[0] == slots[4] and slots[3] == slots[5]
    assert len(set(slots.tolist())) == 5
    assert rows_of(index, slots[[1, 2, 3]]) == [(1, None), (None, "x"), (None, None)]


def test_integer_widths_and_all_null_columns_are_one_key_type():
    index = KeyIndex()
    first, _ = index.get_or_insert(pl.DataFrame({"k": pl.Series([None, None], dtype=pl.Null)}))
    assert first.tolist() == [0, 0]
    ints, new = index.get_or_insert(pl.DataFrame({"k": pl.Series([5, None], dtype=pl.Int32)}))
    assert ints.tolist() == [1, 0] and new.tolist() == [True, False]  # null key kept its slot
    wide, _ = index.get_or_insert(pl.DataFrame({"k": pl.Series([None, 5], dtype=pl.Int64)}))
    assert wide.tolist() == [0, 1]
    nulls = index.lookup(pl.DataFrame({"k": pl.Series([None], dtype=pl.Null)}))
    assert nulls.tolist() == [0]


def test_float_keys_follow_polars_equality():
    index = KeyIndex()
    slots, _ = index.get_or_insert(pl.DataFrame({"f": [0.0, -0.0, float("nan"), float("nan")]}))
    assert slots.tolist() == [0, 0, 1, 1]


def test_a_key_column_that_changes_type_is_refused():
    index = KeyIndex()
    index.get_or_insert(pl.DataFrame({"k": ["1"]}))
    with pytest.raises(TypeError, match="was String and is now Int64"):
        index.get_or_insert(pl.DataFrame({"k": [1]}))
    with pytest.raises(ValueError, match="2 key columns, expected 1"):
        index.get_or_insert(pl.DataFrame({"k": ["1"], "j": ["2"]}))


def test_columns_are_matched_by_position():
    index = KeyIndex()
    slots, _ = index.get_or_insert(pl.DataFrame({"a": ["x"], "b": [1]}))
    assert index.lookup(pl.DataFrame({"p": ["x"], "q": [1]})).tolist() == slots.tolist()


def test_empty_inputs():
    index = KeyIndex()
    slots, new = index.get_or_insert(pl.DataFrame({"k": pl.Series([], dtype=pl.String)}))
    assert slots.size == 0 and new.size == 0 and len(index) == 0
    assert index.keys_of(np.array([], dtype=np.int64)).height == 0


@pytest.mark.parametrize("hash_fn", HASHES)
def test_delete_leaves_other_keys_reachable_and_ids_are_not_reused(hash_fn):
    index = KeyIndex(hash_fn)
    keys = frame([f"k{i}" for i in range(50)])
    slots, _ = index.get_or_insert(keys)
    assert index.delete(slots[::2]) == 25
    assert index.delete(slots[::2]) == 0  # already dead
    assert len(index) == 25
    found = index.lookup(keys)
    assert (found[::2] == -1).all() and (found[1::2] == slots[1::2]).all()
    with pytest.raises(KeyError):
        index.keys_of(slots[:1])
    back, new = index.get_or_insert(frame(["k0", "k1"]))
    assert back[0] == 50 and new.tolist() == [True, False] and back[1] == slots[1]
    assert not index.live[slots[0]] and index.live[50]


@pytest.mark.parametrize("hash_fn", HASHES)
def test_many_deletes_rebuild_the_table_without_changing_ids(hash_fn):
    index = KeyIndex(hash_fn)
    n = 3000 if hash_fn is None else 300
    for round_ in range(6):
        keys = frame([f"r{round_}-{i}" for i in range(n)])
        slots, new = index.get_or_insert(keys)
        assert new.all()
        index.delete(slots[: n - 10])  # tombstones pile up, rebuilds purge them
    assert len(index) == 60
    survivors = frame([f"r{r}-{i}" for r in range(6) for i in range(n - 10, n)])
    found = index.lookup(survivors)
    assert (found >= 0).all()
    assert rows_of(index, found) == survivors.rows()


@pytest.mark.parametrize("hash_fn", HASHES)
def test_compact_renumbers_live_slots_in_order(hash_fn):
    index = KeyIndex(hash_fn)
    keys = frame([f"k{i}" for i in range(40)])
    slots, _ = index.get_or_insert(keys)
    kept = np.arange(40) % 3 == 0  # rows k0, k3, ...
    index.delete(slots[~kept])
    before = rows_of(index, np.flatnonzero(index.live))
    old = index.compact()
    assert old.tolist() == sorted(slots[kept].tolist())
    assert index.n_slots == len(index) == old.size
    assert rows_of(index, np.arange(old.size)) == before
    renumbered = [old.tolist().index(s) for s in slots[kept].tolist()]
    assert index.lookup(keys.filter(pl.Series(kept))).tolist() == renumbered
    more, new = index.get_or_insert(frame(["k1", "k0"]))
    assert more.tolist() == [old.size, renumbered[0]] and new.tolist() == [True, False]


@pytest.mark.parametrize("hash_fn", HASHES)
def test_snapshot_restore_gives_the_same_ids(hash_fn):
    index = KeyIndex(hash_fn)
    keys = frame([f"k{i}" for i in range(30)] + [None], list(range(30)) + [None])
    slots, _ = index.get_or_insert(keys)
    index.delete(slots[5:10])
    state = pickle.loads(pickle.dumps(index.snapshot()))
    restored = KeyIndex(hash_fn)
    restored.restore(state)
    assert restored.n_slots == index.n_slots and len(restored) == len(index)
    assert (restored.live == index.live).all()
    assert (restored.lookup(keys) == index.lookup(keys)).all()
    extra = frame(["k7", "new", "k1", "new"], [7, 0, 1, 0])
    a, new_a = index.get_or_insert(extra)
    b, new_b = restored.get_or_insert(extra)
    assert new_a.tolist() == new_b.tolist() == [True, True, False, True]
    assert a[2] == b[2] == slots[1] and a[1] == a[3] and b[1] == b[3]
    assert sorted(a[:2].tolist()) == sorted(b[:2].tolist()) == [index.n_slots - 2,
                                                                index.n_slots - 1]


def test_snapshot_of_an_empty_index():
    restored = KeyIndex()
    restored.restore(KeyIndex().snapshot())
    assert len(restored) == 0 and restored.lookup(frame(["x"])).tolist() == [-1]


def restore_by_ranges(index: KeyIndex, chunk: int, hash_fn=None) -> KeyIndex:
    """A new index from ``index``'s key ranges of ``chunk`` ids (pickled, as a checkpoint
    would), concatenated, with its live mask: the incremental snapshot's way."""
    n = index.n_slots
    parts = [pickle.loads(pickle.dumps(index.key_range(lo, lo + chunk)))
             for lo in range(0, max(n, 1), chunk)]
    keys = None if parts[0] is None else pl.concat(parts)
    restored = KeyIndex(hash_fn)
    restored.restore_keys(keys, index.live.copy(), n)
    return restored


@pytest.mark.parametrize("hash_fn", HASHES)
def test_key_ranges_and_restore_keys_give_the_same_ids(hash_fn):
    index = KeyIndex(hash_fn)
    keys = frame([f"k{i}" for i in range(30)] + [None], list(range(30)) + [None])
    slots, _ = index.get_or_insert(keys)
    index.delete(slots[5:10])
    row_of = np.argsort(slots)  # ids follow the probing order, not the row order
    assert index.key_range(4, 7).rows() == [keys.row(int(row_of[i])) for i in (4, 5, 6)]
    assert index.key_range(0, 31).rows() == [keys.row(int(r)) for r in row_of]  # dead too
    assert index.key_range(29, 99).height == 2 and index.key_range(40, 50).height == 0
    restored = restore_by_ranges(index, 7, hash_fn)
    assert restored.n_slots == index.n_slots and len(restored) == len(index)
    assert (restored.live == index.live).all()
    assert (restored.lookup(keys) == index.lookup(keys)).all()
    assert restored.epoch != index.epoch  # it may go on differently: other chunk names
    extra = frame(["k7", "new", "k1", "new"], [7, 0, 1, 0])
    a, new_a = index.get_or_insert(extra)
    b, new_b = restored.get_or_insert(extra)
    assert new_a.tolist() == new_b.tolist() == [True, True, False, True]
    assert a[2] == b[2] == slots[1]
    assert sorted(a[:2].tolist()) == sorted(b[:2].tolist()) == [31, 32]


def test_restore_keys_of_an_empty_index_and_mismatched_input():
    assert len(restore_by_ranges(KeyIndex(), 4)) == 0
    index = KeyIndex()
    index.get_or_insert(frame(["a", "b"]))
    index.compact()  # nothing dead: still renumbered as far as the epoch is concerned
    index.delete(np.array([0, 1]))
    index.compact()  # no slots, but a key schema
    restored = restore_by_ranges(index, 4)
    assert restored.n_slots == 0 and restored.key_range(0, 4).schema == {"a": pl.String}
    with pytest.raises(ValueError, match="2 keys and a live mask of 3"):
        KeyIndex().restore_keys(frame(["a", "b"]), np.ones(3, dtype=bool), 3)
    with pytest.raises(ValueError, match="0 keys"):
        KeyIndex().restore_keys(None, np.ones(1, dtype=bool), 1)


def test_the_epoch_changes_exactly_when_stored_keys_could_change():
    """Under one epoch the keys of a complete range never change: inserts append, deletes
    only mark. Renumbering, retyping, clearing and restoring draw a new epoch."""
    index = KeyIndex()
    index.get_or_insert(pl.DataFrame({"a": [None, None]}, schema={"a": pl.Null}))
    e0, first = index.epoch, index.key_range(0, 2)
    index.get_or_insert(pl.DataFrame({"a": [None, None]}, schema={"a": pl.Null}))
    index.lookup(pl.DataFrame({"a": [None]}, schema={"a": pl.Null}))
    assert index.epoch == e0 and index.key_range(0, 2).equals(first)
    index.get_or_insert(frame(["x", "y"], names=("a",)))  # Null column meets String: retyped
    e1 = index.epoch
    assert e1 != e0 and index.key_range(0, 3).schema == {"a": pl.String}
    before = index.key_range(0, 3)
    index.delete(np.array([1, 2]))
    index.get_or_insert(frame([f"z{i}" for i in range(3000)], names=("a",)))  # grows, rehashes
    assert index.epoch == e1 and index.key_range(0, 3).equals(before)
    index.compact()
    e2 = index.epoch
    assert e2 != e1 and index.n_slots == 3001 and index.key_range(0, 1).rows() == [(None,)]
    index.clear()
    assert index.epoch not in (e0, e1, e2)


def test_an_all_null_key_column_compacted_to_nothing_still_takes_its_real_type():
    index = KeyIndex()
    index.get_or_insert(pl.DataFrame({"a": [None]}, schema={"a": pl.Null}))
    index.delete(np.array([0]))
    index.compact()  # no ids left, but a (Null-typed) store
    slots, new = index.get_or_insert(pl.DataFrame({"a": [1, 2, 1]}))
    assert new.tolist() == [True, True, True] and slots[0] == slots[2] != slots[1]
    assert index.lookup(pl.DataFrame({"a": [2, 1, 3]})).tolist() == [slots[1], slots[0], -1]


def test_growth_keeps_every_key_exact():
    index = KeyIndex()
    model: dict[int, int] = {}
    rng = np.random.default_rng(5)
    for _ in range(8):
        ids = rng.integers(0, 60_000, 20_000)
        slots, new = index.get_or_insert(pl.DataFrame({"k": ids}))
        known = set(model)
        for k, s, fresh in zip(ids.tolist(), slots.tolist(), new.tolist(), strict=True):
            assert fresh == (k not in known)
            assert model.setdefault(k, s) == s
    assert len(index) == len(model) == len(set(model.values()))


def test_bad_hash_functions_are_rejected():
    with pytest.raises(ValueError, match="one integer per row"):
        KeyIndex(lambda keys: np.zeros(1)).get_or_insert(frame(["a", "b"]))


# -- properties ------------------------------------------------------------------------
key_values = st.one_of(st.none(), st.integers(-3, 3))
ops = st.lists(
    st.one_of(
        st.tuples(st.just("insert"), st.lists(st.tuples(key_values, st.sampled_from(
            ["p", "q", None])), min_size=0, max_size=30)),
        st.tuples(st.just("lookup"), st.lists(st.tuples(key_values, st.sampled_from(
            ["p", "q", None])), min_size=1, max_size=10)),
        st.tuples(st.just("delete"), st.lists(st.integers(0, 80), max_size=10)),
        st.tuples(st.just("compact"), st.none()),
        st.tuples(st.just("snapshot"), st.none()),
        st.tuples(st.just("restore_keys"), st.integers(1, 6)),
    ),
    max_size=25,
)


@settings(max_examples=150, deadline=None)
@given(ops, st.sampled_from(HASHES))
def test_behaves_like_a_dict(operations, hash_fn):
    """Against a dict key -> slot: same slots, fresh ids for new keys, exact deletes."""
    index = KeyIndex(hash_fn)
    model: dict[tuple, int] = {}
    next_id = 0
    schema = {"a": pl.Int64, "b": pl.String}
    for op, arg in operations:
        if op in ("insert", "lookup"):
            keys = pl.DataFrame(arg, schema=schema, orient="row")
            if op == "lookup":
                got = index.lookup(keys).tolist()
                assert got == [model.get(k, -1) for k in arg]
                continue
            slots, new = index.get_or_insert(keys)
            known = dict(model)
            for k, s, fresh in zip(arg, slots.tolist(), new.tolist(), strict=True):
                if k in known:
                    assert s == known[k] and not fresh
                else:
                    assert fresh and s >= next_id and model.setdefault(k, s) == s
            next_id = index.n_slots
            assert sorted(model.values()) == sorted(set(model.values()))
        elif op == "delete":
            dead = {s for s in arg if s in model.values()}
            assert index.delete(np.array(arg, dtype=np.int64)) == len(dead)
            model = {k: s for k, s in model.items() if s not in dead}
        elif op == "compact":
            old = index.compact().tolist()
            assert old == sorted(model.values())
            model = {k: old.index(s) for k, s in model.items()}
            next_id = index.n_slots
        elif op == "snapshot":
            restored = KeyIndex(hash_fn)
            restored.restore(pickle.loads(pickle.dumps(index.snapshot())))
            index = restored
        else:  # the incremental snapshot's way: key ranges of ``arg`` ids and the live mask
            index = restore_by_ranges(index, arg, hash_fn)
        assert len(index) == len(model)
        if model:
            live = sorted(model.items(), key=lambda kv: kv[1])
            assert rows_of(index, np.array([s for _, s in live])) == [k for k, _ in live]
