"""Why two runs differ: non-deterministic, batch-size dependent or stateful user code, or a
recovery that went wrong -- so that a FAIL names the cause a user can act on.

The runs verify makes answer the question between them:

- two clean runs differ: the output is *non-deterministic* (a user function using random
  numbers or the clock, typically); nothing else can be judged against a moving target;
- the clean runs agree, but a run with the crash runs' small batches and frequent
  checkpoints -- and no crash -- differs: the output *depends on the batch size* (a
  ``map_batches`` function computing over the whole batch, say);
- both agree, but runs restarted from a checkpoint differ: either a user function keeps
  state in memory, which a checkpoint does not hold (a probe run watches each user
  function's globals, attributes and closure variables, see ``user_state``), or recovery
  itself went wrong.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from surestream.cli.verify.outputs import OutputDiff, compare_output, read_output
from surestream.cli.verify.runs import CrashConfig, RunFailed, RunOutcome, Verifier
from surestream.cli.verify.user_state import USER_STEPS, describe_function
from surestream.model.spec import GeneratorSource, PipelineSpec


def compare_runs(v: Verifier, a: RunOutcome, b: RunOutcome) -> list[OutputDiff]:
    """Every output that differs between runs ``a`` and ``b``, with its first difference."""
    diffs = []
    for tag, sink in v.outputs.items():
        d = compare_output(tag, read_output(a.folder, tag, sink), read_output(b.folder, tag, sink))
        if d is not None:
            diffs.append(d)
    return diffs


def user_code(spec: PipelineSpec) -> list[str]:
    """The pipeline's user functions, as a message names them (``map 'number' (m:f)``)."""
    found = [f"generator source {name!r} ({src.function})"
             for name, src in spec.all_sources.items()
             if isinstance(src, GeneratorSource) and isinstance(src.function, str)]
    for stream in spec.all_streams.values():
        found.extend(describe_function(s) for s in stream.steps if isinstance(s, USER_STEPS))
    return found


def user_steps(spec: PipelineSpec) -> list[str]:
    return [describe_function(s) for st in spec.all_streams.values() for s in st.steps
            if isinstance(s, USER_STEPS)]


def _differences(diffs: list[OutputDiff], left: str, right: str) -> str:
    first, rest = diffs[0], diffs[1:]
    text = first.describe(left, right)
    if rest:
        text += "; also differ: " + ", ".join(
            f"{d.tag} ({d.left_records:,} vs {d.right_records:,} records)" for d in rest)
    return text


def nondeterministic(spec: PipelineSpec, diffs: list[OutputDiff]) -> str:
    """The replay-identity FAIL: two clean runs of the same input differ."""
    text = "non-deterministic output: " + _differences(diffs, "run 1", "run 2")
    suspects = user_code(spec)
    if suspects:
        text += (f". User code: {', '.join(suspects)} -- code that uses random numbers, the "
                 "clock or a counter gives different output on every run")
    text += (". A column that holds processing time on purpose can be declared in the "
             "output's processing_time_columns")
    return text


def batch_dependent(spec: PipelineSpec, diffs: list[OutputDiff], clean_batch: int,
                    crash: CrashConfig) -> str:
    """The crash-recovery FAIL when a run with small batches and no crash already differs."""
    runs = f"batch {clean_batch:,}", f"batch {crash.batch_size:,}"
    differences = _differences(diffs, *runs)
    suspects = user_steps(spec)
    if suspects:
        return (f"the output depends on the batch size (user function "
                f"{' or '.join(suspects)}), not on recovery: a run with batches of "
                f"{crash.batch_size:,} and no crash differs from the clean run: {differences}. "
                "A function must give each record the same result whatever batch it comes "
                "in (compute over a key's records in a window or process step instead)")
    return (f"the output depends on the batch size: a run with batches of "
            f"{crash.batch_size:,} and no crash differs from the clean run: {differences}. "
            "The pipeline has no user function, so this is a surestream bug: please report "
            "it with this spec")


@dataclass
class CrashDiff:
    run: str
    point: str
    diffs: list[OutputDiff]


def crash_differences(diffs: list[CrashDiff]) -> str:
    first = diffs[0]
    text = (f"{first.run} (killed {first.point}): "
            + _differences(first.diffs, "clean run", "restarted run"))
    if len(diffs) > 1:
        text += "; also " + ", ".join(d.run for d in diffs[1:])
    return text


def stateful(report: list[dict[str, Any]], diffs: list[CrashDiff], total: int) -> str:
    """The crash-recovery FAIL when user code lost in-memory state at a restart."""
    names = "; ".join(f"user function {r['function']} keeps state outside ctx state "
                      f"({', '.join(r['what'][:3])} changed during a run)" for r in report)
    return (f"{names}, which no checkpoint holds: a restart starts it afresh, so "
            f"{len(diffs)}/{total} restarted runs differ from the clean run, although the "
            "clean runs and a run with the same batches agree. Keep per-key data in ctx "
            "state of a process step (SEMANTICS §6); map, filter and map_batches functions "
            f"must keep none. First difference: {crash_differences(diffs)}")


def probe_user_state(v: Verifier, crash: CrashConfig) -> list[dict[str, Any]]:
    """What each user function changed in memory during one run ([] if nothing, or if the
    probe itself could not run)."""
    _, spec_file = v.prepare("user-state", crash)
    argv = ["-m", "surestream.cli.verify.user_state", str(spec_file), "--base-dir",
            str(v.spec_path.parent)]
    try:
        proc = v.invoke("user-state", argv, {}, time.monotonic() + v.timeout_s)
    except RunFailed:
        return []
    if proc.returncode != 0 or not proc.stdout.strip():
        return []
    return list(json.loads(proc.stdout.strip().splitlines()[-1]).get("changed", []))
