"""The ``surestream`` command: validate, run, verify, checkpoints, savepoint, schema,
simulate, query, demo.

Exit codes (docs/spec.md): 0 success, 1 a pipeline failure at run time, 2 a usage or
spec error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from surestream.cli.checkpoint_cmds import (
    checkpoint_table,
    copy_checkpoint,
    default_savepoint_dir,
    finished_refusal,
    load_savepoint,
    savepoint_summary,
)
from surestream.cli.progress import ProgressLine
from surestream.cli.query import add_query_parser
from surestream.cli.simulate import add_simulate_parser
from surestream.connectors.file_sinks import OutputOwnershipError
from surestream.connectors.sink_protocol import SinkRecoveryError
from surestream.connectors.sources import SourceError
from surestream.io.lock import FolderLockError
from surestream.model.loader import SpecError, load_spec
from surestream.model.spec import PipelineSpec
from surestream.runners.local.checkpoint_store import CheckpointError, CheckpointStore

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


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
    """Run ``spec`` with a progress line; print per-output counts. (exit code, runner)"""
    from surestream.runners.local.runner import LocalRunner

    line = ProgressLine()
    try:
        runner = LocalRunner(spec, progress=line, **runner_kwargs)
    except (SourceError, ValueError) as e:
        print(f"{args.spec}: {e}", file=sys.stderr)
        return EXIT_USAGE, None
    try:
        result = runner.run()
    except FolderLockError as e:  # another process has (or took) the checkpoint folder
        print(f"pipeline {spec.pipeline!r}: {e}", file=sys.stderr)
        return EXIT_USAGE, runner
    except OutputOwnershipError as e:
        print(f"pipeline {spec.pipeline!r} cannot start: {e}", file=sys.stderr)
        return EXIT_USAGE, runner
    except (CheckpointError, SinkRecoveryError) as e:
        print(f"pipeline {spec.pipeline!r} cannot resume: {e}", file=sys.stderr)
        return EXIT_USAGE, runner
    except Exception as e:  # noqa: BLE001 - report, exit 1
        print(f"pipeline {spec.pipeline!r} failed: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_FAILURE, runner
    line.done(runner._progress(result.elapsed_s))
    if result.restored_from is not None:
        print(f"  resumed from checkpoint {result.restored_from}", file=sys.stderr)
    width = max((len(tag) for tag in result.written), default=0)
    for tag, n in sorted(result.written.items()):
        print(f"  {tag:<{width}} {n:>12,} records", file=sys.stderr)
    if getattr(args, "summary", None):
        Path(args.summary).write_text(json.dumps(result.summary(), default=str))
    return EXIT_OK, runner


def _cmd_run(args: argparse.Namespace) -> int:
    if args.runner != "local":
        print(f"runner {args.runner!r} is not available yet; use --runner local",
              file=sys.stderr)
        return EXIT_USAGE
    spec = _load(args)
    if spec is None:
        return EXIT_USAGE
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

    return verify(args.spec, overrides=args.set or (), crash_points=args.crash_points,
                  seed=args.seed, workdir=args.workdir, keep=args.keep,
                  timeout_s=args.timeout)


def _cmd_demo(args: argparse.Namespace) -> int:
    from surestream.apps.trading.demo import run_demo

    return run_demo(args)


DESCRIPTION = "surestream: stream processing whose first promise is correctness."
EPILOG = """\
exit codes: 0 success, 1 a pipeline failure at run time, 2 a usage or spec error.
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
                                   "from the latest checkpoint if there is one. Exit 0; 1 on "
                                   "a run-time failure; 2 on a spec error.")
    _add_spec(p)
    p.add_argument("--runner", default="local", choices=["local"],
                   help="where to run: local, embedded in this process (default %(default)s; "
                        "the only runner so far)")
    p.add_argument("--from-savepoint", metavar="DIR",
                   help="resume from this savepoint (made by `surestream savepoint`); "
                        "sinks roll back to it")
    p.add_argument("--allow-non-restored-state", action="store_true",
                   help="drop the saved state of operators the pipeline no longer has "
                        "(default: refuse to start)")
    p.add_argument("--base-dir", help=argparse.SUPPRESS)  # where relative paths resolve
    p.add_argument("--summary", help=argparse.SUPPRESS)  # write a JSON run summary here
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
    p.set_defaults(func=_cmd_demo)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
