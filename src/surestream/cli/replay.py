"""``surestream replay SPEC --journal DIR --out DIR``: a live run again, byte for byte.

A live run journals which records went into which micro-batch (``runners/local/
journal.py``). The replay re-reads exactly those offsets, in the same chunks and steps,
with the same processing time and checkpoints, and so reproduces the live run's committed
outputs exactly. It never writes over the live run's outputs: every output is redirected
to a file in ``--out`` (a file output keeps its format; any other output becomes JSON
lines), with the replay's own checkpoint folder there.

A replay killed midway (``surestream verify --journal`` does it on purpose) resumes from its
own last checkpoint when run again with the same ``--out``: the folder holds its checkpoints
and no ``replay.done``, the mark a replay leaves when it reached the journal's end.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from surestream.model.loader import SpecError, load_spec
from surestream.model.spec import ERRORS_TAG, FileSink, PipelineSpec

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def add_replay_parser(sub: Any) -> None:
    p = sub.add_parser(
        "replay", help="reproduce a live run's outputs from its journal",
        description="Run a live pipeline again over exactly the records its live run read, "
                    "batch by batch, from the journal in its checkpoint folder: the outputs "
                    "are the live run's committed outputs, byte for byte. Every output goes "
                    "to a file in --out (never over the live run's outputs).")
    p.add_argument("spec", help="the pipeline spec (YAML or JSON) of the live run")
    p.add_argument("--journal", metavar="DIR", default=None,
                   help="the live run's checkpoint folder (or its journal.jsonl) "
                        "(default: the spec's checkpoint folder)")
    p.add_argument("--out", metavar="DIR", required=True,
                   help="an empty or new folder for the replay's outputs and checkpoints "
                        "(default: none, it must be given)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a spec value, as for `run` (default: none)")
    p.add_argument("--summary", help=argparse.SUPPRESS)  # write a JSON run summary here
    p.set_defaults(func=_cmd_replay)


#: left in ``--out`` by a replay that reached the journal's end
DONE_FILE = "replay.done"


def interrupted_replay(out: Path) -> bool:
    """``out`` holds a replay that was killed before the journal's end: it resumes."""
    return (out / "checkpoints").is_dir() and not (out / DONE_FILE).exists()


def redirected(spec: PipelineSpec, out: Path) -> PipelineSpec:
    """``spec`` with every output (the default errors output included) a file in ``out``
    and its checkpoint folder there."""
    outputs: dict[str, Any] = {}
    originals = dict(spec.outputs)
    originals.setdefault(ERRORS_TAG, FileSink(path=str(spec.errors_default_path())))
    for tag, sink in originals.items():
        if isinstance(sink, FileSink):
            suffix = Path(sink.path).suffix
            outputs[tag] = sink.model_copy(update={"path": str(out / f"{tag}{suffix}")})
        else:
            outputs[tag] = FileSink(path=str(out / f"{tag}.jsonl"),
                                    processing_time_columns=sink.processing_time_columns)
    checkpoint = spec.checkpoint.model_copy(update={"dir": str(out / "checkpoints")})
    return spec.model_copy(update={"outputs": outputs, "checkpoint": checkpoint})


def _cmd_replay(args: argparse.Namespace) -> int:
    from surestream.runners.local.journal import JournalError, read_journal
    from surestream.runners.local.runner import LocalRunner, is_live

    try:
        spec = load_spec(args.spec, args.set or ())
    except SpecError as e:
        print(str(e), file=sys.stderr)
        return EXIT_USAGE
    if not is_live(spec):
        print(f"{args.spec}: replay reproduces a live run (a Kafka source without "
              "stop_at); this pipeline's input is bounded, so `surestream run` gives the "
              "same outputs again", file=sys.stderr)
        return EXIT_USAGE
    journal = Path(args.journal) if args.journal else spec.checkpoint_dir()
    out = Path(args.out).resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())) \
            and not interrupted_replay(out):
        print(f"--out: {out} is not an empty folder; give a new or empty one (the replay "
              "never writes over other files)", file=sys.stderr)
        return EXIT_USAGE
    if out == spec.checkpoint_dir().resolve() or out in spec.checkpoint_dir().resolve().parents:
        print(f"--out: {out} holds the live run's checkpoint folder; give another folder",
              file=sys.stderr)
        return EXIT_USAGE
    try:
        plan = read_journal(journal)
    except JournalError as e:
        print(f"--journal: {e}", file=sys.stderr)
        return EXIT_USAGE
    if plan.pipeline != spec.pipeline:
        print(f"--journal: it is the journal of pipeline {plan.pipeline!r}, not "
              f"{spec.pipeline!r}", file=sys.stderr)
        return EXIT_USAGE
    out.mkdir(parents=True, exist_ok=True)
    try:
        result = LocalRunner(redirected(spec, out), replay=plan).run()
    except JournalError as e:
        print(f"--journal: {e}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as e:  # noqa: BLE001 - one line, no traceback
        print(f"replay of {spec.pipeline!r} failed: {type(e).__name__}: {e}",
              file=sys.stderr)
        return EXIT_FAILURE
    if not getattr(result, "interrupted", False):
        (out / DONE_FILE).write_text(f"{plan.steps}\n")
    if args.summary:
        Path(args.summary).write_text(json.dumps(result.summary(), default=str))
    written = ", ".join(f"{t}: {n:,}" for t, n in sorted(result.written.items()))
    print(f"replayed {plan.steps:,} steps ({result.records_in:,} records) of "
          f"{spec.pipeline!r} into {out} ({written})")
    return EXIT_OK
