"""``surestream`` command line: run, validate, demo.

Exit codes (PIPELINE_SPEC.md): 0 success, 1 a pipeline failure at run time, 2 a usage or
spec error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from surestream.cli.progress import ProgressLine
from surestream.connectors.sources import SourceError
from surestream.model.loader import SpecError, load_spec

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


def _cmd_run(args: argparse.Namespace) -> int:
    if args.runner != "local":
        print(f"runner {args.runner!r} is not available yet; use --runner local",
              file=sys.stderr)
        return EXIT_USAGE
    try:
        spec = load_spec(args.spec, args.set or ())
    except SpecError as e:
        print(str(e), file=sys.stderr)
        return EXIT_USAGE
    from surestream.runners.local.runner import LocalRunner

    line = ProgressLine()
    try:
        runner = LocalRunner(spec, progress=line)
    except (SourceError, ValueError) as e:
        print(f"{args.spec}: {e}", file=sys.stderr)
        return EXIT_USAGE
    try:
        result = runner.run()
    except Exception as e:  # noqa: BLE001 - report, exit 1
        print(f"pipeline {spec.pipeline!r} failed: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_FAILURE
    line.done(runner._progress(result.elapsed_s))
    for tag, n in sorted(result.written.items()):
        print(f"  {tag:<20} {n:>12,} records", file=sys.stderr)
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    from surestream.apps.demo import run_demo

    return run_demo(args)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="surestream", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="run a pipeline spec to the end of its input")
    p.add_argument("spec")
    p.add_argument("--set", action="append", metavar="PATH=VALUE",
                   help="override a spec key, e.g. --set runtime.batch_size=1000")
    p.add_argument("--runner", default="local", choices=["local", "flink"])
    p.set_defaults(func=_cmd_run)
    p = sub.add_parser("validate", help="check a spec; exit 0 if valid, 2 with each error")
    p.add_argument("spec")
    p.add_argument("--set", action="append", metavar="PATH=VALUE")
    p.set_defaults(func=_cmd_validate)
    p = sub.add_parser("demo", help="the main job: an example pipeline end to end")
    p.add_argument("--events", type=int, default=200_000)
    p.add_argument("--out", default="out/demo")
    p.set_defaults(func=_cmd_demo)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
