"""``surestream verify SPEC``: the four checks in order, one PASS/FAIL line each.

(a) replay identity -- two clean runs give identical outputs (declared processing-time
    columns aside); if not, the first differing record of each run is shown;
(b) crash recovery -- a run with the crash runs' smaller batches and frequent checkpoints
    but no crash, then N runs each killed with SIGKILL at a seeded fault point and
    restarted until done, each equal to the clean run. A difference is explained: batch-size
    dependent or stateful user code, or recovery (``diagnosis``);
(c) no duplicate keys in the exactly-once outputs (``duplicates``);
(d) the late path counted (``late_paths``).

Exit 0 only if all pass; 1 if one fails (a run that fails or times out fails its check);
2 when the spec or its inputs are unusable, before anything could be verified.
"""

from __future__ import annotations

import json
import random
import shutil
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from surestream.cli.verify.diagnosis import (
    CrashDiff,
    batch_dependent,
    compare_runs,
    crash_differences,
    nondeterministic,
    probe_user_state,
    stateful,
    user_steps,
)
from surestream.cli.verify.duplicates import check_duplicate_keys
from surestream.cli.verify.late_paths import check_late_paths
from surestream.cli.verify.runs import (
    DEFAULT_TIMEOUT_S,
    CrashConfig,
    RunFailed,
    RunOutcome,
    RunTimedOut,
    RunUsageError,
    Verifier,
)
from surestream.model.loader import SpecError
from surestream.runners.local import faults

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

POINT_LABELS = {
    "batch.mid": "mid-batch",
    "checkpoint.state_written": "inside the checkpoint write (state written)",
    "checkpoint.manifest_temp": "inside the checkpoint write (manifest not renamed)",
    "checkpoint.pre_committed": "after pre-commit, before the checkpoint is durable",
    "checkpoint.durable": "between pre-commit and commit (checkpoint durable)",
    "checkpoint.commit_partial": "between commits of two sinks",
}


def report(ok: bool, check: str, detail: str) -> bool:
    print(f"{'PASS' if ok else 'FAIL'} {check}: {detail}", flush=True)
    return ok


def verify(spec_path: str, *, overrides: tuple[str, ...] = (), crash_points: int = 10,
           seed: int = 1, workdir: str | None = None, keep: bool = False,
           timeout_s: float = DEFAULT_TIMEOUT_S) -> int:
    """Run the four checks; the exit code (see the module docstring)."""
    root = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="surestream-verify-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        try:
            v = Verifier(spec_path, tuple(overrides), root, timeout_s=timeout_s)
        except SpecError as e:
            print(str(e), file=sys.stderr)
            return EXIT_USAGE
        print(f"verifying {v.spec.pipeline!r} ({spec_path}) in {root}", flush=True)
        try:
            return _checks(v, crash_points, seed)
        except RunUsageError as e:
            print(e.message, file=sys.stderr)
            return EXIT_USAGE
    finally:
        if not keep and not workdir:
            shutil.rmtree(root, ignore_errors=True)


def _checks(v: Verifier, crash_points: int, seed: int) -> int:
    try:
        clean1 = v.run("clean-1", first=True)
        clean2 = v.run("clean-2")
    except RunUsageError:
        raise
    except RunFailed as e:
        report(False, "replay identity", str(e))
        return EXIT_FAILED
    results = []
    diffs = compare_runs(v, clean1, clean2)
    written = clean1.summary["written"]
    results.append(report(not diffs, "replay identity", nondeterministic(v.spec, diffs) if diffs
                          else "2 clean runs, outputs identical (" + ", ".join(
                              f"{t} {n:,}" for t, n in sorted(written.items())) + " records)"))
    runs = [clean1, clean2]
    if diffs:
        results.append(report(False, "crash recovery", "not judged: two clean runs already "
                                                       "differ (see replay identity)"))
    else:
        try:
            ok, crash_runs = _crash_recovery(v, clean1, crash_points, seed)
        except RunTimedOut as e:
            report(False, "crash recovery", str(e))
            return EXIT_FAILED
        results.append(ok)
        runs.extend(crash_runs)
    dup = check_duplicate_keys(v, runs)
    results.append(report(dup.ok, "no duplicate keys", dup.detail()))
    late = check_late_paths(v.spec, clean1.summary)
    results.append(report(late.ok, "late path counted", late.detail()))
    return EXIT_OK if all(results) else EXIT_FAILED


def _crash_recovery(v: Verifier, clean: RunOutcome, crash_points: int,
                    seed: int) -> tuple[bool, list[RunOutcome]]:
    """Check (b); (passed, the runs made). A time-out propagates (``RunTimedOut``)."""
    records = max(1, int(clean.summary["records_in"]))
    crash = CrashConfig(batch_size=max(1, min(v.spec.runtime.batch_size, records // 16 or 1)),
                        interval_records=max(1, records // 8))
    try:
        counting = v.run("count", crash, count_faults=True)
    except RunTimedOut:
        raise
    except RunFailed as e:
        return report(False, "crash recovery", f"the run with small batches and no crash "
                                               f"failed: {e.message}"), []
    plan = _crash_plan(json.loads((counting.folder / "fault_counts.json").read_text()),
                       crash_points, seed)
    if not plan:
        return report(False, "crash recovery", "not judged: a run over this input passes no "
                                               "point where a crash could be injected (is "
                                               "the input empty?)"), [counting]
    base = compare_runs(v, clean, counting)
    if base:  # no crash needed to differ: the batch size decides
        return report(False, "crash recovery", batch_dependent(
            v.spec, base, v.spec.runtime.batch_size, crash)), [counting]
    crashes = _run_crashes(v, clean, crash, plan)
    return _report_crashes(v, crash, plan, crashes), [counting, *crashes.runs]


def _crash_plan(counts: dict[str, int], crash_points: int, seed: int) -> list[tuple[str, int]]:
    """``crash_points`` (fault point, hit) pairs, seeded: the points the counting run
    passed, taken in turn, each at a random one of its hits; empty if it passed none."""
    rng = random.Random(seed)
    points = [p for p in faults.ALL_POINTS if counts.get(p, 0) > 0]
    if not points:
        return []
    plan = [(points[i % len(points)], rng.randint(1, counts[points[i % len(points)]]))
            for i in range(crash_points)]
    rng.shuffle(plan)
    return plan


@dataclass
class CrashRuns:
    """What the crash runs gave: the runs that finished, those that differ from the clean
    run, and the ones that failed or did not crash."""

    runs: list[RunOutcome] = field(default_factory=list)
    differing: list[CrashDiff] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    crashed: int = 0
    by_point: Counter[str] = field(default_factory=Counter)


def _run_crashes(v: Verifier, clean: RunOutcome, crash: CrashConfig,
                 plan: list[tuple[str, int]]) -> CrashRuns:
    """Each planned run killed at its point and restarted until done, compared with the
    clean run. A time-out propagates (``RunTimedOut``)."""
    found = CrashRuns()
    for i, (point, hit) in enumerate(plan):
        name = f"crash-{i:03d}"
        found.by_point[POINT_LABELS[point]] += 1
        try:
            outcome = v.run(name, crash, fault=f"{point}:{hit}")
        except RunTimedOut:
            raise
        except RunFailed as e:
            found.failures.append(f"{name} ({point}:{hit}): recovery failed: {e.message}")
            continue
        found.crashed += outcome.crashed
        found.runs.append(outcome)
        if not outcome.crashed:
            found.failures.append(f"{name} ({point}:{hit}): did not crash")
        d = compare_runs(v, clean, outcome)
        if d:
            found.differing.append(CrashDiff(name, f"{point}:{hit}", d))
    return found


def _report_crashes(v: Verifier, crash: CrashConfig, plan: list[tuple[str, int]],
                    found: CrashRuns) -> bool:
    """The PASS/FAIL line of check (b); a difference is explained (``diagnosis``)."""
    if not found.differing and not found.failures:
        return report(True, "crash recovery", (
            f"{found.crashed}/{len(plan)} runs killed with SIGKILL and restarted, each equal "
            f"to the clean run (batch {crash.batch_size}, checkpoint every "
            f"{crash.interval_records} records; kill points: " + ", ".join(
                f"{n} {label}" for label, n in found.by_point.most_common()) + ")"))
    details = list(found.failures)
    if found.differing:
        state = probe_user_state(v, crash) if user_steps(v.spec) else []
        details.append(stateful(state, found.differing, len(plan)) if state else
                       f"recovery differs from the clean run in {len(found.differing)}/"
                       f"{len(plan)} runs: {crash_differences(found.differing)}")
    return report(False, "crash recovery", "; ".join(details))
