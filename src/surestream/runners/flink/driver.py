"""The job driver: runs ``FlinkJob`` descriptions on PyFlink (``python -m
surestream.runners.flink.driver JOB.json [JOB.json ...]``).

It runs under the Flink environment's interpreter (``distribution.flink_python()``), where
surestream's dependencies are absent: it imports only the standard library, pyflink and the
stdlib-only modules of this package (``submit`` copies exactly those next to the job). Each job
is run in turn in one JVM (the tests run many small jobs without paying a JVM start each).

Output, one line each, for the caller to parse: ``JOB_ID <name> <id>`` once a job is
submitted, ``JOB_END <name> <state>`` when a waited-for job ended (then ``JOB_SECONDS
<name> <s>``: from the TableEnvironment's creation to the end, for benchmarks). A failed
job exits 1 with Flink's error on stderr; user modules the Flink environment cannot import
exit 3 before any job starts (``USER_CODE_ERROR`` lines on stderr).
"""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path

from surestream.runners.flink.environment import create_table_environment_from
from surestream.runners.flink.job import FlinkJob
from surestream.runners.flink.parent_death import die_with_parent


def add_python_path(job: FlinkJob) -> None:
    for entry in job.python_path:
        if entry not in sys.path:
            sys.path.insert(0, entry)


def user_code_problems(job: FlinkJob) -> list[str]:
    """Why the job's user modules cannot be imported here, one line each (checked for every
    job before any starts: a missing package fails at once, naming module and venv)."""
    from surestream.runners.flink.udf_adapter import import_problem

    add_python_path(job)
    problems = []
    for function in job.functions:
        if "kind" in function:
            problem = import_problem(function, sys.executable, sys.prefix)
            if problem:
                problems.append(problem)
    return problems


def register_functions(t_env, job: FlinkJob) -> None:
    """Register the job's Python UDFs: module-level pyflink UDF objects, or user functions
    wrapped by ``udf_adapter`` (an entry with a ``kind``)."""
    add_python_path(job)
    for function in job.functions:
        if "kind" in function:
            from surestream.runners.flink.udf_adapter import build_udf

            t_env.create_temporary_system_function(function["name"], build_udf(function))
            continue
        module = importlib.import_module(function["module"])
        t_env.create_temporary_system_function(function["name"],
                                               getattr(module, function["attribute"]))


def tie_gateway_to_driver() -> None:
    """Make PyFlink start its gateway JVM (the local mini-cluster lives in it) so that the
    kernel kills it when this driver dies (``parent_death``).

    PyFlink 2.3.0 starts the JVM with ``subprocess.Popen`` in ``pyflink_gateway_server``; the
    name is replaced there by one adding the parent-death signal to PyFlink's own
    ``preexec_fn`` (it ignores SIGINT). Called before the first TableEnvironment, from the
    main thread (the signal follows the thread that forks).
    """
    import subprocess

    from pyflink import pyflink_gateway_server as gateway

    if getattr(gateway.Popen, "surestream_tied", False):
        return

    def popen(*args, preexec_fn=None, **kwargs) -> subprocess.Popen:
        tied = die_with_parent(then=preexec_fn)
        return subprocess.Popen(*args, preexec_fn=tied, **kwargs)  # noqa: PLW1509

    popen.surestream_tied = True  # type: ignore[attr-defined]
    gateway.Popen = popen


def run(job: FlinkJob) -> str:
    """Run one job; returns its final state (or ``SUBMITTED`` when not waited for)."""
    started = time.perf_counter()
    t_env = create_table_environment_from(job.config)
    if job.python_path:
        t_env.get_config().set("python.pythonpath", ":".join(job.python_path))
    if job.python_files:  # the workers of a remote cluster import the adapter and user code
        shipped = [str(Path(__file__).resolve().parents[3]), *job.python_path[:1]]
        t_env.get_config().set("python.files", ",".join(shipped))
    register_functions(t_env, job)
    for statement in job.ddl:
        t_env.execute_sql(statement)
    statements = t_env.create_statement_set()
    for insert in job.inserts:
        statements.add_insert_sql(insert)
    result = statements.execute()
    client = result.get_job_client()
    print(f"JOB_ID {job.name} {client.get_job_id()}", flush=True)
    if not job.wait:
        return "SUBMITTED"
    result.wait()  # raises with Flink's error when the job fails
    state = "FINISHED"  # (the mini-cluster is gone once it ends: no status to ask for)
    print(f"JOB_END {job.name} {state}", flush=True)
    print(f"JOB_SECONDS {job.name} {time.perf_counter() - started:.3f}", flush=True)
    return state


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m surestream.runners.flink.driver JOB.json [JOB.json ...]",
              file=sys.stderr)
        return 2
    jobs = [FlinkJob.read(Path(path)) for path in argv]
    problems = [p for job in jobs for p in user_code_problems(job)]
    if problems:
        print("USER_CODE_ERROR " + "\nUSER_CODE_ERROR ".join(problems), file=sys.stderr)
        return 3
    tie_gateway_to_driver()
    for job in jobs:
        run(job)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
