"""``savepoint`` never destroys output; adopting one never empties the live folder
(issue 7, item 9).

``surestream savepoint`` on a finished pipeline used to start it afresh: a 353-window output
was truncated to the first batch's windows, with exit 0. ``run --from-savepoint`` cleared
the live checkpoint folder before copying the savepoint in, so a savepoint that did not fit
the pipeline, or a copy that failed, left a pipeline with no checkpoint at all -- whose next
run starts afresh and rewrites every output."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import surestream
from surestream.apps.trading.simulator import TradeSimulation
from surestream.cli.main import main
from surestream.model.loader import apply_override, load_spec_dict
from surestream.runners.local.checkpoint_store import CheckpointStore

SPEC = Path(surestream.__file__).parent / "examples" / "trades_vwap.yaml"


def overrides(data: Path, out: Path, batch_size: int = 400) -> list[str]:
    return [f"source.path={data}", f"outputs.main.path={out / 'windows.jsonl'}",
            f"outputs.late.path={out / 'late.jsonl'}",
            f"outputs.late_window.path={out / 'late_window.jsonl'}",
            f"outputs.errors.path={out / 'errors.jsonl'}", f"checkpoint.dir={out / 'chk'}",
            "checkpoint.interval_ms=null", "checkpoint.interval_records=1000",
            f"runtime.batch_size={batch_size}",
            "steps[0].max_out_of_orderness_ms=1500", "steps[3].size_ms=500"]


def sets(data: Path, out: Path, **kw) -> list[str]:
    return [a for o in overrides(data, out, **kw) for a in ("--set", o)]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "surestream", *args], capture_output=True,
                          text=True, timeout=300)


OUTPUTS = ("windows.jsonl", "late.jsonl", "late_window.jsonl", "errors.jsonl")


def outputs(out: Path) -> dict[str, bytes]:
    return {name: (out / name).read_bytes() for name in OUTPUTS}


def checkpoint_files(out: Path) -> dict[str, bytes]:
    chk = out / "chk"
    return {str(p.relative_to(chk)): p.read_bytes() for p in sorted(chk.rglob("*"))
            if p.is_file() and p.name != ".lock"}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("trades") / "trades.jsonl"
    TradeSimulation(events=4000, seed=5).write(str(path))
    return path


@pytest.fixture(scope="module")
def clean(data, tmp_path_factory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("clean")
    r = cli("run", str(SPEC), *sets(data, out, batch_size=100_000))
    assert r.returncode == 0, r.stderr
    got = outputs(out)
    assert got["windows.jsonl"].count(b"\n") > 100
    return got


def test_a_savepoint_of_a_finished_pipeline_is_refused_and_changes_nothing(data, clean,
                                                                          tmp_path):
    out = tmp_path / "out"
    assert cli("run", str(SPEC), *sets(data, out)).returncode == 0
    assert outputs(out) == clean
    checkpoints = checkpoint_files(out)
    r = cli("savepoint", str(SPEC), *sets(data, out))
    assert r.returncode == 2
    assert "has finished" in r.stderr and "nothing was changed" in r.stderr
    assert outputs(out) == clean  # not truncated to the first batch's windows
    assert checkpoint_files(out) == checkpoints
    assert not (out / "chk-savepoints").exists()


def savepoints_then_more(data: Path, out: Path, tmp_path: Path) -> Path:
    """A savepoint at checkpoint 1, then the pipeline moved on to checkpoint 3."""
    sp = tmp_path / "sp"
    r = cli("savepoint", str(SPEC), *sets(data, out), "--to", str(sp))
    assert r.returncode == 0, r.stderr
    for _ in range(2):
        assert cli("savepoint", str(SPEC), *sets(data, out), "--to",
                   str(tmp_path / "later")).returncode == 0
    assert CheckpointStore(sp).latest().id == 1
    assert CheckpointStore(out / "chk").latest().id == 3
    return sp


def test_an_incompatible_savepoint_is_refused_before_the_live_checkpoints_are_touched(
        data, clean, tmp_path):
    out = tmp_path / "out"
    sp = savepoints_then_more(data, out, tmp_path)
    live, written = checkpoint_files(out), outputs(out)
    doc = load_spec_dict(SPEC)
    for assignment in overrides(data, out):
        apply_override(doc, assignment)
    doc["steps"] = [s for s in doc["steps"] if s["name"] != "dedup_by_trade_id"]
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(doc, sort_keys=False))

    r = cli("run", str(changed), "--from-savepoint", str(sp))
    assert r.returncode == 2 and "'dedup_by_trade_id'" in r.stderr
    assert checkpoint_files(out) == live and outputs(out) == written
    # the pipeline is not wedged: it resumes where it was and finishes exactly once
    r = cli("run", str(SPEC), *sets(data, out))
    assert r.returncode == 0, r.stderr
    assert "resumed from checkpoint 3" in r.stderr
    assert outputs(out) == clean


def test_a_savepoint_that_cannot_be_copied_leaves_the_live_checkpoints_in_place(
        data, clean, tmp_path, monkeypatch):
    out = tmp_path / "out"
    sp = savepoints_then_more(data, out, tmp_path)
    live = checkpoint_files(out)

    def disk_full(src, dst, *a, **kw):
        raise OSError(errno.ENOSPC, "No space left on device", str(dst))

    monkeypatch.setattr(shutil, "copyfile", disk_full)
    assert main(["run", str(SPEC), *sets(data, out), "--from-savepoint", str(sp)]) != 0
    monkeypatch.undo()
    assert checkpoint_files(out) == live
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no leftovers
    r = cli("run", str(SPEC), *sets(data, out))
    assert r.returncode == 0, r.stderr
    assert "resumed from checkpoint 3" in r.stderr
    assert outputs(out) == clean


def test_adopting_a_savepoint_replaces_the_newer_timeline_and_keeps_the_folder_locked(
        data, clean, tmp_path):
    out = tmp_path / "out"
    sp = savepoints_then_more(data, out, tmp_path)
    r = cli("run", str(SPEC), *sets(data, out), "--from-savepoint", str(sp))
    assert r.returncode == 0, r.stderr
    assert "resumed from checkpoint 1" in r.stderr
    assert outputs(out) == clean
    assert CheckpointStore(sp).latest().id == 1  # the savepoint itself is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["later", "out", "sp"]


class PowerCut(BaseException):
    """The process ends here (not an exception the run may catch: not KeyboardInterrupt,
    which a run takes as Ctrl-C and answers with a final checkpoint)."""


def test_adoption_without_an_atomic_swap_finishes_after_a_crash_between_its_renames(
        data, clean, tmp_path, monkeypatch):
    """Where the file system cannot exchange two folders, the live folder is renamed
    aside and the new one into place; a crash between the two is finished at the next
    start, which resumes from the savepoint."""
    from surestream.runners.local import savepoints

    out = tmp_path / "out"
    sp = savepoints_then_more(data, out, tmp_path)
    monkeypatch.setattr(savepoints, "_exchange", lambda a, b: False)
    real_rename = os.rename

    def crash_on_the_second(src, dst):
        if Path(src).name == ".chk.incoming":
            raise PowerCut("between the two renames")
        return real_rename(src, dst)

    monkeypatch.setattr(savepoints.os, "rename", crash_on_the_second)
    with pytest.raises(PowerCut):
        main(["run", str(SPEC), *sets(data, out), "--from-savepoint", str(sp)])
    monkeypatch.undo()
    assert not (out / "chk").exists() and (out / ".chk.incoming").is_dir()
    r = cli("run", str(SPEC), *sets(data, out))
    assert r.returncode == 0, r.stderr
    assert "resumed from checkpoint 1" in r.stderr
    assert outputs(out) == clean
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".chk")) == []



def test_adoption_without_an_atomic_swap_works(data, clean, tmp_path, monkeypatch):
    from surestream.runners.local import savepoints

    out = tmp_path / "out"
    sp = savepoints_then_more(data, out, tmp_path)
    monkeypatch.setattr(savepoints, "_exchange", lambda a, b: False)
    assert main(["run", str(SPEC), *sets(data, out), "--from-savepoint", str(sp)]) == 0
    assert outputs(out) == clean
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".chk")) == []
