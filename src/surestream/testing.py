"""Run steps over in-memory records and get every tag back: a pipeline test in a few lines.

    out = run_steps(records, [WatermarkStep(timestamp_column="ts", max_out_of_orderness_ms=0),
                              LateDataStep(output_tag="late")], batch_size=7)
    assert [r["id"] for r in out["late"]] == ["e3"]

No broker, no files: the records go through the real local runner with memory outputs for
the stream's results (tag ``main``), every side tag the steps declare, and ``errors``.
Checkpoints go to a temporary folder (never the current one): memory outputs end with the
process, and so must the checkpoints that are consistent with them.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Sequence
from typing import Any

from surestream.io.scratch import scratch_dir
from surestream.model.spec import (
    ERRORS_TAG,
    MAIN_STREAM,
    GeneratorSource,
    MemorySink,
    PipelineSpec,
    step_side_tags,
)
from surestream.runners.local.runner import LocalRunner, RunResult


def memory_spec(records: Iterable[Any], steps: Sequence[Any], *, batch_size: int = 65536,
                pipeline: str = "test", interleave_records: int = 1024,
                checkpoint_dir: str | None = None) -> PipelineSpec:
    """A one-stream spec over ``records`` whose every output is a memory collector.

    Its checkpoints go to ``checkpoint_dir``, by default a fresh temporary folder removed
    when the process exits: every run of the spec starts afresh, as its outputs do."""
    tags = {MAIN_STREAM, ERRORS_TAG} | {t for s in steps for t in step_side_tags(s)}
    return PipelineSpec(
        pipeline=pipeline,
        source=GeneratorSource(type="memory", records=list(records)),
        steps=list(steps),
        outputs={t: MemorySink() for t in tags},
        checkpoint={"dir": checkpoint_dir or scratch_dir(f"surestream-{pipeline}-")},
        runtime={"batch_size": batch_size, "interleave_records": interleave_records},
    )


def run_steps(records: Iterable[Any], steps: Sequence[Any], *, batch_size: int = 65536,
              pipeline: str = "test") -> dict[str, list[dict[str, Any]]]:
    """Every tag's records (``main``, side tags, ``errors``) after running ``steps``."""
    with tempfile.TemporaryDirectory(prefix=f"surestream-{pipeline}-") as checkpoints:
        result = run_spec(memory_spec(records, steps, batch_size=batch_size,
                                      pipeline=pipeline, checkpoint_dir=checkpoints))
    return {tag: result.rows(tag) for tag in result.collected}


def run_spec(spec: PipelineSpec, **kwargs: Any) -> RunResult:
    """Run any spec with the local runner (its memory outputs are in the result)."""
    return LocalRunner(spec, **kwargs).run()
