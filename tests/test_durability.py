"""Durable means fsynced: what a power loss leaves (issue 7, item 10).

SIGKILL keeps the kernel's page cache, so the crash tests (``faults.py``, ``verify``) never
lose a write the process made. A power loss does: a file's bytes survive only if the file
was fsynced, and a folder entry (a file created, renamed in, deleted; a folder made) only
if its folder was fsynced after the change. These tests model exactly that.

``PowerLossModel`` watches a run from the inside: at every ``os.fsync`` it records what the
fsync made durable -- a file's bytes, or a folder's entries -- keyed by inode (and by a
generation that changes when an inode is freed, since the file system reuses inode
numbers). The durable state at any moment is then: the folder tree as of each folder's last
fsync, each file with its bytes as of its last fsync (empty if it never had one). With it:

- ``test_every_commit_step_is_durable_when_it_returns``: when a step of the protocol
  returns -- a checkpoint written, a sink's pre-commit, commit or recovery, a fresh start
  -- what it did is in the durable state. Each missing fsync fails one of these checks.
- ``test_a_power_loss_at_any_fsync_then_a_restart_gives_the_clean_outputs``: the state a
  power loss right after each fsync of a whole sequence of runs would leave is rebuilt on
  disk, the pipeline restarted, and its outputs compared with an uninterrupted run.
- savepoints: a copied savepoint, and an adopted one, are durable when the copy returns.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import surestream
from surestream.apps.trading.simulator import TradeSimulation
from surestream.cli.checkpoint_cmds import copy_checkpoint, load_savepoint
from surestream.connectors.file_sinks import (
    LineFileSink,
    ParquetDatasetSink,
    dataset_parts,
    read_parquet_dataset,
)
from surestream.model.loader import load_spec
from surestream.runners.local.checkpoint_store import Checkpoint, CheckpointStore
from surestream.runners.local.runner import LocalRunner

SPEC = Path(surestream.__file__).parent / "examples" / "trades_vwap.yaml"
EVENTS = 1200

Key = tuple[int, int]  # (inode, generation)


@dataclass
class PowerLossModel:
    """What a power loss would leave of everything under ``root`` (module docstring)."""

    root: Path
    generation: dict[int, int] = field(default_factory=dict)
    #: ("dir", key, {name: (key, is_dir)}) or ("file", key, bytes), in fsync order
    events: list[tuple[str, Key, Any]] = field(default_factory=list)
    initial_dirs: dict[Key, dict[str, tuple[Key, bool]]] = field(default_factory=dict)
    initial_files: dict[Key, bytes] = field(default_factory=dict)
    root_key: Key = (0, 0)
    failures: list[str] = field(default_factory=list)

    def key(self, st: os.stat_result) -> Key:
        return st.st_ino, self.generation.get(st.st_ino, 0)

    def _listing(self, folder: str) -> dict[str, tuple[Key, bool]]:
        out = {}
        for name in os.listdir(folder):
            st = os.lstat(os.path.join(folder, name))
            out[name] = (self.key(st), stat.S_ISDIR(st.st_mode))
        return out

    def start(self) -> None:
        """Everything under ``root`` now counts as durable."""
        self.root_key = self.key(os.stat(self.root))
        for folder, _, files in os.walk(self.root):
            self.initial_dirs[self.key(os.stat(folder))] = self._listing(folder)
            for name in files:
                p = os.path.join(folder, name)
                self.initial_files[self.key(os.lstat(p))] = Path(p).read_bytes()

    # -- what the code under test does -------------------------------------------------------
    def on_fsync(self, fd: int) -> None:
        st = os.fstat(fd)
        proc = f"/proc/self/fd/{fd}"
        if stat.S_ISDIR(st.st_mode):
            self.events.append(("dir", self.key(st), self._listing(proc)))
        elif stat.S_ISREG(st.st_mode):
            with open(proc, "rb") as f:
                self.events.append(("file", self.key(st), f.read()))

    def on_removal(self, st: os.stat_result | None) -> None:
        """An entry is gone; if it was the inode's last name, the inode is freed and its
        number may come back as another file."""
        if st is not None and (stat.S_ISDIR(st.st_mode) or st.st_nlink <= 1):
            self.generation[st.st_ino] = self.generation.get(st.st_ino, 0) + 1

    # -- the durable state -----------------------------------------------------------------
    def durable(self, upto: int | None = None) -> dict[str, bytes | None]:
        """relative path -> bytes (None for a folder), as a power loss after the first
        ``upto`` fsyncs would leave it."""
        dirs, files = dict(self.initial_dirs), dict(self.initial_files)
        for kind, key, value in self.events[:upto]:
            (dirs if kind == "dir" else files)[key] = value
        tree: dict[str, bytes | None] = {}

        def walk(key: Key, rel: str, depth: int) -> None:
            assert depth < 40, "a folder inside itself"
            for name, (child, is_dir) in sorted(dirs.get(key, {}).items()):
                path = f"{rel}{name}"
                if is_dir:
                    tree[path] = None
                    walk(child, f"{path}/", depth + 1)
                else:
                    tree[path] = files.get(child, b"")

        walk(self.root_key, "", 0)
        return tree

    def rebuild(self, dest: Path, upto: int | None = None, under: str = "") -> None:
        """Write the durable state (of the subtree ``under``) into ``dest``."""
        for rel, data in self.durable(upto).items():
            if under and not rel.startswith(under):
                continue
            target = dest / rel[len(under):]
            if data is None:
                target.mkdir(parents=True, exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)

    def rel(self, path: Path) -> str:
        return str(Path(path).relative_to(self.root))

    def expect(self, ok: bool, what: str) -> None:
        if not ok:
            self.failures.append(what)

    def expect_durable(self, path: Path, step: str) -> None:
        """The file at ``path`` has, durably, the bytes it has now."""
        live = Path(path).read_bytes() if Path(path).exists() else None
        got = self.durable().get(self.rel(path))
        self.expect(got == live, f"after {step}: {self.rel(path)} is "
                    f"{'missing' if got is None else f'{len(got)} bytes'} after a power loss "
                    f"({'missing' if live is None else f'{len(live)} bytes'} live)")


def _removal_wrapper(model: PowerLossModel, real: Callable, victim: Callable) -> Callable:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            st = victim(*args, **kwargs)
        except OSError:
            st = None
        result = real(*args, **kwargs)
        model.on_removal(st)
        return result
    return wrapper


@contextmanager
def watching(model: PowerLossModel, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Route os.fsync and every removal through ``model`` while the block runs."""
    real = {name: getattr(os, name) for name in
            ("fsync", "unlink", "remove", "rmdir", "replace", "rename")}

    def fsync(fd: int) -> None:
        # the model, not the disk, decides what survives: the real fsync would only cost
        # time (a lot of it, on a busy disk)
        model.on_fsync(fd)

    def lstat_path(path: Any, *, dir_fd: int | None = None) -> os.stat_result:
        return os.lstat(path, dir_fd=dir_fd)

    def lstat_target(src: Any, dst: Any, *, src_dir_fd: int | None = None,
                     dst_dir_fd: int | None = None) -> os.stat_result:
        return os.lstat(dst, dir_fd=dst_dir_fd)

    model.start()
    with monkeypatch.context() as m:
        m.setattr(os, "fsync", fsync)
        for name in ("unlink", "remove", "rmdir"):
            m.setattr(os, name, _removal_wrapper(model, real[name], lstat_path))
        for name in ("replace", "rename"):
            m.setattr(os, name, _removal_wrapper(model, real[name], lstat_target))
        yield


@contextmanager
def protocol_checks(model: PowerLossModel, monkeypatch: pytest.MonkeyPatch
                    ) -> Iterator[None]:
    """After each protocol step returns, what it did must be durable."""
    def after(cls: type, name: str, check: Callable[..., None]) -> None:
        original = getattr(cls, name)

        def wrapped(self: Any, *args: Any, **kwargs: Any) -> Any:
            result = original(self, *args, **kwargs)
            check(self, result, *args, **kwargs)
            return result

        m.setattr(cls, name, wrapped)

    def line_file(step: str) -> Callable[..., None]:
        def check(sink: LineFileSink, *_: Any, **__: Any) -> None:
            model.expect_durable(sink.path, f"{step} of {sink.path.name}")
            model.expect_durable(sink.log_path, f"{step} of {sink.path.name}")
        return check

    def line_pre_commit(sink: LineFileSink, committable: dict, *_: Any, **__: Any) -> None:
        if committable["part"]:
            model.expect_durable(sink.staging / committable["part"],
                                 f"pre_commit of {sink.path.name}")

    def line_open(sink: LineFileSink, _: Any, fresh: bool) -> None:  # open(fresh=...)
        if fresh:
            line_file("a fresh start")(sink)

    def parquet_parts(sink: ParquetDatasetSink, step: str) -> None:
        live = {model.rel(p): p.read_bytes() for p in dataset_parts(sink.path)}
        prefix = model.rel(sink.path) + "/"
        durable = {rel: data for rel, data in model.durable().items()
                   if rel.startswith(prefix) and data is not None
                   and "/." not in rel[len(prefix) - 1:] and rel.endswith(".parquet")}
        model.expect(durable == live, f"after {step} of {sink.path.name}: committed parts "
                     f"{sorted(durable)} after a power loss, {sorted(live)} live")

    def parquet_pre_commit(sink: ParquetDatasetSink, committable: dict, *_: Any, **__: Any
                           ) -> None:
        for rel, _rows in committable["parts"]:
            model.expect_durable(sink.staging / rel, f"pre_commit of {sink.path.name}")

    def store_write(store: CheckpointStore, meta: dict, checkpoint_id: int, *_: Any,
                    **__: Any) -> None:
        scratch = model.root.parent / f"{model.root.name}-durable-chk"
        shutil.rmtree(scratch, ignore_errors=True)
        model.rebuild(scratch, under=model.rel(store.dir) + "/")
        latest = CheckpointStore(scratch).latest() if scratch.is_dir() else None
        model.expect(latest is not None and latest.id == checkpoint_id,
                     f"after writing checkpoint {checkpoint_id}: a power loss leaves "
                     f"{'no checkpoint' if latest is None else f'checkpoint {latest.id}'}")
        shutil.rmtree(scratch, ignore_errors=True)

    with monkeypatch.context() as m:
        after(LineFileSink, "commit", line_file("commit"))
        after(LineFileSink, "recover", line_file("recover"))
        after(LineFileSink, "pre_commit", line_pre_commit)
        after(LineFileSink, "open", line_open)
        after(ParquetDatasetSink, "commit", lambda s, *_, **__: parquet_parts(s, "commit"))
        after(ParquetDatasetSink, "recover", lambda s, *_, **__: parquet_parts(s, "recover"))
        after(ParquetDatasetSink, "open",
              lambda s, _, fresh: parquet_parts(s, "a fresh start") if fresh else None)
        after(ParquetDatasetSink, "pre_commit", parquet_pre_commit)
        after(CheckpointStore, "write", store_write)
        yield


# -- the pipeline ------------------------------------------------------------------------------


def make_spec(data: Path, out: Path, batch_size: int = 300):
    return load_spec(SPEC, [
        f"source.path={data}",
        f"outputs.main={{type: file, format: parquet, path: '{out / 'windows'}', "
        "partition_by: [symbol]}",
        f"outputs.late.path={out / 'lines' / 'late.csv'}", "outputs.late.format=csv",
        f"outputs.late_window.path={out / 'lines' / 'late_window.jsonl'}",
        f"outputs.errors.path={out / 'lines' / 'errors.jsonl'}",
        f"checkpoint.dir={out / 'chk'}", "checkpoint.interval_records=300",
        "checkpoint.interval_ms=null", f"runtime.batch_size={batch_size}",
        "steps[0].max_out_of_orderness_ms=1500", "steps[3].size_ms=500"])


def outputs(out: Path) -> dict[str, Any]:
    got: dict[str, Any] = {name: (out / "lines" / name).read_bytes()
                           for name in ("late.csv", "late_window.jsonl", "errors.jsonl")}
    got["windows"] = read_parquet_dataset(out / "windows").to_dicts()
    return got


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("trades") / "trades.jsonl"
    # few symbols: the windows dataset is partitioned by symbol, a folder each
    truth = TradeSimulation(events=EVENTS, seed=13, symbols=4, late_rate=0.01,
                            malformed_rate=0.005).write(str(path))
    assert truth.late and truth.malformed
    return path


@pytest.fixture(scope="module")
def clean(data, tmp_path_factory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("clean")
    LocalRunner(make_spec(data, out, batch_size=100_000)).run()
    got = outputs(out)
    assert len(got["windows"]) > 20 and got["late.csv"].count(b"\n") > 2
    return got


def sequence_of_runs(data: Path, out: Path) -> None:
    """A finished run; a fresh start over it that stops after each checkpoint, until one
    committed windows and late trades; that checkpoint damaged (on disk, durably); a run
    from the one before to the end (rolling those outputs back first)."""
    LocalRunner(make_spec(data, out)).run()
    for runs in range(1, 20):
        LocalRunner(make_spec(data, out), stop_after_checkpoint=True).run()
        latest = CheckpointStore(out / "chk").latest()
        if runs >= 2 and latest.committables["main"]["parts"] \
                and latest.committables["late"]["part"]:
            break
    else:
        pytest.fail("no checkpoint committed both windows and late trades")
    manifest = out / "chk" / f"chk-{latest.id:010d}.json"
    with open(manifest, "r+b") as f:
        f.truncate(manifest.stat().st_size - 20)
        os.fsync(f.fileno())
    result = LocalRunner(make_spec(data, out)).run()
    assert result.restored_from == latest.id - 1


@pytest.mark.parametrize("premade", [False, True],
                         ids=["folders-made-by-the-run", "folders-made-before"])
def test_every_commit_step_is_durable_when_it_returns(data, clean, tmp_path, monkeypatch,
                                                      premade):
    root = tmp_path / "root"
    (root / "out" / "chk" if premade else root).mkdir(parents=True)
    model = PowerLossModel(root)
    with watching(model, monkeypatch), protocol_checks(model, monkeypatch):
        sequence_of_runs(data, root / "out")
    assert outputs(root / "out") == clean
    assert not model.failures, "\n".join(dict.fromkeys(model.failures))


@pytest.fixture
def scratch_root(tmp_path) -> Iterator[Path]:
    """An empty folder for a run that is rebuilt and restarted many times: in memory
    (/dev/shm) where there is one, as the disk adds nothing here but minutes."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        base = Path(tempfile.mkdtemp(prefix="surestream-durability-", dir=shm))
    else:
        base = tmp_path
    root = base / "root"
    root.mkdir()
    yield root
    if base != tmp_path:
        shutil.rmtree(base, ignore_errors=True)


def test_a_power_loss_at_any_fsync_then_a_restart_gives_the_clean_outputs(
        data, clean, scratch_root, monkeypatch):
    root = scratch_root
    # output and checkpoint folders that exist (durably) before the run: a power loss
    # then keeps what was fsynced in them and drops the rest -- the states that show a
    # missing fsync (with folders the run makes and never fsyncs, a power loss takes
    # everything, and a fresh start hides it)
    (root / "out" / "chk").mkdir(parents=True)
    model = PowerLossModel(root)
    with watching(model, monkeypatch):
        sequence_of_runs(data, root / "out")
    points = len(model.events)
    assert points > 100
    wrong = []
    monkeypatch.setattr(os, "fsync", lambda fd: None)  # restarts: results, not durability
    for upto in range(points + 1):
        shutil.rmtree(root)
        root.mkdir()
        model.rebuild(root, upto)  # (the folders made before are in every state)
        try:
            LocalRunner(make_spec(data, root / "out", batch_size=500)).run()
            got = outputs(root / "out")
        except Exception as e:  # noqa: BLE001 - a restart that fails is the finding
            wrong.append(f"power loss after fsync {upto}/{points}: restart failed: "
                         f"{type(e).__name__}: {e}")
            continue
        if got != clean:
            wrong.append(f"power loss after fsync {upto}/{points}: outputs differ in "
                         + ", ".join(k for k in got if got[k] != clean[k]))
    assert not wrong, "\n".join(wrong[:10])


def test_a_checkpoint_written_into_a_new_folder_is_durable(tmp_path, monkeypatch):
    root = tmp_path / "root"
    root.mkdir()
    model = PowerLossModel(root)
    with watching(model, monkeypatch):
        CheckpointStore(root / "a" / "chk").write(
            1, {"op": {"n": 1}}, positions={}, sinks={}, pipeline="p", operators_info={})
    model.rebuild(tmp_path / "durable")
    assert CheckpointStore(tmp_path / "durable" / "a" / "chk").latest().id == 1


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2-exchange", "two-renames"])
def test_a_savepoint_is_durable_when_copied_and_when_adopted(data, tmp_path, monkeypatch,
                                                             exchange):
    root = tmp_path / "root"
    root.mkdir()
    out = root / "out"
    for _ in range(4):
        LocalRunner(make_spec(data, out), stop_after_checkpoint=True).run()
    store = CheckpointStore(out / "chk")
    assert [r["id"] for r in store.list()] == [2, 3, 4]

    def durable_ids(model: PowerLossModel, under: str, upto: int | None = None) -> list[int]:
        scratch = tmp_path / "durable"
        shutil.rmtree(scratch, ignore_errors=True)
        model.rebuild(scratch, upto, under=under)
        return [r["id"] for r in CheckpointStore(scratch).list() if r["valid"]]

    for cp_id in (3, 2):  # a new folder; then over a savepoint with a higher id
        model = PowerLossModel(root)
        with watching(model, monkeypatch):
            copy_checkpoint(Checkpoint(store, cp_id, store._read_manifest(cp_id)),
                            root / "sp")
        assert durable_ids(model, "sp/") == [cp_id]

    if not exchange:  # a file system without RENAME_EXCHANGE
        from surestream.runners.local import savepoints
        monkeypatch.setattr(savepoints, "_exchange", lambda a, b: False)
    model = PowerLossModel(root)
    with watching(model, monkeypatch):
        runner = LocalRunner(make_spec(data, out), stop_after_checkpoint=True,
                             from_savepoint=load_savepoint(root / "sp"))
        runner.run()
    assert runner.restored.id == 2
    monkeypatch.setattr(os, "fsync", lambda fd: None)
    for upto in range(len(model.events) + 1):  # the old timeline or the new, never neither
        ids = durable_ids(model, "out/chk/", upto)
        assert ids in ([2, 3, 4], [2], [2, 3]), f"after fsync {upto}: {ids}"
    assert ids == [2, 3]  # the savepoint and its successor
