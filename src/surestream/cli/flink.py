"""``surestream flink jobs|stop|cancel``: the jobs of a Flink cluster, through its REST API.

For jobs ``surestream run SPEC --runner flink --flink-address H:P`` submitted (it prints the
job id and returns): list them, stop one *with a savepoint* (``POST /jobs/:id/stop``, the
location printed for ``run --from-savepoint``), or cancel one (no savepoint; its retained
checkpoints stay). REST rather than PyFlink's client, whose savepoint calls are broken in
2.3.0 (docs/flink.md). Stdlib only: no JVM, no PyFlink.

Exit codes: 0 done, 1 the cluster refused or failed the request, 2 a usage error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
DEFAULT_ADDRESS = "127.0.0.1:8081"


def add_flink_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("flink", help="list, stop (with a savepoint) or cancel jobs on a "
                                     "Flink cluster",
                       description="The jobs of a Flink cluster, through its REST API: "
                                   "list them, stop one with a savepoint (printing its "
                                   "location, for `surestream run SPEC --runner flink "
                                   "--from-savepoint LOCATION`), or cancel one.")
    actions = p.add_subparsers(dest="flink_command", required=True, metavar="ACTION",
                               title="actions", help="jobs, stop or cancel "
                                                     "(`surestream flink ACTION --help`)")
    jobs = actions.add_parser("jobs", help="list the cluster's jobs (id, state, name)",
                              description="List the cluster's jobs: id, state, name, "
                                          "start time.")
    _address(jobs)
    jobs.set_defaults(func=_cmd_jobs)
    stop = actions.add_parser("stop", help="stop a job with a savepoint; print where it is",
                              description="Stop a job with a savepoint (its sources stop "
                                          "without a final watermark, so no window fires "
                                          "early) and print the savepoint's location.")
    stop.add_argument("job_id", metavar="JOB_ID", help="the job's id (`surestream flink jobs`)")
    _address(stop)
    stop.add_argument("--savepoint-dir", metavar="DIR",
                      help="where the cluster writes the savepoint (default: none, the "
                           "job's own savepoint folder, <checkpoint dir>/flink/savepoints "
                           "of its spec, found from its latest checkpoint)")
    stop.set_defaults(func=_cmd_stop)
    cancel = actions.add_parser("cancel", help="cancel a job (no savepoint)",
                                description="Cancel a job without a savepoint; its "
                                            "retained checkpoints under <checkpoint "
                                            "dir>/flink/checkpoints can still restart it.")
    cancel.add_argument("job_id", metavar="JOB_ID",
                        help="the job's id (`surestream flink jobs`)")
    _address(cancel)
    cancel.set_defaults(func=_cmd_cancel)
    return p


def _address(p: argparse.ArgumentParser) -> None:
    p.add_argument("--flink-address", default=DEFAULT_ADDRESS, metavar="HOST:PORT",
                   help="the cluster's REST endpoint (default: 127.0.0.1:8081)")


def _client(args: argparse.Namespace):
    from surestream.runners.flink.environment import parse_address
    from surestream.runners.flink.rest import FlinkRestClient

    parse_address(args.flink_address)  # ValueError naming the expected form
    return FlinkRestClient.for_address(args.flink_address)


def _run(args: argparse.Namespace, action) -> int:  # noqa: ANN001 - a small callable
    from surestream.runners.flink.rest import FlinkRestError

    try:
        return action(_client(args))
    except ValueError as e:
        print(str(e), file=sys.stderr)
        return EXIT_USAGE
    except (FlinkRestError, TimeoutError) as e:
        print(f"flink {args.flink_command}: {e}", file=sys.stderr)
        return EXIT_FAILURE


def _cmd_jobs(args: argparse.Namespace) -> int:
    def action(rest) -> int:  # noqa: ANN001
        import time

        jobs = sorted(rest.jobs(), key=lambda j: j.get("start-time", 0), reverse=True)
        if not jobs:
            print(f"no jobs on the Flink cluster at {args.flink_address}")
        for job in jobs:
            started = time.strftime("%Y-%m-%d %H:%M:%S",
                                    time.gmtime(job.get("start-time", 0) / 1000))
            print(f"{job['jid']}  {job['state']:<12} {started} UTC  {job['name']}")
        return EXIT_OK

    return _run(args, action)


def job_savepoint_dir(rest, job_id: str) -> str | None:  # noqa: ANN001 - FlinkRestClient
    """The savepoint folder of a job surestream submitted: its checkpoints are at
    ``<checkpoint dir>/flink/checkpoints/<job id>/chk-N``, its savepoints go to
    ``<checkpoint dir>/flink/savepoints`` (the job's own setting, which Flink's REST API does
    not show). None before its first checkpoint, or for a job laid out otherwise."""
    path = rest.latest_checkpoint_path(job_id)
    if not path:
        return None
    parts = path.rstrip("/").split("/")
    if len(parts) < 4 or parts[-3:-1] != ["checkpoints", job_id] or parts[-4] != "flink" \
            or not parts[-1].startswith("chk-"):
        return None
    return "/".join([*parts[:-3], "savepoints"])


def _cmd_stop(args: argparse.Namespace) -> int:
    def action(rest) -> int:  # noqa: ANN001
        target = args.savepoint_dir
        if target and "://" not in target:
            target = Path(target).resolve().as_uri()
        if not target:
            target = job_savepoint_dir(rest, args.job_id)
        if not target:
            print(f"flink stop: job {args.job_id} has no completed checkpoint under a "
                  "surestream checkpoint folder to put its savepoint beside; give "
                  "--savepoint-dir DIR", file=sys.stderr)
            return EXIT_USAGE
        location = rest.stop_with_savepoint(args.job_id, target)
        print(location)
        print(f"job {args.job_id} stopped; continue it with: surestream run SPEC --runner "
              f"flink --flink-address {args.flink_address} --from-savepoint {location}",
              file=sys.stderr)
        return EXIT_OK

    return _run(args, action)


def _cmd_cancel(args: argparse.Namespace) -> int:
    def action(rest) -> int:  # noqa: ANN001
        from surestream.runners.flink.rest import TERMINAL_STATES

        rest.cancel(args.job_id)
        state = rest.wait_for_state(args.job_id, TERMINAL_STATES, timeout_s=60)
        print(f"job {args.job_id} {state}")
        return EXIT_OK

    return _run(args, action)
