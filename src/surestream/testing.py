"""Run steps over in-memory records and get every tag back: a pipeline test in a few lines.

    out = run_steps(records, [{"type": "watermark", "timestamp_column": "ts"},
                              {"type": "late_data_side_output", "output_tag": "late"}],
                    batch_size=7)
    assert [r["id"] for r in out["late"]] == ["e3"]

A step is written as in a spec file's ``steps:`` list (a dict with its ``type``) or as the
step model itself (``WatermarkStep(timestamp_column="ts")``). Steps are checked as
``surestream validate`` checks a file: a mistake raises ``SpecError`` whose problems name
the field by its path (``steps[1].time_window_ms``), and user code a step names is
resolved and checked before anything runs.

No broker, no files: the records go through the real local runner with memory outputs for
the stream's results (tag ``main``), every side tag the steps declare, and ``errors``.
Checkpoints go to a temporary folder (never the current one): memory outputs end with the
process, and so must the checkpoints that are consistent with them.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import TypeAdapter, ValidationError

from surestream.io.scratch import scratch_dir
from surestream.model.loader import SpecError, build_spec, format_validation_error
from surestream.model.spec import (
    ERRORS_TAG,
    MAIN_STREAM,
    GeneratorSource,
    MemorySink,
    PipelineSpec,
    step_side_tags,
)
from surestream.model.steps import Step
from surestream.runners.local.runner import LocalRunner, RunResult

#: the ``steps:`` list of a spec file: the same discriminated union, the same checks
_STEPS = TypeAdapter(list[Step])
#: where errors of steps given to ``run_steps`` / ``memory_spec`` say they come from
STEPS_SOURCE = "run_steps"


def step_models(steps: Iterable[Any]) -> list[Any]:
    """Steps as their models: a dict as a spec's ``steps:`` entry, a model as it is.

    Raises ``SpecError`` with one ``(steps[i].field, reason)`` per mistake, the paths and
    reasons ``surestream validate`` gives for the same entries in a file."""
    try:
        return _STEPS.validate_python(list(steps))
    except ValidationError as e:
        raise SpecError([("steps" + (f".{path}" if path and not path.startswith("[")
                                     else path), reason)
                         for path, reason in format_validation_error(e)],
                        STEPS_SOURCE) from None


def memory_spec(records: Iterable[Any], steps: Sequence[Any], *, batch_size: int = 65536,
                pipeline: str = "test", interleave_records: int = 1024,
                checkpoint_dir: str | None = None) -> PipelineSpec:
    """A one-stream spec over ``records`` whose every output is a memory collector.

    ``steps`` are dicts as in a spec file or step models (``step_models``); the spec is
    validated as a file is (``SpecError`` on a mistake). Its checkpoints go to
    ``checkpoint_dir``, by default a fresh temporary folder removed when the process
    exits: every run of the spec starts afresh, as its outputs do."""
    models = step_models(steps)
    tags = {MAIN_STREAM, ERRORS_TAG} | {t for s in models for t in step_side_tags(s)}
    return build_spec({
        "pipeline": pipeline,
        "source": GeneratorSource(type="memory", records=list(records)),
        "steps": models,
        "outputs": {t: MemorySink() for t in tags},
        "checkpoint": {"dir": checkpoint_dir or scratch_dir(f"surestream-{pipeline}-")},
        "runtime": {"batch_size": batch_size, "interleave_records": interleave_records},
    }, source=STEPS_SOURCE)


def run_steps(records: Iterable[Any], steps: Sequence[Any], *, batch_size: int = 65536,
              pipeline: str = "test") -> dict[str, list[dict[str, Any]]]:
    """Every tag's records (``main``, side tags, ``errors``) after running ``steps``:
    dicts as in a spec file's ``steps:`` list, or step models (a mistake raises
    ``SpecError`` naming ``steps[i].field``, as ``surestream validate`` would)."""
    with tempfile.TemporaryDirectory(prefix=f"surestream-{pipeline}-") as checkpoints:
        result = run_spec(memory_spec(records, steps, batch_size=batch_size,
                                      pipeline=pipeline, checkpoint_dir=checkpoints))
    return {tag: result.rows(tag) for tag in result.collected}


def run_spec(spec: PipelineSpec, **kwargs: Any) -> RunResult:
    """Run any spec with the local runner (its memory outputs are in the result)."""
    return LocalRunner(spec, **kwargs).run()
