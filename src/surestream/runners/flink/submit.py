"""Running ``FlinkJob`` descriptions: the driver under the Flink environment's interpreter.

``run_jobs`` writes each job as JSON into a work folder, copies the driver's modules there as
a minimal ``surestream`` package (the Flink environment does not have surestream installed,
and must not see surestream's own site-packages: their pyarrow would shadow PyFlink's), and
runs ``python -m surestream.runners.flink.driver`` with ``flink_python()``. Stdlib only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from surestream.runners.flink.distribution import flink_python
from surestream.runners.flink.job import FlinkJob

#: the modules the driver imports (each imports only the stdlib, pyflink or one another;
#: udf_adapter imports pandas / pyarrow / polars only inside the UDF calls)
DRIVER_MODULES = ("__init__.py", "driver.py", "job.py", "environment.py", "distribution.py",
                  "jars.py", "udf_adapter.py", "parent_death.py")
#: stdlib-only modules of other packages that ``udf_adapter`` imports (path under
#: ``surestream/``): the same code decides a user function's results on both runners
SHARED_MODULES = ("model/declared_schema.py", "semantics/row_isolation.py")
_PACKAGE = Path(__file__).resolve().parent
_SURESTREAM = _PACKAGE.parents[1]


class FlinkJobFailed(RuntimeError):
    """The driver failed; the message carries the end of Flink's error output."""


@dataclass
class JobRun:
    """What the driver said of one job."""

    name: str
    job_id: str | None = None
    state: str | None = None


def driver_path(work: Path) -> Path:
    """A folder holding ``surestream/runners/flink/<DRIVER_MODULES>`` (for PYTHONPATH)."""
    root = work / "driver"
    target = root / "surestream" / "runners" / "flink"
    target.mkdir(parents=True, exist_ok=True)
    for sub in ("model", "semantics"):
        (root / "surestream" / sub).mkdir(exist_ok=True)
    for package in ("", "runners", "model", "semantics"):
        (root / "surestream" / package / "__init__.py").write_text(
            '"""Only the Flink job driver (submit.py)."""\n')
    for name in DRIVER_MODULES:
        shutil.copyfile(_PACKAGE / name, target / name)
    for name in SHARED_MODULES:
        shutil.copyfile(_SURESTREAM / name, root / "surestream" / name)
    return root


def ship_user_code(job: FlinkJob, folder: Path) -> FlinkJob:
    """Copy the job's ``python_files`` (the user's top-level modules / packages) into
    ``folder`` and put it first on the job's ``python_path``: only those, never the folder
    they came from (a site-packages there would shadow PyFlink's pyarrow)."""
    if not job.python_files:
        return job
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for source in map(Path, job.python_files):
        if source.is_dir():
            shutil.copytree(source, folder / source.name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copyfile(source, folder / source.name)
    job.python_path = [str(folder), *(p for p in job.python_path if p != str(folder))]
    return job


def driver_command(job_files: list[Path]) -> list[str]:
    return [flink_python(), "-m", "surestream.runners.flink.driver",
            *(str(f) for f in job_files)]


def driver_environment(work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PYTHONPATH"] = str(driver_path(work))
    return env


def parse_driver_output(stdout: str, jobs: list[FlinkJob]) -> list[JobRun]:
    runs = {job.name: JobRun(job.name) for job in jobs}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "JOB_ID" and parts[1] in runs:
            runs[parts[1]].job_id = parts[2]
        elif len(parts) == 3 and parts[0] == "JOB_END" and parts[1] in runs:
            runs[parts[1]].state = parts[2]
    return [runs[job.name] for job in jobs]


def run_jobs(jobs: list[FlinkJob], work: Path, *, timeout_s: float | None = None
             ) -> list[JobRun]:
    """Run the jobs in turn in one driver process (one JVM); raise ``FlinkJobFailed`` when
    it fails or a waited-for job does not end FINISHED."""
    work.mkdir(parents=True, exist_ok=True)
    jobs = [ship_user_code(job, work / f"user-code-{i}") for i, job in enumerate(jobs)]
    files = [job.write(work / f"job-{i}-{job.name}.json") for i, job in enumerate(jobs)]
    done = subprocess.run(driver_command(files), env=driver_environment(work),
                          capture_output=True, text=True, timeout=timeout_s)
    runs = parse_driver_output(done.stdout, jobs)
    if done.returncode != 0:
        raise FlinkJobFailed(f"the Flink job driver exited {done.returncode}:\n"
                             f"{done.stderr[-4000:]}")
    for job, run in zip(jobs, runs, strict=True):
        if job.wait and run.state != "FINISHED":
            raise FlinkJobFailed(f"Flink job {job.name} ended {run.state}:\n"
                                 f"{done.stderr[-4000:]}")
    return runs
