"""The checkpoint store (SEMANTICS §7): atomic manifests, verified state, retention.

Every test writes real checkpoints into ``tmp_path`` and damages them the way a crash or
a bad disk would: a truncated manifest, a manifest whose body no longer matches its
checksum, a state file with flipped bytes, a temp file left behind by a crash."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from surestream.io import ChunkedState, durable, write_atomic
from surestream.io.state_codec import encode
from surestream.runners.local.checkpoint_store import CheckpointError, CheckpointStore

INFO = {"counter": {"kind": "map", "keys": []}, "table": {"kind": "keyed_dedup", "keys": ["k"]}}


def write(store: CheckpointStore, n: int, counter: int, table: dict | None = None,
          finished: bool = False) -> dict:
    """Checkpoint ``n`` of a two-operator pipeline: ``counter`` changes every time,
    ``table`` only when a test passes a new one."""
    return store.write(
        n, {"counter": {"count": counter}, "table": table if table is not None else {"a": 1}},
        positions={"seq": 10 * n}, sinks={"main": {"checkpoint": n, "part": None, "rows": 0}},
        pipeline="p", operators_info=INFO, finished=finished, extra={"records_in": 10 * n})


def damage_file(f: Path, how: str) -> None:
    """Flip a byte in the middle, cut the end off, or delete the file."""
    data = bytearray(f.read_bytes())
    if how == "flip":
        data[len(data) // 2] ^= 0xFF
        f.write_bytes(bytes(data))
    elif how == "truncate":
        f.write_bytes(bytes(data[:-3]))
    else:
        f.unlink()


def manifest(store: CheckpointStore, n: int) -> Path:
    return store.dir / f"chk-{n:010d}.json"


def state_files(store: CheckpointStore) -> list[str]:
    return sorted(p.name for p in (store.dir / "state").iterdir())


def test_write_and_latest_round_trip(tmp_path):
    store = CheckpointStore(tmp_path / "chk")
    assert store.latest() is None and store.list() == [] and store.next_id() == 1
    body = write(store, 1, counter=5, table={"x": [1, 2, 3]})
    assert body["id"] == 1 and body["bytes_total"] == body["bytes_written"] > 0

    cp = CheckpointStore(tmp_path / "chk").latest()  # a new process reads it back
    assert cp is not None and cp.id == 1 and not cp.finished
    assert cp.positions == {"seq": 10}
    assert cp.committables == {"main": {"checkpoint": 1, "part": None, "rows": 0}}
    assert cp.operator_names() == ["counter", "table"]
    assert cp.state("counter") == {"count": 5} and cp.state("table") == {"x": [1, 2, 3]}
    assert cp.meta["operators"]["table"]["kind"] == "keyed_dedup"
    assert cp.meta["operators"]["table"]["keys"] == ["k"]
    assert cp.meta["records_in"] == 10 and cp.meta["pipeline"] == "p"
    assert state_files(store) == ["counter.0000000001.state", "table.0000000001.state"]

    write(store, 2, counter=6, finished=True)
    cp = store.latest()
    assert cp.id == 2 and cp.finished and cp.state("counter") == {"count": 6}


def test_next_id_counts_every_manifest_on_disk_even_an_unreadable_one(tmp_path):
    store = CheckpointStore(tmp_path / "chk")
    assert store.next_id() == 1
    write(store, 1, 1)
    write(store, 2, 2)
    assert store.next_id() == 3
    manifest(store, 2).write_bytes(b"{not json")
    # the unreadable checkpoint 2 is skipped on restore, but its id is never used again
    assert store.latest().id == 1 and store.next_id() == 3
    (store.dir / ".chk-0000000009.json.tmp").write_bytes(b"{}")  # not a manifest
    assert store.next_id() == 3
    store.clear()
    assert store.next_id() == 1 and store.latest() is None
    assert state_files(store) == []


def test_retention_keeps_the_last_n_and_deletes_unreferenced_state_files(tmp_path):
    store = CheckpointStore(tmp_path / "chk", retain=2)
    for n in range(1, 5):
        write(store, n, counter=n)  # counter changes each time, table never does
    assert sorted(p.name for p in store.dir.glob("chk-*.json")) == [
        "chk-0000000003.json", "chk-0000000004.json"]
    # with 2 retained, no file is shared by both (one bad file must not take down every
    # retained checkpoint), so the unchanged table is written again each time
    assert state_files(store) == ["counter.0000000003.state", "counter.0000000004.state",
                                  "table.0000000003.state", "table.0000000004.state"]
    assert [r["id"] for r in store.list()] == [3, 4]
    assert all(r["valid"] for r in store.list())
    # the oldest retained checkpoint is still complete
    store.dir.joinpath("chk-0000000004.json").unlink()
    cp = store.latest()
    assert cp.id == 3 and cp.state("counter") == {"count": 3} and cp.state("table") == {"a": 1}


def test_retention_removes_state_of_a_crashed_checkpoint_that_never_got_a_manifest(tmp_path):
    store = CheckpointStore(tmp_path / "chk", retain=2)
    write(store, 1, 1)
    orphan = store.dir / "state" / "counter.0000000002.state"  # crash before manifest 2
    orphan.write_bytes(encode({"count": 99}))
    store2 = CheckpointStore(tmp_path / "chk", retain=2)
    assert store2.latest().id == 1 and store2.next_id() == 2
    write(store2, 2, counter=2)  # the rerun of checkpoint 2 replaces the orphan
    assert store2.latest().state("counter") == {"count": 2}
    write(store2, 3, counter=3)
    write(store2, 4, counter=4)
    assert "counter.0000000002.state" not in state_files(store2)


def test_unchanged_state_is_referenced_again_not_rewritten(tmp_path):
    store = CheckpointStore(tmp_path / "chk")
    first = write(store, 1, counter=1, table={"big": list(range(1000))})
    table_file = store.dir / "state" / "table.0000000001.state"
    inode = table_file.stat().st_ino

    second = write(store, 2, counter=2, table={"big": list(range(1000))})
    assert second["operators"]["table"]["file"] == "table.0000000001.state"
    assert second["operators"]["counter"]["file"] == "counter.0000000002.state"
    assert second["bytes_written"] == second["operators"]["counter"]["bytes"]
    assert second["bytes_total"] == first["bytes_total"]
    assert table_file.stat().st_ino == inode  # not rewritten, not even by rename
    assert not (store.dir / "state" / "table.0000000002.state").exists()

    # a new process (a restarted run) knows the digests from the latest checkpoint; a file
    # is referenced by at most retain - 1 checkpoints, so table.1 is written anew now
    store2 = CheckpointStore(tmp_path / "chk")
    third = write(store2, 3, counter=2, table={"big": list(range(1000))})
    assert third["bytes_written"] == third["operators"]["table"]["bytes"]
    assert {e["file"] for e in third["operators"].values()} == {
        "counter.0000000002.state", "table.0000000003.state"}
    assert store2.latest().state("table") == {"big": list(range(1000))}

    # changed state gets a file of its own
    fourth = write(store2, 4, counter=2, table={"big": []})
    assert fourth["operators"]["table"]["file"] == "table.0000000004.state"
    # (and the counter, unchanged since 2, is written again: 2 checkpoints share a file)
    assert fourth["operators"]["counter"]["file"] == "counter.0000000004.state"
    assert fourth["bytes_written"] == (fourth["operators"]["table"]["bytes"]
                                       + fourth["operators"]["counter"]["bytes"])


def test_a_torn_manifest_falls_back_to_the_previous_checkpoint(tmp_path):
    store = CheckpointStore(tmp_path / "chk")
    write(store, 1, counter=1)
    write(store, 2, counter=2)
    data = manifest(store, 2).read_bytes()
    manifest(store, 2).write_bytes(data[: len(data) // 2])  # the tail never reached disk
    cp = CheckpointStore(tmp_path / "chk").latest()
    assert cp.id == 1 and cp.state("counter") == {"count": 1}
    manifest(store, 2).write_bytes(b"")
    assert CheckpointStore(tmp_path / "chk").latest().id == 1


@pytest.mark.parametrize("damage", ["checksum", "body", "no_checksum", "not_a_mapping"])
def test_a_manifest_that_does_not_match_its_checksum_falls_back(tmp_path, damage):
    store = CheckpointStore(tmp_path / "chk")
    write(store, 1, counter=1)
    write(store, 2, counter=2)
    doc = json.loads(manifest(store, 2).read_bytes())
    if damage == "checksum":
        doc["checksum"] = "0" * 64
    elif damage == "body":
        doc["body"]["positions"]["seq"] = 12345  # valid JSON, wrong content
    elif damage == "no_checksum":
        del doc["checksum"]
    else:
        doc = [doc]
    manifest(store, 2).write_text(json.dumps(doc))
    cp = CheckpointStore(tmp_path / "chk").latest()
    assert cp.id == 1 and cp.positions == {"seq": 10}


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_a_corrupt_state_file_falls_back_to_the_previous_checkpoint(tmp_path, damage):
    store = CheckpointStore(tmp_path / "chk")
    write(store, 1, counter=1)
    write(store, 2, counter=2)
    f = store.dir / "state" / "counter.0000000002.state"
    damage_file(f, damage)
    cp = CheckpointStore(tmp_path / "chk").latest()
    assert cp.id == 1 and cp.state("counter") == {"count": 1}


def test_a_corrupt_shared_state_file_never_takes_down_every_retained_checkpoint(tmp_path):
    """Unchanged state is one file referenced by several checkpoints, but never by all
    retained ones: if it rots, the newest checkpoint that does not use it is restored."""
    store = CheckpointStore(tmp_path / "chk")
    write(store, 1, counter=1)
    write(store, 2, counter=2)
    shared = store.dir / "state" / "table.0000000001.state"
    shared.write_bytes(shared.read_bytes() + b"x")
    assert CheckpointStore(tmp_path / "chk").latest() is None  # both use it, for now
    assert [r["valid"] for r in store.list()] == [False, False]
    write(store, 3, counter=3)  # 3 writes the table anew
    assert CheckpointStore(tmp_path / "chk").latest().id == 3


def test_state_read_after_verification_still_checks_the_digest(tmp_path):
    store = CheckpointStore(tmp_path / "chk")
    write(store, 1, counter=1)
    cp = store.latest()
    f = store.dir / "state" / "counter.0000000001.state"
    f.write_bytes(encode({"count": 666}))  # damaged between latest() and state()
    with pytest.raises(CheckpointError, match="'counter' is corrupt"):
        cp.state("counter")


def test_the_next_checkpoint_after_a_fallback_does_not_reference_corrupt_state(tmp_path):
    store = CheckpointStore(tmp_path / "chk")
    write(store, 1, counter=1)
    write(store, 2, counter=2)
    f = store.dir / "state" / "counter.0000000002.state"
    f.write_bytes(b"rot")
    restarted = CheckpointStore(tmp_path / "chk")
    assert restarted.latest().id == 1
    # the restarted run reaches the same state as checkpoint 2 had: it must not point at
    # the rotten file (which only the manifest of 2 knows the right digest for)
    write(restarted, restarted.next_id(), counter=2)
    cp = restarted.latest()
    assert cp.id == 3 and cp.state("counter") == {"count": 2}


def test_list_flags_corrupt_checkpoints(tmp_path):
    store = CheckpointStore(tmp_path / "chk", retain=5)
    for n in range(1, 5):
        write(store, n, counter=n, finished=n == 4)
    manifest(store, 2).write_bytes(manifest(store, 2).read_bytes()[:40])
    (store.dir / "state" / "counter.0000000003.state").write_bytes(b"\x00")
    rows = store.list()
    assert [(r["id"], r["valid"]) for r in rows] == [(1, True), (2, False), (3, False),
                                                     (4, True)]
    assert rows[1] == {"id": 2, "valid": False}  # unreadable: nothing else is known
    assert rows[2]["records_in"] == 30 and "wall_time" in rows[2]  # readable, bad state
    assert rows[3]["finished"] is True
    assert store.latest().id == 4


def test_write_atomic_replaces_whole_files_only(tmp_path, monkeypatch):
    target = tmp_path / "file.json"
    write_atomic(target, b"old contents")
    assert target.read_bytes() == b"old contents"
    assert not (tmp_path / ".file.json.tmp").exists()

    # a crash after the temp file was written, before the rename: the target is intact
    def crash(*_args):
        raise OSError("power lost")

    monkeypatch.setattr(durable.os, "replace", crash)
    with pytest.raises(OSError, match="power lost"):
        write_atomic(target, b"new contents that never land")
    monkeypatch.undo()
    assert target.read_bytes() == b"old contents"
    assert (tmp_path / ".file.json.tmp").read_bytes() == b"new contents that never land"

    # the leftover temp file does not disturb the next write
    (tmp_path / ".file.json.tmp").write_bytes(b"torn garb")
    write_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    assert sorted(os.listdir(tmp_path)) == ["file.json"]


def test_a_crash_while_writing_a_manifest_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    store = CheckpointStore(tmp_path / "chk")
    write(store, 1, counter=1)
    real_replace = os.replace

    def crash_on_manifest(src, dst):
        if Path(dst).name.startswith("chk-"):
            raise OSError("power lost")
        real_replace(src, dst)

    monkeypatch.setattr(durable.os, "replace", crash_on_manifest)
    with pytest.raises(OSError):
        write(store, 2, counter=2)
    monkeypatch.undo()
    # a torn temp manifest (the crash hit during its write) is not a checkpoint either
    (store.dir / ".chk-0000000002.json.tmp").write_bytes(b'{"checksum": "ab", "bo')
    restarted = CheckpointStore(tmp_path / "chk")
    cp = restarted.latest()
    assert cp.id == 1 and cp.state("counter") == {"count": 1}
    assert restarted.next_id() == 2 and [r["id"] for r in restarted.list()] == [1]
    write(restarted, 2, counter=22)
    assert restarted.latest().state("counter") == {"count": 22}


# -- chunked state ----------------------------------------------------------------------
def never(name: str) -> Callable[[], Any]:
    """A chunk the store must not materialize (the previous checkpoint holds it)."""
    def fail() -> Any:
        raise AssertionError(f"chunk {name} was materialized again")
    return fail


def chunked(store: CheckpointStore, n: int, head: Any, chunks: dict[str, Any],
            counter: int | None = None) -> dict:
    """Checkpoint ``n``: ``big`` is a chunked state; ``counter`` a plain one."""
    return store.write(n, {"big": ChunkedState(head, chunks), "counter": {"count": counter}},
                       positions={"seq": n}, sinks={}, pipeline="p",
                       operators_info={"big": {"kind": "keyed_dedup", "keys": ["k"]}})


def chunk_value(i: int) -> list[int]:
    return [i] * 1000


def test_unchanged_chunks_are_referenced_again_never_materialized_or_rewritten(tmp_path):
    store = CheckpointStore(tmp_path / "chk", retain=3)
    first = chunked(store, 1, {"n": 2}, {"c0": chunk_value(0), "c1": lambda: chunk_value(1)})
    entry = first["operators"]["big"]
    assert entry["file"] == "big.0000000001.state" and entry["kind"] == "keyed_dedup"
    assert sorted(entry["chunks"]) == ["c0", "c1"]
    assert entry["chunks"]["c1"]["file"] == "big.chunk.c1.0000000001.state"
    assert first["bytes_written"] == first["bytes_total"] == (
        entry["bytes"] + sum(e["bytes"] for e in entry["chunks"].values())
        + first["operators"]["counter"]["bytes"])
    inode = (store.dir / "state" / "big.chunk.c0.0000000001.state").stat().st_ino

    second = chunked(store, 2, {"n": 3}, {"c0": never("c0"), "c1": never("c1"),
                                          "c2": chunk_value(2)})
    entry2 = second["operators"]["big"]
    assert {k: entry2["chunks"][k] for k in ("c0", "c1")} == entry["chunks"]  # copied as is
    assert entry2["chunks"]["c2"]["file"] == "big.chunk.c2.0000000002.state"
    # written: the head and the new chunk (the counter did not change)
    assert second["bytes_written"] == entry2["bytes"] + entry2["chunks"]["c2"]["bytes"]
    assert (store.dir / "state" / "big.chunk.c0.0000000001.state").stat().st_ino == inode

    cp = CheckpointStore(tmp_path / "chk").latest()  # a new process reads it back
    state = cp.state("big")
    assert isinstance(state, ChunkedState) and state.head == {"n": 3}
    assert state.chunks == {f"c{i}": chunk_value(i) for i in range(3)}
    assert cp.state("counter") == {"count": None}
    assert sorted(cp.files()) == sorted([
        "big.0000000002.state", "big.chunk.c0.0000000001.state", "big.chunk.c1.0000000001.state",
        "big.chunk.c2.0000000002.state", "counter.0000000001.state"])


def test_a_dropped_chunk_is_no_longer_referenced_and_its_file_goes_with_retention(tmp_path):
    store = CheckpointStore(tmp_path / "chk", retain=2)
    chunked(store, 1, 0, {"old": chunk_value(0), "kept": chunk_value(1)})
    chunked(store, 2, 0, {"kept": chunk_value(1), "new": chunk_value(2)})
    assert sorted(store.latest().state("big").chunks) == ["kept", "new"]
    chunked(store, 3, 0, {"kept": chunk_value(1), "new": chunk_value(2)})
    # retain 2: nothing of checkpoint 1 is left; no file is shared by 2 and 3 either
    assert state_files(store) == [
        "big.0000000002.state", "big.0000000003.state", "big.chunk.kept.0000000002.state",
        "big.chunk.kept.0000000003.state", "big.chunk.new.0000000002.state",
        "big.chunk.new.0000000003.state", "counter.0000000002.state", "counter.0000000003.state"]


def test_retention_deletes_chunk_files_no_retained_checkpoint_references(tmp_path):
    store = CheckpointStore(tmp_path / "chk", retain=3)
    for n in range(1, 8):  # a new chunk each time; the first ones are rewritten by age
        chunked(store, n, n, {f"c{i}": chunk_value(i) for i in range(n)})
    on_disk = {f for f in state_files(store) if ".chunk." in f}
    referenced = set()
    for row in store.list():
        referenced |= {e["file"] for e in row["operators"]["big"]["chunks"].values()}
    assert on_disk == referenced
    assert [r["id"] for r in store.list()] == [5, 6, 7]
    written_by = {int(f.rsplit(".", 2)[-2]) for f in on_disk}
    assert written_by == {4, 5, 6, 7}  # 5 still references what 4 wrote, nothing older
    # a chunk file of a checkpoint that crashed before its manifest goes too
    orphan = store.dir / "state" / "big.chunk.gone.0000000008.state"
    orphan.write_bytes(encode(chunk_value(0)))
    chunked(store, 8, 8, {f"c{i}": chunk_value(i) for i in range(8)})
    chunked(store, 9, 9, {f"c{i}": chunk_value(i) for i in range(8)})
    chunked(store, 10, 10, {f"c{i}": chunk_value(i) for i in range(8)})
    assert not orphan.exists() and "big.chunk.c0.0000000004.state" not in state_files(store)
    assert store.latest().state("big").chunks == {f"c{i}": chunk_value(i) for i in range(8)}


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_a_corrupt_chunk_file_falls_back_to_the_previous_checkpoint(tmp_path, damage):
    store = CheckpointStore(tmp_path / "chk", retain=3)
    chunked(store, 1, 1, {"a": chunk_value(1)})
    chunked(store, 2, 2, {"a": never("a"), "b": chunk_value(2)})
    f = store.dir / "state" / "big.chunk.b.0000000002.state"
    damage_file(f, damage)
    restarted = CheckpointStore(tmp_path / "chk", retain=3)
    cp = restarted.latest()
    assert cp.id == 1 and cp.state("big") == ChunkedState(1, {"a": chunk_value(1)})
    assert [r["valid"] for r in restarted.list()] == [True, False]
    # the restarted run reaches checkpoint 2's state again: chunk b is written anew (and a,
    # written 2 checkpoints ago, too)
    again = chunked(restarted, 3, 2, {"a": chunk_value(1), "b": chunk_value(2)})
    assert again["operators"]["big"]["chunks"]["b"]["file"] == "big.chunk.b.0000000003.state"
    assert restarted.latest().state("big").chunks["b"] == chunk_value(2)


def test_a_chunk_read_after_verification_still_checks_the_digest(tmp_path):
    store = CheckpointStore(tmp_path / "chk")
    chunked(store, 1, 1, {"a": chunk_value(1)})
    cp = store.latest()
    (store.dir / "state" / "big.chunk.a.0000000001.state").write_bytes(encode([666]))
    with pytest.raises(CheckpointError, match=r"'big' is corrupt \(chunk 'a'\)"):
        cp.state("big")


@pytest.mark.parametrize("retain", [2, 3, 4, 5])
def test_no_chunk_file_is_shared_by_every_retained_checkpoint(tmp_path, retain):
    """Chunks that never change are still written anew once they were written retain - 1
    checkpoints ago: whichever single file rots, some retained checkpoint survives."""
    store = CheckpointStore(tmp_path / "chk", retain=retain)
    writes: dict[str, int] = {}
    for n in range(1, 12):
        meta = chunked(store, n, {"n": n}, {"a": chunk_value(1), "b": chunk_value(2)},
                       counter=0)
        for e in meta["operators"]["big"]["chunks"].values():
            age = n - int(e["file"].rsplit(".", 2)[-2])
            assert age < max(1, retain - 1)
            writes[e["file"]] = writes.get(e["file"], 0) + 1
    assert max(writes.values()) == max(1, retain - 1)  # reused as long as allowed
    for victim in state_files(store):
        copy = tmp_path / f"copy-{victim}"
        shutil.copytree(store.dir, copy)
        (copy / "state" / victim).write_bytes(b"rot")
        assert CheckpointStore(copy, retain=retain).latest() is not None, victim


def test_a_restarted_store_reuses_the_chunks_of_the_latest_checkpoint(tmp_path):
    store = CheckpointStore(tmp_path / "chk", retain=4)
    chunked(store, 1, 1, {"a": chunk_value(1)})
    restarted = CheckpointStore(tmp_path / "chk", retain=4)
    meta = chunked(restarted, 2, 2, {"a": never("a")})
    assert meta["operators"]["big"]["chunks"]["a"]["file"] == "big.chunk.a.0000000001.state"
    meta = chunked(restarted, 3, 3, {"a": never("a")})
    assert meta["operators"]["big"]["chunks"]["a"]["file"] == "big.chunk.a.0000000001.state"
    meta = chunked(restarted, 4, 4, {"a": lambda: chunk_value(1)})  # 3 checkpoints: anew
    assert meta["operators"]["big"]["chunks"]["a"]["file"] == "big.chunk.a.0000000004.state"


def test_a_state_that_turns_plain_or_chunked_is_stored_as_it_is_now(tmp_path):
    store = CheckpointStore(tmp_path / "chk")
    chunked(store, 1, {"h": 1}, {"a": chunk_value(1)})
    store.write(2, {"big": {"h": 1}}, positions={}, sinks={}, pipeline="p",
                operators_info={})
    cp = store.latest()
    assert cp.state("big") == {"h": 1} and "chunks" not in cp.meta["operators"]["big"]
    chunked(store, 3, {"h": 1}, {"a": chunk_value(1)})
    assert store.latest().state("big") == ChunkedState({"h": 1}, {"a": chunk_value(1)})


def test_chunk_names_must_be_usable_in_file_names(tmp_path):
    store = CheckpointStore(tmp_path / "chk")
    for bad in ("a.b", "a/b", "", "x" * 121):
        with pytest.raises(ValueError, match="chunk name"):
            chunked(store, 1, 0, {bad: 1})
    assert store.latest() is None


def test_two_states_that_would_share_a_file_are_refused(tmp_path):
    store = CheckpointStore(tmp_path / "chk")
    with pytest.raises(CheckpointError, match="share the file"):
        store.write(1, {"x": ChunkedState(0, {"y": 1}), "x.chunk.y": 2}, positions={},
                    sinks={}, pipeline="p", operators_info={})
    assert store.latest() is None  # checkpoint 1 never came to exist


def test_materializing_a_chunked_state_calls_its_lazy_chunks():
    state = ChunkedState({"h": 1}, {"a": lambda: [1, 2], "b": [3]})
    assert state.materialized() == ChunkedState({"h": 1}, {"a": [1, 2], "b": [3]})
    assert state.value("a") == [1, 2]


def test_copying_the_files_of_a_checkpoint_gives_a_complete_checkpoint(tmp_path):
    store = CheckpointStore(tmp_path / "chk")
    chunked(store, 1, 1, {"a": chunk_value(1)})
    chunked(store, 2, 2, {"a": never("a"), "b": chunk_value(2)})
    cp = store.latest()
    target = tmp_path / "copy"
    (target / "state").mkdir(parents=True)
    for f in cp.files():
        shutil.copy2(store.dir / "state" / f, target / "state" / f)
    shutil.copy2(manifest(store, 2), target)
    copied = CheckpointStore(target).latest()
    assert copied.id == 2 and copied.state("big").chunks == {"a": chunk_value(1),
                                                             "b": chunk_value(2)}


def test_a_savepoint_of_a_chunked_state_is_complete(tmp_path):
    from surestream.cli.checkpoint_cmds import copy_checkpoint, load_savepoint

    store = CheckpointStore(tmp_path / "chk")
    chunked(store, 1, 1, {"a": chunk_value(1)})
    sp = copy_checkpoint(store.latest(), tmp_path / "sp")
    assert load_savepoint(sp).state("big").chunks == {"a": chunk_value(1)}
