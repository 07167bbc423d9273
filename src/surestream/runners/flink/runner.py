"""``surestream run SPEC --runner flink``: a spec translated, described as a job, and run.

The pieces: ``translate`` (the spec as Flink SQL, or ``FlinkUnsupported``), ``flink_job``
(the translation with the job configuration of ``environment.flink_configuration``: the
spec's checkpoint interval in exactly-once mode, checkpoints and savepoints under the spec's
checkpoint folder, every listener on 127.0.0.1), and ``submit.run_jobs`` (the driver under
the Flink environment's interpreter).
"""

from __future__ import annotations

from pathlib import Path

from surestream.model.spec import PipelineSpec
from surestream.runners.flink.environment import flink_configuration, flink_folders
from surestream.runners.flink.job import FlinkJob
from surestream.runners.flink.operator_jar import ensure_operator_jar, is_operator_jar
from surestream.runners.flink.submit import JobRun, run_jobs
from surestream.runners.flink.translate import FLINK_CONFIG, FlinkTranslation, translate


def flink_job(spec: PipelineSpec, translation: FlinkTranslation | None = None, *,
              flink_address: str | None = None, savepoint_path: str | None = None,
              parallelism: int = 1, wait: bool | None = None,
              extra: dict[str, str] | None = None) -> FlinkJob:
    """The job description of ``spec`` (translated here unless given)."""
    translation = translation if translation is not None else translate(spec)
    if any(is_operator_jar(jar) for jar in translation.jars):
        ensure_operator_jar()  # the Java operators' jar, built when its sources changed
    config = flink_configuration(checkpoint_dir=spec.checkpoint_dir(),
                                 checkpoint_interval_ms=spec.checkpoint.interval_ms,
                                 parallelism=parallelism, flink_address=flink_address,
                                 savepoint_path=savepoint_path, jars=translation.jars or None,
                                 extra={**FLINK_CONFIG, **(extra or {})})
    return FlinkJob(name=spec.pipeline, config=config, ddl=list(translation.ddl),
                    inserts=list(translation.inserts),
                    functions=list(translation.functions),
                    python_path=list(translation.python_path),
                    wait=flink_address is None if wait is None else wait)


def job_folder(spec: PipelineSpec) -> Path:
    """Where a run's job description and driver copy go (beside Flink's checkpoints)."""
    return flink_folders(spec.checkpoint_dir())["checkpoints"].parent / "job"


def run_on_flink(spec: PipelineSpec, **options) -> JobRun:
    """Translate and run ``spec`` (``flink_job`` options); the driver's account of the job."""
    job = flink_job(spec, **options)
    return run_jobs([job], job_folder(spec))[0]
