"""The ``surestream`` command: validate, run, verify, checkpoints, savepoint, schema,
simulate, query, demo.

Exit codes (docs/spec.md): 0 success, 1 a pipeline failure at run time (an error budget
exceeded included), 2 a usage or spec error, 130 stopped by Ctrl-C.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from surestream.cli.broker import add_broker_parser
from surestream.cli.checkpoint_cmds import (
    checkpoint_table,
    copy_checkpoint,
    default_savepoint_dir,
    finished_refusal,
    load_savepoint,
    savepoint_summary,
)
from surestream.cli.explain import add_explain_parser
from surestream.cli.flink import add_flink_parser
from surestream.cli.graph import add_graph_parser
from surestream.cli.import_etl import add_import_parser
from surestream.cli.interrupt import EXIT_INTERRUPTED, stop_on_ctrl_c
from surestream.cli.payments import add_payments_parser
from surestream.cli.produce import add_produce_parser
from surestream.cli.query import add_query_parser
from surestream.cli.replay import add_replay_parser
from surestream.cli.report import add_report_parser
from surestream.cli.run_flink import add_flink_run_arguments
from surestream.cli.run_ops import add_ops_arguments, configure_logs, operations
from surestream.cli.simulate import add_simulate_parser
from surestream.cli.status import add_status_parser
from surestream.cli.tables import add_tables_parser
from surestream.cli.templates import add_templates_parser
from surestream.cli.topics import add_topics_parser
from surestream.connectors.file_sinks import OutputOwnershipError
from surestream.connectors.sink_protocol import SinkRecoveryError
from surestream.connectors.sources import SourceError
from surestream.io.lock import FolderLockError
from surestream.model.loader import SpecError, load_spec
from surestream.model.spec import PipelineSpec
from surestream.ops.progress import ProgressDisplay
from surestream.ops.run_summary import step_summary_lines
from surestream.ops.tables import outputs_table
from surestream.runners.local.checkpoint_store import CheckpointError, CheckpointStore
from surestream.runners.local.error_budget import budget_problem
from surestream.runners.local.failures import RunFailure
from surestream.runners.local.results import RunResult
from surestream.runners.local.sink_retry import health_lines

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
ENDPOINT_NAMES = {"metrics": "metrics", "ui": "web view"}


def _cmd_validate(args: argparse.Namespace) -> int:
    try:
        spec = load_spec(args.spec, args.set or ())
    except SpecError as e:
        for path, reason in e.problems:
            print(f"{e.source}: {path or '(spec)'}: {reason}", file=sys.stderr)
        return EXIT_USAGE
    streams = spec.all_streams
    steps = sum(len(s.steps) for s in streams.values())
    print(f"{args.spec}: valid pipeline {spec.pipeline!r} ({len(streams)} stream(s), "
          f"{steps} step(s), outputs: {', '.join(sorted(spec.outputs))})")
    return EXIT_OK


def _load(args: argparse.Namespace) -> PipelineSpec | None:
    try:
        spec = load_spec(args.spec, getattr(args, "set", None) or ())
    except SpecError as e:
        print(str(e), file=sys.stderr)
        return None
    if getattr(args, "base_dir", None):
        spec.base_dir = str(Path(args.base_dir).resolve())
    return spec


def _execute(args: argparse.Namespace, spec: PipelineSpec,
             **runner_kwargs: Any) -> tuple[int, Any]:
    """Run ``spec`` with a progress display; print per-output counts. (exit code, runner)"""
    from surestream.runners.local.runner import LocalRunner

    json_logs = getattr(args, "log_format", None) == "json"
    display = ProgressDisplay(live=False if _records_to_terminal(spec) else None,
                              silent=json_logs)
    configure_logs(args, spec.pipeline)
    try:
        runner = LocalRunner(spec, progress=display, **runner_kwargs)
    except (SourceError, ValueError) as e:
        print(f"{args.spec}: {e}", file=sys.stderr)
        return EXIT_USAGE, None
    try:
        with operations(args, runner) as endpoints:
            for what, url in endpoints.items():
                print(f"  {ENDPOINT_NAMES[what]}: {url}", file=sys.stderr)
            code, result = _run_to_end(runner, spec, display, json_logs)
    except OSError as e:  # a port in use, a metrics file that cannot be written
        display.close()
        print(f"{args.spec}: cannot start the operations endpoints: {e}", file=sys.stderr)
        return EXIT_USAGE, runner
    display.close()  # the live line goes before anything else is printed
    if result is None:
        return code, runner
    if result.interrupted:
        print(stopped_line(result), file=sys.stderr)
        if getattr(runner, "until_stopped", False) and result.resume_from is not None:
            return _stopped_live(args, runner, result), runner
        return EXIT_INTERRUPTED, runner
    display.done(result.progress())
    if result.restored_from is not None:
        print(f"  resumed from checkpoint {result.restored_from}", file=sys.stderr)
    display.console.print(outputs_table(result.written, result.outputs))
    for line in health_lines(result.sink_health):  # retries, breaker, dead letter
        print(line, file=sys.stderr)
    for line in step_summary_lines(runner):  # late data, data quality (issue 14)
        display.console.print(line, markup=False, soft_wrap=True)
    if getattr(args, "summary", None):
        Path(args.summary).write_text(json.dumps(result.summary(), default=str))
    problem = None if runner_kwargs.get("stop_after_checkpoint") else \
        budget_problem(result, spec.runtime.max_error_ratio)
    if problem:
        _say_failure(f"pipeline {spec.pipeline!r} failed: {problem}", spec, EXIT_FAILURE,
                     json_logs)
        return EXIT_FAILURE, runner
    return EXIT_OK, runner


def _say_failure(line: str, spec: PipelineSpec, code: int, json_logs: bool) -> None:
    """A failed run's one line: plain text, or with ``--log-format json`` an ERROR log line
    (``run_failed``), so that every line the run writes parses."""
    if not json_logs:
        print(line, file=sys.stderr)
        return
    import logging

    from surestream.ops.logs import log

    log(logging.ERROR, line, event="run_failed", pipeline=spec.pipeline, exit_code=code)


def _stopped_live(args: argparse.Namespace, runner: Any, result: RunResult) -> int:
    """A live run stopped as asked, its final checkpoint taken: exit 0, after copying that
    checkpoint out as a savepoint if ``--stop-with-savepoint`` asked for one."""
    target = getattr(args, "stop_with_savepoint", None)
    if not target:
        return EXIT_OK
    cp = runner.store.latest()
    try:
        copy_checkpoint(cp, Path(target))
    except (CheckpointError, OSError) as e:
        print(f"savepoint {cp.id} was taken but cannot be copied to {target}: {e}",
              file=sys.stderr)
        return EXIT_FAILURE
    print(savepoint_summary(cp.meta, Path(target)))
    return EXIT_OK


def _run_to_end(runner: Any, spec: PipelineSpec, display: ProgressDisplay,
                json_logs: bool = False) -> tuple[int, RunResult | None]:
    """(exit code, the result; None when the run did not end): each failure is one line
    naming what it concerns; the live line is gone before it is printed."""
    def stop() -> None:
        runner.request_stop()
        display.notice("stopping after this batch, with a checkpoint to resume from "
                       "(Ctrl-C again to stop at once)")

    try:
        with stop_on_ctrl_c(stop):
            return EXIT_OK, runner.run()
    except (KeyboardInterrupt, Exception) as e:  # noqa: BLE001 - one line each, no traceback
        display.close()  # the live line goes first
        code, line = _failure(f"pipeline {spec.pipeline!r}", runner, e)
        _say_failure(line, spec, code, json_logs)
        return code, None


def _failure(name: str, runner: Any, e: BaseException) -> tuple[int, str]:
    """(exit code, the one line) for a run that did not end."""
    if isinstance(e, KeyboardInterrupt):  # the second Ctrl-C
        return EXIT_INTERRUPTED, aborted_line(runner)
    if isinstance(e, FolderLockError):  # another process has (or took) the folder
        return EXIT_USAGE, f"{name}: {e}"
    if isinstance(e, OutputOwnershipError):
        return EXIT_USAGE, f"{name} cannot start: {e}"
    if isinstance(e, CheckpointError | SinkRecoveryError):
        return EXIT_USAGE, f"{name} cannot resume: {e}"
    if isinstance(e, RunFailure):  # names the input, output or checkpoint folder
        return EXIT_FAILURE, f"{name} failed: {e}"
    return EXIT_FAILURE, f"{name} failed: {type(e).__name__}: {e}"


def _records_to_terminal(spec: PipelineSpec) -> bool:
    """Does an output print records on the terminal? Then a live line would fight them
    for it: the display writes plain lines instead."""
    return sys.stdout.isatty() and any(o.type == "stdout" for o in spec.outputs.values())


def stopped_line(result: RunResult) -> str:
    """The one line of a run stopped by Ctrl-C."""
    head = f"stopped by Ctrl-C after {result.records_in:,} records"
    if result.stop_note is None:
        return f"{head}; checkpoint {result.resume_from} taken; run again to resume"
    again = (f"resume from checkpoint {result.resume_from}" if result.resume_from is not None
             else "start afresh")
    return f"{head}; no checkpoint taken ({result.stop_note}); run again to {again}"


def aborted_line(runner: Any) -> str:
    """The one line of a run stopped by a second Ctrl-C, without a final checkpoint."""
    try:
        latest = runner.store.latest()
    except (CheckpointError, OSError):
        latest = None
    again = (f"resume from checkpoint {latest.id}" if latest is not None and not latest.finished
             else "start afresh")
    return (f"stopped by a second Ctrl-C after {runner.records_in:,} records, without a "
            f"final checkpoint; run again to {again}")


def _cmd_run(args: argparse.Namespace) -> int:
    spec = _load(args)
    if spec is None:
        return EXIT_USAGE
    if args.runner == "flink":
        from surestream.cli.run_flink import run_flink

        return run_flink(args, spec)
    savepoint = None
    if args.from_savepoint:
        # read here, installed by the runner once it holds the checkpoint folder and has
        # checked that the savepoint fits the pipeline
        try:
            savepoint = load_savepoint(Path(args.from_savepoint))
        except (CheckpointError, OSError) as e:
            print(f"--from-savepoint: {e}", file=sys.stderr)
            return EXIT_USAGE
    return _execute(args, spec, allow_non_restored_state=args.allow_non_restored_state,
                    from_savepoint=savepoint)[0]


def _cmd_checkpoints(args: argparse.Namespace) -> int:
    if args.inspect is not None and args.inspect != "":
        return _inspect(Path(args.inspect))
    if args.spec is None:
        print("checkpoints: give a SPEC, or --inspect DIR", file=sys.stderr)
        return EXIT_USAGE
    spec = _load(args)
    if spec is None:
        return EXIT_USAGE
    if args.inspect is not None:
        return _inspect(spec.checkpoint_dir())
    print("\n".join(checkpoint_table(spec)))
    return EXIT_OK


def _inspect(folder: Path) -> int:
    """Each operator's state in the newest readable checkpoint of ``folder`` (a checkpoint
    folder or a savepoint)."""
    from surestream.runners.local.checkpoint_store import CheckpointStore
    from surestream.runners.local.state_summary import inspect_lines

    if not folder.is_dir():
        print(f"--inspect: {folder} is not a folder", file=sys.stderr)
        return EXIT_USAGE
    try:
        cp = CheckpointStore(folder).latest()
    except CheckpointError as e:
        print(f"--inspect: {e}", file=sys.stderr)
        return EXIT_USAGE
    if cp is None:
        print(f"--inspect: {folder} holds no readable checkpoint", file=sys.stderr)
        return EXIT_USAGE
    print("\n".join(inspect_lines(cp)))
    return EXIT_OK


def _cmd_savepoint(args: argparse.Namespace) -> int:
    """Resume, take one checkpoint, copy it out -- all while holding the checkpoint folder,
    so no other run moves it on between the checkpoint and the copy. A finished pipeline is
    refused: resuming it would start it afresh and rewrite every output."""
    from surestream.runners.local.runner import lock_checkpoint_folder

    spec = _load(args)
    if spec is None:
        return EXIT_USAGE
    try:
        lock = lock_checkpoint_folder(spec.checkpoint_dir(), holder="surestream savepoint")
    except FolderLockError as e:
        print(f"pipeline {spec.pipeline!r}: {e}", file=sys.stderr)
        return EXIT_USAGE
    with lock:
        latest = CheckpointStore(spec.checkpoint_dir(), spec.checkpoint.retain).latest()
        if latest is not None and latest.finished:
            print(finished_refusal(spec, latest), file=sys.stderr)
            return EXIT_USAGE
        code, runner = _execute(args, spec, stop_after_checkpoint=True, lock=lock)
        if code != EXIT_OK:
            return code
        cp = runner.store.latest()
        target = Path(args.to) if args.to else default_savepoint_dir(spec, cp.id)
        try:
            copy_checkpoint(cp, target)
        except (CheckpointError, OSError) as e:
            print(f"savepoint {cp.id} was taken but cannot be copied to {target}: {e}",
                  file=sys.stderr)
            return EXIT_FAILURE
    print(savepoint_summary(cp.meta, target))
    return EXIT_OK


def _cmd_verify(args: argparse.Namespace) -> int:
    from surestream.cli.verify import verify

    if args.journal:
        from surestream.cli.verify.live import verify_live

        return verify_live(args.spec, args.journal, overrides=args.set or (),
                           crash_points=args.crash_points, seed=args.seed,
                           workdir=args.workdir, keep=args.keep, timeout_s=args.timeout)

    return verify(args.spec, overrides=args.set or (), crash_points=args.crash_points,
                  seed=args.seed, workdir=args.workdir, keep=args.keep,
                  timeout_s=args.timeout)


def _cmd_demo(args: argparse.Namespace) -> int:
    if args.kafka and getattr(args, "warehouse", "parquet") != "parquet":
        print("demo: --warehouse iceberg runs the file demo; it does not combine with "
              "--kafka yet", file=sys.stderr)
        return EXIT_USAGE
    if args.kafka:
        from surestream.apps.trading.kafka_demo import run_kafka_demo

        return run_kafka_demo(args)
    from surestream.apps.trading.demo import run_demo

    return run_demo(args)


#: the other seed systems' demos (``surestream demo SYSTEM ...``): modules of
#: ``surestream.cli`` whose ``add_parser(subparsers)`` registers one SYSTEM
DEMO_MODULES: tuple[str, ...] = ("demo_iso", "demo_ticks", "demo_payments",
                                 "demo_medallion")

DESCRIPTION = "surestream: stream processing whose first promise is correctness."
EPILOG = """\
exit codes: 0 success, 1 a pipeline failure at run time, 2 a usage or spec error,
130 stopped by Ctrl-C.
spec keys: docs/spec.md (also `surestream schema --markdown`); `surestream COMMAND --help`
for a command's options."""


def _add_spec(p: argparse.ArgumentParser) -> None:
    """The SPEC argument and ``--set``, shared by every command that reads a spec."""
    p.add_argument("spec", metavar="SPEC", help="the pipeline spec file (YAML or JSON)")
    p.add_argument("--set", action="append", metavar="PATH=VALUE",
                   help="override a spec key before validation, repeatable: "
                        "--set runtime.batch_size=1000 --set source.path=other.jsonl")


def _cmd_schema(args: argparse.Namespace) -> int:
    from surestream.cli.schema import json_schema, render_markdown

    sys.stdout.write(render_markdown() if args.markdown
                     else json.dumps(json_schema(), indent=2) + "\n")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    from surestream import __version__

    ap = argparse.ArgumentParser(prog="surestream", description=DESCRIPTION, epilog=EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--version", action="version", version=f"surestream {__version__}",
                    help="print the version and exit")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND",
                            title="commands")
    p = sub.add_parser("validate", help="check a spec; exit 0 if valid, 2 with each error",
                       description="Check a spec: keys, types, values, tags, and the user "
                                   "code it names. Exit 0 if valid, 2 with one line per "
                                   "problem (the field's path and the reason).")
    _add_spec(p)
    p.set_defaults(func=_cmd_validate)
    p = sub.add_parser("run", help="run a pipeline spec to the end of its input",
                       description="Run a pipeline to the end of its bounded input, resuming "
                                   "from the latest checkpoint if there is one; a live input "
                                   "(a Kafka source without stop_at) runs until stopped. "
                                   "Ctrl-C or SIGTERM stops it after the batch in hand, with "
                                   "a checkpoint to resume from (a second one stops at "
                                   "once). Exit 0; 1 on a "
                                   "run-time failure, or when more records went to errors "
                                   "than runtime.max_error_ratio allows (by default: every "
                                   "one); 2 on a spec error; 130 when a bounded run is "
                                   "stopped early (a live run stopped as asked: 0).")
    _add_spec(p)
    p.add_argument("--runner", default="local", choices=["local", "flink"],
                   help="where to run: local, embedded in this process, or flink, the spec "
                        "translated to Flink SQL (docs/flink.md) (default %(default)s)")
    p.add_argument("--from-savepoint", metavar="DIR",
                   help="resume from this savepoint (made by `surestream savepoint`); "
                        "sinks roll back to it. --runner flink: a Flink savepoint or "
                        "retained checkpoint (default: none)")
    p.add_argument("--allow-non-restored-state", action="store_true",
                   help="drop the saved state of operators the pipeline no longer has "
                        "(default: refuse to start)")
    p.add_argument("--stop-with-savepoint", metavar="DIR",
                   help="a live run stopped by SIGTERM or Ctrl-C also copies its final "
                        "checkpoint to DIR as a savepoint; --runner flink: where Flink "
                        "writes the savepoint it stops with (default: none; Flink: "
                        "<checkpoint dir>/flink/savepoints)")
    p.add_argument("--base-dir", help=argparse.SUPPRESS)  # where relative paths resolve
    p.add_argument("--summary", help=argparse.SUPPRESS)  # write a JSON run summary here
    add_ops_arguments(p)
    add_flink_run_arguments(p)
    p.set_defaults(func=_cmd_run)
    p = sub.add_parser("verify", help="prove replay identity and crash recovery on this "
                                      "pipeline's bounded input",
                       description="Prove the exactly-once promises on this pipeline and "
                                   "its bounded input: two clean runs, then runs killed "
                                   "with SIGKILL at seeded points and restarted. One "
                                   "PASS/FAIL line per check; exit 0 only if all pass.")
    _add_spec(p)
    p.add_argument("--crash-points", type=int, default=10, metavar="N",
                   help="runs killed at a seeded fault point (default %(default)s)")
    p.add_argument("--seed", type=int, default=1, metavar="S",
                   help="picks the fault points (default %(default)s)")
    p.add_argument("--workdir", metavar="DIR",
                   help="keep the runs here (default: a temporary folder)")
    p.add_argument("--keep", action="store_true",
                   help="keep the runs' folders (default: delete them)")
    p.add_argument("--timeout", type=float, default=600, metavar="SECONDS",
                   help="a run (restarts included) that takes longer fails "
                        "(default %(default)s)")
    p.add_argument("--journal", metavar="DIR",
                   help="verify a live run from its journal (its checkpoint folder): "
                        "replays, with and without SIGKILLs, against its own outputs "
                        "(default: none, verify runs over a bounded input)")
    p.set_defaults(func=_cmd_verify)
    p = sub.add_parser("checkpoints", help="list the pipeline's checkpoints, or what one "
                                           "holds (--inspect)",
                       description="List the pipeline's checkpoints: id, time, duration, "
                                   "bytes, records, and the newest one's source positions; "
                                   "or, with --inspect, what the newest checkpoint holds, "
                                   "operator by operator.")
    p.add_argument("spec", metavar="SPEC", nargs="?",
                   help="the pipeline spec file (YAML or JSON); optional with --inspect DIR")
    p.add_argument("--set", action="append", metavar="PATH=VALUE",
                   help="override a spec key before validation, repeatable")
    p.add_argument("--inspect", nargs="?", const="", metavar="DIR",
                   help="print each operator's state (keys, windows, timers, bytes) in the "
                        "newest checkpoint of DIR (a checkpoint folder or a savepoint; "
                        "default: the spec's checkpoint folder)")
    p.set_defaults(func=_cmd_checkpoints)
    p = sub.add_parser("savepoint", help="resume, take one checkpoint as a savepoint, stop",
                       description="Resume the pipeline, take one checkpoint after the next "
                                   "batch, copy it out as a savepoint and stop with every "
                                   "sink committed.")
    _add_spec(p)
    p.add_argument("--to", metavar="DIR",
                   help="where to put the savepoint (default: "
                        "<checkpoint dir>-savepoints/sp-<id>)")
    p.set_defaults(func=_cmd_savepoint)
    p = sub.add_parser("schema", help="print the spec's JSON Schema (or its reference)",
                       description="Print the JSON Schema of a pipeline spec, for editors' "
                                   "completion and checks (e.g. `surestream schema > "
                                   "surestream.schema.json`), or with --markdown the spec "
                                   "reference, docs/spec.md.")
    p.add_argument("--markdown", action="store_true",
                   help="print the reference (docs/spec.md) instead (default: JSON Schema)")
    p.set_defaults(func=_cmd_schema)
    add_simulate_parser(sub)
    add_query_parser(sub)
    add_broker_parser(sub)
    add_topics_parser(sub)
    add_replay_parser(sub)
    add_produce_parser(sub)
    add_tables_parser(sub)
    add_templates_parser(sub)
    add_status_parser(sub)
    add_graph_parser(sub)
    add_explain_parser(sub)
    add_flink_parser(sub)
    add_report_parser(sub)
    add_payments_parser(sub)
    add_import_parser(sub)
    p = sub.add_parser("demo", help="the main job: the trading platform end to end",
                       description="The trading platform end to end: simulate the market, "
                                   "run the five jobs into a Parquet warehouse, reconcile "
                                   "with the simulator's truth, report. Exit 0 when every "
                                   "count reconciles, 1 otherwise.")
    p.add_argument("--events", type=int, default=1_000_000, metavar="N",
                   help="market events to simulate (default %(default)s)")
    p.add_argument("--seed", type=int, default=42, metavar="S",
                   help="same seed, same events (default %(default)s)")
    p.add_argument("--out", default="out/demo", metavar="DIR",
                   help="workspace, deleted first (default %(default)s)")
    p.add_argument("--days", type=int, default=5, metavar="N",
                   help="trading days the events are spread over (default %(default)s)")
    p.add_argument("--warehouse", choices=("parquet", "iceberg"), default="parquet",
                   help="the warehouse's format: Parquet dataset folders, or Iceberg tables "
                        "trading.<dataset> in an embedded catalog (default: parquet)")
    p.add_argument("--kafka", action="store_true",
                   help="through Kafka topics: publish the streams to raw.*, run the jobs "
                        "from and to the plan's topics, read them back (default: files)")
    p.add_argument("--bootstrap", default=None, metavar="B",
                   help="--kafka: the cluster, host:port[,...] (default: an embedded broker "
                        "on 127.0.0.1, stopped at the end)")
    p.add_argument("--topic-prefix", default="", metavar="P",
                   help="--kafka: P + the planned names are the topics "
                        "(default: none, the planned names)")
    p.set_defaults(func=_cmd_demo)
    systems = p.add_subparsers(dest="system", required=False, metavar="SYSTEM",
                               help="another seed system (`surestream demo SYSTEM --help`)",
                               title="other seed systems (without SYSTEM: the trading "
                                     "platform)")
    for module in DEMO_MODULES:
        importlib.import_module(f"surestream.cli.{module}").add_parser(systems)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:  # Ctrl-C outside a run's own handling (demo, verify, ...)
        print("stopped by Ctrl-C", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
