"""``surestream run SPEC --runner flink``: the spec translated to Flink SQL and run on Flink.

Where it runs: a local mini-cluster inside the job driver's JVM (the default), or the
cluster whose REST endpoint ``--flink-address host:port`` names. The driver runs under the
Flink environment's interpreter (``runners/flink/session.DriverProcess``); this process never
imports PyFlink.

What it refuses, running nothing (exit 2): a spec the translation cannot run with the local
runner's semantics (``FlinkUnsupported``: the field and the reason), outputs over inputs
(``spec.output_path_problems``), a checkpoint folder another run holds (the local runner's
lock, ``lock_checkpoint_folder``) or a job submitted from it still runs on a cluster
(``runners/flink/submitted``), and a fresh run over outputs an earlier Flink run wrote
(Flink's file sink adds part files: the records would be there twice).

Stopping: Ctrl-C or SIGTERM stops the job *with a savepoint* through Flink's REST API
(``FlinkRestClient.stop_with_savepoint``, ``drain: false``) and prints its location;
``--from-savepoint LOCATION`` continues from it. For that the parent picks the
mini-cluster's REST port (``rest.port``) itself. A second Ctrl-C ends the driver at once
(Flink's retained checkpoints under ``<checkpoint dir>/flink/checkpoints`` remain).

After a crash (this command killed, the machine gone): the driver and its JVM die with it
(``runners/flink/parent_death``), the folder lock with the process; the outputs hold the part
files of the checkpoints that completed. ``--resume`` continues from the latest complete
retained checkpoint or savepoint (``runners/flink/retained``), and a plain run over those
outputs is refused naming it. A job restored from a state may itself crash and be resumed
again: the file source keeps its read position across restores (``sql_source.JSON_FORMAT``).

Exit codes: 0 finished (or submitted, or a live job stopped as asked), 1 the job failed,
2 refused, 130 a bounded job stopped before its end (as ``--runner local``).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

from surestream.cli.interrupt import EXIT_INTERRUPTED, stop_on_ctrl_c
from surestream.io.lock import FolderLockError
from surestream.model.spec import FileSink, PipelineSpec

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
HOLDER = "surestream run --runner flink"
#: the ``run`` options of the local runner only: refused with --runner flink
LOCAL_ONLY = {"metrics_port": "--metrics-port", "metrics_file": "--metrics-file",
              "ui_port": "--ui-port", "summary": "--summary"}


def add_flink_run_arguments(p: argparse.ArgumentParser) -> None:
    """The ``run`` options of ``--runner flink``."""
    g = p.add_argument_group("--runner flink")
    g.add_argument("--flink-address", metavar="HOST:PORT",
                   help="submit to the Flink cluster whose REST endpoint this is, print the "
                        "job id and return (unless --wait) (default: none, a local "
                        "mini-cluster for the length of the command)")
    g.add_argument("--parallelism", type=int, default=1, metavar="N",
                   help="the job's parallelism (default: 1)")
    g.add_argument("--resume", action="store_true",
                   help="continue the earlier run of this spec from its latest complete "
                        "retained checkpoint or savepoint (after a crash: a killed command, "
                        "a dead machine); with none, start from the beginning if the "
                        "outputs hold no committed records (default: a fresh run; the "
                        "local runner always resumes)")
    g.add_argument("--wait", action="store_true",
                   help="with --flink-address: wait for the job to end; Ctrl-C or SIGTERM "
                        "then stops it with a savepoint (default: return once submitted)")


def run_flink(args: argparse.Namespace, spec: PipelineSpec) -> int:
    """The Flink branch of ``surestream run`` (the spec loaded and valid)."""
    from surestream.runners.flink.environment import parse_address
    from surestream.runners.flink.sql_refusals import FlinkUnsupported
    from surestream.runners.flink.translate import translate

    problem = _usage_problem(args, spec)
    if problem:
        print(f"{args.spec}: {problem}", file=sys.stderr)
        return EXIT_USAGE
    try:
        translation = translate(spec)
    except FlinkUnsupported as e:
        print(f"{args.spec}: {e}; nothing was run (use --runner local)", file=sys.stderr)
        return EXIT_USAGE
    if args.flink_address:
        try:
            parse_address(args.flink_address)
        except ValueError as e:
            print(str(e), file=sys.stderr)
            return EXIT_USAGE
    from surestream.runners.flink.distribution import FlinkNotInstalled, flink_python

    try:
        flink_python()
    except FlinkNotInstalled as e:
        print(f"--runner flink: {e}", file=sys.stderr)
        return EXIT_USAGE
    savepoint = None
    if args.resume and args.from_savepoint:
        print("--resume picks the latest retained checkpoint itself: give it or "
              "--from-savepoint, not both", file=sys.stderr)
        return EXIT_USAGE
    if args.from_savepoint:
        savepoint, problem = savepoint_location(args.from_savepoint)
        if problem:
            print(f"--from-savepoint: {problem}", file=sys.stderr)
            return EXIT_USAGE
    from surestream.runners.local.runner import lock_checkpoint_folder

    try:
        lock = lock_checkpoint_folder(spec.checkpoint_dir(), holder=HOLDER)
    except FolderLockError as e:
        print(f"pipeline {spec.pipeline!r}: {e}", file=sys.stderr)
        return EXIT_USAGE
    with lock:
        if args.resume:
            savepoint, code = _resume_point(spec)
            if code is not None:
                return code
        problem = _folder_problem(spec, fresh=savepoint is None)
        if problem:
            print(f"pipeline {spec.pipeline!r}: {problem}", file=sys.stderr)
            return EXIT_USAGE
        if savepoint is None:  # earlier checkpoints are another timeline's from now on
            from surestream.runners.flink.retained import FRESH, mark

            mark(spec.checkpoint_dir(), FRESH)
        return _FlinkRun(args, spec, translation, savepoint).run()


def _usage_problem(args: argparse.Namespace, spec: PipelineSpec) -> str | None:
    for attr, flag in LOCAL_ONLY.items():
        if getattr(args, attr, None) is not None:
            return (f"{flag} is an option of the local runner; a Flink job reports through "
                    "Flink's own web UI and metrics (remove it, or use --runner local)")
    if args.parallelism < 1:
        return f"--parallelism {args.parallelism}: give 1 or more"
    if args.wait and not args.flink_address:
        return "--wait goes with --flink-address (a local mini-cluster run always waits)"
    problems = spec.output_path_problems()
    if problems:
        return "; ".join(f"{field}: {reason}" for field, reason in problems)
    return None


def savepoint_location(text: str) -> tuple[str | None, str | None]:
    """(the location for ``execution.savepoint.path``, a problem): a local path must exist
    (a savepoint folder, or a retained checkpoint's ``chk-N``); a URL other than ``file:``
    is passed to Flink as is."""
    if "://" in text and not text.startswith("file:"):
        return text, None
    path = Path(text.removeprefix("file://").removeprefix("file:")).resolve()
    if not path.exists():
        return None, (f"{text} does not exist; give the location `surestream run --runner "
                      "flink` or `surestream flink stop` printed when the job was stopped")
    return str(path), None


def flink_outputs(spec: PipelineSpec) -> dict[str, Path]:
    """tag -> path of what the Flink job writes (file outputs, and the errors file)."""
    paths = {tag: spec.resolve(sink.path) for tag, sink in spec.outputs.items()
             if isinstance(sink, FileSink)}
    if "errors" not in spec.outputs:
        paths["errors"] = spec.errors_default_path()
    return paths


def _visible_files(path: Path) -> bool:
    if path.is_file():
        return True
    return path.is_dir() and any(p.is_file() and not p.name.startswith((".", "_"))
                                 for p in path.rglob("*"))


def _resume_point(spec: PipelineSpec) -> tuple[str | None, int | None]:
    """``--resume`` (read under the folder's lock): (the latest complete retained checkpoint
    or savepoint, or None: a fresh start, which ``_folder_problem`` still refuses over
    committed outputs; the exit code when the run ends here: finished, or refused)."""
    from surestream.runners.flink.retained import FINISHED, latest_retained

    latest = latest_retained(spec.checkpoint_dir())
    if latest is None:
        print(f"--resume: no complete checkpoint or savepoint of an earlier run under "
              f"{_flink_base(spec)}; starting from the beginning", file=sys.stderr)
        return None, None
    if latest.kind == FINISHED:
        print(f"--resume: the earlier run finished ({_finished_job(latest.path)}); its "
              "outputs are complete, nothing to continue", file=sys.stderr)
        return None, EXIT_OK
    print(f"--resume: the latest complete {latest.kind} is {latest.path}", file=sys.stderr)
    return str(latest.path), None


def _finished_job(timeline: Path) -> str:
    try:
        return f"Flink job {timeline.read_text().split()[1]}"
    except (OSError, IndexError):
        return str(timeline)


def _flink_base(spec: PipelineSpec) -> Path:
    from surestream.runners.flink.environment import flink_folders

    return flink_folders(spec.checkpoint_dir())["checkpoints"].parent


def _folder_problem(spec: PipelineSpec, *, fresh: bool) -> str | None:
    """Why this run must not start now, given what the checkpoint folder and the outputs
    hold."""
    from surestream.runners.flink.submitted import active_submission

    active = active_submission(spec.checkpoint_dir())
    if active is not None:
        job, state = active
        return (f"checkpoint folder {spec.checkpoint_dir()} is in use by Flink job "
                f"{job.job_id} ({state}) on {job.address}; stop it first: surestream flink "
                f"stop {job.job_id} --flink-address {job.address}")
    if fresh:
        held = [f"outputs.{tag} ({path})" for tag, path in flink_outputs(spec).items()
                if _visible_files(path)]
        if held:
            verb = "holds" if len(held) == 1 else "hold"
            return (f"{', '.join(held)} already {verb} records of an earlier run; a fresh "
                    "Flink job would add its part files beside them (every record twice). "
                    + _how_to_continue(spec))
    return None


def _how_to_continue(spec: PipelineSpec) -> str:
    """The refusal's way on: the exact state to continue from, when a run left one."""
    from surestream.runners.flink.retained import FINISHED, latest_retained

    latest = latest_retained(spec.checkpoint_dir())
    if latest is not None and latest.kind == FINISHED:
        return (f"That run finished ({_finished_job(latest.path)}): its outputs are "
                "complete, nothing to continue with --resume or --from-savepoint; delete "
                "them to run afresh")
    if latest is None:
        return (f"No complete checkpoint or savepoint of it is under {_flink_base(spec)}: "
                "continue from one kept elsewhere with --from-savepoint LOCATION, or delete "
                "those outputs to start afresh")
    return (f"Continue the earlier job from its latest complete {latest.kind} with --resume "
            f"(the same as --from-savepoint {latest.path}), or delete those outputs to "
            "start afresh")


class _FlinkRun:
    """One ``run --runner flink``: start the driver, watch it, stop the job when asked."""

    def __init__(self, args: argparse.Namespace, spec: PipelineSpec, translation,
                 savepoint: str | None) -> None:
        from surestream.runners.flink.cluster import free_port
        from surestream.runners.flink.rest import FlinkRestClient

        self.args, self.spec, self.translation, self.savepoint = args, spec, translation, \
            savepoint
        self.remote = args.flink_address
        self.address = self.remote or f"127.0.0.1:{free_port()}"
        self.rest = FlinkRestClient.for_address(self.address)
        self.stop_asked = threading.Event()
        self.stopped_at: str | None = None  # the savepoint location once stopped
        self.job_id: str | None = None

    def job(self):
        from surestream.runners.flink.runner import flink_job

        extra = {} if self.remote else {"rest.port": self.address.rpartition(":")[2]}
        if self.args.allow_non_restored_state:
            extra["execution.savepoint.ignore-unclaimed-state"] = "true"
        return flink_job(self.spec, self.translation, flink_address=self.remote,
                         savepoint_path=self.savepoint, parallelism=self.args.parallelism,
                         wait=self.remote is None, extra=extra)

    def run(self) -> int:
        from surestream.runners.flink.rest import FlinkRestError
        from surestream.runners.flink.runner import job_folder
        from surestream.runners.flink.session import DriverProcess

        if self.remote:
            try:
                self.rest.overview()
            except FlinkRestError as e:
                print(f"--flink-address: {e}", file=sys.stderr)
                return EXIT_USAGE
        where = f"the Flink cluster at {self.remote}" if self.remote else \
            "a local Flink mini-cluster"
        print(f"running pipeline {self.spec.pipeline!r} on {where}"
              + (f", from savepoint {self.savepoint}" if self.savepoint else ""),
              file=sys.stderr)
        driver = DriverProcess([self.job()], job_folder(self.spec))
        try:
            with stop_on_ctrl_c(self._ask_stop):
                code = self._watch(driver)
        except KeyboardInterrupt:  # the second Ctrl-C / SIGTERM
            driver.kill()
            print(f"stopped at once by a second Ctrl-C, without a savepoint; the job's "
                  f"retained checkpoints are under {self._checkpoints()}: continue from the "
                  "latest with --resume", file=sys.stderr)
            return EXIT_INTERRUPTED
        finally:
            if driver.poll() is None:
                driver.kill()
        return code

    def _ask_stop(self) -> None:
        self.stop_asked.set()
        print("stopping the Flink job with a savepoint (Ctrl-C again to stop at once)",
              file=sys.stderr)

    def _checkpoints(self) -> Path:
        from surestream.runners.flink.environment import flink_folders

        return flink_folders(self.spec.checkpoint_dir())["checkpoints"]

    def _watch(self, driver) -> int:  # noqa: ANN001 - session.DriverProcess
        from surestream.runners.flink.submit import FlinkJobFailed

        while driver.poll() is None or self.job_id is None:
            if self.job_id is None:
                self.job_id = driver.wait_for_job_id(0.2)
                if self.job_id is not None:
                    self._submitted()
                elif driver.poll() is not None:
                    break
                continue
            if self.stop_asked.is_set() and self.stopped_at is None:
                code = self._stop()
                if code is not None:
                    return code
            time.sleep(0.2)
        driver.wait()
        try:
            driver.check()
        except FlinkJobFailed as e:
            if self.stopped_at is None:
                print(f"pipeline {self.spec.pipeline!r} failed on Flink: {e}", file=sys.stderr)
                return EXIT_FAILURE
        if self.remote:
            return self._after_submit()
        return self._ended("FINISHED")

    def _submitted(self) -> None:
        from surestream.runners.flink.submitted import SubmittedJob, record_submission

        if self.remote:
            record_submission(self.spec.checkpoint_dir(),
                              SubmittedJob(self.job_id, self.remote, self.spec.pipeline))
            print(self.job_id, flush=True)
            print(f"submitted as Flink job {self.job_id}; stop it with a savepoint: "
                  f"surestream flink stop {self.job_id} --flink-address {self.remote} "
                  f"--savepoint-dir {self._savepoint_target()}", file=sys.stderr)
        else:
            print(f"  Flink job {self.job_id}; web UI {self.rest.base_url}", file=sys.stderr)
        if self.savepoint is not None:  # its states are a restored job's (retained.py)
            from surestream.runners.flink.retained import RESTORED, mark

            mark(self.spec.checkpoint_dir(), RESTORED, self.job_id)

    def _stop(self) -> int | None:
        """Stop the job with a savepoint; an exit code if the run is over, else None."""
        from surestream.runners.flink.rest import FlinkRestError

        target = self._savepoint_target()
        try:
            self.stopped_at = self.rest.stop_with_savepoint(self.job_id, target)
        except (FlinkRestError, TimeoutError) as e:
            if self._over_anyway():
                return None  # a bounded job ended before the stop reached it
            print(f"the Flink job {self.job_id} could not be stopped with a savepoint: {e}",
                  file=sys.stderr)
            return EXIT_FAILURE
        print(f"stopped with a savepoint: {self.stopped_at}", file=sys.stderr)
        print(f"continue with: surestream run {self.args.spec} --runner flink "
              f"--from-savepoint {self.stopped_at}"
              + (f" --flink-address {self.remote}" if self.remote else ""), file=sys.stderr)
        print(f"savepoint {self.stopped_at}", flush=True)
        return None

    def _over_anyway(self) -> bool:
        from surestream.runners.flink.rest import TERMINAL_STATES, FlinkRestError

        try:
            return self.rest.job_state(self.job_id) in TERMINAL_STATES
        except FlinkRestError:
            return not self.remote  # the mini-cluster is gone: the job ended with it

    def _savepoint_target(self) -> str:
        from surestream.runners.flink.environment import flink_folders

        given = self.args.stop_with_savepoint
        if given and "://" in given:
            return given
        folder = Path(given) if given else flink_folders(self.spec.checkpoint_dir())[
            "savepoints"]
        return folder.resolve().as_uri()

    def _after_submit(self) -> int:
        """A job on a cluster, its driver gone: return, or wait for its end (--wait)."""
        from surestream.runners.flink.rest import TERMINAL_STATES, FlinkRestError

        if not self.args.wait:
            return EXIT_OK
        while True:
            if self.stop_asked.is_set() and self.stopped_at is None:
                code = self._stop()
                if code is not None:
                    return code
            try:
                state = self.rest.job_state(self.job_id)
            except FlinkRestError as e:
                print(f"lost track of Flink job {self.job_id}: {e}", file=sys.stderr)
                return EXIT_FAILURE
            if state in TERMINAL_STATES:
                return self._ended(state)
            time.sleep(0.5)

    def _ended(self, state: str) -> int:
        from surestream.runners.local.runner import is_live

        if state != "FINISHED":
            print(f"pipeline {self.spec.pipeline!r}: Flink job {self.job_id} ended {state}",
                  file=sys.stderr)
            return EXIT_FAILURE
        if self.stopped_at is not None:
            return EXIT_OK if is_live(self.spec) else EXIT_INTERRUPTED
        from surestream.runners.flink.retained import FINISHED, mark

        mark(self.spec.checkpoint_dir(), FINISHED, self.job_id)
        print(f"pipeline {self.spec.pipeline!r} finished on Flink (job {self.job_id})",
              file=sys.stderr)
        for tag, path in flink_outputs(self.spec).items():
            print(f"  {tag}: {path}", file=sys.stderr)
        return EXIT_OK
