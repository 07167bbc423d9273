"""Generator sources resume exactly (issue 7, item 11).

Only a generator that can be read again from its start -- a function returning a fresh
iterator, or a collection such as a ``records:`` list -- can resume from a checkpoint. An
iterator object (a generator, ``iter(...)``) would go on from where it stands and lose what
the reader had read ahead: a spec with periodic checkpoints refuses it at validation, and a
resume refuses it too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from surestream.model.loader import SpecError, build_spec
from surestream.runners.local.checkpointing import IncompatibleStateError
from surestream.runners.local.runner import LocalRunner

N = 3000


def records() -> Iterator[dict]:
    for i in range(N):
        yield {"id": i, "ts": 1000 + i}


def spec_doc(tmp: Path, source: dict, *, periodic: bool = True) -> dict:
    checkpoint: dict = {"dir": str(tmp / "cp")}
    if periodic:
        checkpoint["interval_records"] = 1000
    return {"pipeline": "gen", "source": {"type": "generator", **source},
            "outputs": {"main": {"type": "file", "path": str(tmp / "main.jsonl")}},
            "checkpoint": checkpoint, "runtime": {"batch_size": 1000}}


def ids_out(tmp: Path) -> list[int]:
    import json

    return [json.loads(x)["id"] for x in (tmp / "main.jsonl").read_text().splitlines()]


def stop_then_resume(doc: dict) -> None:
    LocalRunner(build_spec(doc), stop_after_checkpoint=True).run()
    LocalRunner(build_spec(doc)).run()


@pytest.mark.parametrize("make", [lambda: records(), lambda: iter(list(records()))],
                         ids=["generator object", "iterator"])
def test_an_iterator_is_refused_at_validation_when_checkpointing_is_on(tmp_path, make):
    with pytest.raises(SpecError, match=r"source\.function: .*cannot be read again"):
        build_spec(spec_doc(tmp_path, {"function": make()}))


def test_an_iterator_runs_when_no_checkpoint_needs_a_resume(tmp_path):
    LocalRunner(build_spec(spec_doc(tmp_path, {"function": records()}, periodic=False))).run()
    assert ids_out(tmp_path) == list(range(N))


@pytest.mark.parametrize("source", [{"function": records}, {"function": list(records())},
                                    {"type": "memory", "records": list(records())}],
                         ids=["function", "list", "records"])
def test_a_restartable_generator_resumes_exactly(tmp_path, source):
    stop_then_resume(spec_doc(tmp_path, source))
    assert ids_out(tmp_path) == list(range(N))


def test_a_resume_refuses_an_iterator_instead_of_losing_its_read_ahead(tmp_path):
    # no periodic checkpoints, but a savepoint-style stop: the resume cannot restart it
    doc = spec_doc(tmp_path, {"function": records()}, periodic=False)
    LocalRunner(build_spec(doc), stop_after_checkpoint=True).run()
    with pytest.raises(IncompatibleStateError, match="cannot be resumed"):
        LocalRunner(build_spec(doc)).run()


def test_a_function_returning_the_same_iterator_again_is_refused_on_resume(tmp_path):
    shared = records()
    doc = spec_doc(tmp_path, {"function": lambda: shared})
    LocalRunner(build_spec(doc), stop_after_checkpoint=True).run()
    with pytest.raises(IncompatibleStateError, match="fresh one"):
        LocalRunner(build_spec(doc)).run()


def test_a_named_iterator_is_refused_at_start_when_checkpointing_is_on(tmp_path, monkeypatch):
    from surestream.connectors.sources import SourceError

    (tmp_path / "gen_module_items.py").write_text(
        "RECORDS = ({'id': i} for i in range(10))\n"
        "def records():\n    return ({'id': i} for i in range(10))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    doc = spec_doc(tmp_path, {"function": "gen_module_items:RECORDS"})
    with pytest.raises(SourceError, match="cannot be read again from its start"):
        LocalRunner(build_spec(doc))
    doc = spec_doc(tmp_path, {"function": "gen_module_items:records"})
    stop_then_resume(doc)
    assert ids_out(tmp_path) == list(range(10))
