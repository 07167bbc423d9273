"""The job driver as a child process the command line watches and stops.

``submit.run_jobs`` runs the driver to its end and returns (tests, bounded jobs). The command
line needs more: the job id as soon as the job is submitted (to print it, and to stop the
job through the REST API on Ctrl-C or SIGTERM) while the driver keeps the local
mini-cluster alive. ``DriverProcess`` starts the same driver (``submit.driver_command`` /
``driver_environment``) and reads its ``JOB_ID`` / ``JOB_END`` lines as they come.

Two choices keep a stop clean and a crash harmless:

- the driver runs in a process group of its own, so a Ctrl-C typed in the terminal reaches
  only the command, which stops the job *with a savepoint* through REST; a signal reaching
  the driver too would end the mini-cluster's JVM before the savepoint is taken;
- the driver gets SIGKILL when the command dies, and the gateway JVM when the driver dies
  (Linux ``PR_SET_PDEATHSIG``, ``parent_death``): a killed ``surestream run`` leaves no
  mini-cluster behind writing into outputs the next run owns.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from pathlib import Path

from surestream.runners.flink.job import FlinkJob
from surestream.runners.flink.parent_death import die_with_parent
from surestream.runners.flink.submit import (
    FlinkJobFailed,
    JobRun,
    driver_command,
    driver_environment,
    parse_driver_output,
)


class DriverProcess:
    """One driver process running ``jobs`` in turn; its stderr goes to ``stderr_path``."""

    def __init__(self, jobs: list[FlinkJob], work: Path) -> None:
        work.mkdir(parents=True, exist_ok=True)
        self.jobs = jobs
        self.stderr_path = work / "driver-stderr.log"
        files = [job.write(work / f"job-{i}-{job.name}.json") for i, job in enumerate(jobs)]
        self._lines: list[str] = []
        self._job_id = threading.Event()
        with self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(
                driver_command(files), env=driver_environment(work), stdout=subprocess.PIPE,
                stderr=err, stdin=subprocess.DEVNULL, text=True,
                preexec_fn=die_with_parent(new_group=True))  # noqa: PLW1509 - setsid, prctl
        self._reader = threading.Thread(target=self._read, name="flink-driver-stdout",
                                        daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.append(line.rstrip("\n"))
            if line.startswith("JOB_ID "):
                self._job_id.set()
        self._job_id.set()  # the driver ended: nobody waits for an id that never comes

    def runs(self) -> list[JobRun]:
        return parse_driver_output("\n".join(self._lines), self.jobs)

    def wait_for_job_id(self, timeout_s: float | None = None) -> str | None:
        """The first job's id once submitted; None if the driver ended (or the time ran out)
        first."""
        self._job_id.wait(timeout_s)
        return self.runs()[0].job_id

    def poll(self) -> int | None:
        return self.process.poll()

    def wait(self, timeout_s: float | None = None) -> int:
        code = self.process.wait(timeout_s)
        self._reader.join(5)
        return code

    def stderr_tail(self, chars: int = 4000) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def check(self) -> list[JobRun]:
        """After ``wait``: the runs, or ``FlinkJobFailed`` with the end of Flink's errors when
        the driver failed or a waited-for job did not end FINISHED."""
        runs = self.runs()
        if self.process.returncode != 0:
            raise FlinkJobFailed(f"the Flink job driver exited {self.process.returncode}:\n"
                                 f"{self.stderr_tail()}")
        for job, run in zip(self.jobs, runs, strict=True):
            if job.wait and run.state != "FINISHED":
                raise FlinkJobFailed(f"Flink job {job.name} ended {run.state}:\n"
                                     f"{self.stderr_tail()}")
        return runs

    def kill(self) -> None:
        """End the driver and its JVM at once (a second Ctrl-C): SIGKILL to its group."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
