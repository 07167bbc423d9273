"""Pipelines whose outputs are all in memory leave nothing behind (issue 8, item 5).

``surestream.testing`` and ``Pipeline()`` with ``memory()`` outputs used to checkpoint into
``.surestream/checkpoints/<name>`` of the current folder: litter in every working tree the
tests ran in, and a trap -- the next run of the same pipeline resumed from there with none
of the records written before the checkpoint. Now they checkpoint into a temporary folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from surestream.api import Pipeline, jsonl, memory
from surestream.model.steps import LateDataStep, WatermarkStep
from surestream.runners.local.runner import LocalRunner
from surestream.testing import memory_spec, run_steps

RECORDS = [{"id": i, "ts": 1000 * i} for i in range(50)]
STEPS = [WatermarkStep(timestamp_column="ts"), LateDataStep(output_tag="late")]


@pytest.fixture
def empty_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cwd"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def memory_pipeline(name: str = "in-memory") -> Pipeline:
    p = Pipeline(name, batch_size=10)
    p.read_records(RECORDS).watermark("ts").late_data("late").to(memory())
    p.output("late", memory())
    return p


def test_testing_helpers_write_nothing_in_the_current_folder(empty_cwd):
    out = run_steps(RECORDS, STEPS, batch_size=7)
    assert [r["id"] for r in out["main"]] == list(range(50))
    spec = memory_spec(RECORDS, STEPS)
    LocalRunner(spec).run()
    assert list(empty_cwd.iterdir()) == []
    assert not Path(spec.checkpoint.dir).is_relative_to(empty_cwd)


def test_a_memory_pipeline_writes_nothing_and_removes_its_checkpoints(empty_cwd):
    p = memory_pipeline()
    result = p.run()
    assert [r["id"] for r in result.rows("main")] == list(range(50))
    assert list(empty_cwd.iterdir()) == []
    spec = p.spec()  # each spec of it gets a fresh temporary folder
    assert Path(spec.checkpoint.dir).is_dir() and not any(Path(spec.checkpoint.dir).iterdir())


def test_an_interrupted_memory_pipeline_run_again_gives_every_record(empty_cwd):
    """Its outputs did not survive, so the next run must not resume from a checkpoint."""
    p = memory_pipeline()
    first = p.run(stop_after_checkpoint=True)  # stops after its first checkpoint
    assert 0 < len(first.rows("main")) < 50
    again = p.run()
    assert again.restored_from is None
    assert [r["id"] for r in again.rows("main")] == list(range(50))


def test_a_memory_pipeline_keeps_its_errors_in_memory(empty_cwd):
    p = Pipeline("errors-in-memory")
    p.read_records([{"ts": 1}, {"ts": "not a time"}, {"ts": 2}]).watermark("ts").to(memory())
    result = p.run()
    assert [r["ts"] for r in result.rows("main")] == [1, 2]
    assert len(result.rows("errors")) == 1
    assert list(empty_cwd.iterdir()) == []


def test_a_pipeline_with_file_outputs_keeps_a_stable_checkpoint_folder(empty_cwd):
    """It can resume from there on its next run: the default stays where it was."""
    p = Pipeline("to-files")
    p.read_records(RECORDS).watermark("ts").late_data("late").to(jsonl("out/main.jsonl"))
    p.output("late", jsonl("out/late.jsonl"))
    assert p.spec().checkpoint.dir is None
    assert p.spec().checkpoint_dir() == Path(".surestream/checkpoints/to-files")
